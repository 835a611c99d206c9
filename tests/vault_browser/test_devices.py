"""Trusted devices in Chromium (docs/devices.md 2-5): a browser registered as a
device with the bypass on opens the vault after the QR login without the
passphrase; revoking it from another browser ends its session at once and the
next login asks for the passphrase, saying why; a new browser is approved from
an unlocked one through the real one-time key proxy, after the two screens
show the same fingerprint, and a refused one says so."""

from __future__ import annotations

import re
import sqlite3
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

PASSPHRASE = "correct horse battery staple, twice"
ITEM = {"type": "login", "title": "Bank", "username": "alice", "password": "s3cret-bank-pw"}


@pytest_asyncio.fixture(loop_scope="session")
async def bsite(net: TestNetwork, tmp_path: Path) -> AsyncIterator[VaultSite]:
    """Without a proxy: the bypass needs none."""
    async with serve_device_vault(net, tmp_path, proxy=False) as site:
        yield site


@pytest_asyncio.fixture(loop_scope="session")
async def dsite(net: TestNetwork, tmp_path: Path) -> AsyncIterator[VaultSite]:
    async with serve_device_vault(net, tmp_path) as site:
        yield site


async def alice_with_passphrase(page: Page, site: VaultSite, phone: object) -> None:
    await ui.sign_up(page, site, phone, "alice")  # type: ignore[arg-type]
    await ui.create_safe(page, "Home")
    await ui.add_item(page, ITEM)
    await ui.set_passphrase(page, PASSPHRASE)


def device_rows(site: VaultSite) -> list[tuple[str, bool]]:
    with sqlite3.connect(site.db_path) as c:
        return [
            (state, wrap is not None)
            for state, wrap in c.execute("SELECT state, device_wrap FROM devices ORDER BY name")
        ]


async def test_bypass_login_then_revoked_from_another_browser(
    browsers: Browsers, bsite: VaultSite, net: TestNetwork, tmp_path: Path
) -> None:
    phone = await make_phone(net, tmp_path / "alice.json", label="alice phone")
    page = await browsers.page()
    await alice_with_passphrase(page, bsite, phone)
    await ui.register_device_with_bypass(page)
    assert device_rows(bsite) == [("active", True)]

    # The next QR login opens the vault without the passphrase.
    await ui.log_out(page)
    await ui.login(page, phone, expect_state="vault")
    await ui.wait_status(page, "Vault opened with this browser's device")
    await expect(page.locator("#safe-title")).to_have_text("Home")
    await ui.select_item(page, "Bank")
    await page.get_by_role("button", name="Show the password").click()
    await expect(page.locator("#item-body")).to_contain_text(ITEM["password"])
    measure = await ui.login_measure(page)
    assert measure is not None
    assert measure["method"] == "bypass"
    # The device keys in IndexedDB are CryptoKeys script cannot export.
    keys = await page.evaluate(
        """() => new Promise((resolve) => {
             const r = indexedDB.open("authnet-vault-devices");
             r.onsuccess = () => {
               const q = r.result.transaction("devices").objectStore("devices").getAll();
               q.onsuccess = () => resolve(q.result.map((d) => [
                 d.device_key.privateKey.extractable, d.signing_key.privateKey.extractable,
                 d.device_key.privateKey.algorithm.name, d.signing_key.privateKey.algorithm.name]));
             };
           })"""
    )
    assert keys == [[False, False, "X25519", "Ed25519"]]

    # Another browser (no device: it asks for the passphrase) revokes this one.
    other = await browsers.page()
    await ui.open_vault(other, bsite)
    await ui.login(other, phone, expect_state="passphrase")
    await expect(other.locator("#passphrase-reason")).to_be_hidden()
    await ui.unlock(other, PASSPHRASE)
    await ui.devices_dialog(other)
    await expect(other.locator("#device-list")).not_to_contain_text("(this browser)")
    await other.get_by_role("button", name=re.compile(r"^Revoke ")).click()
    await other.locator("#confirm-dialog").get_by_role("button", name="Revoke").click()
    await ui.device_result(other, "was revoked")
    assert device_rows(bsite) == [("revoked", False)]

    # The bypass stops at once: the revoked device's session ends at its next request...
    await page.get_by_role("button", name="Reload safes").click()
    await expect(page.locator("html")).to_have_attribute("data-state", "login", timeout=ui.TIMEOUT)
    await ui.wait_status(page, "Your session ended")
    # ...and the next login asks for the passphrase, saying why.
    await ui.login(page, phone, expect_state="passphrase")
    await expect(page.locator("#passphrase-reason")).to_contain_text(
        "this browser was revoked as a device"
    )
    await ui.unlock(page, PASSPHRASE)
    # Its local keys went with it: the page offers to register it again.
    await ui.devices_dialog(page)
    await expect(page.get_by_role("button", name="Register this browser")).to_be_visible()


async def approve_flow(a: Page, b: Page) -> tuple[str, str]:
    """B asks; A looks the code up. Returns (B's fingerprint, the one A shows)."""
    await b.get_by_role("button", name="Approve this browser from another device instead").click()
    await expect(b.locator("html")).to_have_attribute("data-state", "approval")
    await expect(b.locator("#approval-state")).to_have_attribute(
        "data-state", "pending", timeout=ui.TIMEOUT
    )
    code = (await b.locator("#approval-code").text_content()) or ""
    b_fp = (await b.locator("#approval-fingerprint").text_content()) or ""
    assert re.fullmatch(r"[0-9A-Z]{5}-[0-9A-Z]{5}", code), code
    assert re.fullmatch(r"([0-9a-f]{4}-){4}[0-9a-f]{4}", b_fp), b_fp
    await ui.devices_dialog(a)
    await a.get_by_label("Code shown by the new browser").fill(code.lower())
    await a.get_by_role("button", name="Look up the request").click()
    await expect(a.locator("#approve-fingerprint")).not_to_be_empty(timeout=ui.TIMEOUT)
    a_fp = (await a.locator("#approve-fingerprint").text_content()) or ""
    return b_fp, a_fp


async def test_a_new_browser_approved_through_the_proxy_and_one_refused(
    browsers: Browsers, dsite: VaultSite, net: TestNetwork, tmp_path: Path
) -> None:
    phone = await make_phone(net, tmp_path / "alice.json", label="alice phone")
    a = await browsers.page()
    await alice_with_passphrase(a, dsite, phone)

    b = await browsers.page()
    await ui.open_vault(b, dsite)
    await ui.login(b, phone, expect_state="passphrase")
    b_fp, a_fp = await approve_flow(a, b)
    assert a_fp == b_fp  # the person compares the two screens
    approve = a.get_by_role("button", name=re.compile(r"^Approve "))
    await expect(approve).to_be_disabled()  # until the fingerprints are said to match
    await a.get_by_label("The fingerprints match").check()
    await approve.click()
    await ui.device_result(a, "Approved .*: it finishes on its own screen")
    await expect(b.locator("html")).to_have_attribute("data-state", "vault", timeout=ui.TIMEOUT)
    await ui.wait_status(b, "This browser was approved")
    await ui.select_item(b, "Bank")
    await b.get_by_role("button", name="Show the password").click()
    await expect(b.locator("#item-body")).to_contain_text(ITEM["password"])
    await a.keyboard.press("Escape")
    # The KEK went through the proxy under both conditions, and was claimed once.
    with sqlite3.connect(dsite.db_path) as c:
        (token,) = c.execute(
            "SELECT proxy_token FROM device_requests WHERE state = 'approved'"
        ).fetchone()
    async with httpx.AsyncClient() as http:
        st = (await http.get(f"{dsite.keyproxy.http_url}/v1/deposits/{token}")).json()
    assert st["state"] == "claimed"
    assert sorted(st["conditions"]) == ["grant", "secret"]

    # B is now a device with the bypass: its next login needs no passphrase.
    await ui.log_out(b)
    await ui.login(b, phone, expect_state="vault")
    measure = await ui.login_measure(b)
    assert measure is not None
    assert measure["method"] == "bypass"

    # A device wrap changed on the server is found by the page, which asks for the passphrase.
    await ui.log_out(b)
    with sqlite3.connect(dsite.db_path) as c:
        (wrap,) = c.execute("SELECT device_wrap FROM devices").fetchone()
        changed = wrap[:40] + bytes([wrap[40] ^ 1]) + wrap[41:]
        c.execute("UPDATE devices SET device_wrap = ?", (changed,))
    await ui.login(b, phone, expect_state="passphrase")
    await expect(b.locator("#passphrase-reason")).to_contain_text(
        "this browser's device wrap did not open"
    )
    with sqlite3.connect(dsite.db_path) as c:
        c.execute("UPDATE devices SET device_wrap = ?", (wrap,))

    # A third browser is refused: it says so and stays locked.
    c = await browsers.page()
    await ui.open_vault(c, dsite)
    await ui.login(c, phone, expect_state="passphrase")
    c_fp, shown = await approve_flow(a, c)
    assert c_fp == shown
    await a.get_by_role("button", name="Refuse").click()
    await ui.device_result(a, "Refused the request")
    await expect(c.locator("#approval-state")).to_have_attribute(
        "data-state", "refused", timeout=ui.TIMEOUT
    )
    await expect(c.locator("#approval-state")).to_contain_text("Refused")
    assert sorted(device_rows(dsite)) == [("active", True)]
