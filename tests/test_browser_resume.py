"""The Python browser client resumes its wait on the next gateway when one
cannot serve now (docs/protocol.md 16.3), as authnet.js does: a gateway that
answers the hello with a retryable error, and one that accepts the connection
and says nothing. The first gateway of the ticket here is a stand-in that
behaves so (what a node whose Redis is unreachable sends); the second is the
network's real gateway, where the login then ends with the phone's Kc."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from authnet import errors
from authnet.protocol.kc import kc_fingerprint
from authnet.sdk import browser
from authnet.sdk.browser import BrowserSession
from authnet.sdk.sp_client import AsyncSPClient
from authnet.testing import TestNetwork
from simulators.phone.app import PhoneApp
from tests.helpers import make_phone

Behaviour = Callable[[web.WebSocketResponse, list[str]], Coroutine[Any, Any, None]]


async def refuses(ws: web.WebSocketResponse, hellos: list[str]) -> None:
    hellos.append(await ws.receive_str())
    error = {"type": "error", "code": "state_unavailable", "message": "try again"}
    await ws.send_str(json.dumps(error))
    await ws.close()


async def says_nothing(ws: web.WebSocketResponse, hellos: list[str]) -> None:
    hellos.append(await ws.receive_str())
    await ws.receive()  # until the client goes away


async def says_no(ws: web.WebSocketResponse, hellos: list[str]) -> None:
    hellos.append(await ws.receive_str())
    error = {"type": "error", "code": "browser_key_mismatch", "message": "not yours"}
    await ws.send_str(json.dumps(error))
    await ws.close()


class StandIn:
    """A gateway at a URL of its own that treats every wait with `behaviour`."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.hellos: list[str] = []
        self.url = ""

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await self.behaviour(ws, self.hellos)
        return ws


@pytest_asyncio.fixture
async def stand_in(request: pytest.FixtureRequest) -> AsyncIterator[StandIn]:
    gateway = StandIn(request.param)
    app = web.Application()
    app.router.add_get("/v1/wait", gateway.handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    gateway.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield gateway
    finally:
        await runner.cleanup()


async def waiting_behind(stand_in: StandIn, sp: AsyncSPClient) -> BrowserSession:
    t = await sp.get_ticket(auth_types="c")
    return BrowserSession(
        ticket=t.ticket,
        spid=sp.spid,
        gateway_url=stand_in.url,
        passkey_address=t.passkey_address,
        gateway_urls=[stand_in.url, t.gateway_url],
    )


@pytest.mark.parametrize(
    "stand_in", [refuses, says_nothing], indirect=True, ids=["refuses", "silent"]
)
async def test_the_wait_resumes_on_the_next_gateway(
    stand_in: StandIn,
    net: TestNetwork,
    sp: AsyncSPClient,
    phone: PhoneApp,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(browser, "FIRST_EVENT_TIMEOUT_S", 0.5)
    session = await waiting_behind(stand_in, sp)
    async with aiohttp.ClientSession() as http, session.waiting(http) as wait:
        assert len(stand_in.hellos) == 1
        assert json.loads(stand_in.hellos[0])["ticket"] == session.ticket
        assert wait.nodes == [net.network.node_id]  # "waiting" came from the real gateway
        assert wait.reconnects == 1
        report = await phone.scan(session.payload().encode(), confirm=lambda _: True)
        outcome = await wait.result()
    assert outcome.kc is not None
    assert kc_fingerprint(outcome.kc) == report.kc_fingerprint
    assert (await sp.get_puid(session.ticket, finalize=True)).puid


@pytest.mark.parametrize("stand_in", [says_no], indirect=True)
async def test_a_final_error_is_not_resumed(stand_in: StandIn, sp: AsyncSPClient) -> None:
    session = await waiting_behind(stand_in, sp)
    async with aiohttp.ClientSession() as http:
        with pytest.raises(errors.BrowserKeyMismatch):
            async with session.waiting(http):
                pass
    assert len(stand_in.hellos) == 1


@pytest_asyncio.fixture
async def sp(net: TestNetwork) -> AsyncIterator[AsyncSPClient]:
    creds = await net.add_sp("resume", "Resume SP")
    async with net.sp_client(creds) as client:
        yield client


@pytest_asyncio.fixture
async def phone(net: TestNetwork, tmp_path: Any) -> PhoneApp:
    return await make_phone(net, tmp_path / "phone.json")
