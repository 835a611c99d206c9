"""One suite for every StateStore (MemoryState and RedisState, see conftest.py):
each atomic step of the interface, its races, expiry in real time, and events.

Expiry is tested on the real clock with short lifetimes (a few hundred ms),
since Redis keeps its own time; "other_node" is a second RedisState on the
same prefix (for MemoryState, the same store), so every cross-node claim is
checked with real Pub/Sub and real keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import time
from dataclasses import replace

import pytest

from authnet import tickets as tk
from authnet.protocol.factors import Factor
from authnet.state import EventKind, TicketEvent
from authnet.tickets import BrowserHints, Ticket, TicketState
from tests.state.conftest import Store
from tests.state.samples import assert_no_default_left, every_field_set

SPID = bytes(range(16))
HINTS = BrowserHints(ip="192.0.2.1", user_agent="UA/1.0", origin="https://sp.example")
# Far enough for anything that must not expire during a test.
LONG_MS = 60_000
# Short lifetimes for expiry: long enough to see the record, short enough to wait out.
SHORT_MS = 500


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_th() -> bytes:
    return hashlib.sha256(secrets.token_bytes(32)).digest()


def issued(th: bytes | None = None) -> Ticket:
    return tk.issue(
        th=th or new_th(),
        spid=SPID,
        requested=frozenset({Factor.CLIENT_KEY}),
        now_ms=now_ms(),
        ttl_s=120,
    )


def attach(t: Ticket, *, browser: bytes = b"B") -> Ticket:
    nxt = tk.attach_browser(
        t,
        browser_key_hash=hashlib.sha256(browser).digest(),
        wait_secret_hash=hashlib.sha256(b"secret" + browser).digest(),
        hints=HINTS,
        now_ms=now_ms(),
    )
    assert nxt is not None
    return nxt


def authenticated(th: bytes | None = None) -> Ticket:
    """A ticket with every optional field set, as CompleteAuth leaves it."""
    t = attach(issued(th))
    t = tk.scan(
        t,
        token_id=b"T" * 16,
        browser_key_hash=t.browser_key_hash or b"",
        nonce=b"N" * 32,
        now_ms=now_ms(),
    )
    return tk.authenticate(
        t,
        token_id=b"T" * 16,
        nonce=b"N" * 32,
        user_id=b"U" * 16,
        proven=frozenset({Factor.PIN, Factor.CLIENT_KEY}),
        now_ms=now_ms(),
    )


def keep(ms: int = LONG_MS) -> int:
    return now_ms() + ms


E_SCANNED = TicketEvent(kind=EventKind.SCANNED, at_ms=1_700_000_000_001)
E_AUTH = TicketEvent(kind=EventKind.AUTHENTICATED, at_ms=1_700_000_000_002)
E_REJECTED = TicketEvent(kind=EventKind.REJECTED, at_ms=1_700_000_000_003)


async def nothing_arrives(sub: object, seconds: float = 0.2) -> bool:
    task = asyncio.ensure_future(sub.next_event())  # type: ignore[attr-defined]
    done, _ = await asyncio.wait({task}, timeout=seconds)
    task.cancel()
    return not done


# --- tickets --------------------------------------------------------------------------


async def test_get_unknown_ticket_is_none(store: Store) -> None:
    assert await store.state.get_ticket(new_th()) is None


async def test_created_ticket_reads_back_equal_with_every_field(store: Store) -> None:
    t = every_field_set(Ticket, th=new_th(), expires_ms=now_ms() + LONG_MS)
    assert_no_default_left(t)
    await store.state.create_ticket(t, keep_until_ms=keep())
    assert await store.state.get_ticket(t.th) == t
    assert await store.other_node.get_ticket(t.th) == t


async def test_creating_an_existing_ticket_raises_key_error(store: Store) -> None:
    t = issued()
    await store.state.create_ticket(t, keep_until_ms=keep())
    with pytest.raises(KeyError):
        await store.other_node.create_ticket(attach(t), keep_until_ms=keep())
    assert await store.state.get_ticket(t.th) == t  # the first one stands


async def test_swap_is_compare_and_set_by_version(store: Store) -> None:
    t = issued()
    await store.state.create_ticket(t, keep_until_ms=keep())
    a, b = attach(t, browser=b"A"), attach(t, browser=b"B")
    assert a.version == b.version == t.version + 1
    # Two nodes race from the same version: exactly one wins.
    results = await asyncio.gather(
        store.state.swap_ticket(t, a, keep_until_ms=keep()),
        store.other_node.swap_ticket(t, b, keep_until_ms=keep()),
    )
    assert sorted(results) == [False, True]
    winner = a if results[0] else b
    assert await store.state.get_ticket(t.th) == winner
    # A stale version never wins again; the winner's version moves on.
    assert not await store.state.swap_ticket(t, b if winner is a else a, keep_until_ms=keep())
    nxt = replace(winner, version=winner.version + 1, state=TicketState.SCANNED)
    assert await store.other_node.swap_ticket(winner, nxt, keep_until_ms=keep())
    assert await store.state.get_ticket(t.th) == nxt


async def test_many_concurrent_swaps_from_one_version_have_one_winner(store: Store) -> None:
    t = issued()
    await store.state.create_ticket(t, keep_until_ms=keep())
    candidates = [attach(t, browser=bytes([i])) for i in range(40)]
    results = await asyncio.gather(
        *(
            (store.state if i % 2 else store.other_node).swap_ticket(t, c, keep_until_ms=keep())
            for i, c in enumerate(candidates)
        )
    )
    assert results.count(True) == 1
    assert await store.state.get_ticket(t.th) == candidates[results.index(True)]


async def test_swap_refuses_a_missing_ticket_and_a_changed_hash(store: Store) -> None:
    t = issued()
    assert not await store.state.swap_ticket(t, attach(t), keep_until_ms=keep())
    assert await store.state.get_ticket(t.th) is None  # no swap creates a ticket
    await store.state.create_ticket(t, keep_until_ms=keep())
    other = new_th()
    assert not await store.state.swap_ticket(t, replace(attach(t), th=other), keep_until_ms=keep())
    assert await store.state.get_ticket(t.th) == t
    assert await store.state.get_ticket(other) is None


async def test_a_swap_leaves_its_mail_and_publishes_its_event_in_one_step(store: Store) -> None:
    t = attach(issued())
    await store.state.create_ticket(t, keep_until_ms=keep())
    nxt = replace(t, version=t.version + 1, state=TicketState.AUTHENTICATED)
    async with store.state.subscribe(t.th) as waiter:
        assert await store.other_node.swap_ticket(
            t, nxt, keep_until_ms=keep(), mail=b"sealed kc", event=E_AUTH
        )
        # Woken by the event, the waiter finds the new ticket and its mail.
        assert await asyncio.wait_for(waiter.next_event(), 2) == E_AUTH
        assert await store.state.get_ticket(t.th) == nxt
        assert await store.state.get_mail(t.th) == b"sealed kc"
        assert await nothing_arrives(waiter)  # one event, published once
    # Each part is optional: an event alone leaves no mail, mail alone no event.
    u = attach(issued())
    await store.state.create_ticket(u, keep_until_ms=keep())
    async with store.state.subscribe(u.th) as waiter:
        u2 = replace(u, version=u.version + 1, state=TicketState.SCANNED)
        assert await store.other_node.swap_ticket(u, u2, keep_until_ms=keep(), event=E_SCANNED)
        assert await asyncio.wait_for(waiter.next_event(), 2) == E_SCANNED
        assert await store.state.get_mail(u.th) is None
        u3 = replace(u2, version=u2.version + 1, state=TicketState.AUTHENTICATED)
        assert await store.state.swap_ticket(u2, u3, keep_until_ms=keep(), mail=b"kc")
        assert await store.other_node.get_mail(u.th) == b"kc"
        assert await nothing_arrives(waiter)


async def test_a_refused_swap_leaves_no_mail_and_publishes_nothing(store: Store) -> None:
    t = attach(issued())
    await store.state.create_ticket(t, keep_until_ms=keep())
    a = replace(t, version=t.version + 1, state=TicketState.SCANNED)
    assert await store.state.swap_ticket(t, a, keep_until_ms=keep())
    stale = replace(t, version=t.version + 1, state=TicketState.AUTHENTICATED)
    async with store.state.subscribe(t.th) as waiter:
        # From a version that is gone, and for a ticket that does not exist.
        assert not await store.other_node.swap_ticket(
            t, stale, keep_until_ms=keep(), mail=b"sealed kc", event=E_AUTH
        )
        missing = issued()
        assert not await store.other_node.swap_ticket(
            missing, attach(missing), keep_until_ms=keep(), mail=b"kc", event=E_AUTH
        )
        assert await nothing_arrives(waiter)
    assert await store.state.get_mail(t.th) is None
    assert await store.state.get_mail(missing.th) is None
    assert await store.state.get_ticket(t.th) == a


async def test_the_ticket_and_its_mail_read_together(store: Store) -> None:
    t = attach(issued())
    assert await store.state.get_ticket_and_mail(t.th) == (None, None)
    await store.state.create_ticket(t, keep_until_ms=keep())
    assert await store.other_node.get_ticket_and_mail(t.th) == (t, None)
    nxt = replace(t, version=t.version + 1, state=TicketState.AUTHENTICATED)
    assert await store.state.swap_ticket(t, nxt, keep_until_ms=keep(), mail=b"sealed kc")
    assert await store.other_node.get_ticket_and_mail(t.th) == (nxt, b"sealed kc")
    assert await store.state.take_mail(t.th) == b"sealed kc"
    assert await store.other_node.get_ticket_and_mail(t.th) == (nxt, None)
    # Mail without a ticket (the ticket expired first) is still reported.
    lone = new_th()
    await store.state.put_mail(lone, b"m", keep_until_ms=keep())
    assert await store.other_node.get_ticket_and_mail(lone) == (None, b"m")


async def test_mail_left_by_a_swap_goes_with_the_keep_until(store: Store) -> None:
    t = attach(issued())
    await store.state.create_ticket(t, keep_until_ms=keep())
    nxt = replace(t, version=t.version + 1, state=TicketState.AUTHENTICATED)
    assert await store.state.swap_ticket(t, nxt, keep_until_ms=keep(SHORT_MS), mail=b"kc")
    assert await store.other_node.get_mail(t.th) == b"kc"
    await asyncio.sleep(SHORT_MS / 1000 + 0.3)
    assert await store.other_node.get_mail(t.th) is None
    assert await store.other_node.get_ticket(t.th) is None


async def test_tickets_are_gone_after_keep_until(store: Store) -> None:
    t = issued()
    await store.state.create_ticket(t, keep_until_ms=keep(SHORT_MS))
    assert await store.state.get_ticket(t.th) == t
    await asyncio.sleep(SHORT_MS / 1000 + 0.1)
    assert await store.state.get_ticket(t.th) is None
    assert await store.other_node.get_ticket(t.th) is None
    # Gone for swaps too, and the hash can be created again.
    assert not await store.state.swap_ticket(t, attach(t), keep_until_ms=keep())
    await store.state.create_ticket(t, keep_until_ms=keep())
    assert await store.state.get_ticket(t.th) == t


async def test_swap_sets_the_new_keep_until(store: Store) -> None:
    t = issued()
    await store.state.create_ticket(t, keep_until_ms=keep(SHORT_MS))
    w = attach(t)
    new_keep = keep(4 * SHORT_MS)
    assert await store.state.swap_ticket(t, w, keep_until_ms=new_keep)
    await asyncio.sleep(SHORT_MS / 1000 + 0.1)
    assert await store.state.get_ticket(t.th) == w  # the old limit passed; the new holds
    await asyncio.sleep(max(0.0, (new_keep - now_ms()) / 1000) + 0.1)
    assert await store.state.get_ticket(t.th) is None


async def test_a_keep_until_in_the_past_keeps_nothing(store: Store) -> None:
    t = issued()
    await store.state.create_ticket(t, keep_until_ms=now_ms() - 1000)
    assert await store.state.get_ticket(t.th) is None


# --- mailbox --------------------------------------------------------------------------


async def test_mail_is_read_until_taken_and_taken_once(store: Store) -> None:
    th, other = new_th(), new_th()
    assert await store.state.get_mail(th) is None
    assert await store.state.take_mail(th) is None
    await store.state.put_mail(th, b"sealed kc", keep_until_ms=keep())
    await store.state.put_mail(other, b"other", keep_until_ms=keep())
    assert await store.other_node.get_mail(th) == b"sealed kc"
    assert await store.state.get_mail(th) == b"sealed kc"  # reading does not take
    assert await store.other_node.take_mail(th) == b"sealed kc"
    assert await store.state.take_mail(th) is None
    assert await store.state.get_mail(th) is None
    assert await store.state.get_mail(other) == b"other"


async def test_concurrent_take_mail_gives_it_to_exactly_one(store: Store) -> None:
    th = new_th()
    await store.state.put_mail(th, b"\x00sealed\xff" * 10, keep_until_ms=keep())
    results = await asyncio.gather(
        *((store.state if i % 2 else store.other_node).take_mail(th) for i in range(100))
    )
    assert [r for r in results if r is not None] == [b"\x00sealed\xff" * 10]
    assert results.count(None) == 99


async def test_mail_expires(store: Store) -> None:
    th = new_th()
    await store.state.put_mail(th, b"sealed", keep_until_ms=keep(SHORT_MS))
    assert await store.state.get_mail(th) == b"sealed"
    await asyncio.sleep(SHORT_MS / 1000 + 0.1)
    assert await store.state.take_mail(th) is None


# --- challenges -----------------------------------------------------------------------


async def test_challenge_is_taken_once_with_its_purpose(store: Store) -> None:
    c1, c2 = secrets.token_bytes(32), secrets.token_bytes(32)
    await store.state.put_challenge(c1, 2, keep_until_ms=keep())
    await store.state.put_challenge(c2, 3, keep_until_ms=keep())
    assert await store.other_node.take_challenge(c1) == 2
    assert await store.state.take_challenge(c1) is None
    assert await store.state.take_challenge(secrets.token_bytes(32)) is None
    assert await store.state.take_challenge(c2) == 3


async def test_concurrent_challenge_takes_have_one_winner(store: Store) -> None:
    c = secrets.token_bytes(32)
    await store.state.put_challenge(c, 1, keep_until_ms=keep())
    results = await asyncio.gather(
        *((store.state if i % 2 else store.other_node).take_challenge(c) for i in range(50))
    )
    assert results.count(1) == 1
    assert results.count(None) == 49


async def test_challenge_expires(store: Store) -> None:
    c = secrets.token_bytes(32)
    await store.state.put_challenge(c, 1, keep_until_ms=keep(SHORT_MS))
    await asyncio.sleep(SHORT_MS / 1000 + 0.1)
    assert await store.state.take_challenge(c) is None


# --- locks ----------------------------------------------------------------------------


async def test_a_held_lock_reports_its_expiry_and_keys_are_independent(store: Store) -> None:
    k = f"lock-{secrets.token_hex(4)}"
    until = keep()
    assert await store.state.acquire_lock(k, "alice", until_ms=until) is None
    # Held: others (and the holder itself) get the current holder's expiry.
    assert await store.other_node.acquire_lock(k, "bob", until_ms=until + 5000) == until
    assert await store.state.acquire_lock(k, "alice", until_ms=until + 5000) == until
    assert await store.state.acquire_lock(k + "-other", "bob", until_ms=until) is None


async def test_only_the_holder_releases_a_lock(store: Store) -> None:
    k = f"lock-{secrets.token_hex(4)}"
    assert await store.state.acquire_lock(k, "alice-lock-id", until_ms=keep()) is None
    assert not await store.other_node.release_lock(k, "bob")
    assert not await store.other_node.release_lock(k, "alice-lock-i")  # a prefix is not it
    assert not await store.other_node.release_lock(k, "alice-lock-idx")
    assert await store.other_node.release_lock(k, "alice-lock-id")
    assert not await store.state.release_lock(k, "alice-lock-id")  # released once
    assert await store.state.acquire_lock(k, "bob", until_ms=keep()) is None
    assert not await store.state.release_lock(f"lock-{secrets.token_hex(4)}", "bob")


async def test_concurrent_acquires_have_one_winner(store: Store) -> None:
    k = f"lock-{secrets.token_hex(4)}"
    until = keep()
    results = await asyncio.gather(
        *(
            (store.state if i % 2 else store.other_node).acquire_lock(k, f"h{i}", until_ms=until)
            for i in range(30)
        )
    )
    assert results.count(None) == 1
    assert results.count(until) == 29
    assert await store.state.release_lock(k, f"h{results.index(None)}")


async def test_expiry_frees_a_lock(store: Store) -> None:
    k = f"lock-{secrets.token_hex(4)}"
    assert await store.state.acquire_lock(k, "alice", until_ms=keep(SHORT_MS)) is None
    await asyncio.sleep(SHORT_MS / 1000 + 0.1)
    # The old holder can no longer release it; another may take it.
    assert not await store.state.release_lock(k, "alice")
    assert await store.other_node.acquire_lock(k, "carol", until_ms=keep()) is None
    assert not await store.state.release_lock(k, "alice")
    assert await store.state.release_lock(k, "carol")


# --- events ---------------------------------------------------------------------------


async def test_events_reach_every_subscriber_of_their_ticket_in_order(store: Store) -> None:
    th, other = new_th(), new_th()
    async with (
        store.state.subscribe(th) as a,
        store.other_node.subscribe(th) as b,
        store.state.subscribe(other) as c,
    ):
        await store.other_node.publish(th, E_SCANNED)
        await store.state.publish(th, E_AUTH)
        assert [await a.next_event(), await a.next_event()] == [E_SCANNED, E_AUTH]
        assert [await b.next_event(), await b.next_event()] == [E_SCANNED, E_AUTH]
        # The other ticket's subscriber got nothing of th's...
        assert await nothing_arrives(c)
        # ...and gets its own.
        await store.other_node.publish(other, E_REJECTED)
        assert await c.next_event() == E_REJECTED


async def test_an_event_published_right_after_subscribe_is_never_missed(store: Store) -> None:
    # The gateway subscribes, then reads the ticket; whatever another node
    # publishes after subscribe returned must arrive. Many times, on fresh
    # channels, to give a race room to show.
    for _ in range(30):
        th = new_th()
        async with store.state.subscribe(th) as sub:
            await store.other_node.publish(th, E_AUTH)
            assert await asyncio.wait_for(sub.next_event(), 2) == E_AUTH


async def test_the_last_subscriber_to_leave_unsubscribes(store: Store) -> None:
    th = new_th()
    assert await store.listeners(th) == 0
    async with store.state.subscribe(th) as first:
        async with store.state.subscribe(th):
            assert await store.listeners(th) >= 1
        # One left, one remains: still subscribed and still delivered to.
        assert await store.listeners(th) >= 1
        await store.other_node.publish(th, E_SCANNED)
        assert await first.next_event() == E_SCANNED
    for _ in range(50):  # Redis handles the UNSUBSCRIBE just after we leave
        if await store.listeners(th) == 0:
            break
        await asyncio.sleep(0.02)
    assert await store.listeners(th) == 0
    # Publishing with nobody listening is harmless; a later subscriber gets
    # only what is published after it subscribed.
    await store.state.publish(th, E_SCANNED)
    async with store.state.subscribe(th) as late:
        await store.state.publish(th, E_AUTH)
        assert await late.next_event() == E_AUTH
        assert await nothing_arrives(late)


async def test_leaving_and_resubscribing_at_once_still_delivers(store: Store) -> None:
    # An UNSUBSCRIBE followed at once by a SUBSCRIBE of the same channel must
    # leave it subscribed.
    th = new_th()
    for _ in range(20):
        async with store.state.subscribe(th):
            pass
        async with store.state.subscribe(th) as sub:
            await store.other_node.publish(th, E_SCANNED)
            assert await asyncio.wait_for(sub.next_event(), 2) == E_SCANNED


async def test_a_cancelled_wait_leaves_the_subscription_usable(store: Store) -> None:
    th = new_th()
    async with store.state.subscribe(th) as sub:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(sub.next_event(), 0.05)
        await store.other_node.publish(th, E_AUTH)
        assert await asyncio.wait_for(sub.next_event(), 2) == E_AUTH


async def test_many_subscribers_on_many_tickets(store: Store) -> None:
    ths = [new_th() for _ in range(200)]
    async with contextlib.AsyncExitStack() as stack:
        subs = [await stack.enter_async_context(store.state.subscribe(th)) for th in ths]
        await asyncio.gather(*(store.other_node.publish(th, E_SCANNED) for th in ths))
        got = await asyncio.wait_for(asyncio.gather(*(s.next_event() for s in subs)), 5)
        assert got == [E_SCANNED] * len(ths)


# --- health ---------------------------------------------------------------------------


async def test_ping(store: Store) -> None:
    assert await store.state.ping() is True
