"""Claim grants: an issuer's word that the claimer is one of its
authenticated sessions for `subject` (docs/keyproxy.md 4).

A client library as well as the proxy's check: pure functions over bytes,
with `cryptography` as the only dependency, so an issuer (the vault) imports
this module and nothing else of the proxy.

    grant   = u64(expires_ms) || Ed25519(issuer key, message)              (72 bytes)
    message = frame("keyproxy/v1 claim grant", issuer, subject, token_hash, u64(expires_ms))
    frame   = each field as u16 big-endian length || bytes

`token_hash` is SHA-256 of the deposit's token (UTF-8); the grant names the
deposit without holding the token. `token` arguments below take that hash,
base64url without padding, as the HTTP API carries it.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

LABEL: Final = b"keyproxy/v1 claim grant"
GRANT_BYTES: Final = 8 + 64


class GrantInvalid(ValueError):
    """The grant does not verify, names another deposit or subject, or expired."""


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64u(text: str) -> bytes:
    if not isinstance(text, str) or "=" in text:
        raise ValueError("not unpadded base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def token_hash(token: str) -> str:
    """SHA-256 of a deposit's token, base64url: what grants and the store name."""
    return b64u(hashlib.sha256(token.encode("utf-8")).digest())


def frame(*fields: bytes) -> bytes:
    out = bytearray()
    for f in fields:
        if len(f) > 0xFFFF:
            raise ValueError("a framed field is at most 65535 bytes")
        out += struct.pack(">H", len(f)) + f
    return bytes(out)


def message(*, issuer: str, subject: str, token: str, expires_ms: int) -> bytes:
    digest = unb64u(token)
    if len(digest) != 32:
        raise ValueError("a grant names the deposit by its 32-byte token hash")
    return frame(
        LABEL,
        issuer.encode("utf-8"),
        subject.encode("utf-8"),
        digest,
        struct.pack(">Q", expires_ms),
    )


def sign_grant(
    private_key: ed25519.Ed25519PrivateKey,
    *,
    issuer: str,
    subject: str,
    token: str,
    expires_ms: int,
) -> bytes:
    """A grant for the deposit whose token hash is `token` (base64url)."""
    msg = message(issuer=issuer, subject=subject, token=token, expires_ms=expires_ms)
    return struct.pack(">Q", expires_ms) + private_key.sign(msg)


def verify_grant(
    public_key: bytes, grant: bytes, *, issuer: str, subject: str, token: str, now_ms: int
) -> None:
    """Raises GrantInvalid unless `grant` is the issuer's, for this deposit and
    subject, and not expired."""
    if len(grant) != GRANT_BYTES:
        raise GrantInvalid(f"a grant is {GRANT_BYTES} bytes, got {len(grant)}")
    (expires_ms,) = struct.unpack(">Q", grant[:8])
    msg = message(issuer=issuer, subject=subject, token=token, expires_ms=expires_ms)
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(public_key).verify(grant[8:], msg)
    except (InvalidSignature, ValueError):
        raise GrantInvalid(
            f"the grant does not verify with issuer {issuer!r}'s key for this deposit and subject"
        ) from None
    if expires_ms <= now_ms:
        raise GrantInvalid("the grant has expired")
