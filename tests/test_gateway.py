"""The browser gateway over real websockets: who may wait on a ticket, what
they are told, and that the sealed Kc is delivered exactly once."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from authnet import errors
from authnet.network import now_ms
from authnet.protocol.encoding import b64u_encode
from authnet.protocol.ids import browser_key_hash
from authnet.sdk.browser import BrowserSession, websocket_url
from authnet.sdk.sp_client import AsyncSPClient
from authnet.testing import TestNetwork
from simulators.phone.app import PhoneApp
from tests.helpers import login, scanned
from tokens import handshake

VENDOR = Path(__file__).resolve().parent.parent / "authnet" / "gateway" / "static" / "vendor"


def hello(ticket: str, key: bytes, secret: bytes) -> dict[str, Any]:
    return {
        "type": "hello",
        "v": 1,
        "ticket": ticket,
        "browser_key": b64u_encode(key),
        "wait_secret": b64u_encode(secret),
    }


async def events_after(
    http: aiohttp.ClientSession, url: str, first: object, *, origin: str | None = None, n: int = 1
) -> list[dict[str, Any]]:
    """Connect, send `first` (dict -> JSON text, bytes -> binary), read n events."""
    headers = {"Origin": origin} if origin else {}
    async with http.ws_connect(url, headers=headers) as ws:
        if isinstance(first, bytes):
            await ws.send_bytes(first)
        elif isinstance(first, str):
            await ws.send_str(first)
        else:
            await ws.send_str(json.dumps(first))
        out = []
        for _ in range(n):
            msg = await asyncio.wait_for(ws.receive(), 5)
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            out.append(json.loads(msg.data))
        return out


async def test_unknown_ticket(net: TestNetwork) -> None:
    url = websocket_url(net.addresses.gateway_url)
    async with aiohttp.ClientSession() as http:
        (event,) = await events_after(
            http, url, hello("at1_" + "A" * 22, secrets.token_bytes(32), secrets.token_bytes(32))
        )
    assert event["type"] == "error"
    assert event["code"] == "ticket_not_found"
    assert "GetTicket" in event["message"]


@pytest.mark.parametrize(
    ("first", "words"),
    [
        ("{not json", "not JSON"),
        (b"\x00\x01", "JSON text frame"),
        ({"type": "hi"}, '"type": "hello"'),
        ({"type": "hello", "v": 2}, '"v": 1'),
        ({"type": "hello", "v": 1, "ticket": "bad"}, "ticket is malformed"),
        (
            {"type": "hello", "v": 1, "ticket": "at1_" + "A" * 22, "browser_key": "!!"},
            "browser_key is not base64url",
        ),
        (
            {
                "type": "hello",
                "v": 1,
                "ticket": "at1_" + "A" * 22,
                "browser_key": b64u_encode(b"k" * 31),
                "wait_secret": b64u_encode(b"s" * 32),
            },
            "browser_key must be 32 bytes",
        ),
    ],
)
async def test_malformed_hello(net: TestNetwork, first: object, words: str) -> None:
    async with aiohttp.ClientSession() as http:
        (event,) = await events_after(http, websocket_url(net.addresses.gateway_url), first)
    assert event["type"] == "error"
    assert event["code"] == "malformed"
    assert words in event["message"]


async def test_oversized_frame_is_refused(net: TestNetwork) -> None:
    url = websocket_url(net.addresses.gateway_url)
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.send_str("x" * 10_000)
        msg = await asyncio.wait_for(ws.receive(), 5)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_second_browser_cannot_take_over_and_first_gets_kc_once(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp
) -> None:
    t = await sp.get_ticket()
    session = BrowserSession.for_ticket(t, sp.spid)
    url = websocket_url(t.gateway_url)
    async with aiohttp.ClientSession() as http:
        async with session.waiting(http):
            pass  # bind the ticket to this browser, then drop the connection
        # Someone who saw the QR code knows the ticket and the public key, not the secret.
        (intruder,) = await events_after(
            http, url, hello(t.ticket, session.public_key, secrets.token_bytes(32))
        )
        assert intruder["code"] == "browser_key_mismatch"
        # The phone answers while no browser is connected.
        report = await phone.scan(session.payload().encode(), confirm=lambda _: True)
        # The browser comes back and still gets its Kc...
        async with session.waiting(http) as wait:
            outcome = await wait.result()
        assert outcome.kc is not None
        # ... exactly once.
        with pytest.raises(errors.AlreadyDelivered):
            async with session.waiting(http) as wait:
                await wait.result()
    assert report.kc_fingerprint is not None


async def test_scanned_event_and_browser_hints_reach_the_phone(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp
) -> None:
    t = await sp.get_ticket()
    key, secret = secrets.token_bytes(32), secrets.token_bytes(32)
    ua = "Mozilla/5.0 (TestBrowser) authnet-tests"
    e = phone.enrolment(None)
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            websocket_url(t.gateway_url), headers={"User-Agent": ua, "Origin": "http://shop.test"}
        ) as ws,
    ):
        await ws.send_str(json.dumps(hello(t.ticket, key, secret)))
        waiting = json.loads((await ws.receive()).data)
        assert waiting["type"] == "waiting"
        assert waiting["expires_at"] == t.expires_at_unix_ms
        async with phone.api(e) as api:
            request = await api.begin_auth(
                ticket=t.ticket, token_id=e.token_id, browser_key_hash=browser_key_hash(key)
            )
        assert json.loads((await ws.receive()).data) == {"type": "scanned"}
    assert request.browser_user_agent == ua
    assert request.browser_ip == "127.0.0.1"
    assert request.browser_origin == "http://shop.test"
    assert request.origin_registered is None  # this SP registered no origins
    assert request.sp_display_name == "Hello SP"


async def test_registered_origins_are_enforced(net: TestNetwork, phone: PhoneApp) -> None:
    creds = await net.add_sp("shop", "Shop", origins=["https://shop.example"])
    async with net.sp_client(creds) as sp, aiohttp.ClientSession() as http:
        t = await sp.get_ticket()
        url = websocket_url(t.gateway_url)
        key, secret = secrets.token_bytes(32), secrets.token_bytes(32)
        (refused,) = await events_after(
            http, url, hello(t.ticket, key, secret), origin="https://evil.example"
        )
        assert refused["code"] == "permission_denied"
        assert "https://evil.example" in refused["message"]
        assert "not registered" in refused["message"]
        (ok,) = await events_after(
            http, url, hello(t.ticket, key, secret), origin="https://shop.example"
        )
        assert ok["type"] == "waiting"
        # A non-browser client (no Origin at all) may wait; the phone is told so.
        t2 = await sp.get_ticket()
        (terminal,) = await events_after(
            http, url, hello(t2.ticket, secrets.token_bytes(32), secrets.token_bytes(32))
        )
        assert terminal["type"] == "waiting"


async def test_ticket_expiring_while_waiting(net: TestNetwork, sp: AsyncSPClient) -> None:
    t = await sp.get_ticket()  # 120 s
    net.network.clock = lambda: now_ms() + 119_000  # one second left
    async with aiohttp.ClientSession() as http:
        events = await events_after(
            http,
            websocket_url(t.gateway_url),
            hello(t.ticket, secrets.token_bytes(32), secrets.token_bytes(32)),
            n=2,
        )
        assert [e["type"] for e in events] == ["waiting", "expired"]
        # Too late to even start waiting: told so with the same event.
        (late,) = await events_after(
            http,
            websocket_url(t.gateway_url),
            hello(t.ticket, secrets.token_bytes(32), secrets.token_bytes(32)),
        )
    assert late == {"type": "expired"}


async def test_reject_reaches_the_browser(sp: AsyncSPClient, phone: PhoneApp) -> None:
    t = await sp.get_ticket()
    session = BrowserSession.for_ticket(t, sp.spid)
    async with aiohttp.ClientSession() as http, session.waiting(http) as wait:
        report = await phone.scan(session.payload().encode(), confirm=lambda _: False)
        assert not report.accepted
        with pytest.raises(errors.TicketRejected):
            await wait.result()


async def test_mailbox_tampering_is_detected_by_the_browser(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp
) -> None:
    """A malicious relay that alters the sealed Kc cannot make the browser
    accept a different key: HPKE's AEAD refuses it, and a new login works."""
    async with aiohttp.ClientSession() as http, scanned(sp, phone, http) as (s, wait):
        r = handshake.respond(
            payload=s.payload, request=s.request, token=s.token, token_id=s.token_id
        )
        real_put = net.network.state.put_mail

        async def tampering_put(th: bytes, sealed: bytes, *, keep_until_ms: int) -> None:
            await real_put(
                th, sealed[:-1] + bytes([sealed[-1] ^ 0x80]), keep_until_ms=keep_until_ms
            )

        net.network.state.put_mail = tampering_put  # type: ignore[method-assign]
        try:
            await s.api.complete_auth(r)
            with pytest.raises(errors.SealedKeyInvalid):
                await wait.result()
        finally:
            net.network.state.put_mail = real_put  # type: ignore[method-assign]
    retry = await login(sp, phone)
    assert retry.kc is not None


async def test_static_client_files(net: TestNetwork) -> None:
    base = net.addresses.gateway_url
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/v1/authnet.js") as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/javascript")
            assert r.headers["Access-Control-Allow-Origin"] == "*"
            assert r.headers["X-Content-Type-Options"] == "nosniff"
        async with http.get(f"{base}/v1/vendor/qrcode-generator-2.0.4.mjs") as r:
            body = await r.read()
        for path in ("/v1/nope.js", "/v1/../authnet.log", "/v1/vendor/README.md"):
            async with http.get(base + path) as r:
                assert r.status == 404, path
        async with http.get(f"{base}/healthz") as r:
            assert (await r.text()).strip() == "ok"
    digest = hashlib.sha256(body).hexdigest()
    readme = (VENDOR / "README.md").read_text()
    assert re.search(rf"`{digest}`", readme), "vendored file differs from README's sha256"


async def test_stale_connection_cannot_swallow_the_sealed_key(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp
) -> None:
    """The page lost its connection without the gateway noticing; the phone
    answers; the stale connection is sent the key but never acknowledges it, so
    the page's resumed connection still gets it, and only its ack deletes it."""
    t = await sp.get_ticket()
    session = BrowserSession.for_ticket(t, sp.spid)
    url = websocket_url(t.gateway_url)
    first = hello(t.ticket, session.public_key, session._wait_secret)
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as stale:
        await stale.send_str(json.dumps(first))
        assert json.loads((await stale.receive()).data)["type"] == "waiting"
        report = await phone.scan(session.payload().encode(), confirm=lambda _: True)
        assert json.loads((await stale.receive()).data)["type"] == "scanned"
        sent = json.loads((await stale.receive()).data)
        assert sent["type"] == "authenticated"  # ... into a connection nobody reads
        async with session.waiting(http) as wait:
            outcome = await wait.result()
        assert outcome.kc is not None
        assert report.kc_fingerprint is not None
        with pytest.raises(errors.AlreadyDelivered):
            async with session.waiting(http) as wait:
                await wait.result()


async def test_shutdown_closes_waiting_browsers_promptly(tmp_path: Path) -> None:
    import time

    async with TestNetwork(tmp_path) as net:
        creds = await net.add_sp()
        async with net.sp_client(creds) as sp, aiohttp.ClientSession() as http:
            t = await sp.get_ticket()
            ws = await http.ws_connect(websocket_url(t.gateway_url))
            await ws.send_str(
                json.dumps(hello(t.ticket, secrets.token_bytes(32), secrets.token_bytes(32)))
            )
            assert json.loads((await ws.receive()).data)["type"] == "waiting"
            started = time.monotonic()
            await net.node.stop(grace=0)
            assert time.monotonic() - started < 5
            assert (await ws.receive()).type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
            )
            await ws.close()
