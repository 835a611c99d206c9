"""One-time links in Chromium (docs/devices.md 7), through the real one-time key
proxy: "Send once…" on an item makes <vault>/once#<token>.<K>; the /once page
removes the fragment from the address bar, shows the status first (a link
previewer that loads it, or asks the proxy for the status, does not burn it),
and only the explicit Reveal claims and decrypts the item. A second open says
"already opened", an expired link "expired", a changed key "damaged"."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Page, expect

from authnet.testing import TestNetwork
from tests.helpers import make_phone
from tests.vault_browser import ui
from tests.vault_browser.conftest import Browsers, VaultSite, serve_device_vault

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

ITEM = {"type": "login", "title": "Wifi", "username": "guest", "password": "correct-wifi-pw"}


@pytest_asyncio.fixture(loop_scope="session")
async def lsite(net: TestNetwork, tmp_path: Path) -> AsyncIterator[VaultSite]:
    async with serve_device_vault(net, tmp_path) as site:
        yield site


async def send_once(page: Page, title: str, lifetime: str = "1 hour") -> str:
    await ui.select_item(page, title)
    await page.get_by_role("button", name="Send once…").click()
    await page.get_by_label("The link expires after").select_option(label=lifetime)
    await page.get_by_role("button", name="Make the link").click()
    link = page.get_by_label("The one-time link")
    await expect(link).to_be_visible(timeout=ui.TIMEOUT)
    value = await link.input_value()
    await page.keyboard.press("Escape")
    return value


async def open_link(page: Page, link: str) -> None:
    await page.goto(link)
    await expect(page.locator("html")).not_to_have_attribute(
        "data-state", "loading", timeout=ui.TIMEOUT
    )


def token_of(link: str) -> str:
    return link.split("#", 1)[1].rpartition(".")[0]


async def test_a_link_opens_once_and_the_status_does_not_burn_it(
    browsers: Browsers, lsite: VaultSite, net: TestNetwork, tmp_path: Path
) -> None:
    phone = await make_phone(net, tmp_path / "alice.json", label="alice phone")
    alice = await browsers.page()
    await ui.sign_up(alice, lsite, phone, "alice")
    await ui.create_safe(alice, "Home")
    await ui.add_item(alice, ITEM)
    link = await send_once(alice, "Wifi")
    assert re.fullmatch(rf"{re.escape(lsite.url)}/once#[^.#]+\.[A-Za-z0-9_-]{{43}}", link), link

    # A previewer loads the page (and so the status): the link survives.
    preview = await browsers.page()
    await open_link(preview, link)
    await expect(preview.locator("html")).to_have_attribute("data-state", "ready")
    await expect(preview.locator("#once-heading")).to_have_text("Someone sent you a secret")
    await expect(preview.get_by_role("button", name="Reveal (can be opened once)")).to_be_visible()
    assert "#" not in preview.url  # the fragment left the address bar
    assert await preview.evaluate("location.hash") == ""
    async with httpx.AsyncClient() as http:
        st = (await http.get(f"{lsite.keyproxy.http_url}/v1/deposits/{token_of(link)}")).json()
    assert st["state"] == "waiting"

    # The explicit Reveal claims it and the item opens in the page.
    reader = await browsers.page()
    await open_link(reader, link)
    await expect(reader.locator("html")).to_have_attribute("data-state", "ready")
    await reader.get_by_role("button", name="Reveal (can be opened once)").click()
    await expect(reader.locator("html")).to_have_attribute("data-state", "revealed")
    await expect(reader.locator("#once-item-title")).to_have_text("Wifi")
    await expect(reader.locator("#once-fields")).to_contain_text(ITEM["password"])
    await expect(reader.locator("#once-fields")).to_contain_text(ITEM["username"])

    # Opened again (or the previewer's Reveal, late): already opened, with when.
    again = await browsers.page()
    await open_link(again, link)
    await expect(again.locator("html")).to_have_attribute("data-state", "claimed")
    await expect(again.locator("#once-heading")).to_have_text("This link was already opened")
    await expect(again.locator("#once-text")).to_contain_text("It was opened on ")
    await preview.get_by_role("button", name="Reveal (can be opened once)").click()
    await expect(preview.locator("html")).to_have_attribute("data-state", "claimed")
    await expect(preview.locator("#once-fields")).not_to_contain_text(ITEM["password"])


async def test_expired_and_damaged_links(
    browsers: Browsers, lsite: VaultSite, net: TestNetwork, tmp_path: Path
) -> None:
    phone = await make_phone(net, tmp_path / "alice.json", label="alice phone")
    alice = await browsers.page()
    await ui.sign_up(alice, lsite, phone, "alice")
    await ui.create_safe(alice, "Home")
    await ui.add_item(alice, ITEM)

    # A changed key: the status is fine, Reveal claims, AES-GCM refuses.
    link = await send_once(alice, "Wifi", "10 minutes")
    head, key = link.rsplit(".", 1)
    changed = key[:10] + ("A" if key[10] != "A" else "B") + key[11:]
    reader = await browsers.page()
    await open_link(reader, f"{head}.{changed}")
    await expect(reader.locator("html")).to_have_attribute("data-state", "ready")
    await reader.get_by_role("button", name="Reveal (can be opened once)").click()
    await expect(reader.locator("html")).to_have_attribute("data-state", "damaged")
    await expect(reader.locator("#once-heading")).to_have_text("The link is damaged")
    await expect(reader.locator("#once-text")).to_contain_text("AES-GCM refused it")

    # A cut link is damaged before anything is asked of the proxy.
    cut = await browsers.page()
    await open_link(cut, f"{lsite.url}/once#{token_of(link)}")
    await expect(cut.locator("html")).to_have_attribute("data-state", "damaged")

    # An expired one says so (a deposit of one second, made by the page's own code).
    short = await alice.evaluate(
        """async ([proxy]) => (await import("/js/sendonce.js"))
             .makeLink(proxy, location.origin, { type: "note", title: "brief" }, 1)""",
        [lsite.keyproxy.http_url],
    )
    await asyncio.sleep(1.5)
    late = await browsers.page()
    await open_link(late, short["link"])
    await expect(late.locator("html")).to_have_attribute("data-state", "expired")
    await expect(late.locator("#once-heading")).to_have_text("This link has expired")
