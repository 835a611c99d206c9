"""Fixtures of the vault's browser tests: one headless Chromium per session
(tests/browser/conftest.py's `chromium`), and per test a real authnet
TestNetwork, the vault's API and UI served by uvicorn on a real socket, phone
simulators, and browser contexts.

Playwright's objects belong to the event loop that made them, so everything
here runs in the session's loop (`loop_scope="session"`), as in tests/browser.
The vault runs on SQLite here (tests/vault covers PostgreSQL too). Pages load
the vault from http://127.0.0.1:<port>, its public URL: a secure context for
WebCrypto, and the origin the server checks before a session exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest_asyncio
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page

from authnet.sdk import AsyncSPClient
from authnet.sdk.credentials import SpCredentials
from authnet.testing import TestNetwork
from simulators.phone.app import PhoneApp
from tests.browser.conftest import chromium  # noqa: F401  (the session's browser)
from tests.helpers import make_phone
from tests.vault.driver import VaultClient
from vault_api import migrations
from vault_api.app import create_app
from vault_api.config import Settings

MAX_FILE_BYTES = 4 * 1024 * 1024
SCRIPTS = Path(__file__).resolve().parent / "scripts"


def script(name: str) -> str:
    """A function the tests run in the page (scripts/<name>.js), as its source."""
    return (SCRIPTS / f"{name}.js").read_text()


class _Server(uvicorn.Server):
    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
        return contextlib.nullcontext()


@dataclass
class VaultSite:
    """A running vault: its URL (the page's origin), settings and database."""

    url: str
    settings: Settings
    db_url: str
    creds: SpCredentials
    net: TestNetwork
    keyproxy: Any = None  # keyproxy.testing.TestKeyProxy, when one runs beside it

    def client(self) -> VaultClient:
        """A Python reference client (tests/vault/driver.py) of this vault."""
        return VaultClient(self.url)

    @property
    def db_path(self) -> Path:
        return Path(self.db_url.removeprefix("sqlite:///"))


@contextlib.asynccontextmanager
async def serve_vault(
    net: TestNetwork,
    data_dir: Path,
    name: str = "vault",
    *,
    host_name: str = "127.0.0.1",
    **overrides: Any,
) -> AsyncIterator[VaultSite]:
    """The vault's app on a free port of 127.0.0.1, in this event loop, for
    pages that load it as http://<host_name>:<port> (its public URL)."""
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    creds = await net.add_sp(name, "Vault")
    db_url = f"sqlite:///{data_dir / 'vault.db'}"
    await asyncio.to_thread(migrations.upgrade, db_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    port = sock.getsockname()[1]
    settings = Settings(
        **{
            "data_dir": data_dir,
            "credentials": net.root / "sps" / name,
            "host": "127.0.0.1",
            "port": port,
            "public_url": f"http://{host_name}:{port}",
            "database_url": db_url,
            "max_file_bytes": MAX_FILE_BYTES,
            "history_versions": 5,
            **overrides,
        }
    )
    async with AsyncSPClient(creds) as sp:
        app = create_app(settings, sp=sp)
        server = _Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        try:
            yield VaultSite(
                url=f"http://{host_name}:{port}",
                settings=settings,
                db_url=db_url,
                creds=creds,
                net=net,
            )
        finally:
            server.should_exit = True
            await task
            sock.close()


@pytest_asyncio.fixture(loop_scope="session")
async def net(tmp_path: Path) -> AsyncIterator[TestNetwork]:
    async with TestNetwork(tmp_path / "net") as n:
        yield n


@pytest_asyncio.fixture(loop_scope="session")
async def vault(net: TestNetwork, tmp_path: Path) -> AsyncIterator[VaultSite]:
    async with serve_vault(net, tmp_path / "vault") as site:
        yield site


@pytest_asyncio.fixture(loop_scope="session")
async def alice_phone(net: TestNetwork, tmp_path: Path) -> PhoneApp:
    return await make_phone(net, tmp_path / "alice-phone.json", label="alice phone")


@pytest_asyncio.fixture(loop_scope="session")
async def bob_phone(net: TestNetwork, tmp_path: Path) -> PhoneApp:
    return await make_phone(net, tmp_path / "bob-phone.json", label="bob phone")


@dataclass
class Browsers:
    """Browser contexts for the people of a test, closed before the network
    stops (the gateway would otherwise wait for their open websockets). Every
    page's uncaught errors fail the test."""

    browser: Browser
    contexts: list[BrowserContext] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def page(self, *, downloads: bool = True) -> Page:
        ctx = await self.browser.new_context(
            viewport={"width": 1100, "height": 800}, accept_downloads=downloads
        )
        await ctx.grant_permissions(["clipboard-read", "clipboard-write"])
        self.contexts.append(ctx)
        page = await ctx.new_page()
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        return page


@pytest_asyncio.fixture(loop_scope="session")
async def browsers(
    chromium: Browser,  # noqa: F811
    net: TestNetwork,
) -> AsyncIterator[Browsers]:
    b = Browsers(browser=chromium)
    try:
        yield b
    finally:
        for ctx in b.contexts:
            await ctx.close()
    assert b.errors == [], f"uncaught errors in the page: {b.errors}"


# --- the hardener and the one-time key proxy beside the vault (docs/devices.md) ---------------

# PBKDF2 count of the passphrase in the page (the production 600,000 is bench/page_login.py's).
DEVICE_KDF_ITERATIONS = 1000


@contextlib.asynccontextmanager
async def serve_device_vault(
    net: TestNetwork, root: Path, *, proxy: bool = True, **overrides: Any
) -> AsyncIterator[VaultSite]:
    """A vault with a real hardener (the passphrase) and, with `proxy`, a real
    one-time key proxy (keyproxy.testing.TestKeyProxy) that knows the vault as
    the claim-grant issuer "vault" (its key from the vault's data dir)."""
    from hardener.testing import TestHardener
    from vault_api import grants

    with TestHardener(root / "hardener") as hd:
        hd.caller_credentials("vault")
        settings: dict[str, Any] = {
            "hardener_address": hd.address,
            "hardener_credentials": hd.credentials_dir("vault"),
            "passphrase_kdf_iterations": DEVICE_KDF_ITERATIONS,
            **overrides,
        }
        if not proxy:
            async with serve_vault(net, root / "dvault", "dvault", **settings) as site:
                yield site
            return
        from keyproxy.testing import TestKeyProxy

        async with contextlib.AsyncExitStack() as stack:
            kp = await _enter(stack, TestKeyProxy(root / "keyproxy"))
            site = await stack.enter_async_context(
                serve_vault(net, root / "dvault", "dvault", keyproxy_url=kp.http_url, **settings)
            )
            public = await asyncio.to_thread(grants.issuer_public_key, root / "dvault")
            added = kp.add_issuer("vault", public)
            if asyncio.iscoroutine(added):
                await added
            site.keyproxy = kp
            yield site


async def _enter(stack: contextlib.AsyncExitStack, cm: Any) -> Any:
    """Enter a context manager that may be async or not (TestKeyProxy)."""
    if hasattr(cm, "__aenter__"):
        return await stack.enter_async_context(cm)
    return stack.enter_context(cm)
