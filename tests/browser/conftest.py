"""Fixtures for the browser client's tests: headless Chromium through Playwright.

One Chromium (Debian's /usr/bin/chromium; Playwright downloads no browser) is
launched per session, and every test gets a fresh browser context. Playwright's
objects belong to the event loop that created them, so these tests and the
network fixtures they use run in the session's loop (`loop_scope="session"`);
the network, SP and phone are still fresh for each test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from authnet.sdk.credentials import SpCredentials
from authnet.sdk.sp_client import AsyncSPClient
from authnet.testing import TestNetwork
from simulators.phone.app import PhoneApp
from tests.browser.site import Site, open_site
from tests.helpers import make_phone

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


# The suite's network fixtures (tests/conftest.py), in the session loop.


@pytest_asyncio.fixture(loop_scope="session")
async def net(tmp_path: Path) -> AsyncIterator[TestNetwork]:
    async with TestNetwork(tmp_path) as n:
        yield n


@pytest_asyncio.fixture(loop_scope="session")
async def sp_creds(net: TestNetwork) -> SpCredentials:
    return await net.add_sp("hello", "Hello SP")


@pytest_asyncio.fixture(loop_scope="session")
async def sp(net: TestNetwork, sp_creds: SpCredentials) -> AsyncIterator[AsyncSPClient]:
    async with net.sp_client(sp_creds) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def phone(net: TestNetwork, tmp_path: Path) -> PhoneApp:
    return await make_phone(net, tmp_path / "phone.json")


@pytest_asyncio.fixture(loop_scope="session")
async def site(net: TestNetwork, sp: AsyncSPClient) -> AsyncIterator[Site]:
    s = Site(sp=sp, gateway_url=net.addresses.gateway_url)
    runner = web.AppRunner(s.app())
    await runner.setup()
    # Bound to one address (so to one port); the page loads as http://localhost,
    # which browsers treat as a secure context (WebCrypto needs one).
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = runner.addresses[0][1]
    s.url = f"http://localhost:{port}/"
    try:
        yield s
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture(loop_scope="session")
async def context(chromium: Browser, net: TestNetwork) -> AsyncIterator[BrowserContext]:
    """A fresh browser context. It closes before the network stops (hence `net`):
    the gateway would otherwise wait for the page's open websocket."""
    ctx = await chromium.new_context(viewport={"width": 640, "height": 640})
    try:
        yield ctx
    finally:
        await ctx.close()


@pytest_asyncio.fixture(loop_scope="session")
async def bare_page(context: BrowserContext) -> AsyncIterator[Page]:
    """A page that has not loaded the site yet (to install a fake clock first).
    Uncaught errors in the page fail the test."""
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    assert errors == [], f"uncaught errors in the page: {errors}"


@pytest_asyncio.fixture(loop_scope="session")
async def page(bare_page: Page, site: Site) -> Page:
    """The SP site's page, with the browser client loaded from the gateway."""
    await open_site(bare_page, site)
    return bare_page
