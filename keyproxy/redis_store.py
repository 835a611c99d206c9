"""Deposits in Redis (docs/keyproxy.md 5): the same DepositStore as SqliteStore.

One hash per deposit under `prefix + token_hash.hex()`; its fields are the
Record's. Every change is one Lua script, so it is atomic: `take` reads the
blob, deletes it and marks the deposit claimed in one step. Each deposit key
carries PEXPIREAT at its `purge_ms`, so Redis drops tombstones by itself;
an expired blob is deleted by `sweep` (and is never handed out: `take`
compares `expires_ms` first). The bytes of waiting blobs are counted in
`prefix + "stored_bytes"` by the same scripts, so `stored_bytes` is one GET.

Redis's own connection and timeout errors are not builtin ConnectionErrors,
so every method raises `RedisUnavailable` (a ConnectionError) in their place,
which the fronts answer with `unavailable`.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final, ParamSpec, TypeVar, cast

import redis.asyncio as aioredis
from redis import exceptions as rx

from keyproxy.deposits import Record, conditions_from_json, conditions_json
from keyproxy.store import Stats

COUNTER: Final = "stored_bytes"
DEPOSIT_TAG: Final = "d:"

# KEYS[1] deposit, KEYS[2] counter; ARGV: field/value pairs then purge_ms, size.
_PUT: Final = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local n = #ARGV
for i = 1, n - 2, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIREAT', KEYS[1], ARGV[n - 1])
if ARGV[n] ~= '0' then redis.call('INCRBY', KEYS[2], ARGV[n]) end
return 1
"""

# KEYS[1] deposit, KEYS[2] counter; ARGV[1] now_ms. Returns the blob or false.
_TAKE: Final = """
local f = redis.call('HMGET', KEYS[1], 'state', 'expires_ms', 'blob')
if f[1] ~= 'waiting' or f[3] == false then return false end
if tonumber(f[2]) <= tonumber(ARGV[1]) then return false end
redis.call('HDEL', KEYS[1], 'blob')
redis.call('HSET', KEYS[1], 'state', 'claimed', 'claimed_ms', ARGV[1])
redis.call('DECRBY', KEYS[2], string.len(f[3]))
return f[3]
"""

# KEYS[1] deposit, KEYS[2] counter; ARGV[1] now_ms, ARGV[2] max_failures.
_FAIL: Final = """
local f = redis.call('HMGET', KEYS[1], 'state', 'expires_ms', 'failures', 'blob')
if f[1] ~= 'waiting' then return false end
if tonumber(f[2]) <= tonumber(ARGV[1]) then return false end
local failures = tonumber(f[3]) + 1
redis.call('HSET', KEYS[1], 'failures', failures)
if failures >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'state', 'burned')
  if f[4] then
    redis.call('HDEL', KEYS[1], 'blob')
    redis.call('DECRBY', KEYS[2], string.len(f[4]))
  end
end
return failures
"""

# KEYS[1] deposit, KEYS[2] counter; ARGV[1] now_ms. Deletes an expired blob,
# and the deposit itself past its purge time (Redis's own expiry may lag).
_SWEEP_ONE: Final = """
local f = redis.call('HMGET', KEYS[1], 'expires_ms', 'purge_ms', 'blob')
if f[1] == false then return 0 end
local now = tonumber(ARGV[1])
local n = 0
if f[3] and tonumber(f[1]) <= now then
  redis.call('HDEL', KEYS[1], 'blob')
  redis.call('DECRBY', KEYS[2], string.len(f[3]))
  n = 1
end
if tonumber(f[2]) <= now then
  redis.call('DEL', KEYS[1])
  n = 1
end
return n
"""

_FIELDS: Final = (
    "blob",
    "size",
    "created_ms",
    "expires_ms",
    "conditions",
    "state",
    "claimed_ms",
    "failures",
    "purge_ms",
)


P = ParamSpec("P")
T = TypeVar("T")


class RedisUnavailable(ConnectionError):
    """Redis did not answer (refused, reset, timed out)."""


def _unavailable(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    @functools.wraps(fn)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except (rx.ConnectionError, rx.TimeoutError) as e:
            raise RedisUnavailable(f"Redis cannot be reached ({type(e).__name__})") from None

    return run


def _int(value: bytes | None, default: int = 0) -> int:
    return default if value is None else int(value)


class RedisStore:
    """`RedisStore("redis://127.0.0.1:6379/0", prefix="keyproxy:")`."""

    def __init__(self, url: str, *, prefix: str = "keyproxy:") -> None:
        self.url = url
        self.prefix = prefix
        self._redis: aioredis.Redis = aioredis.Redis.from_url(
            url, socket_connect_timeout=5, socket_timeout=10, decode_responses=False
        )
        self._put = self._redis.register_script(_PUT)
        self._take = self._redis.register_script(_TAKE)
        self._fail = self._redis.register_script(_FAIL)
        self._sweep = self._redis.register_script(_SWEEP_ONE)
        self._counter = prefix + COUNTER

    def key(self, token_hash: bytes) -> str:
        return self.prefix + DEPOSIT_TAG + token_hash.hex()

    @_unavailable
    async def put(self, record: Record) -> None:
        pairs: list[Any] = [
            "size",
            record.size,
            "created_ms",
            record.created_ms,
            "expires_ms",
            record.expires_ms,
            "conditions",
            conditions_json(record.conditions),
            "state",
            record.state,
            "failures",
            record.failures,
            "purge_ms",
            record.purge_ms,
        ]
        if record.blob is not None:
            pairs += ["blob", record.blob]
        if record.claimed_ms is not None:
            pairs += ["claimed_ms", record.claimed_ms]
        size = len(record.blob) if record.blob is not None else 0
        added = await self._put(
            keys=[self.key(record.token_hash), self._counter],
            args=[*pairs, record.purge_ms, size],
        )
        if not added:
            raise ValueError("a deposit with this token hash already exists")

    @_unavailable
    async def get(self, token_hash: bytes) -> Record | None:
        values = cast(list[bytes | None], await self._redis.hmget(self.key(token_hash), _FIELDS))
        f = dict(zip(_FIELDS, values, strict=True))
        if f["state"] is None:
            return None
        state = f["state"].decode()
        if state not in ("waiting", "claimed", "burned"):
            raise ValueError(f"a deposit in Redis has an unknown state {state!r}")
        return Record(
            token_hash=token_hash,
            blob=f["blob"],
            size=_int(f["size"]),
            created_ms=_int(f["created_ms"]),
            expires_ms=_int(f["expires_ms"]),
            conditions=conditions_from_json(f["conditions"].decode() if f["conditions"] else "[]"),
            state=state,  # type: ignore[arg-type]  # checked above
            claimed_ms=None if f["claimed_ms"] is None else int(f["claimed_ms"]),
            failures=_int(f["failures"]),
            purge_ms=_int(f["purge_ms"]),
        )

    @_unavailable
    async def take(self, token_hash: bytes, now_ms: int) -> bytes | None:
        blob = await self._take(keys=[self.key(token_hash), self._counter], args=[now_ms])
        return None if blob is None else bytes(blob)

    @_unavailable
    async def fail(self, token_hash: bytes, now_ms: int, max_failures: int) -> int | None:
        n = await self._fail(
            keys=[self.key(token_hash), self._counter], args=[now_ms, max_failures]
        )
        return None if n is None else int(n)

    async def _keys(self) -> list[bytes]:
        out: list[bytes] = []
        async for k in self._redis.scan_iter(match=self._pattern(), count=1000):
            out.append(k)
        return out

    def _pattern(self) -> str:
        # Escape glob characters a prefix may hold.
        escaped = "".join("\\" + c if c in "*?[]\\" else c for c in self.prefix)
        return escaped + DEPOSIT_TAG + "*"

    @_unavailable
    async def sweep(self, now_ms: int) -> int:
        n = 0
        for k in await self._keys():
            n += int(await self._sweep(keys=[k, self._counter], args=[now_ms]))
        return n

    @_unavailable
    async def stats(self, now_ms: int) -> Stats:
        waiting = claimed = burned = expired = stored = 0
        for k in await self._keys():
            state, expires = cast(
                list[bytes | None], await self._redis.hmget(k, ["state", "expires_ms"])
            )
            if state is None:
                continue
            s = state.decode()
            if s == "claimed":
                claimed += 1
            elif s == "burned":
                burned += 1
            elif _int(expires) <= now_ms:
                expired += 1
            else:
                waiting += 1
            stored += int(await self._redis.hstrlen(k, "blob"))
        return Stats(
            waiting=waiting, claimed=claimed, burned=burned, expired=expired, stored_bytes=stored
        )

    @_unavailable
    async def stored_bytes(self) -> int:
        return _int(cast(bytes | None, await self._redis.get(self._counter)))

    async def close(self) -> None:
        await self._redis.aclose()
