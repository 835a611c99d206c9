"""Deposits as the proxy understands them, free of I/O: tokens, conditions,
states and the checks of a deposit request (docs/keyproxy.md 2-3).

A token is 32 random bytes, base64url (43 characters). The store keys a
deposit by SHA-256 of its token only, so a copy of the store cannot claim
anything, and logs name a deposit by a short prefix of that hash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any, Final, Literal

from keyproxy import grants
from keyproxy.errors import Invalid

TOKEN_BYTES: Final = 32
TOKEN_RE: Final = re.compile(r"^[A-Za-z0-9_-]{43}$")
MAX_SUBJECT: Final = 128
MAX_ISSUER: Final = 64
MAX_FAILURES: Final = 5

State = Literal["waiting", "claimed", "expired", "burned"]


@dataclass(frozen=True, slots=True)
class Condition:
    kind: Literal["secret", "grant"]
    hash: bytes = b""  # secret: SHA-256 of the claim secret
    issuer: str = ""  # grant
    subject: str = ""  # grant

    def json(self) -> dict[str, str]:
        if self.kind == "secret":
            return {"kind": "secret", "hash": grants.b64u(self.hash)}
        return {"kind": "grant", "issuer": self.issuer, "subject": self.subject}


@dataclass(frozen=True, slots=True)
class Record:
    """A deposit as stored; `blob` is None once it was claimed, burned or expired."""

    token_hash: bytes
    blob: bytes | None
    size: int
    created_ms: int
    expires_ms: int
    conditions: tuple[Condition, ...]
    state: Literal["waiting", "claimed", "burned"]
    claimed_ms: int | None
    failures: int
    purge_ms: int

    def state_at(self, now_ms: int) -> State:
        if self.state == "waiting" and self.expires_ms <= now_ms:
            return "expired"
        return self.state

    def status(self, now_ms: int) -> dict[str, Any]:
        return {
            "state": self.state_at(now_ms),
            "expires_ms": self.expires_ms,
            "claimed_ms": self.claimed_ms,
            "size": self.size,
            "conditions": [c.kind for c in self.conditions],
        }


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> bytes:
    """The store's key for `token`; Invalid if it is not a token's shape (a
    refusal that does not depend on whether such a deposit exists)."""
    if not isinstance(token, str) or not TOKEN_RE.match(token):
        raise Invalid("a token is 43 characters of base64url")
    return hashlib.sha256(token.encode("ascii")).digest()


def log_name(digest: bytes) -> str:
    """How logs name a deposit: 8 hex digits of its token's hash."""
    return digest.hex()[:8]


def _b64(value: object, what: str, size: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise Invalid(f"{what} must be a base64url string")
    try:
        data = grants.unb64u(value)
    except ValueError:
        raise Invalid(f"{what} is not unpadded base64url") from None
    if size is not None and len(data) != size:
        raise Invalid(f"{what} must be {size} bytes, got {len(data)}")
    return data


def parse_conditions(value: object) -> tuple[Condition, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > 2:
        raise Invalid("conditions must be a list of at most one secret and one grant condition")
    out: list[Condition] = []
    for c in value:
        if not isinstance(c, dict):
            raise Invalid("a condition is an object with a kind")
        kind = c.get("kind")
        if kind == "secret":
            if set(c) != {"kind", "hash"}:
                raise Invalid("a secret condition is {kind, hash}")
            out.append(Condition("secret", hash=_b64(c["hash"], "the secret's hash", 32)))
        elif kind == "grant":
            if set(c) != {"kind", "issuer", "subject"}:
                raise Invalid("a grant condition is {kind, issuer, subject}")
            issuer, subject = c["issuer"], c["subject"]
            if not isinstance(issuer, str) or not 1 <= len(issuer) <= MAX_ISSUER:
                raise Invalid(f"a grant's issuer is 1 to {MAX_ISSUER} characters")
            if not isinstance(subject, str) or not 1 <= len(subject) <= MAX_SUBJECT:
                raise Invalid(f"a grant's subject is 1 to {MAX_SUBJECT} characters")
            out.append(Condition("grant", issuer=issuer, subject=subject))
        else:
            raise Invalid("a condition's kind is secret or grant")
    if len({c.kind for c in out}) != len(out):
        raise Invalid("at most one condition of each kind")
    return tuple(out)


def conditions_json(conditions: tuple[Condition, ...]) -> str:
    return json.dumps([c.json() for c in conditions], separators=(",", ":"))


def conditions_from_json(text: str) -> tuple[Condition, ...]:
    return parse_conditions(json.loads(text))


def secret_matches(condition: Condition, secret: bytes | None) -> bool:
    if secret is None:
        return False
    return hmac.compare_digest(hashlib.sha256(secret).digest(), condition.hash)


def parse_b64(value: object, what: str, size: int | None = None) -> bytes:
    return _b64(value, what, size)
