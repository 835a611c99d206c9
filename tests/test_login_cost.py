"""What the cheaper login kept: the optimisations of the login path (bench/login.py)
must not change what a login means. A cached token record still lets a
revocation on this node end the token's sessions at once, and one made
elsewhere within `token_cache_seconds`; the one-regex ticket check accepts
and refuses exactly what decoding did; the gateway refuses permessage-deflate;
hints are truncated and factors spelled exactly as before."""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st

from authnet import errors
from authnet.network import TOKEN_CACHE_S, _truncate, now_ms
from authnet.protocol.factors import Factor, format_factors, parse_factors
from authnet.protocol.ids import check_ticket, new_ticket
from authnet.sdk.credentials import SpCredentials
from authnet.sdk.sp_client import AsyncSPClient
from authnet.testing import TestNetwork
from tests.helpers import login, make_phone

B64U = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest_asyncio.fixture
async def cached_net(tmp_path: Path) -> AsyncIterator[TestNetwork]:
    """A node that caches as `authnet serve` does (TestNetwork turns it off)."""
    async with TestNetwork(tmp_path, sp_cache_seconds=5.0) as n:
        yield n


@pytest_asyncio.fixture
async def cached_sp(cached_net: TestNetwork) -> AsyncIterator[AsyncSPClient]:
    creds: SpCredentials = await cached_net.add_sp("hello", "Hello SP")
    async with cached_net.sp_client(creds) as client:
        yield client


async def test_a_node_caches_its_token_records_for_at_most_a_second(
    cached_net: TestNetwork,
) -> None:
    assert cached_net.network.token_cache_seconds == TOKEN_CACHE_S == 1.0


async def test_tests_networks_read_every_token_afresh(net: TestNetwork) -> None:
    assert net.network.token_cache_seconds == 0


async def test_a_revocation_on_this_node_ends_sessions_at_once_despite_the_cache(
    cached_net: TestNetwork, cached_sp: AsyncSPClient, tmp_path: Path
) -> None:
    phone = await make_phone(cached_net, tmp_path / "phone.json")
    backup = await make_phone(cached_net, tmp_path / "backup.json", backup_of=phone)
    t = (await login(cached_sp, backup)).ticket.ticket
    assert (await cached_sp.get_puid(t)).puid  # the backup's record is now cached
    await phone.revoke(backup.enrolment(None).token_id)
    with pytest.raises(errors.TokenRevoked):
        await cached_sp.get_puid(t)
    # And its next login is refused at BeginAuth.
    with pytest.raises(errors.TokenRevoked):
        await login(cached_sp, backup)


async def test_a_revocation_elsewhere_takes_effect_within_the_cache_time(
    cached_net: TestNetwork, cached_sp: AsyncSPClient, tmp_path: Path
) -> None:
    """Another node of the cluster revoked the token: it wrote the directory,
    which this node reads again once its record is older than the cache time."""
    phone = await make_phone(cached_net, tmp_path / "phone.json")
    backup = await make_phone(cached_net, tmp_path / "backup.json", backup_of=phone)
    t = (await login(cached_sp, backup)).ticket.ticket
    assert (await cached_sp.get_puid(t)).puid
    await cached_net.network.directory.revoke_token(backup.enrolment(None).token_id, now_ms())
    revoked_at = time.monotonic()
    while True:
        try:
            await cached_sp.get_puid(t)
        except errors.TokenRevoked:
            break
        assert time.monotonic() - revoked_at < TOKEN_CACHE_S + 0.5
        await asyncio.sleep(0.05)
    # Account operations never trust the cache: the revoked token cannot list
    # the account's tokens even right after another login cached nothing new.
    with pytest.raises(errors.TokenRevoked):
        await backup.tokens()


async def test_a_cached_login_still_gives_the_right_identity(
    cached_net: TestNetwork, cached_sp: AsyncSPClient, tmp_path: Path
) -> None:
    a = await make_phone(cached_net, tmp_path / "a.json")
    b = await make_phone(cached_net, tmp_path / "b.json")
    seen = set()
    for phone in (a, b, a, b):
        who = await cached_sp.get_puid((await login(cached_sp, phone)).ticket.ticket)
        seen.add((phone.enrolment(None).token_id, who.puid, who.key_id))
    assert len(seen) == 2  # each phone always its own PUID and key id
    assert len({puid for _, puid, _ in seen}) == 2


def _decodes_as_a_ticket(ticket: str) -> bool:
    """The ticket rule spelled out: at1_ and the canonical base64url of 16 bytes."""
    body = ticket[4:]
    if not ticket.startswith("at1_") or len(body) != 22 or any(c not in B64U for c in body):
        return False
    try:
        raw = base64.urlsafe_b64decode(body + "==")
    except (binascii.Error, ValueError):
        return False
    return len(raw) == 16 and base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == body


def _accepted(ticket: str) -> bool:
    try:
        check_ticket(ticket)
    except errors.MalformedInput:
        return False
    return True


@given(
    st.one_of(
        st.text(alphabet=B64U, min_size=22, max_size=22).map(lambda s: "at1_" + s),
        st.text(max_size=30),
        st.builds(lambda: new_ticket()),
    )
)
def test_the_ticket_check_accepts_exactly_canonical_tickets(ticket: str) -> None:
    assert _accepted(ticket) == _decodes_as_a_ticket(ticket)


def test_the_ticket_check_names_a_non_canonical_ticket() -> None:
    good = new_ticket()
    assert check_ticket(good) == good
    last = B64U.index(good[-1])
    stray = good[:-1] + B64U[last | 1]  # a low bit set: decodes, but not canonically
    with pytest.raises(errors.MalformedInput, match="not canonical"):
        check_ticket(stray)
    with pytest.raises(errors.MalformedInput, match="ticket is malformed"):
        check_ticket(good + "\n")


async def test_the_gateway_does_not_negotiate_permessage_deflate(net: TestNetwork) -> None:
    async with aiohttp.ClientSession() as http:
        url = net.addresses.gateway_url.replace("http", "ws", 1) + "/v1/wait"
        async with http.ws_connect(url, compress=15) as ws:
            assert ws.compress == 0
            assert "Sec-WebSocket-Extensions" not in ws._response.headers
            await ws.send_str('{"type": "hello", "v": 1, "ticket": "bad"}')
            event = await ws.receive_json()
            assert event["type"] == "error"


async def test_a_revoked_token_is_refused_on_every_read(
    cached_net: TestNetwork, cached_sp: AsyncSPClient, tmp_path: Path
) -> None:
    """Only active records are kept: a revoked token is never served from the
    cache, however recently it was read."""
    phone = await make_phone(cached_net, tmp_path / "phone.json")
    backup = await make_phone(cached_net, tmp_path / "backup.json", backup_of=phone)
    await phone.revoke(backup.enrolment(None).token_id)
    for _ in range(3):
        with pytest.raises(errors.TokenRevoked):
            await login(cached_sp, backup)
    assert (await cached_sp.get_puid((await login(cached_sp, phone)).ticket.ticket)).puid


@given(st.text(max_size=300), st.integers(min_value=0, max_value=300))
def test_hint_truncation_keeps_exactly_the_printable_characters(text: str, n: int) -> None:
    assert _truncate(text, n) == "".join(ch for ch in text[:n] if ch.isprintable())


@pytest.mark.parametrize(
    ("factors", "spelled"),
    [
        (frozenset(), ""),
        (frozenset({Factor.PIN}), "p"),
        (frozenset({Factor.CLIENT_KEY}), "c"),
        (frozenset({Factor.CLIENT_KEY, Factor.PIN}), "pc"),
        ({Factor.CLIENT_KEY, Factor.PIN}, "pc"),  # any iterable, not only frozensets
        ([Factor.CLIENT_KEY, Factor.CLIENT_KEY], "c"),
    ],
)
def test_factors_are_spelled_as_before(factors: Iterable[Factor], spelled: str) -> None:
    assert format_factors(factors) == spelled
    assert parse_factors(spelled) == frozenset(factors)
