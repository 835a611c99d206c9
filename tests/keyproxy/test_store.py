"""One conformance suite, run on SqliteStore and RedisStore (docs/keyproxy.md 5)."""

from __future__ import annotations

import asyncio
import secrets

from keyproxy.deposits import Condition, Record
from keyproxy.store import DepositStore

NOW = 1_800_000_000_000


def record(
    blob: bytes = b"sealed bytes", *, expires_ms: int = NOW + 60_000, purge_ms: int | None = None
) -> Record:
    return Record(
        token_hash=secrets.token_bytes(32),
        blob=blob,
        size=len(blob),
        created_ms=NOW,
        expires_ms=expires_ms,
        conditions=(
            Condition("secret", hash=b"\x01" * 32),
            Condition("grant", issuer="vault", subject="u1"),
        ),
        state="waiting",
        claimed_ms=None,
        failures=0,
        purge_ms=purge_ms if purge_ms is not None else expires_ms + 86_400_000,
    )


async def test_put_get_round_trip(store: DepositStore) -> None:
    r = record()
    await store.put(r)
    assert await store.get(r.token_hash) == r
    assert await store.get(secrets.token_bytes(32)) is None


async def test_take_once_then_tombstone(store: DepositStore) -> None:
    r = record(b"x" * 100)
    await store.put(r)
    assert await store.stored_bytes() == 100
    assert await store.take(r.token_hash, NOW + 1) == b"x" * 100
    assert await store.take(r.token_hash, NOW + 2) is None
    got = await store.get(r.token_hash)
    assert got is not None
    assert got.state == "claimed"
    assert got.blob is None
    assert got.claimed_ms == NOW + 1
    assert got.size == 100
    assert await store.stored_bytes() == 0


async def test_take_refuses_an_expired_deposit(store: DepositStore) -> None:
    r = record(expires_ms=NOW + 10)
    await store.put(r)
    assert await store.take(r.token_hash, NOW + 10) is None
    got = await store.get(r.token_hash)
    assert got is not None
    assert got.state_at(NOW + 10) == "expired"


async def test_fail_counts_then_burns(store: DepositStore) -> None:
    r = record(b"y" * 10)
    await store.put(r)
    for n in range(1, 5):
        assert await store.fail(r.token_hash, NOW, 5) == n
    assert await store.stored_bytes() == 10
    assert await store.fail(r.token_hash, NOW, 5) == 5
    got = await store.get(r.token_hash)
    assert got is not None
    assert got.state == "burned"
    assert got.blob is None
    assert got.failures == 5
    assert await store.fail(r.token_hash, NOW, 5) is None
    assert await store.take(r.token_hash, NOW) is None
    assert await store.stored_bytes() == 0


async def test_fail_on_a_claimed_or_missing_deposit(store: DepositStore) -> None:
    r = record()
    await store.put(r)
    await store.take(r.token_hash, NOW)
    assert await store.fail(r.token_hash, NOW, 5) is None
    assert await store.fail(secrets.token_bytes(32), NOW, 5) is None


async def test_sweep_deletes_expired_blobs_and_purges(store: DepositStore) -> None:
    live = record(b"a" * 3)
    expired = record(b"b" * 5, expires_ms=NOW + 10, purge_ms=NOW + 10_000)
    await store.put(live)
    await store.put(expired)
    assert await store.stored_bytes() == 8
    assert await store.sweep(NOW + 20) == 1
    got = await store.get(expired.token_hash)
    assert got is not None
    assert got.blob is None
    assert got.state_at(NOW + 20) == "expired"
    assert await store.stored_bytes() == 3
    assert await store.sweep(NOW + 10_000) >= 1
    assert await store.get(expired.token_hash) is None
    assert (await store.get(live.token_hash)) == live


async def test_stats(store: DepositStore) -> None:
    a, b, c, d = record(b"1"), record(b"22"), record(b"333"), record(b"4444", expires_ms=NOW + 5)
    for r in (a, b, c, d):
        await store.put(r)
    await store.take(b.token_hash, NOW)
    for _ in range(5):
        await store.fail(c.token_hash, NOW, 5)
    s = await store.stats(NOW + 10)
    assert (s.waiting, s.claimed, s.burned, s.expired) == (1, 1, 1, 1)
    assert s.stored_bytes == 1 + 4  # the expired blob waits for the sweep
    assert await store.stored_bytes() == 5


async def test_exactly_one_of_50_concurrent_takes(store: DepositStore) -> None:
    r = record(b"the one blob")
    await store.put(r)
    got = await asyncio.gather(*(store.take(r.token_hash, NOW) for _ in range(50)))
    assert [g for g in got if g is not None] == [b"the one blob"]
    assert await store.stored_bytes() == 0
