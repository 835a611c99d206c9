"""Attempt ids: what a ReportSuccess names, issued without a database row.

An evaluation answers an attempt id and a nonce; a later ReportSuccess names
the id and signs both. Rather than storing every attempt, the id authenticates
itself: `attempt_id = u32be(version) || u64be(created_ms) || 8 random bytes ||
tag` and `tag || nonce = HMAC-SHA256(attempt key, frame("hardener/v1 attempt",
caller, user_id, the first 20 bytes))` (16 bytes each). Only *used* ids are
stored (single use), until they expire.
Pure functions; the attempt key is sealed under the master key like the others.
"""

from __future__ import annotations

import hmac
import secrets
import struct
from dataclasses import dataclass, field

from hardener.transcripts import frame

ATTEMPT_LABEL = b"hardener/v1 attempt"
_HEAD = struct.Struct(">IQ8s")
TAG = 16
ATTEMPT_ID_BYTES = _HEAD.size + TAG  # 36


@dataclass(frozen=True, kw_only=True)
class IssuedAttempt:
    attempt_id: bytes
    nonce: bytes
    key_version: int
    created_ms: int


@dataclass(frozen=True, kw_only=True)
class AttemptKey:
    key: bytes = field(repr=False)

    def _mac(self, caller: str, user_id: str, head: bytes) -> bytes:
        """tag (16 bytes) || nonce (16 bytes)."""
        msg = frame(ATTEMPT_LABEL, caller.encode(), user_id.encode(), head)
        return hmac.digest(self.key, msg, "sha256")

    def issue(self, caller: str, user_id: str, key_version: int, now: float) -> IssuedAttempt:
        created_ms = int(now * 1000)
        head = _HEAD.pack(key_version, created_ms, secrets.token_bytes(8))
        mac = self._mac(caller, user_id, head)
        return IssuedAttempt(
            attempt_id=head + mac[:TAG],
            nonce=mac[TAG:],
            key_version=key_version,
            created_ms=created_ms,
        )

    def open(self, caller: str, user_id: str, attempt_id: bytes) -> IssuedAttempt | None:
        """The attempt this id stands for, if this key issued it for this caller and user."""
        if len(attempt_id) != ATTEMPT_ID_BYTES:
            return None
        head, tag = attempt_id[: _HEAD.size], attempt_id[_HEAD.size :]
        mac = self._mac(caller, user_id, head)
        if not hmac.compare_digest(tag, mac[:TAG]):
            return None
        version, created_ms, _ = _HEAD.unpack(head)
        return IssuedAttempt(
            attempt_id=attempt_id,
            nonce=mac[TAG:],
            key_version=version,
            created_ms=created_ms,
        )
