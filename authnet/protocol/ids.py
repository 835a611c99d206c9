"""Identifiers: tickets, SPIDs, token ids, and the hashes that bind them.

| value      | size     | text form                     | who sees it            |
|------------|----------|-------------------------------|------------------------|
| ticket     | 128 bits | `at1_` + base64url            | SP, browser, token     |
| SPID       | 128 bits | 32 lowercase hex digits       | everyone               |
| token id   | 128 bits | base64url                     | token, network         |
| user id    | 128 bits | never (network-internal)      | network only           |
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Final

from authnet.errors import MalformedInput
from authnet.protocol import labels
from authnet.protocol.encoding import b64u_decode, b64u_encode

TICKET_PREFIX: Final = "at1_"
ID_BYTES: Final = 16
TICKET_RE: Final = re.compile(r"^at1_[A-Za-z0-9_-]{22}$")
# The canonical spelling of 16 bytes in 22 base64url characters: the last one
# carries 2 data bits and 4 zero bits, so it is one of A, Q, g, w. One match
# checks what decoding and re-encoding would (every login step checks a ticket).
_CANONICAL_TICKET_RE: Final = re.compile(r"at1_[A-Za-z0-9_-]{21}[AQgw]")
SPID_RE: Final = re.compile(r"^[0-9a-f]{32}$")
BROWSER_KEY_BYTES: Final = 32


def new_ticket() -> str:
    """A fresh unguessable ticket: 128 random bits."""
    return TICKET_PREFIX + b64u_encode(secrets.token_bytes(ID_BYTES))


def check_ticket(ticket: str) -> str:
    """Return `ticket` if it is well-formed, else raise MalformedInput.

    The error does not echo the value (a ticket is a bearer secret)."""
    if not isinstance(ticket, str) or _CANONICAL_TICKET_RE.fullmatch(ticket) is None:
        if isinstance(ticket, str) and TICKET_RE.fullmatch(ticket):
            raise MalformedInput("ticket is not canonical base64url")
        raise MalformedInput("ticket is malformed: expected at1_ followed by 22 base64url chars")
    return ticket


def ticket_hash(ticket: str) -> bytes:
    """SHA-256 over the ticket under its label: how the network stores and logs
    tickets, and what signatures and the HPKE info bind."""
    return hashlib.sha256(labels.TICKET_HASH + b"\x00" + ticket.encode("ascii")).digest()


def ticket_tag(th: bytes) -> str:
    """Eight hex digits of a ticket hash, for logs: enough to correlate, useless
    to an attacker."""
    return th[:4].hex()


def new_id() -> bytes:
    return secrets.token_bytes(ID_BYTES)


def spid_text(spid: bytes) -> str:
    return spid.hex()


def parse_spid(text: str) -> bytes:
    if not isinstance(text, str) or not SPID_RE.fullmatch(text):
        raise MalformedInput("SPID must be 32 lowercase hex digits")
    return bytes.fromhex(text)


def check_id(value: bytes, *, field: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != ID_BYTES:
        raise MalformedInput(f"{field} must be {ID_BYTES} bytes")
    return value


def token_id_text(token_id: bytes) -> str:
    return b64u_encode(token_id)


def parse_token_id(text: str) -> bytes:
    return b64u_decode(text, field="token id", length=ID_BYTES)


def browser_key_hash(public_key: bytes) -> bytes:
    """SHA-256 of the browser's raw X25519 public key under its label."""
    if len(public_key) != BROWSER_KEY_BYTES:
        raise MalformedInput(f"browser key must be {BROWSER_KEY_BYTES} bytes")
    return hashlib.sha256(labels.BROWSER_KEY_HASH + b"\x00" + public_key).digest()
