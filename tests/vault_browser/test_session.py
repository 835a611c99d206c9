"""Keys and sessions in the page: a second token gets its own key slot (from
an unlocked session, or by a second login when a token has none); a slot that
does not open is reported and never replaced by new keys; logging out and
idling drop every key and plaintext and end the server's session; copied
secrets leave the clipboard after 30 s; a security key in the browser logs
in too; forms are labelled and dialogs manage focus."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Page, expect

from authnet.testing import TestNetwork
from simulators.phone.app import PhoneApp
from tests.browser.security_key import attach_virtual_key, enrol_on_gateway
from tests.helpers import make_phone
from tests.vault_browser import ui
from tests.vault_browser.conftest import Browsers, VaultSite, serve_vault
from vault_api import crypto as vc

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

ITEM = {
    "type": "login",
    "title": "Mail",
    "username": "alice",
    "password": "s3cret-pa55word-for-mail",
}


@pytest_asyncio.fixture(loop_scope="session")
async def backup_phone(net: TestNetwork, tmp_path: Path, alice_phone: PhoneApp) -> PhoneApp:
    """A second phone of Alice's account (enrolled as a backup of the first)."""
    return await make_phone(
        net, tmp_path / "alice-backup.json", label="alice backup", backup_of=alice_phone
    )


def slots(vault: VaultSite) -> list[tuple[bytes, bytes, bytes]]:
    with sqlite3.connect(vault.db_path) as c:
        return sorted(c.execute("SELECT user_id, key_id, slot FROM key_slots").fetchall())


async def logout(page: Page) -> None:
    await page.get_by_role("button", name="Log out").click()
    await expect(page.locator("html")).to_have_attribute("data-state", "login")
    await ui.wait_status(page, "You logged out")


def check_slots_open(vault: VaultSite, phones: list[PhoneApp]) -> None:
    """Each slot opens with its own phone's Kc, to the account's one private key."""
    with sqlite3.connect(vault.db_path) as c:
        [(uid, pk)] = c.execute("SELECT user_id, public_key FROM users").fetchall()
    rows = slots(vault)
    assert len(rows) == len(phones)
    keys = set()
    for _, kid, slot in rows:
        opened = []
        for phone in phones:
            try:
                sk = vc.open_slot(
                    phone.token.derive_kc(vault.creds.spid),
                    slot,
                    user_id=uid,
                    key_id=kid,
                    keypair_version=1,
                    public_key=pk,
                )
            except vc.SlotInvalid:
                continue
            opened.append(phone)
            keys.add(vc.public_key_bytes(sk))
        assert len(opened) == 1  # a slot per token
    assert keys == {pk}


async def test_an_unlocked_session_adds_a_slot_for_a_second_token(
    browsers: Browsers, vault: VaultSite, alice_phone: PhoneApp, backup_phone: PhoneApp
) -> None:
    page = await browsers.page()
    await ui.sign_up(page, vault, alice_phone, "alice")
    await ui.create_safe(page, "Home")
    await ui.add_item(page, ITEM)
    await page.get_by_role("button", name="Account and tokens").click()
    await expect(page.locator("#account-dialog tbody tr")).to_have_count(1)
    await page.get_by_role("button", name="Add a token").click()
    await ui.scan_qr(page, backup_phone, "#add-token-login")
    await expect(page.locator("#account-dialog")).to_contain_text(
        re.compile(r"Token \S+ can now open this vault")
    )
    await expect(page.locator("#account-dialog tbody tr")).to_have_count(2)
    await page.keyboard.press("Escape")
    check_slots_open(vault, [alice_phone, backup_phone])

    # The backup phone alone now opens the vault.
    await logout(page)
    await ui.login(page, backup_phone)
    await ui.select_item(page, "Mail")
    await page.get_by_role("button", name="Show the password").click()
    await expect(page.locator("#item-body")).to_contain_text(ITEM["password"])


async def test_a_token_without_a_slot_gets_one_through_a_second_login(
    browsers: Browsers, vault: VaultSite, alice_phone: PhoneApp, backup_phone: PhoneApp
) -> None:
    page = await browsers.page()
    await ui.sign_up(page, vault, alice_phone, "alice")
    await ui.create_safe(page, "Home")
    await logout(page)
    await ui.login(page, backup_phone, expect_state="noslot")
    await expect(page.locator("#noslot-view")).to_contain_text(
        "This token cannot open your vault yet"
    )
    await ui.scan_qr(page, alice_phone, "#noslot-login")
    await expect(page.locator("html")).to_have_attribute("data-state", "vault", timeout=ui.TIMEOUT)
    await expect(page.locator("#safe-title")).to_have_text("Home")
    check_slots_open(vault, [alice_phone, backup_phone])
    await logout(page)
    await ui.login(page, backup_phone)  # straight in now
    await expect(page.locator("#safe-title")).to_have_text("Home")


async def test_a_slot_that_does_not_open_is_reported_and_no_keys_are_made(
    browsers: Browsers, vault: VaultSite, alice_phone: PhoneApp
) -> None:
    page = await browsers.page()
    await ui.sign_up(page, vault, alice_phone, "alice")
    await logout(page)
    with sqlite3.connect(vault.db_path) as c:
        [(kid, slot)] = c.execute("SELECT key_id, slot FROM key_slots").fetchall()
        bad = bytearray(slot)
        bad[20] ^= 0x04
        c.execute("UPDATE key_slots SET slot = ? WHERE key_id = ?", (bytes(bad), kid))
        before = c.execute("SELECT user_id, public_key, keypair_version FROM users").fetchall()
    writes: list[str] = []
    page.on(
        "request", lambda r: writes.append(f"{r.method} {r.url}") if r.method != "GET" else None
    )

    await ui.login(page, alice_phone, expect_state="problem")
    text = page.locator("#problem-text")
    await expect(text).to_contain_text("does not open with this token's client key")
    await expect(text).to_contain_text("no new keys were made")
    await expect(page.locator("#alert")).to_contain_text("does not open")
    with sqlite3.connect(vault.db_path) as c:
        assert (
            c.execute("SELECT user_id, public_key, keypair_version FROM users").fetchall() == before
        )
        assert c.execute("SELECT slot FROM key_slots").fetchall() == [(bytes(bad),)]
    assert not [w for w in writes if "/api/me" in w]
    sent = [w.split(" ")[1].split("/", 3)[3] for w in writes]
    assert "api/login" in sent
    assert set(sent) <= {"api/login/ticket", "api/login"}  # nothing written for the account


async def test_logout_and_idle_timeout_drop_keys_and_end_the_session(
    browsers: Browsers, net: TestNetwork, alice_phone: PhoneApp, tmp_path: Path
) -> None:
    async with serve_vault(net, tmp_path / "short", "vault-short", idle_timeout_seconds=8) as vault:
        page = await browsers.page()
        await ui.sign_up(page, vault, alice_phone, "alice")
        await ui.create_safe(page, "Home")
        await ui.add_item(page, ITEM)
        await page.get_by_role("button", name="Copy the password").click()
        await ui.wait_status(page, "Copied the password; the clipboard clears in 30 s")
        assert await page.evaluate("navigator.clipboard.readText()") == ITEM["password"]

        # Logging out clears the clipboard, the page and the server's session.
        await logout(page)
        assert await page.evaluate("navigator.clipboard.readText()") == ""
        assert ITEM["password"] not in await page.content()
        assert await page.evaluate("fetch('/api/session').then((r) => r.status)") == 401

        # Idle: a warning first; "Stay logged in" keeps the session.
        await ui.login(page, alice_phone)
        await expect(page.locator("#idle-dialog")).to_be_visible(timeout=10_000)
        await expect(page.locator("#idle-dialog")).to_contain_text("You will be logged out in")
        await page.get_by_role("button", name="Stay logged in").click()
        await expect(page.locator("#idle-dialog")).to_have_count(0)
        await expect(page.locator("html")).to_have_attribute("data-state", "vault")
        # Then nothing: logged out, keys dropped.
        await expect(page.locator("html")).to_have_attribute("data-state", "login", timeout=15_000)
        await ui.wait_status(page, "You were logged out after 8 seconds without activity")
        assert "Mail" not in await page.locator("#vault-view").inner_text()
        assert await page.evaluate("fetch('/api/session').then((r) => r.status)") == 401


async def test_the_clipboard_clears_after_thirty_seconds(
    browsers: Browsers, vault: VaultSite, alice_phone: PhoneApp
) -> None:
    page = await browsers.page()
    await page.clock.install()
    await ui.sign_up(page, vault, alice_phone, "alice")
    await ui.create_safe(page, "Home")
    await ui.add_item(page, ITEM)
    await page.get_by_role("button", name="Copy the user name").click()
    assert await page.evaluate("navigator.clipboard.readText()") == "alice"
    await page.clock.fast_forward(29_000)
    assert await page.evaluate("navigator.clipboard.readText()") == "alice"
    await page.clock.fast_forward(2_000)
    assert await page.evaluate("navigator.clipboard.readText()") == ""
    # Something else copied meanwhile is left alone.
    await page.get_by_role("button", name="Copy the password").click()
    await page.evaluate("navigator.clipboard.writeText('copied elsewhere')")
    await page.clock.fast_forward(31_000)
    assert await page.evaluate("navigator.clipboard.readText()") == "copied elsewhere"


LABELS = """
() => [...document.querySelectorAll("input, select, textarea, button, [role=listbox]")]
  .filter((el) => el.offsetParent !== null && el.type !== "hidden")
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label")
                  && !el.getAttribute("aria-labelledby")
                  && !(el.tagName === "BUTTON" && el.textContent.trim()))
  .map((el) => el.outerHTML.slice(0, 120))
"""


async def test_controls_are_labelled_and_dialogs_manage_focus(
    browsers: Browsers, vault: VaultSite, alice_phone: PhoneApp
) -> None:
    page = await browsers.page()
    await ui.open_vault(page, vault)
    # The login offers the phone's QR code and a security key in this browser.
    await expect(page.get_by_role("img", name=re.compile("Login QR code"))).to_be_visible()
    await expect(
        page.get_by_role("button", name="Use a security key in this browser")
    ).to_be_visible()
    await ui.login(page, alice_phone, expect_state="register")
    assert await page.evaluate(LABELS) == []
    await ui.register(page, "alice")
    await ui.create_safe(page, "Home")
    await ui.add_item(page, ITEM)
    assert await page.evaluate(LABELS) == []
    # A dialog takes focus into its field and gives it back on Escape.
    opener = page.get_by_role("button", name="New safe")
    await opener.focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_label("Name of the new safe")).to_be_focused()
    assert await page.evaluate(LABELS) == []
    await page.keyboard.press("Escape")
    await expect(opener).to_be_focused()
    # The editor: every field labelled; Save by keyboard.
    await ui.select_item(page, "Mail")
    await page.get_by_role("button", name="Edit").click()
    await expect(page.get_by_label("Title")).to_be_focused()
    assert await page.evaluate(LABELS) == []
    await page.get_by_label("User name").fill("alice2")
    await page.keyboard.press("Enter")
    await ui.wait_status(page, r"Saved Mail \(version 2\)")
    await expect(page.locator("#item-heading")).to_be_focused()
    # The list box by keyboard: Down from the search box, Enter opens.
    await page.get_by_label("Search items").focus()
    await page.keyboard.press("ArrowDown")
    await expect(page.get_by_role("listbox", name="Items")).to_be_focused()
    await page.keyboard.press("Home")
    await page.keyboard.press("Enter")
    await expect(page.locator("#item-heading")).to_have_text("Mail")
    # The password generator: length and classes, a password into the form.
    await page.get_by_role("button", name="Edit").click()
    await page.get_by_role("button", name="Generate").click()
    await expect(page.get_by_label("Length")).to_be_focused()
    await page.get_by_label("Length").fill("32")
    await page.get_by_label("symbols").uncheck()
    generated = await page.locator("#gen-output").text_content()
    assert generated is not None
    assert re.fullmatch(r"[A-Za-z0-9]{32}", generated)
    await page.get_by_role("button", name="Use this password").click()
    await expect(page.locator("#edit-password")).to_have_value(generated)


@pytest_asyncio.fixture(loop_scope="session")
async def localhost_vault(net: TestNetwork, tmp_path: Path) -> AsyncIterator[VaultSite]:
    """The vault as http://localhost:<port>: WebAuthn's RP id is the gateway's host, localhost."""
    async with serve_vault(net, tmp_path / "local", "vault-local", host_name="localhost") as site:
        yield site


async def test_a_security_key_in_the_browser_logs_in_and_reopens_the_same_slot(
    browsers: Browsers, net: TestNetwork, localhost_vault: VaultSite
) -> None:
    page = await browsers.page()
    cdp = await page.context.new_cdp_session(page)
    await attach_virtual_key(cdp)
    await enrol_on_gateway(page, net.addresses.gateway_url)

    for round_ in range(2):
        await ui.open_vault(page, localhost_vault)
        await page.get_by_role("button", name="Use a security key in this browser").click()
        if round_ == 0:
            await expect(page.locator("html")).to_have_attribute(
                "data-state", "register", timeout=ui.TIMEOUT
            )
            await ui.register(page, "keyholder")
            await ui.create_safe(page, "Keyed")
            await ui.add_item(page, ITEM)
            await logout(page)
        else:
            # The same key derives the same Kc: its slot opens, the safe is there.
            await expect(page.locator("html")).to_have_attribute(
                "data-state", "vault", timeout=ui.TIMEOUT
            )
            await ui.select_item(page, "Mail")
            await page.get_by_role("button", name="Show the password").click()
            await expect(page.locator("#item-body")).to_contain_text(ITEM["password"])
    await cdp.send("WebAuthn.disable")
