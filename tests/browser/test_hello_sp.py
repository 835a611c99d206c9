"""The example SP end to end in a real browser: headless Chromium opens
hello_sp's page, the test screenshots it, the phone simulator reads the QR code
from the pixels and confirms, and the page ends logged in with the phone's Kc
fingerprint and the PUID the network computes for the phone's account."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import BrowserContext, Page, expect

from authnet.sdk import AsyncSPClient
from authnet.testing import TestNetwork
from examples.hello_sp.app import make_app
from simulators.phone.app import PhoneApp
from simulators.phone.camera import read_qr
from tokens.handshake import AuthRequest

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


@pytest_asyncio.fixture(loop_scope="session")
async def hello_sp(net: TestNetwork) -> AsyncIterator[tuple[str, AsyncSPClient]]:
    """hello_sp on a free port, registered with the network for exactly its origin."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    origin = f"http://localhost:{sock.getsockname()[1]}"
    creds = await net.add_sp("hello-sp", "Hello SP", origins=[origin])
    async with net.sp_client(creds) as sp:
        runner = web.AppRunner(make_app(sp))
        await runner.setup()
        await web.SockSite(runner, sock).start()
        try:
            yield origin, sp
        finally:
            await runner.cleanup()


async def test_qr_login_to_hello_sp(
    net: TestNetwork,
    hello_sp: tuple[str, AsyncSPClient],
    phone: PhoneApp,
    context: BrowserContext,
    tmp_path: Path,
) -> None:
    origin, sp = hello_sp
    page: Page = await context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda e: page_errors.append(str(e)))
    await page.goto(origin + "/")
    qr = page.locator(".authnet-qr svg")
    await expect(qr).to_be_visible()

    shot = tmp_path / "hello-sp.png"
    await page.screenshot(path=str(shot))
    payload = read_qr(shot)
    assert payload.startswith("authnet:login?v=1&t=at1_")
    assert await page.locator("#payload").text_content() == payload

    seen: list[AuthRequest] = []

    def confirm(request: AuthRequest) -> bool:
        seen.append(request)
        return True

    report = await phone.scan(payload, confirm=confirm)
    (request,) = seen
    assert request.sp_display_name == "Hello SP"
    assert request.browser_origin == origin
    assert request.origin_registered is True
    assert "Chrome" in request.browser_user_agent

    await expect(page.locator("#welcome")).to_be_visible()
    fingerprint = await page.locator("#fingerprint").text_content()
    assert fingerprint == report.kc_fingerprint
    puid = await page.locator("#puid").text_content()
    token = await net.network.directory.get_token(phone.enrolment(None).token_id)
    assert token is not None
    assert puid == net.network.identity.puid(token.user_id, sp.spid)
    assert await page.locator("#login-section").is_hidden()

    # The backend's session is logged in for this browser, and only this one.
    me = await page.evaluate("fetch('/api/me').then(r => r.json())")
    assert me["puid"] == puid
    async with aiohttp.ClientSession() as other, other.get(origin + "/api/me") as r:
        assert r.status == 401
    assert page_errors == []


async def test_a_ticket_is_redeemed_only_by_the_browser_it_was_issued_to(
    hello_sp: tuple[str, AsyncSPClient],
) -> None:
    """Someone who photographs the QR code cannot log in their own browser with
    the ticket in it."""
    origin, _ = hello_sp
    async with aiohttp.ClientSession() as victim, aiohttp.ClientSession() as thief:
        async with victim.post(origin + "/api/ticket", headers={"Origin": origin}) as r:
            ticket = (await r.json())["ticket"]
        async with thief.post(
            origin + "/api/login", json={"ticket": ticket}, headers={"Origin": origin}
        ) as r:
            assert r.status == 403
            assert "not issued to this browser session" in await r.text()
        async with victim.post(
            origin + "/api/login",
            json={"ticket": ticket},
            headers={"Origin": "https://evil.example"},
        ) as r:
            assert r.status == 403
