"""What only RedisState has: its keys and their lifetimes in Redis, isolation
by prefix, one Pub/Sub connection per node, unreadable records, and what it
does when Redis dies, freezes or comes back.

Failure tests run on a private redis-server (tests.redisdb.RedisServer) that
they kill -9, SIGSTOP and restart; the machine's shared Redis is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from authnet import errors
from authnet import tickets as tk
from authnet.protocol.factors import Factor
from authnet.rpc_status import status_of
from authnet.state import EventKind, StateStore, TicketEvent, open_state
from authnet.state.memory import MemoryState
from authnet.state.redis import RedisState
from authnet.tickets import Ticket
from tests.redisdb import RedisServer, delete_prefix, unique_prefix

EVENT = TicketEvent(kind=EventKind.AUTHENTICATED, at_ms=1_700_000_000_000)
# Short timeouts so failures show within a test's patience.
FAST = {"socket_timeout_s": 0.5, "connect_timeout_s": 0.5, "health_check_s": 0.5}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def ticket() -> Ticket:
    return tk.issue(
        th=hashlib.sha256(secrets.token_bytes(32)).digest(),
        spid=bytes(16),
        requested=frozenset({Factor.CLIENT_KEY}),
        now_ms=now_ms(),
        ttl_s=120,
    )


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with RedisServer() as s:
        yield s


@pytest_asyncio.fixture
async def admin(server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(server.url)
    yield client
    await client.aclose()


@contextlib.asynccontextmanager
async def node(url: str, prefix: str = "authnet:", **options: Any) -> AsyncIterator[RedisState]:
    state = RedisState.from_url(url, prefix=prefix, **options)
    try:
        yield state
    finally:
        await state.close()


async def exercise(state: StateStore, t: Ticket) -> None:
    """One of every write, and a subscription, so the keys exist."""
    keep = now_ms() + 60_000
    await state.create_ticket(t, keep_until_ms=keep)
    await state.put_mail(t.th, b"sealed", keep_until_ms=keep)
    await state.put_challenge(b"challenge-hash", 1, keep_until_ms=keep)
    assert await state.acquire_lock("sp/user/container", "holder", until_ms=keep) is None


# --- keys, lifetimes, isolation -----------------------------------------------------------


async def test_every_key_is_under_the_prefix_with_the_keep_until_as_expiry(
    server: RedisServer, admin: aioredis.Redis
) -> None:
    t = ticket()
    keep = now_ms() + 60_000
    async with node(server.url, "net-a:") as a:
        await a.create_ticket(t, keep_until_ms=keep)
        await a.put_mail(t.th, b"sealed", keep_until_ms=keep + 1)
        await a.put_challenge(b"challenge-hash", 1, keep_until_ms=keep + 2)
        assert await a.acquire_lock("sp/user/container", "holder", until_ms=keep + 3) is None
        async with a.subscribe(t.th):
            channels = await admin.pubsub_channels()
    keys = sorted(await admin.keys("*"))
    assert keys == sorted(
        [
            b"net-a:t:" + t.th,
            b"net-a:m:" + t.th,
            b"net-a:c:challenge-hash",
            b"net-a:l:sp/user/container",
        ]
    )
    assert channels == [b"net-a:e:" + t.th]
    # PXAT: Redis drops each record at exactly the absolute time it was given.
    assert await admin.pexpiretime(b"net-a:t:" + t.th) == keep
    assert await admin.pexpiretime(b"net-a:m:" + t.th) == keep + 1
    assert await admin.pexpiretime(b"net-a:c:challenge-hash") == keep + 2
    assert await admin.pexpiretime(b"net-a:l:sp/user/container") == keep + 3
    # Nothing secret is stored in the clear: the lock keeps a hash of its holder.
    raw_lock = await admin.get(b"net-a:l:sp/user/container")
    assert b"holder" not in raw_lock
    assert raw_lock.endswith(hashlib.sha256(b"holder").digest())


async def test_a_swap_moves_the_expiry(server: RedisServer, admin: aioredis.Redis) -> None:
    t = ticket()
    async with node(server.url) as a:
        await a.create_ticket(t, keep_until_ms=now_ms() + 1000)
        later = now_ms() + 90_000
        w = tk.attach_browser(
            t,
            browser_key_hash=b"k" * 32,
            wait_secret_hash=b"s" * 32,
            hints=tk.BrowserHints(ip="", user_agent="", origin=""),
            now_ms=now_ms(),
        )
        assert w is not None
        assert await a.swap_ticket(t, w, keep_until_ms=later)
    assert await admin.pexpiretime(b"authnet:t:" + t.th) == later


async def test_different_prefixes_are_isolated(redis_url: str) -> None:
    pa, pb = unique_prefix("iso-a"), unique_prefix("iso-b")
    try:
        async with node(redis_url, pa) as a, node(redis_url, pb) as b:
            t = ticket()
            await exercise(a, t)
            assert await b.get_ticket(t.th) is None
            assert await b.get_mail(t.th) is None
            assert await b.take_challenge(b"challenge-hash") is None
            # The same lock name under another prefix is another lock.
            assert (
                await b.acquire_lock("sp/user/container", "other", until_ms=now_ms() + 1000) is None
            )
            await b.create_ticket(t, keep_until_ms=now_ms() + 1000)  # no "exists"
            async with a.subscribe(t.th) as sub_a, b.subscribe(t.th) as sub_b:
                await b.publish(t.th, EVENT)
                assert await asyncio.wait_for(sub_b.next_event(), 2) == EVENT
                pending = asyncio.ensure_future(sub_a.next_event())
                done, _ = await asyncio.wait({pending}, timeout=0.3)
                pending.cancel()
                assert not done  # a's node heard nothing of b's network
    finally:
        delete_prefix(redis_url, pa)
        delete_prefix(redis_url, pb)


async def test_one_pubsub_connection_serves_every_subscriber_of_a_node(
    server: RedisServer, admin: aioredis.Redis
) -> None:
    async with node(server.url) as a, contextlib.AsyncExitStack() as stack:
        ths = [ticket().th for _ in range(300)]
        subs = [await stack.enter_async_context(a.subscribe(th)) for th in ths[:150]]
        subs += [await stack.enter_async_context(a.subscribe(th)) for th in ths[:150]]  # twice
        subs += [await stack.enter_async_context(a.subscribe(th)) for th in ths[150:]]
        assert a.subscribed_tickets() == 300
        clients = [c for c in await admin.client_list() if int(c["sub"]) > 0]
        assert len(clients) == 1
        assert int(clients[0]["sub"]) == 300
        await a.publish(ths[0], EVENT)
        assert await asyncio.wait_for(subs[0].next_event(), 2) == EVENT
        assert await asyncio.wait_for(subs[150].next_event(), 2) == EVENT
    assert a.subscribed_tickets() == 0


async def test_a_burst_of_subscribes_longer_than_the_reply_timeout_all_succeed(
    server: RedisServer,
) -> None:
    # 10,000 browsers reconnecting at once: confirmations queue up behind each
    # other for longer than the reply timeout, and that is a backlog, not a stall.
    async with (
        node(server.url, socket_timeout_s=0.05, health_check_s=5.0) as a,
        contextlib.AsyncExitStack() as stack,
    ):
        started = time.monotonic()
        subs = await asyncio.gather(
            *(stack.enter_async_context(a.subscribe(ticket().th)) for _ in range(3000))
        )
        assert time.monotonic() - started > 0.05  # it really outlasted the timeout
        assert a.subscribed_tickets() == len(subs) == 3000


# --- unreadable records -----------------------------------------------------------------


async def test_an_unreadable_ticket_record_is_an_error_not_a_miss(
    server: RedisServer, admin: aioredis.Redis
) -> None:
    t = ticket()
    async with node(server.url) as a:
        await admin.set(b"authnet:t:" + t.th, b"\x00" * 8 + b"\x09garbage")
        with pytest.raises(errors.StateRecordUnreadable, match="format 9"):
            await a.get_ticket(t.th)


async def test_an_unreadable_event_fails_its_subscribers(
    server: RedisServer, admin: aioredis.Redis
) -> None:
    t = ticket()
    async with node(server.url) as a, a.subscribe(t.th) as sub:
        await admin.publish(b"authnet:e:" + t.th, b"\x01\x00\x00\x00\x00junk")
        with pytest.raises(errors.StateRecordUnreadable):
            await asyncio.wait_for(sub.next_event(), 2)


# --- Redis down, frozen, back ---------------------------------------------------------------

Call = Callable[[RedisState, Ticket], Awaitable[object]]
CALLS: dict[str, Call] = {
    "create_ticket": lambda s, t: s.create_ticket(t, keep_until_ms=now_ms() + 60_000),
    "get_ticket": lambda s, t: s.get_ticket(t.th),
    "swap_ticket": lambda s, t: s.swap_ticket(t, t, keep_until_ms=now_ms() + 60_000),
    "put_mail": lambda s, t: s.put_mail(t.th, b"m", keep_until_ms=now_ms() + 60_000),
    "get_mail": lambda s, t: s.get_mail(t.th),
    "get_ticket_and_mail": lambda s, t: s.get_ticket_and_mail(t.th),
    "take_mail": lambda s, t: s.take_mail(t.th),
    "publish": lambda s, t: s.publish(t.th, EVENT),
    "put_challenge": lambda s, t: s.put_challenge(t.th, 1, keep_until_ms=now_ms() + 60_000),
    "take_challenge": lambda s, t: s.take_challenge(t.th),
    "acquire_lock": lambda s, t: s.acquire_lock("k", "h", until_ms=now_ms() + 60_000),
    "release_lock": lambda s, t: s.release_lock("k", "h"),
}


async def enter_subscription(s: RedisState, t: Ticket) -> None:
    async with s.subscribe(t.th):
        pass


async def assert_every_call_unavailable(state: RedisState, t: Ticket, limit_s: float) -> None:
    """Every call, at once, fails with StateUnavailable, each within limit_s."""

    async def one(name: str, call: Call) -> None:
        started = time.monotonic()
        with pytest.raises(errors.StateUnavailable) as info:
            await call(state, t)
        elapsed = time.monotonic() - started
        assert elapsed < limit_s, f"{name} took {elapsed:.2f}s to fail"
        assert info.value.code == "state_unavailable", name
        assert status_of(info.value).name == "UNAVAILABLE"

    calls = {**CALLS, "subscribe": enter_subscription}
    await asyncio.gather(*(one(name, call) for name, call in calls.items()))
    assert await state.ping() is False


async def test_dead_redis_makes_every_call_unavailable_and_a_restart_heals(
    server: RedisServer,
) -> None:
    t = ticket()
    async with node(server.url, **FAST) as a:
        await exercise(a, t)  # pooled connections exist when Redis dies
        server.kill()
        await assert_every_call_unavailable(a, t, limit_s=1.5)
        server.start()  # same port, empty (no persistence)
        # The same RedisState, not recreated, serves at once.
        assert await a.ping() is True
        assert await a.get_ticket(t.th) is None  # Redis lost it, and says so
        await exercise(a, t)
        assert await a.get_ticket(t.th) == t
        async with a.subscribe(t.th) as sub:
            await a.publish(t.th, EVENT)
            assert await asyncio.wait_for(sub.next_event(), 2) == EVENT


async def test_frozen_redis_times_out_into_unavailable_and_thawing_heals(
    server: RedisServer,
) -> None:
    t = ticket()
    async with node(server.url, **FAST) as a:
        await exercise(a, t)
        server.freeze()
        try:
            # Each call waits out the 0.5 s socket timeout (or the pool's wait).
            await assert_every_call_unavailable(a, t, limit_s=2.0)
        finally:
            server.thaw()
        assert await a.ping() is True
        assert await a.get_ticket(t.th) == t  # nothing was lost, nothing invented


async def test_a_stalled_node_loop_is_not_taken_for_a_dead_redis(server: RedisServer) -> None:
    # The node's own event loop blocks past the command timeout while replies
    # sit unread in the socket: they count, nothing fails. The stall starts at
    # a few points around the write and the read, whichever this loop hits.
    t = ticket()
    async with node(server.url, socket_timeout_s=0.3, health_check_s=30.0) as a:
        await a.create_ticket(t, keep_until_ms=now_ms() + 60_000)
        for turns in range(1, 6):

            async def stall(turns: int = turns) -> None:
                for _ in range(turns):
                    await asyncio.sleep(0)
                time.sleep(0.45)  # noqa: ASYNC251 -- blocking the loop is the point

            stalled = asyncio.ensure_future(stall())
            got = await asyncio.gather(*(a.get_ticket(t.th) for _ in range(5)))
            await stalled
            assert got == [t] * 5, turns


async def test_a_waiter_hears_when_redis_dies_and_can_wait_again_after(
    server: RedisServer,
) -> None:
    t = ticket()
    async with node(server.url, **FAST) as a:
        async with a.subscribe(t.th) as sub:
            waiting = asyncio.ensure_future(sub.next_event())
            await asyncio.sleep(0.05)
            server.kill()
            with pytest.raises(errors.StateUnavailable, match="lost the connection"):
                await asyncio.wait_for(waiting, 2)
            # Dead for good: the caller must subscribe again and re-read state.
            with pytest.raises(errors.StateUnavailable):
                await sub.next_event()
        assert a.subscribed_tickets() == 0
        server.start()
        async with a.subscribe(t.th) as again:
            await a.publish(t.th, EVENT)
            assert await asyncio.wait_for(again.next_event(), 2) == EVENT


async def test_events_received_before_the_loss_are_still_delivered(server: RedisServer) -> None:
    t = ticket()
    async with node(server.url, **FAST) as a, a.subscribe(t.th) as sub:
        await a.publish(t.th, EVENT)
        await asyncio.sleep(0.1)  # it is in the local queue now
        server.kill()
        await asyncio.sleep(0.1)
        assert await sub.next_event() == EVENT
        with pytest.raises(errors.StateUnavailable):
            await asyncio.wait_for(sub.next_event(), 2)


async def test_a_waiter_on_a_frozen_redis_hears_within_the_health_check(
    server: RedisServer,
) -> None:
    # The connection stays open and nothing answers: only the health-check
    # PING notices. 0.5 s of silence, then 0.5 s for the PONG.
    t = ticket()
    async with node(server.url, **FAST) as a:
        async with a.subscribe(t.th) as sub:
            server.freeze()
            try:
                started = time.monotonic()
                with pytest.raises(errors.StateUnavailable):
                    await asyncio.wait_for(sub.next_event(), 5)
                assert time.monotonic() - started < 2.5
            finally:
                server.thaw()
        async with a.subscribe(t.th) as again:
            await a.publish(t.th, EVENT)
            assert await asyncio.wait_for(again.next_event(), 2) == EVENT


async def test_a_subscribe_cancelled_while_unconfirmed_leaves_nothing(server: RedisServer) -> None:
    t = ticket()
    async with node(server.url, socket_timeout_s=5.0, health_check_s=30.0) as a:
        async with a.subscribe(ticket().th):
            pass  # the events connection is open
        server.freeze()
        try:
            entering = asyncio.ensure_future(enter_subscription(a, t))
            await asyncio.sleep(0.2)
            assert not entering.done()  # no confirmation from a frozen Redis
            entering.cancel()
            with pytest.raises(asyncio.CancelledError):
                await entering
            assert a.subscribed_tickets() == 0
        finally:
            server.thaw()
        # The late confirmation and the UNSUBSCRIBE that follows confuse nothing.
        async with a.subscribe(t.th) as sub:
            await a.publish(t.th, EVENT)
            assert await asyncio.wait_for(sub.next_event(), 2) == EVENT


async def test_closing_fails_waiting_subscribers(redis_url: str, redis_prefix: str) -> None:
    a = RedisState.from_url(redis_url, prefix=redis_prefix)
    t = ticket()
    async with a.subscribe(t.th) as sub:
        waiting = asyncio.ensure_future(sub.next_event())
        await asyncio.sleep(0.05)
        await a.close()
        with pytest.raises(errors.StateUnavailable):
            await asyncio.wait_for(waiting, 2)
    with pytest.raises(errors.StateUnavailable, match="closed"):
        await enter_subscription(a, t)


# --- open_state -----------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["", "memory", "memory://"])
def test_open_state_memory(url: str) -> None:
    assert isinstance(open_state(url), MemoryState)


@pytest.mark.parametrize(
    "url",
    ["redis://127.0.0.1:6379/3", "rediss://cache.example:6380/0", "unix:///run/redis.sock?db=2"],
)
async def test_open_state_redis(url: str) -> None:
    state = open_state(url, prefix="net-x:")
    assert isinstance(state, RedisState)
    assert state.prefix == "net-x:"
    await state.close()  # nothing connected yet, nothing to fail


async def test_open_state_over_a_unix_socket_works(server: RedisServer) -> None:
    state = open_state(server.unix_url, prefix="net-u:")
    try:
        assert await state.ping() is True
        t = ticket()
        await exercise(state, t)
        assert await state.get_ticket(t.th) == t
        async with state.subscribe(t.th) as sub:
            await state.publish(t.th, EVENT)
            assert await asyncio.wait_for(sub.next_event(), 2) == EVENT
    finally:
        await state.close()


@pytest.mark.parametrize(
    "url", ["postgresql://u:hunter2@db/x", "http://u:hunter2@h/", "127.0.0.1:6379", "redis:/x"]
)
def test_open_state_refuses_anything_else_without_repeating_the_url(url: str) -> None:
    with pytest.raises(ValueError, match="redis://") as info:
        open_state(url)
    assert "hunter2" not in str(info.value)
    assert "memory://" in str(info.value)
