"""Phone-QR logins that negotiate X-Wing over the real network (mTLS SP API,
TLS PassKey API, websocket gateway), old clients beside them, and each way a
relay or a token could try to downgrade a dual offer (docs/protocol.md §7.1)."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import aiohttp
import pytest

from authnet import errors
from authnet.protocol.encoding import b64u_encode
from authnet.protocol.kc import kc_fingerprint
from authnet.protocol.suites import PQ_KEY_HASH_BYTES, SealSuite, xwing_key_pair
from authnet.sdk.browser import BrowserSession, websocket_url
from authnet.sdk.sp_client import AsyncSPClient
from authnet.testing import TestNetwork
from simulators.phone.app import PhoneApp
from tests.helpers import login, mailbox_sizes, scanned
from tokens import handshake


async def test_phone_login_negotiates_xwing(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp
) -> None:
    with mailbox_sizes(net) as sizes:
        run = await login(sp, phone, post_quantum=True)
    assert run.kc is not None
    assert kc_fingerprint(run.kc) == run.report.kc_fingerprint
    assert sizes == [SealSuite.XWING.enc_bytes + 48]
    payload = run.session.payload()
    assert payload.pq_key_hash is not None
    assert len(payload.pq_key_hash) == PQ_KEY_HASH_BYTES
    assert len(payload.encode()) < 300  # the QR code carries the hash, not the key
    who = await sp.get_puid(run.ticket.ticket, finalize=True)
    # The same Kc whichever suite carried it.
    legacy = await login(sp, phone)
    assert legacy.kc == run.kc
    assert (await sp.get_puid(legacy.ticket.ticket, finalize=True)).puid == who.puid


async def test_old_clients_keep_x25519(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp
) -> None:
    with mailbox_sizes(net) as sizes:
        run = await login(sp, phone)
    assert run.kc is not None
    assert sizes == [SealSuite.X25519.enc_bytes + 48]
    assert "x=" not in run.session.payload().encode()
    assert "browser_pq_key" not in run.session.hello()


async def test_relay_stripping_the_key_from_the_hello_fails_the_scan(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp
) -> None:
    """The page registers an X25519-only offer (pkX stripped on the way); the
    code still says X-Wing, so its offer hash is not the ticket's."""
    ticket = await sp.get_ticket(auth_types="c")
    session = BrowserSession.for_ticket(ticket, sp.spid, post_quantum=True)
    stripped = json.loads(session.hello())
    del stripped["browser_pq_key"]
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(websocket_url(ticket.gateway_url)) as ws,
    ):
        await ws.send_str(json.dumps(stripped))
        assert json.loads((await asyncio.wait_for(ws.receive(), 5)).data)["type"] == "waiting"
        with pytest.raises(errors.BrowserKeyMismatch):
            await phone.scan(session.payload().encode(), confirm=lambda _: True)


async def test_network_dropping_or_swapping_the_key_is_refused_by_the_token(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        scanned(sp, phone, http, post_quantum=True) as (s, wait),
    ):
        assert s.request.browser_pq_key is not None
        other = xwing_key_pair(bytes(32)).public_bytes
        for relayed in (None, other):
            bad = dataclasses.replace(s.request, browser_pq_key=relayed)
            with pytest.raises(errors.BrowserKeyMismatch):
                handshake.respond(
                    payload=s.payload, request=bad, token=s.token, token_id=s.token_id
                )
        # The honest answer still completes the login.
        r = handshake.respond(
            payload=s.payload, request=s.request, token=s.token, token_id=s.token_id
        )
        assert r.sealed_kc is not None
        assert r.sealed_kc.suite is SealSuite.XWING
        await s.api.complete_auth(r)
        outcome = await asyncio.wait_for(wait.result(), 10)
    assert outcome.kc is not None
    assert kc_fingerprint(outcome.kc) == r.kc_fingerprint


async def test_browser_refuses_a_token_that_seals_x25519_to_a_dual_offer(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp
) -> None:
    """The network accepts it (the token signed it), the page does not."""
    async with (
        aiohttp.ClientSession() as http,
        scanned(sp, phone, http, post_quantum=True) as (s, wait),
    ):
        r = handshake.respond(
            payload=s.payload,
            request=s.request,
            token=s.token,
            token_id=s.token_id,
            suites=(SealSuite.X25519,),
        )
        assert r.sealed_kc is not None
        assert r.sealed_kc.suite is SealSuite.X25519
        await s.api.complete_auth(r)
        with pytest.raises(errors.SuiteDowngraded):
            await asyncio.wait_for(wait.result(), 10)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("AAAA", "browser_pq_key must be 1216 bytes"),
        (b64u_encode(b"\xff" * 1216), "not an X-Wing public key"),
        (12, "browser_pq_key"),
    ],
)
async def test_gateway_refuses_a_bad_xwing_key(
    net: TestNetwork, sp: AsyncSPClient, value: object, says: str
) -> None:
    ticket = await sp.get_ticket(auth_types="c")
    session = BrowserSession.for_ticket(ticket, sp.spid, post_quantum=True)
    frame = json.loads(session.hello())
    frame["browser_pq_key"] = value
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(websocket_url(ticket.gateway_url)) as ws,
    ):
        await ws.send_str(json.dumps(frame))
        event = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
    assert event["type"] == "error"
    assert event["code"] == "malformed"
    assert says in event["message"]
