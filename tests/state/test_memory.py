"""What only MemoryState has: an injectable clock (so expiry is checked to the
millisecond), the sweep that bounds its memory, and close. The interface
itself is tested for every store in test_conformance.py."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from authnet import tickets as tk
from authnet.protocol.factors import Factor
from authnet.state import EventKind, TicketEvent
from authnet.state.memory import MemoryState
from authnet.tickets import Ticket

T0 = 1_700_000_000_000
TH = hashlib.sha256(b"ticket").digest()
OTHER_TH = hashlib.sha256(b"other ticket").digest()


class Clock:
    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> MemoryState:
    return MemoryState(clock=clock)


def issued() -> Ticket:
    return tk.issue(
        th=TH, spid=bytes(16), requested=frozenset({Factor.CLIENT_KEY}), now_ms=T0, ttl_s=120
    )


async def test_records_go_exactly_at_keep_until(store: MemoryState, clock: Clock) -> None:
    await store.create_ticket(issued(), keep_until_ms=T0 + 100)
    await store.put_mail(TH, b"m", keep_until_ms=T0 + 100)
    await store.put_challenge(b"c", 1, keep_until_ms=T0 + 100)
    assert await store.acquire_lock("k", "h", until_ms=T0 + 100) is None
    clock.now = T0 + 99
    assert await store.get_ticket(TH) is not None
    assert await store.get_mail(TH) == b"m"
    assert await store.acquire_lock("k", "other", until_ms=T0 + 500) == T0 + 100
    clock.now = T0 + 100
    assert await store.get_ticket(TH) is None
    assert await store.get_mail(TH) is None
    assert await store.take_challenge(b"c") is None
    assert not await store.release_lock("k", "h")


async def test_swap_extends_keep_until(store: MemoryState, clock: Clock) -> None:
    t = issued()
    await store.create_ticket(t, keep_until_ms=T0 + 100)
    w = tk.attach_browser(
        t,
        browser_key_hash=b"k" * 32,
        wait_secret_hash=b"s" * 32,
        hints=tk.BrowserHints(ip="", user_agent="", origin=""),
        now_ms=T0,
    )
    assert w is not None
    assert await store.swap_ticket(t, w, keep_until_ms=T0 + 300)
    clock.now = T0 + 200
    assert store.sweep() == 0
    assert await store.get_ticket(TH) == w
    clock.now = T0 + 300
    assert store.sweep() == 1
    assert await store.get_ticket(TH) is None


async def test_sweep_drops_only_expired_entries(clock: Clock) -> None:
    store = MemoryState(clock=clock, sweep_every=10**9)
    await store.create_ticket(issued(), keep_until_ms=T0 + 10)
    await store.put_mail(TH, b"m", keep_until_ms=T0 + 10)
    await store.put_challenge(b"c", 1, keep_until_ms=T0 + 10)
    await store.acquire_lock("k", "h", until_ms=T0 + 10)
    await store.put_mail(OTHER_TH, b"keep", keep_until_ms=T0 + 1000)
    assert store.sweep() == 0
    assert len(store.dump()) == 5
    clock.now = T0 + 10
    assert store.sweep() == 4
    assert store.dump() == [b"keep"]
    assert store.sweep() == 0


async def test_writes_trigger_a_sweep(clock: Clock) -> None:
    store = MemoryState(clock=clock, sweep_every=2)
    await store.put_mail(TH, b"old", keep_until_ms=T0 + 1)
    clock.now = T0 + 5
    assert store.dump() == [b"old"]  # still held: expiry is lazy...
    await store.put_mail(OTHER_TH, b"new", keep_until_ms=T0 + 100)
    assert store.dump() == [b"new"]  # ...until the periodic sweep


async def test_close_drops_subscribers(store: MemoryState) -> None:
    async with store.subscribe(TH) as sub:
        await store.close()
        await store.publish(TH, TicketEvent(kind=EventKind.SCANNED, at_ms=1))
        task = asyncio.ensure_future(sub.next_event())
        await asyncio.sleep(0)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
