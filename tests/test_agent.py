"""The local agent: only configured pages on this computer can make it use the
token, only under loopback names, and only for the page the network saw
waiting. A PKCS#11 token (SoftHSM2) stands in for the hardware."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from authnet.protocol.ids import ticket_hash
from authnet.protocol.kc import kc_fingerprint
from authnet.sdk import AsyncSPClient, BrowserSession
from authnet.testing import TestNetwork
from authnet.tickets import TicketState
from simulators.softhsm import SoftHsm
from tokens import login as flow
from tokens.agent import Agent
from tokens.api import PassKeyApi
from tokens.devices import TokenOptions
from tokens.enrolments import Enrolment, EnrolmentBook
from tokens.handshake import AuthRequest
from tokens.phone import now_ms
from tokens.pkcs11 import Pkcs11Config, Pkcs11PassKey

SITE = "http://localhost:5555"
HEADERS = {"Content-Type": "application/json", "X-Authnet-Agent": "1"}


@dataclass
class Running:
    agent: Agent
    url: str
    config: Pkcs11Config
    kc_of: Callable[[bytes], bytes]
    confirmations: list[AuthRequest]


@pytest_asyncio.fixture
async def running(net: TestNetwork, tmp_path: Path) -> AsyncIterator[Running]:
    hsm = SoftHsm.shared()
    made = hsm.new_token()
    config = Pkcs11Config(module=hsm.module, token_label=made.label)
    token = Pkcs11PassKey.provision(config, pin=made.pin)
    async with PassKeyApi(net.addresses.passkey, ca_pem=net.ca_pem) as api:
        token_id, _, name = await flow.enrol(api, token, label="agent token")
    book = EnrolmentBook(tmp_path / "tokens.json")
    book.add(
        token.description.public_key,
        Enrolment(
            network=net.addresses.passkey,
            network_name=name,
            ca_pem=net.ca_pem.decode(),
            token_id=token_id,
            enrolled_ms=now_ms(),
        ),
        kind=4,
    )
    token.close()
    confirmations: list[AuthRequest] = []

    def confirm(request: AuthRequest) -> bool:
        confirmations.append(request)
        return True

    def kc_of(spid: bytes) -> bytes:
        t = Pkcs11PassKey(config)
        try:
            t.verify_pin(made.pin)
            return t.derive_kc(spid)
        finally:
            t.close()

    agent = Agent(
        options=TokenOptions(kind="pkcs11", pkcs11_module=hsm.module, pkcs11_token=made.label),
        book=book,
        allowed_origins=(SITE,),
        confirm=confirm,
        ask_pin=lambda _: made.pin,
    )
    runner = web.AppRunner(agent.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    agent.port = runner.addresses[0][1]
    try:
        yield Running(agent, f"http://127.0.0.1:{agent.port}", config, kc_of, confirmations)
    finally:
        await runner.cleanup()


async def call(
    method: str, url: str, *, origin: str | None = SITE, host: str | None = None, **kw: Any
) -> tuple[int, dict[str, Any], Any]:
    headers = dict(kw.pop("headers", {}))
    if origin is not None:
        headers["Origin"] = origin
    if host is not None:
        headers["Host"] = host
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, headers=headers, **kw) as r,
    ):
        text = await r.text()
        try:
            body = json.loads(text)
        except ValueError:
            body = text
        return r.status, dict(r.headers), body


async def test_status_only_for_configured_origins_under_loopback_names(running: Running) -> None:
    status, headers, body = await call("GET", f"{running.url}/v1/status")
    assert status == 200
    assert body == {"agent": "authnet", "version": 1, "token": "pkcs11"}
    assert headers["Access-Control-Allow-Origin"] == SITE
    for origin in ("https://evil.example", None, "null"):
        status, headers, _ = await call("GET", f"{running.url}/v1/status", origin=origin)
        assert status == 403, origin
        assert "Access-Control-Allow-Origin" not in headers
    # A DNS-rebinding page reaches the port under its own name: refused.
    status, _, _ = await call(
        "GET", f"{running.url}/v1/status", host=f"rebind.evil.example:{running.agent.port}"
    )
    assert status == 421


async def test_preflight_allows_the_configured_origin_only(running: Running) -> None:
    status, headers, _ = await call("OPTIONS", f"{running.url}/v1/login")
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == SITE
    assert "X-Authnet-Agent" in headers["Access-Control-Allow-Headers"]
    assert headers["Access-Control-Allow-Private-Network"] == "true"
    status, _, _ = await call("OPTIONS", f"{running.url}/v1/login", origin="https://evil.example")
    assert status == 403


async def waiting_browser(
    sp: AsyncSPClient, http: aiohttp.ClientSession, origin: str | None
) -> tuple[BrowserSession, Any, Any]:
    ticket = await sp.get_ticket()
    session = BrowserSession.for_ticket(ticket, sp.spid)
    ctx = session.waiting(http, origin=origin)
    wait = await ctx.__aenter__()
    return session, ctx, wait


async def test_login_through_the_agent(net: TestNetwork, running: Running, tmp_path: Path) -> None:
    creds = await net.add_sp("shop", "Shop", origins=[SITE])
    async with net.sp_client(creds) as sp, aiohttp.ClientSession() as http:
        session, ctx, wait = await waiting_browser(sp, http, SITE)
        try:
            status, _, body = await call(
                "POST",
                f"{running.url}/v1/login",
                headers=HEADERS,
                json={"payload": session.payload().encode()},
            )
            assert (status, body) == (200, {"ok": True, "sp": "shop"})
            outcome = await asyncio.wait_for(wait.result(), 10)
        finally:
            await ctx.__aexit__(None, None, None)
    assert outcome.kc is not None
    assert kc_fingerprint(outcome.kc) == kc_fingerprint(running.kc_of(sp.spid))
    (request,) = running.confirmations
    assert request.browser_origin == SITE
    assert request.origin_registered is True


async def state(net: TestNetwork, session: BrowserSession) -> TicketState:
    t = await net.network.state.get_ticket(ticket_hash(session.ticket))
    assert t is not None
    return t.state


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"Content-Type": "application/json"}, None),  # no X-Authnet-Agent
        ({"X-Authnet-Agent": "1", "Content-Type": "text/plain"}, None),  # a "simple" request
    ],
)
async def test_requests_a_page_could_send_without_preflight_are_refused(
    net: TestNetwork, sp: AsyncSPClient, running: Running, headers: dict[str, str], body: Any
) -> None:
    async with aiohttp.ClientSession() as http:
        session, ctx, _ = await waiting_browser(sp, http, SITE)
        try:
            status, _, _ = await call(
                "POST",
                f"{running.url}/v1/login",
                headers=headers,
                data=json.dumps({"payload": session.payload().encode()}),
            )
            assert status == 403
            assert await state(net, session) is TicketState.ISSUED  # the token was never used
        finally:
            await ctx.__aexit__(None, None, None)
    assert running.confirmations == []


async def test_a_page_relaying_another_pages_code_is_refused(
    net: TestNetwork, sp: AsyncSPClient, running: Running
) -> None:
    """The code shows on a page elsewhere (the network saw that origin wait); a
    configured page hands it to the agent: refused before the person is asked."""
    async with aiohttp.ClientSession() as http:
        session, ctx, _wait = await waiting_browser(sp, http, "https://elsewhere.example")
        try:
            status, _, body = await call(
                "POST",
                f"{running.url}/v1/login",
                headers=HEADERS,
                json={"payload": session.payload().encode()},
            )
            assert status == 403
            assert body["code"] == "permission_denied"
            assert "not the page waiting" in body["message"]
            assert await state(net, session) is not TicketState.AUTHENTICATED
        finally:
            await ctx.__aexit__(None, None, None)
    assert running.confirmations == []


async def test_an_origin_the_sp_did_not_register_is_refused(
    net: TestNetwork, running: Running
) -> None:
    creds = await net.add_sp("bank", "Bank", origins=["https://bank.example"])
    async with net.sp_client(creds) as sp, aiohttp.ClientSession() as http:
        # (The gateway itself refuses a browser on SITE for this SP: the network
        # would never show the code there. A non-browser client waits instead.)
        session, ctx, _ = await waiting_browser(sp, http, None)
        try:
            status, _, body = await call(
                "POST",
                f"{running.url}/v1/login",
                headers=HEADERS,
                json={"payload": session.payload().encode()},
            )
        finally:
            await ctx.__aexit__(None, None, None)
    assert status == 403
    assert body["code"] == "permission_denied"


async def test_declined_at_the_agent(net: TestNetwork, sp: AsyncSPClient, running: Running) -> None:
    running.agent.confirm = lambda _: False
    async with aiohttp.ClientSession() as http:
        session, ctx, _wait = await waiting_browser(sp, http, SITE)
        try:
            status, _, body = await call(
                "POST",
                f"{running.url}/v1/login",
                headers=HEADERS,
                json={"payload": session.payload().encode()},
            )
            assert status == 403
            assert body["code"] == "declined"
            assert await state(net, session) is TicketState.REJECTED
        finally:
            await ctx.__aexit__(None, None, None)


async def test_malformed_requests(running: Running) -> None:
    for payload in ({"nope": 1}, {"payload": 5}):
        status, _, body = await call(
            "POST", f"{running.url}/v1/login", headers=HEADERS, json=payload
        )
        assert (status, body["code"]) == (400, "malformed")
    status, _, body = await call(
        "POST", f"{running.url}/v1/login", headers=HEADERS, json={"payload": "authnet:nope"}
    )
    assert (status, body["code"]) == (400, "malformed")


async def test_a_token_that_went_away_is_a_clear_error(
    net: TestNetwork, sp: AsyncSPClient, running: Running
) -> None:
    SoftHsm.shared().pull_out(running.config.token_label)  # its storage goes
    async with aiohttp.ClientSession() as http:
        session, ctx, _ = await waiting_browser(sp, http, SITE)
        try:
            status, _, body = await call(
                "POST",
                f"{running.url}/v1/login",
                headers=HEADERS,
                json={"payload": session.payload().encode()},
            )
        finally:
            await ctx.__aexit__(None, None, None)
    assert status == 400
    assert body["code"] == "token_unavailable"
    assert repr(running.config.token_label) in body["message"]
    assert "removed" in body["message"]
    assert running.confirmations == []


# --- stopping --------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_stops_the_agent_cleanly(tmp_path: Path, signum: int) -> None:
    """`passkey agent` in a process of its own: Ctrl-C (SIGINT) or SIGTERM closes
    it down, says so, and exits 0."""
    argv = ["--book", str(tmp_path / "tokens.json"), "agent", "--token", "pkcs11"]
    argv += ["--pkcs11-token", "unused", "--allow-origin", SITE, "--port", "0"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tokens.cli", *argv],
        cwd=Path(__file__).resolve().parent.parent,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A child inherits an ignored SIGINT (POSIX: a background job's Ctrl-C
        # is not its own), and an earlier test of the run may leave SIGINT
        # ignored in this process: give the agent the default, as a terminal does.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stdout is not None
        started = proc.stdout.readline()
        assert started.startswith("authnet agent on http://127.0.0.1:"), started
        assert ":0 " not in started  # the port it got, not the 0 it was given
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert err.strip() == "authnet agent stopped"
    assert out == ""
