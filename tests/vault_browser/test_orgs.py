"""The organisation panel in Chromium (docs/devices.md 6): alice creates an
organisation, adds bob by handle, makes him admin and member again; bob's
browser is a device with the bypass on, and when alice turns the bypass off
for the organisation its wraps go in the same step, so bob's next login asks
for the passphrase and says why. The audit list shows every change, and a
member sees the policy without controls to change it. When the organisation
requires a passphrase, a member without one finds the safes closed and the
page asking for one, and sets it there."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Page, expect

from authnet.testing import TestNetwork
from tests.helpers import make_phone
from tests.vault_browser import ui
from tests.vault_browser.conftest import Browsers, VaultSite, serve_device_vault

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

PASSPHRASE = "bob's passphrase is long enough"
ALICE_PASSPHRASE = "alice's organisation asked for this one"


@pytest_asyncio.fixture(loop_scope="session")
async def osite(net: TestNetwork, tmp_path: Path) -> AsyncIterator[VaultSite]:
    async with serve_device_vault(net, tmp_path, proxy=False) as site:
        yield site


async def org_dialog(page: Page) -> None:
    await page.get_by_role("button", name="Organisation").click()
    await expect(page.locator("#org-dialog")).to_be_visible()
    await expect(page.locator("#org-body")).not_to_be_empty(timeout=ui.TIMEOUT)


async def org_result(page: Page, pattern: str) -> None:
    await expect(page.locator("#org-result")).to_contain_text(
        re.compile(pattern), timeout=ui.TIMEOUT
    )


async def test_admin_turns_the_bypass_off_and_the_next_login_asks(
    browsers: Browsers, osite: VaultSite, net: TestNetwork, tmp_path: Path
) -> None:
    alice_phone = await make_phone(net, tmp_path / "a.json", label="alice phone")
    bob_phone = await make_phone(net, tmp_path / "b.json", label="bob phone")
    alice = await browsers.page()
    await ui.sign_up(alice, osite, alice_phone, "alice")
    bob = await browsers.page()
    await ui.sign_up(bob, osite, bob_phone, "bob")
    await ui.set_passphrase(bob, PASSPHRASE)
    await ui.register_device_with_bypass(bob)

    # alice makes an organisation and adds bob; roles change both ways.
    await org_dialog(alice)
    await alice.get_by_label("Name of a new organisation").fill("Acme")
    await alice.get_by_role("button", name="Create organisation").click()
    await org_result(alice, "Organisation Acme created: you are its admin")
    await expect(alice.locator("#org-title")).to_have_text("Acme")
    await alice.get_by_label("Add a member by handle").fill("nobody-here")
    await alice.get_by_role("button", name="Add member").click()
    await org_result(alice, "Not added: there is no user nobody-here")
    await alice.get_by_label("Add a member by handle").fill("bob")
    await alice.get_by_role("button", name="Add member").click()
    await org_result(alice, "bob was added as member")
    await alice.get_by_label("Role of bob").select_option("admin")
    await org_result(alice, "bob is now admin")
    await alice.get_by_label("Role of bob").select_option("member")
    await org_result(alice, "bob is now member")
    await alice.get_by_label("Role of alice").select_option("member")
    await org_result(alice, "the organisation needs at least one admin")

    # bob still opens his vault without the passphrase (the policy allows it).
    await ui.log_out(bob)
    await ui.login(bob, bob_phone, expect_state="vault")

    # alice turns the bypass off: bob's wrap goes at once.
    bypass = alice.get_by_label(re.compile("Registered devices may skip the passphrase"))
    await expect(bypass).to_be_checked()
    await bypass.uncheck()
    await org_result(alice, r"Policy changed\. Removed 1 bypass wraps and revoked 0 devices")
    await expect(alice.get_by_label(re.compile("Registered devices may skip"))).not_to_be_checked()
    audit = alice.locator("#org-audit-list")
    for text in ("org.create: Acme", "member.add: bob", "member.role: bob member → admin"):
        await expect(audit).to_contain_text(text)
    await expect(audit.locator("li").first).to_contain_text(
        "policy.change: allow_bypass true → false (removed 1 bypass wraps, revoked 0 devices)"
    )

    await ui.log_out(bob)
    await ui.login(bob, bob_phone, expect_state="passphrase")
    await expect(bob.locator("#passphrase-reason")).to_contain_text(
        re.compile("your organisation does not allow the passphrase bypass|the bypass is off")
    )
    await ui.unlock(bob, PASSPHRASE)
    measure = await ui.login_measure(bob)
    assert measure is not None
    assert measure["method"] == "passphrase"

    # bob, a member, sees the policy but cannot change it; turning the bypass on is refused.
    await org_dialog(bob)
    await expect(bob.locator("#org-title")).to_have_text("Acme")
    await expect(bob.get_by_label(re.compile("Registered devices may skip"))).to_be_disabled()
    await expect(bob.get_by_role("button", name="Add member")).to_have_count(0)
    await bob.keyboard.press("Escape")
    await ui.devices_dialog(bob)
    await bob.get_by_role("button", name="Turn the bypass on").click()
    await ui.device_result(
        bob, "The bypass is not on: your organisation does not allow the passphrase bypass"
    )

    # alice's organisation requires a passphrase: alice has none, and her next
    # login says so (the organisation's policy, not only the server's setting).
    await bob.keyboard.press("Escape")
    # (alice's organisation dialog is still open.)
    require = alice.get_by_label(re.compile("Members must have a vault passphrase"))
    await expect(require).not_to_be_checked()
    await require.check()
    await org_result(alice, r"Policy changed")
    await expect(alice.locator("#org-audit-list li").first).to_contain_text(
        "policy.change: require_passphrase false → true"
    )
    await alice.keyboard.press("Escape")
    await ui.log_out(alice)
    await ui.login(alice, alice_phone, expect_state="vault")
    await expect(alice.locator("#alert")).to_contain_text(
        "Your organisation Acme requires a vault passphrase", timeout=ui.TIMEOUT
    )
    # The server refuses her safes until she has one (403 passphrase_required):
    # the page opens Account and tokens at the passphrase; once set, they open.
    await expect(alice.locator("#account-dialog")).to_be_visible(timeout=ui.TIMEOUT)
    await expect(alice.locator("#new-passphrase")).to_be_focused()
    await alice.locator("#new-passphrase").fill(ALICE_PASSPHRASE)
    await alice.locator("#new-passphrase-again").fill(ALICE_PASSPHRASE)
    await alice.get_by_role("button", name="Set passphrase").click()
    await expect(alice.locator("#passphrase-result")).to_contain_text(
        "Vault passphrase set", timeout=ui.TIMEOUT
    )
    await expect(alice.locator("#alert")).to_be_hidden()
    await alice.keyboard.press("Escape")
    await ui.create_safe(alice, "Home")
