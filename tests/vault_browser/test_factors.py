"""The vault passphrase and recovery in Chromium, through a real hardener
(mTLS, its own process thread) with the vault server as its caller: set a
passphrase, unlock needs it; lose both tokens, recover with the recovery
passphrase, the new token opens the safes (docs/vault.md 5.4-5.6)."""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page, expect

from authnet.testing import TestNetwork
from hardener.testing import TestHardener
from tests.helpers import make_phone
from tests.vault_browser import ui
from tests.vault_browser.conftest import Browsers, VaultSite, serve_vault

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

PASSPHRASE = "my grandma had a strange green bbq"
RECOVERY = "francesco taught me about hashes and distribution"
ITEM = {"type": "login", "title": "Bank", "username": "alice", "password": "s3cret-bank-pw"}
# PBKDF2 count in the page; VAULT_TEST_KDF_ITERATIONS=600000 measures the production unlock.
ITERATIONS = int(os.environ.get("VAULT_TEST_KDF_ITERATIONS", "1000"))


@pytest_asyncio.fixture(loop_scope="session")
async def hsite(net: TestNetwork, tmp_path: Path) -> AsyncIterator[VaultSite]:
    with TestHardener(tmp_path) as h:
        h.caller_credentials("vault")
        async with serve_vault(
            net,
            tmp_path / "hvault",
            "hvault",
            hardener_address=h.address,
            hardener_credentials=h.credentials_dir("vault"),
            passphrase_kdf_iterations=ITERATIONS,
        ) as site:
            yield site


async def account_dialog(page: Page) -> None:
    await page.get_by_role("button", name="Account and tokens").click()
    await expect(page.locator("#account-dialog")).to_be_visible()


async def measures(page: Page) -> dict[str, Any]:
    return dict(
        await page.evaluate(
            """() => Object.fromEntries(
                 ["vault:slow-hash", "vault:hardener-round-trip", "vault:passphrase-unlock"]
                 .map((n) => {
                   const e = performance.getEntriesByName(n);
                   return [n, e.length ? e[e.length - 1].duration : null];
                 }))"""
        )
    )


async def test_passphrase_then_recovery_after_losing_both_tokens(
    browsers: Browsers, hsite: VaultSite, net: TestNetwork, tmp_path: Path
) -> None:
    alice = await make_phone(net, tmp_path / "a.json", label="alice phone")
    backup = await make_phone(net, tmp_path / "b.json", label="alice backup", backup_of=alice)
    page = await browsers.page()
    await ui.sign_up(page, hsite, alice, "alice")
    await ui.create_safe(page, "Home")
    await ui.add_item(page, ITEM)

    # A second token, then the passphrase (both tokens get a kc+passphrase slot), then recovery.
    await account_dialog(page)
    await page.get_by_role("button", name="Add a token").click()
    await ui.scan_qr(page, backup, "#add-token-login")
    await expect(page.locator("#account-dialog")).to_contain_text(
        re.compile(r"Token \S+ can now open this vault")
    )
    await page.locator("#new-passphrase").fill(PASSPHRASE)
    await page.locator("#new-passphrase-again").fill(PASSPHRASE)
    await page.get_by_role("button", name="Set passphrase").click()
    await expect(page.locator("#passphrase-result")).to_contain_text("Vault passphrase set")
    await page.locator("#recovery-passphrase").fill(RECOVERY)
    await page.get_by_role("button", name="Set recovery passphrase").click()
    await expect(page.locator("#recovery-result")).to_contain_text("Recovery passphrase set")
    await page.keyboard.press("Escape")
    with sqlite3.connect(hsite.db_path) as c:
        kinds = sorted(k for (k,) in c.execute("SELECT kind FROM key_slots"))
    assert kinds == ["kc+passphrase", "kc+passphrase"]

    # Unlock needs it: the token alone stops at the passphrase; a wrong one is refused.
    await page.get_by_role("button", name="Log out").click()
    await expect(page.locator("html")).to_have_attribute("data-state", "login")
    await ui.login(page, backup, expect_state="passphrase")
    await page.get_by_label("Vault passphrase", exact=True).fill("not my passphrase at all")
    await page.get_by_role("button", name="Unlock").click()
    await expect(page.locator("#alert")).to_contain_text(
        "Wrong vault passphrase", timeout=ui.TIMEOUT
    )
    await expect(page.locator("html")).to_have_attribute("data-state", "passphrase")
    await page.get_by_label("Vault passphrase", exact=True).fill(PASSPHRASE)
    await page.get_by_role("button", name="Unlock").click()
    await expect(page.locator("html")).to_have_attribute("data-state", "vault", timeout=ui.TIMEOUT)
    await expect(page.locator("#safe-title")).to_have_text("Home")
    timings = await measures(page)
    print(f"\nbrowser unlock (PBKDF2 x{ITERATIONS}): {timings}")
    assert timings["vault:passphrase-unlock"] is not None

    # Both tokens lost: a new phone is a new authnet account; it recovers the vault.
    await page.get_by_role("button", name="Log out").click()
    new_phone = await make_phone(net, tmp_path / "new.json", label="new phone")
    other = await browsers.page()
    await ui.open_vault(other, hsite)
    await ui.login(other, new_phone, expect_state="register")
    await other.get_by_role("button", name="Lost every token? Recover an existing vault").click()
    await other.get_by_label("Handle of the vault to recover").fill("alice")
    await other.get_by_label("Recovery code or recovery passphrase").fill("a wrong recovery phrase")
    await other.get_by_role("button", name="Recover my vault").click()
    await expect(other.locator("#alert")).to_contain_text(
        "Wrong recovery passphrase", timeout=ui.TIMEOUT
    )
    await other.get_by_label("Recovery code or recovery passphrase").fill(RECOVERY)
    await other.get_by_role("button", name="Recover my vault").click()
    await expect(other.locator("html")).to_have_attribute("data-state", "vault", timeout=ui.TIMEOUT)
    await expect(other.locator("#who")).to_have_text("Logged in as alice")
    await ui.open_safe(other, "Home")
    await ui.select_item(other, "Bank")
    await other.get_by_role("button", name="Show the password").click()
    await expect(other.locator("#item-body")).to_contain_text(ITEM["password"])
    with sqlite3.connect(hsite.db_path) as c:
        assert [k for (k,) in c.execute("SELECT kind FROM key_slots")] == ["kc"]
        actions = [a for (a,) in c.execute("SELECT action FROM account_events ORDER BY seq")]
    assert actions[-1] == "account.recover"

    # The new token opens the vault straight away next time; the lost ones open nothing.
    await other.get_by_role("button", name="Log out").click()
    await ui.login(other, new_phone)
    await expect(other.locator("#safe-title")).to_have_text("Home")
    await ui.login(page, alice, expect_state="register")  # its PUID is no longer alice's


async def test_python_and_the_page_open_each_others_wraps_and_slots(
    browsers: Browsers, hsite: VaultSite, net: TestNetwork, tmp_path: Path
) -> None:
    """The whole unlock across implementations: Python sets the passphrase and a
    recovery code, the page unlocks with it, changes it and sets a recovery
    passphrase; Python opens what the page made and recovers with it."""
    alice = await make_phone(net, tmp_path / "a.json", label="alice phone")
    async with hsite.client() as py:
        await py.login(alice)
        await py.register("alice")
        sid = await py.create_safe("Home")
        await py.add_item(sid, ITEM)
        await py.set_passphrase(PASSPHRASE)
        code = await py.setup_recovery()

    page = await browsers.page()
    await ui.open_vault(page, hsite)
    await ui.login(page, alice, expect_state="passphrase")
    await page.get_by_label("Vault passphrase", exact=True).fill(PASSPHRASE)
    await page.get_by_role("button", name="Unlock").click()  # the wrap Python made
    await expect(page.locator("html")).to_have_attribute("data-state", "vault", timeout=ui.TIMEOUT)
    await ui.select_item(page, "Bank")
    await page.get_by_role("button", name="Show the password").click()
    await expect(page.locator("#item-body")).to_contain_text(ITEM["password"])
    await account_dialog(page)
    new = "a passphrase the page made up"
    await page.locator("#new-passphrase").fill(new)
    await page.locator("#new-passphrase-again").fill(new)
    await page.get_by_role("button", name="Change passphrase").click()
    await expect(page.locator("#passphrase-result")).to_contain_text("Vault passphrase changed")
    await page.locator("#recovery-passphrase").fill(RECOVERY)
    await page.get_by_role("button", name="Set recovery passphrase").click()
    await expect(page.locator("#recovery-result")).to_contain_text("Recovery passphrase set")
    await page.keyboard.press("Escape")

    async with hsite.client() as py:
        await py.login(alice)
        await py.unlock_passphrase(new)  # the wrap the page made
        assert [i["password"] for i in (await py.items(sid)).values()] == [ITEM["password"]]
        await py.rollback_passphrase(PASSPHRASE)  # Python's own wrap, kept by the page's change
    new_phone = await make_phone(net, tmp_path / "n.json", label="new phone")
    async with hsite.client() as rescued:
        await rescued.login(new_phone)
        await rescued.recover("alice", RECOVERY)  # the recovery slot the page made
        assert [i["password"] for i in (await rescued.items(sid)).values()] == [ITEM["password"]]
    assert len(code) == 29
