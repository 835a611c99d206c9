"""The login payload a QR code carries from the browser to the token.

    authnet:login?v=1&t=<ticket>&k=<X25519 key>[&x=<X-Wing key hash>]&n=<host:port>

`t` is the ticket, `k` the browser's ephemeral X25519 public key (32 bytes) that
the token seals Kc to, `x` (optional) the hash of the browser's X-Wing key when
it offers one (the key itself is too big for a QR code: the token gets it from
the network and checks it against `x`), and `n` the network's PassKey API
address (binary fields in base64url). The parser is strict: every field exactly
once (`x` at most once), no unknown fields, no percent-encoding, at most
MAX_LENGTH characters. A token must treat the payload as hostile input.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final

from authnet.errors import MalformedInput
from authnet.protocol.encoding import b64u_decode, b64u_encode
from authnet.protocol.ids import BROWSER_KEY_BYTES, check_ticket
from authnet.protocol.suites import PQ_KEY_HASH_BYTES, BrowserOffer

PREFIX: Final = "authnet:login?"
VERSION: Final = "1"
MAX_LENGTH: Final = 512
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_PORT = re.compile(r"^[1-9][0-9]{0,4}$")


@dataclass(frozen=True, kw_only=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(text: str) -> Address:
    """Parse `host:port`, `[ipv6]:port`; hostnames, IPv4 and IPv6 literals only."""
    if not isinstance(text, str) or not 3 <= len(text) <= 262:
        raise MalformedInput("network address must be host:port")
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1 : end + 2] != ":":
            raise MalformedInput("network address must be [ipv6]:port")
        host, port_text = text[1:end], text[end + 2 :]
        try:
            scoped = ipaddress.IPv6Address(host).scope_id is not None
        except ValueError:
            raise MalformedInput("network address has an invalid IPv6 literal") from None
        if scoped:  # a zone id (%eth0) is free text and local to one machine
            raise MalformedInput("network address must not carry an IPv6 zone id")
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not _HOSTNAME.fullmatch(host):
            raise MalformedInput("network address must be host:port")
        if host.rsplit(".", 1)[-1].isdigit():
            # All-numeric last label: an IPv4 literal or nothing (no TLD is numeric).
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise MalformedInput("network address has an invalid IPv4 literal") from None
    if not _PORT.fullmatch(port_text) or int(port_text) > 65535:
        raise MalformedInput("network address has an invalid port")
    return Address(host=host, port=int(port_text))


@dataclass(frozen=True, kw_only=True)
class LoginPayload:
    ticket: str
    browser_key: bytes
    network: Address
    # SHA-256 of the browser's X-Wing key under its label, when it offers one.
    pq_key_hash: bytes | None = None

    @property
    def offer(self) -> BrowserOffer:
        return BrowserOffer(x25519_key=self.browser_key, pq_key_hash=self.pq_key_hash)

    def __repr__(self) -> str:  # the ticket is a bearer secret
        return f"LoginPayload(network={self.network}, ticket=<hidden>)"

    def encode(self) -> str:
        return (
            f"{PREFIX}v={VERSION}&t={self.ticket}"
            f"&k={b64u_encode(self.browser_key)}"
            + ("" if self.pq_key_hash is None else f"&x={b64u_encode(self.pq_key_hash)}")
            + f"&n={self.network}"
        )


def parse_payload(text: str) -> LoginPayload:
    """Parse and validate a scanned payload; raise MalformedInput saying what is wrong."""
    if not isinstance(text, str):
        raise MalformedInput("login payload must be text")
    if len(text) > MAX_LENGTH:
        raise MalformedInput(f"login payload longer than {MAX_LENGTH} characters")
    if not text.startswith(PREFIX):
        raise MalformedInput("not an authnet login code (expected authnet:login?...)")
    fields: dict[str, str] = {}
    for part in text[len(PREFIX) :].split("&"):
        key, sep, value = part.partition("=")
        if not sep:
            raise MalformedInput("login payload field without '='")
        if key not in ("v", "t", "k", "x", "n"):
            raise MalformedInput(f"login payload has an unknown field {key[:16]!r}")
        if key in fields:
            raise MalformedInput(f"login payload repeats field {key!r}")
        fields[key] = value
    missing = [k for k in ("v", "t", "k", "n") if k not in fields]
    if missing:
        raise MalformedInput(f"login payload lacks field(s) {', '.join(missing)}")
    if fields["v"] != VERSION:
        raise MalformedInput(f"login payload version {fields['v'][:8]!r} is not supported")
    return LoginPayload(
        ticket=check_ticket(fields["t"]),
        browser_key=b64u_decode(fields["k"], field="browser key", length=BROWSER_KEY_BYTES),
        network=parse_address(fields["n"]),
        pq_key_hash=None
        if "x" not in fields
        else b64u_decode(fields["x"], field="X-Wing key hash", length=PQ_KEY_HASH_BYTES),
    )
