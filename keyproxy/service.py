"""The proxy's three operations over a DepositStore, shared by the HTTP and
gRPC fronts (docs/keyproxy.md 3). No transport here: requests arrive as
parsed JSON-shaped dicts, refusals leave as keyproxy.errors."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from keyproxy import grants
from keyproxy.deposits import (
    MAX_FAILURES,
    Condition,
    Record,
    log_name,
    new_token,
    parse_b64,
    parse_conditions,
    secret_matches,
    token_hash,
)
from keyproxy.errors import (
    Burned,
    Claimed,
    ConditionFailed,
    Expired,
    Full,
    Invalid,
    NotFound,
    TooLarge,
)
from keyproxy.limits import RateLimiter
from keyproxy.store import DepositStore

log = logging.getLogger("keyproxy")


@dataclass(frozen=True, slots=True)
class Limits:
    max_blob_bytes: int = 65536
    max_ttl_seconds: int = 7 * 86400
    tombstone_seconds: int = 86400
    max_stored_bytes: int = 1 << 30
    deposit_rate: float = 20.0
    deposit_burst: int = 100
    claim_rate: float = 20.0
    claim_burst: int = 100


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _fields(body: Mapping[str, Any], allowed: set[str], what: str) -> None:
    if not isinstance(body, Mapping):
        raise Invalid(f"{what} is a JSON object")
    extra = sorted(set(body) - allowed)
    if extra:
        raise Invalid(f"unknown fields in {what}: {', '.join(extra)}", fields=extra)


class ProxyService:
    def __init__(
        self,
        store: DepositStore,
        *,
        limits: Limits | None = None,
        issuers: Callable[[], Mapping[str, bytes]] = dict,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.store = store
        self.limits = limits or Limits()
        self.issuers = issuers
        self.clock = clock
        self.deposit_limiter = RateLimiter(self.limits.deposit_rate, self.limits.deposit_burst)
        self.claim_limiter = RateLimiter(self.limits.claim_rate, self.limits.claim_burst)

    async def deposit(self, body: Mapping[str, Any], *, client: str = "") -> dict[str, Any]:
        _fields(body, {"blob", "ttl_seconds", "conditions"}, "a deposit")
        self.deposit_limiter.check(client, "deposits")
        if "blob" not in body:
            raise Invalid("a deposit needs a blob")
        blob = parse_b64(body["blob"], "blob")
        if len(blob) > self.limits.max_blob_bytes:
            raise TooLarge(
                f"the blob is {len(blob)} bytes; at most {self.limits.max_blob_bytes}",
                limit=self.limits.max_blob_bytes,
            )
        if not blob:
            raise Invalid("the blob is empty")
        ttl = body.get("ttl_seconds")
        if (
            not isinstance(ttl, int)
            or isinstance(ttl, bool)
            or not 1 <= ttl <= self.limits.max_ttl_seconds
        ):
            raise Invalid(f"ttl_seconds is a whole number from 1 to {self.limits.max_ttl_seconds}")
        conditions = parse_conditions(body.get("conditions"))
        known = self.issuers()
        for c in conditions:
            if c.kind == "grant" and c.issuer not in known:
                raise Invalid(f"no grant issuer named {c.issuer!r} is registered with this proxy")
        if await self.store.stored_bytes() + len(blob) > self.limits.max_stored_bytes:
            raise Full("the proxy holds as much as it may; try again later")
        token = new_token()
        now = self.clock()
        expires = now + ttl * 1000
        record = Record(
            token_hash=token_hash(token),
            blob=blob,
            size=len(blob),
            created_ms=now,
            expires_ms=expires,
            conditions=conditions,
            state="waiting",
            claimed_ms=None,
            failures=0,
            purge_ms=expires + self.limits.tombstone_seconds * 1000,
        )
        await self.store.put(record)
        log.info(
            "deposit %s: %d bytes, %d s, conditions %s",
            log_name(record.token_hash),
            len(blob),
            ttl,
            ",".join(c.kind for c in conditions) or "none",
        )
        return {"token": token, "expires_ms": expires}

    async def _record(self, token: str) -> Record:
        record = await self.store.get(token_hash(token))
        now = self.clock()
        if record is None or record.purge_ms <= now:
            raise NotFound("no such deposit (never made, or gone since its time ran out)")
        return record

    async def status(self, token: str) -> dict[str, Any]:
        record = await self._record(token)
        return record.status(self.clock())

    def _refuse_unclaimable(self, record: Record) -> None:
        state = record.state_at(self.clock())
        if state == "claimed":
            raise Claimed("this deposit was already claimed", claimed_ms=record.claimed_ms)
        if state == "expired":
            raise Expired(
                "this deposit expired before it was claimed", expires_ms=record.expires_ms
            )
        if state == "burned":
            raise Burned("this deposit was destroyed after too many failed claims")

    def _check(self, c: Condition, token: str, body: Mapping[str, Any]) -> bool:
        if c.kind == "secret":
            secret = body.get("secret")
            return secret is not None and secret_matches(c, parse_b64(secret, "secret"))
        raw = body.get("grant")
        if raw is None:
            return False
        grant = parse_b64(raw, "grant")
        key = self.issuers().get(c.issuer)
        if key is None:
            return False
        try:
            grants.verify_grant(
                key,
                grant,
                issuer=c.issuer,
                subject=c.subject,
                token=grants.token_hash(token),
                now_ms=self.clock(),
            )
        except grants.GrantInvalid:
            return False
        return True

    async def claim(
        self, token: str, body: Mapping[str, Any], *, client: str = ""
    ) -> dict[str, Any]:
        _fields(body, {"secret", "grant"}, "a claim")
        self.claim_limiter.check(client, "claims")
        record = await self._record(token)
        self._refuse_unclaimable(record)
        for c in record.conditions:
            if not self._check(c, token, body):
                failures = await self.store.fail(record.token_hash, self.clock(), MAX_FAILURES)
                if failures is None:
                    self._refuse_unclaimable(await self._record(token))
                    raise NotFound("no such deposit")
                left = max(0, MAX_FAILURES - failures)
                log.info("claim %s: %s condition failed", log_name(record.token_hash), c.kind)
                if left == 0:
                    raise Burned(
                        f"the {c.kind} condition failed {MAX_FAILURES} times: "
                        "the deposit is destroyed"
                    )
                raise ConditionFailed(
                    f"the deposit's {c.kind} condition is not met",
                    condition=c.kind,
                    attempts_left=left,
                )
        blob = await self.store.take(record.token_hash, self.clock())
        if blob is None:
            # Another claim won the race (or it expired or burned meanwhile).
            self._refuse_unclaimable(await self._record(token))
            raise NotFound("no such deposit")
        log.info("claim %s: taken", log_name(record.token_hash))
        return {"blob": grants.b64u(blob)}
