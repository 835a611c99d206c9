"""The page's login time with the device bypass beside the login with the vault
passphrase (docs/devices.md 11), as the page itself measures it.

The page sets the User Timing measure `vault:login` from the moment the login
widget delivers the token login to the vault shown, less the time it waited
for the person to type the passphrase (docs/vault.md 19.5 for the page's
marks); `detail.method` says how it unlocked ("bypass" or "passphrase").
This script runs a real authnet TestNetwork, a real hardener, the vault's app
(in this process, on a socket of 127.0.0.1) and headless Chromium; a phone
simulator scans each QR code. It logs in `--repeat` times each way and prints
the medians as one JSON object:

    .venv/bin/python bench/page_login.py [--repeat 5] [--iterations 600000]

The passphrase figure includes the PBKDF2 (`--iterations`, the server's
production default 600,000), the hardener round trip and the success report;
the bypass figure the device's proof, the wraps' fetch and their opening.
"""

# ruff: noqa: E402  (the imports below come after the sys.path fix)
from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/page_login.py`, Python puts bench/ first on sys.path,
# where bench/tokens.py would shadow the `tokens` package the phone uses.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
import asyncio
import contextlib
import json
import socket
import statistics
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from authnet.sdk import AsyncSPClient
from authnet.testing import TestNetwork
from hardener.testing import TestHardener
from simulators.phone.app import PhoneApp
from vault_api import migrations
from vault_api.app import create_app
from vault_api.config import Settings

CHROMIUM = "/usr/bin/chromium"
PASSPHRASE = "a passphrase for the benchmark only"
MEASURE = "vault:login"
TIMEOUT_MS = 60_000


class _Server(uvicorn.Server):
    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
        return contextlib.nullcontext()


@contextlib.asynccontextmanager
async def _vault(net: TestNetwork, root: Path, iterations: int) -> AsyncIterator[str]:
    """The vault with a hardener, served in this event loop; yields its URL."""
    with TestHardener(root / "hardener") as hd:
        hd.caller_credentials("vault")
        creds = await net.add_sp("vault", "Vault")
        data = root / "vault"
        data.mkdir(parents=True, exist_ok=True)
        db_url = f"sqlite:///{data / 'vault.db'}"
        await asyncio.to_thread(migrations.upgrade, db_url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        # Accepted connections inherit this (asyncio sets it only on sockets it
        # makes): without it every request after the first on a kept-alive
        # connection waited out a delayed ACK, ~40 ms (as tests/vault/conftest.py).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        port = sock.getsockname()[1]
        settings = Settings(
            data_dir=data,
            credentials=net.root / "sps" / "vault",
            host="127.0.0.1",
            port=port,
            public_url=f"http://127.0.0.1:{port}",
            database_url=db_url,
            hardener_address=hd.address,
            hardener_credentials=hd.credentials_dir("vault"),
            passphrase_kdf_iterations=iterations,
        )
        async with AsyncSPClient(creds) as sp:
            server = _Server(
                uvicorn.Config(
                    create_app(settings, sp=sp), log_config=None, access_log=False, lifespan="on"
                )
            )
            task = asyncio.create_task(server.serve(sockets=[sock]))
            async with asyncio.timeout(20):
                while not server.started:
                    if task.done():
                        task.result()
                    await asyncio.sleep(0.01)
            try:
                yield f"http://127.0.0.1:{port}"
            finally:
                server.should_exit = True
                await task
                sock.close()


async def _state(page: Any, name: str) -> None:
    await page.wait_for_selector(f"html[data-state={name}]", timeout=TIMEOUT_MS)


async def _scan(page: Any, phone: PhoneApp) -> None:
    from simulators.phone.camera import read_qr

    qr = page.locator("#login .authnet-qr svg")
    await qr.wait_for(state="visible", timeout=TIMEOUT_MS)
    await phone.scan(read_qr(await page.screenshot()), confirm=lambda _request: True)


async def _measures(page: Any) -> list[dict[str, Any]]:
    got = await page.evaluate(
        """(n) => performance.getEntriesByName(n, "measure")
                 .map((e) => ({ ms: e.duration, method: e.detail?.method ?? null }))""",
        MEASURE,
    )
    return list(got)


async def _login_once(page: Any, phone: PhoneApp, *, passphrase: bool) -> dict[str, Any]:
    before = len(await _measures(page))
    await page.get_by_role("button", name="Log out").click()
    await _state(page, "login")
    await _scan(page, phone)
    if passphrase:
        await _state(page, "passphrase")
        await page.get_by_label("Vault passphrase", exact=True).fill(PASSPHRASE)
        await page.get_by_role("button", name="Unlock").click()
    await _state(page, "vault")
    for _ in range(200):
        found = await _measures(page)
        if len(found) > before:
            return found[-1]
        await asyncio.sleep(0.05)
    raise TimeoutError(f"the page did not report {MEASURE}")


@dataclass(frozen=True)
class VaultPage:
    """Headless Chromium on the vault page, logged in with the vault passphrase set."""

    page: Any  # playwright.async_api.Page
    phone: PhoneApp  # the phone that scans the login QR codes
    browser: str  # "chromium <version> (headless)"


@contextlib.asynccontextmanager
async def passphrase_page(iterations: int) -> AsyncIterator[VaultPage]:
    """The network, the vault with a hardener (PBKDF2 at `iterations`), and
    headless Chromium on its page: an account registered with the phone and
    its vault passphrase PASSPHRASE set. Closed on exit."""
    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory(prefix="page-login-") as tmp:
        root = Path(tmp)
        async with TestNetwork(root / "net") as net, _vault(net, root, iterations) as url:
            phone = PhoneApp.create(root / "phone.json", label="bench phone")
            await phone.enrol(net.addresses.passkey, net.ca_pem)
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(
                    executable_path=CHROMIUM,
                    args=["--no-sandbox", "--disable-gpu", "--no-first-run"],
                    headless=True,
                )
                try:
                    ctx = await browser.new_context(viewport={"width": 1200, "height": 850})
                    page = await ctx.new_page()
                    await page.goto(url + "/")
                    await _scan(page, phone)
                    await _state(page, "register")
                    await page.get_by_label("Your handle").fill("bench")
                    await page.get_by_role("button", name="Create my keys").click()
                    await _state(page, "vault")
                    await page.get_by_role("button", name="Account and tokens").click()
                    await page.locator("#new-passphrase").fill(PASSPHRASE)
                    await page.locator("#new-passphrase-again").fill(PASSPHRASE)
                    await page.get_by_role("button", name="Set passphrase").click()
                    await page.wait_for_selector("#passphrase-result .good", timeout=TIMEOUT_MS)
                    await page.keyboard.press("Escape")
                    yield VaultPage(page, phone, f"chromium {browser.version} (headless)")
                finally:
                    await browser.close()


async def login_once(v: VaultPage, *, passphrase: bool) -> dict[str, Any]:
    """Log out, log in again with the phone (typing PASSPHRASE when `passphrase`),
    and return the page's new `vault:login` measure."""
    return await _login_once(v.page, v.phone, passphrase=passphrase)


async def _figures(repeat: int, iterations: int) -> dict[str, Any]:
    async with passphrase_page(iterations) as v:
        page = v.page
        with_passphrase = [await login_once(v, passphrase=True) for _ in range(repeat)]
        await page.get_by_role("button", name="Devices", exact=True).click()
        await page.get_by_role("button", name="Register this browser").click()
        await page.get_by_role("button", name="Turn the bypass on").click(timeout=TIMEOUT_MS)
        await page.wait_for_selector(
            "#device-result .good >> text=The bypass is on", timeout=TIMEOUT_MS
        )
        await page.keyboard.press("Escape")
        with_bypass = [await login_once(v, passphrase=False) for _ in range(repeat)]
        version = v.browser
    methods = {m["method"] for m in with_passphrase}, {m["method"] for m in with_bypass}
    if methods != ({"passphrase"}, {"bypass"}):
        raise RuntimeError(f"the logins did not unlock as intended: {methods}")
    p_ms = [float(m["ms"]) for m in with_passphrase]
    b_ms = [float(m["ms"]) for m in with_bypass]
    return {
        "measure": f"{MEASURE}: token login -> vault open, without the wait for typing",
        "logins_each": repeat,
        "pbkdf2_iterations": iterations,
        "bypass_median_ms": round(statistics.median(b_ms), 1),
        "passphrase_median_ms": round(statistics.median(p_ms), 1),
        "bypass_ms": [round(x, 1) for x in b_ms],
        "passphrase_ms": [round(x, 1) for x in p_ms],
        "browser": version,
    }


def page_login_figures(repeat: int = 5, iterations: int = 600_000) -> dict[str, Any]:
    """Median ms of the page's 'token login -> vault open', with the device
    bypass and with the vault passphrase (`repeat` logins each)."""
    if not Path(CHROMIUM).exists():
        return {"measured": False, "reason": f"{CHROMIUM} is not installed"}
    return {"measured": True, **asyncio.run(_figures(repeat, iterations))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=5, help="logins each way (default 5)")
    p.add_argument("--iterations", type=int, default=600_000, help="PBKDF2 count (default 600000)")
    ns = p.parse_args()
    print(json.dumps(page_login_figures(ns.repeat, ns.iterations), indent=2))


if __name__ == "__main__":
    main()
