"""The SP API over mutual TLS: tickets, PUIDs, renewal, data containers and
locks, each with the errors a misbehaving SP gets and the state it leaves."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from authnet import errors
from authnet.network import now_ms
from authnet.protocol.ids import ticket_hash
from authnet.sdk.sp_client import AsyncSPClient
from authnet.testing import TestNetwork
from authnet.tickets import TicketState
from simulators.phone.app import PhoneApp
from tests.helpers import login, make_phone


def shift_clock(net: TestNetwork, seconds: float) -> None:
    """Move the network's clock forward (tickets expire by the network's clock)."""
    net.network.clock = lambda: now_ms() + int(seconds * 1000)


async def test_get_ticket_is_fresh_unguessable_and_advertises_addresses(
    net: TestNetwork, sp: AsyncSPClient
) -> None:
    a = await sp.get_ticket(auth_types="pc")
    b = await sp.get_ticket()
    assert a.ticket != b.ticket
    assert a.ticket.startswith("at1_")
    assert len(a.ticket) == 4 + 22  # 128 random bits, base64url
    assert a.ttl_seconds == 120
    assert a.auth_types == "pc"
    assert a.gateway_url == net.addresses.gateway_url
    assert a.passkey_address == net.addresses.passkey
    stored = await net.network.state.get_ticket(ticket_hash(a.ticket))
    assert stored is not None
    assert stored.state is TicketState.ISSUED


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"ttl_seconds": 5}, "ttl_seconds must be between"),
        ({"ttl_seconds": 100_000}, "ttl_seconds must be between"),
        ({"auth_types": "s"}, "unknown auth type 's'"),
        ({"auth_types": "p" * 20}, "auth_types must be"),
    ],
)
async def test_get_ticket_rejects_bad_arguments(
    sp: AsyncSPClient, kwargs: dict[str, object], words: str
) -> None:
    with pytest.raises(errors.MalformedInput, match=words):
        await sp.get_ticket(**kwargs)  # type: ignore[arg-type]


async def test_puid_is_stable_per_sp_and_differs_across_sps(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp
) -> None:
    first = await sp.get_puid((await login(sp, phone)).ticket.ticket, finalize=True)
    again = await sp.get_puid((await login(sp, phone)).ticket.ticket, finalize=True)
    assert first.puid == again.puid
    assert first.key_id == again.key_id
    other_creds = await net.add_sp("other", "Other SP")
    async with net.sp_client(other_creds) as other:
        there = await other.get_puid((await login(other, phone)).ticket.ticket)
    assert there.puid != first.puid
    assert there.key_id != first.key_id


async def test_ticket_of_another_sp_is_unknown_and_left_intact(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp
) -> None:
    run = await login(sp, phone)
    other_creds = await net.add_sp("other", "Other SP")
    async with net.sp_client(other_creds) as other:
        for call in (
            other.get_puid(run.ticket.ticket, finalize=True),
            other.put_ticket(run.ticket.ticket),
            other.read_data(run.ticket.ticket),
            other.lock(run.ticket.ticket),
        ):
            with pytest.raises(errors.TicketNotFound):
                await call
    # The owner still has a good ticket.
    who = await sp.get_puid(run.ticket.ticket, finalize=True)
    assert who.puid


async def test_replayed_and_unauthenticated_tickets(sp: AsyncSPClient, phone: PhoneApp) -> None:
    waiting = await sp.get_ticket()
    with pytest.raises(errors.TicketNotAuthenticated):
        await sp.get_puid(waiting.ticket)
    run = await login(sp, phone)
    await sp.get_puid(run.ticket.ticket, finalize=True)
    with pytest.raises(errors.TicketConsumed):
        await sp.get_puid(run.ticket.ticket, finalize=True)
    with pytest.raises(errors.TicketConsumed):
        await sp.put_ticket(run.ticket.ticket)
    with pytest.raises(errors.TicketNotFound):
        await sp.get_puid("at1_AAAAAAAAAAAAAAAAAAAAAA")
    with pytest.raises(errors.MalformedInput, match="ticket is malformed"):
        await sp.get_puid("not-a-ticket")


async def test_expired_ticket(net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp) -> None:
    run = await login(sp, phone)
    shift_clock(net, 121)
    with pytest.raises(errors.TicketExpired):
        await sp.get_puid(run.ticket.ticket)
    with pytest.raises(errors.TicketExpired):
        await sp.put_ticket(run.ticket.ticket)


async def test_put_ticket_renews_and_kills_the_old_one(sp: AsyncSPClient, phone: PhoneApp) -> None:
    run = await login(sp, phone)
    who = await sp.get_puid(run.ticket.ticket)
    renewed = await sp.put_ticket(run.ticket.ticket, ttl_seconds=600, auth_types="c")
    assert renewed.ticket != run.ticket.ticket
    assert renewed.ttl_seconds == 600
    assert renewed.auth_types == "c"
    with pytest.raises(errors.TicketConsumed):
        await sp.get_puid(run.ticket.ticket)
    assert (await sp.get_puid(renewed.ticket)).puid == who.puid
    # A factor the login never proved cannot be asked for on renewal.
    with pytest.raises(errors.FactorNotProven):
        await sp.put_ticket(renewed.ticket, auth_types="p")
    # ... and that refusal did not consume the ticket.
    assert (await sp.get_puid(renewed.ticket, finalize=True)).puid == who.puid


async def test_data_container_versions_and_compare_and_set(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp
) -> None:
    t = (await login(sp, phone)).ticket.ticket
    empty = await sp.read_data(t)
    assert (empty.data, empty.version) == (b"", 0)
    assert await sp.write_data(t, b"one", expected_version=0) == 1
    assert await sp.write_data(t, b"two", expected_version=1) == 2
    with pytest.raises(errors.VersionConflict) as stale:
        await sp.write_data(t, b"lost", expected_version=1)
    assert stale.value.detail["current_version"] == 2
    with pytest.raises(errors.VersionConflict):
        await sp.write_data(t, b"lost", expected_version=0)
    assert (await sp.read_data(t)).data == b"two"  # nothing was overwritten
    # Named containers are separate.
    assert await sp.write_data(t, b"x", expected_version=0, container="prefs") == 1
    assert (await sp.read_data(t)).data == b"two"
    # A second login of the same account sees the same data.
    t2 = (await login(sp, phone)).ticket.ticket
    assert (await sp.read_data(t2, container="prefs")).data == b"x"
    # Another SP sees none of it for the same person.
    other_creds = await net.add_sp("other", "Other SP")
    async with net.sp_client(other_creds) as other:
        t3 = (await login(other, phone)).ticket.ticket
        assert (await other.read_data(t3)).version == 0


async def test_data_container_limits(sp: AsyncSPClient, phone: PhoneApp) -> None:
    t = (await login(sp, phone)).ticket.ticket
    with pytest.raises(errors.PayloadTooLarge) as big:
        await sp.write_data(t, b"x" * (16 * 1024 + 1), expected_version=0)
    assert big.value.detail["limit"] == 16 * 1024
    assert (await sp.read_data(t)).version == 0
    with pytest.raises(errors.MalformedInput, match="container name"):
        await sp.read_data(t, container="../etc")


async def test_concurrent_writers_one_wins(sp: AsyncSPClient, phone: PhoneApp) -> None:
    t = (await login(sp, phone)).ticket.ticket
    results = await asyncio.gather(
        *(sp.write_data(t, bytes([i]), expected_version=0) for i in range(8)),
        return_exceptions=True,
    )
    wins = [r for r in results if r == 1]
    assert len(wins) == 1
    assert all(isinstance(r, errors.VersionConflict) for r in results if r != 1)


async def test_locks_are_advisory_with_timeouts(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp
) -> None:
    t = (await login(sp, phone)).ticket.ticket
    lock = await sp.lock(t, timeout_seconds=5)
    with pytest.raises(errors.LockHeld) as held:
        await sp.lock(t)
    assert held.value.detail["expires_at_unix_ms"] == lock.expires_at_unix_ms
    other = await sp.lock(t, container="other")  # another container is independent
    with pytest.raises(errors.LockNotHeld):
        await sp.unlock(t, "not-the-lock-id")
    await sp.unlock(t, lock.lock_id)
    with pytest.raises(errors.LockNotHeld):
        await sp.unlock(t, lock.lock_id)
    again = await sp.lock(t, timeout_seconds=1)
    assert again.lock_id != lock.lock_id
    await sp.unlock(t, other.lock_id, container="other")
    with pytest.raises(errors.MalformedInput, match="lock timeout"):
        await sp.lock(t, timeout_seconds=301)


async def test_lock_expires_by_itself(sp: AsyncSPClient, phone: PhoneApp) -> None:
    t = (await login(sp, phone)).ticket.ticket
    await sp.lock(t, timeout_seconds=1)
    await asyncio.sleep(1.1)
    assert (await sp.lock(t, timeout_seconds=1)).lock_id


async def test_sync_client_does_everything_the_async_one_does(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp
) -> None:
    run = await login(sp, phone)
    t = run.ticket.ticket
    sync = net.sync_sp_client(sp.credentials)
    try:
        who = await asyncio.to_thread(sync.get_puid, t)
        assert who.auth_types == "c"
        assert await asyncio.to_thread(lambda: sync.write_data(t, b"s", expected_version=0)) == 1
        assert (await asyncio.to_thread(sync.read_data, t)).data == b"s"
        lock = await asyncio.to_thread(sync.lock, t)
        await asyncio.to_thread(sync.unlock, t, lock.lock_id)
        renewed = await asyncio.to_thread(sync.put_ticket, t)
        final = await asyncio.to_thread(lambda: sync.get_puid(renewed.ticket, finalize=True))
        assert final.puid == who.puid
        with pytest.raises(errors.TicketConsumed):
            await asyncio.to_thread(lambda: sync.get_puid(renewed.ticket, finalize=True))
        assert (await asyncio.to_thread(sync.get_ticket)).ticket.startswith("at1_")
    finally:
        sync.close()


async def test_two_tokens_of_one_account(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp, tmp_path: Path
) -> None:
    backup = await make_phone(net, tmp_path / "backup.json", backup_of=phone)
    a = await sp.get_puid((await login(sp, phone)).ticket.ticket)
    b = await sp.get_puid((await login(sp, backup)).ticket.ticket)
    assert a.puid == b.puid
    assert a.key_id != b.key_id


async def test_revoking_a_token_ends_the_sessions_it_opened(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp, tmp_path: Path
) -> None:
    backup = await make_phone(net, tmp_path / "backup.json", backup_of=phone)
    run = await login(sp, backup)
    t = run.ticket.ticket
    assert (await sp.get_puid(t)).puid
    await phone.revoke(backup.enrolment(None).token_id)
    for call in (
        sp.get_puid(t),
        sp.get_puid(t, finalize=True),
        sp.read_data(t),
        sp.write_data(t, b"x", expected_version=0),
        sp.lock(t),
        sp.put_ticket(t),
    ):
        with pytest.raises(errors.TokenRevoked):
            await call
    # The account's other token is unaffected.
    assert (await sp.get_puid((await login(sp, phone)).ticket.ticket)).puid


async def test_container_names_with_a_trailing_newline_are_refused(
    sp: AsyncSPClient, phone: PhoneApp
) -> None:
    t = (await login(sp, phone)).ticket.ticket
    with pytest.raises(errors.MalformedInput, match="container name"):
        await sp.write_data(t, b"x", expected_version=0, container="prefs\n")
