"""A device kept in the computer's authenticator (docs/devices.md 1), in
Chromium with a DevTools virtual platform authenticator that has PRF: the
page registers the device from a WebAuthn PRF output, keeps no key in
IndexedDB, and the next QR login opens the vault without the passphrase;
with the authenticator gone, the bypass fails, says why, and the passphrase
is asked. WebAuthn needs a domain as RP ID, so the vault is served as
http://localhost:<port> (its public URL and the origin it checks)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import CDPSession, Page, expect

from authnet.testing import TestNetwork
from tests.helpers import make_phone
from tests.vault_browser import ui
from tests.vault_browser.conftest import Browsers, VaultSite, serve_device_vault

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

PASSPHRASE = "correct horse battery staple, twice"
ITEM = {"type": "login", "title": "Bank", "username": "alice", "password": "s3cret-bank-pw"}

# A platform authenticator ("internal") with user verification and PRF (hmac-secret).
PLATFORM_AUTHENTICATOR = {
    "protocol": "ctap2",
    "ctap2Version": "ctap2_1",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "hasPrf": True,
    "automaticPresenceSimulation": True,
}

RECORDS = """() => new Promise((resolve, reject) => {
  const r = indexedDB.open("authnet-vault-devices");
  r.onerror = () => reject(r.error);
  r.onsuccess = () => {
    const q = r.result.transaction("devices").objectStore("devices").getAll();
    q.onsuccess = () => resolve(q.result.map((d) => ({
      keys: Object.keys(d).sort(),
      kind: d.kind,
      cryptoKeys: Object.values(d).filter((v) => v instanceof CryptoKey
        || (v && typeof v === "object" && Object.values(v).some((w) => w instanceof CryptoKey)))
        .length,
    })));
  };
})"""


@pytest_asyncio.fixture(loop_scope="session")
async def lsite(net: TestNetwork, tmp_path: Path) -> AsyncIterator[VaultSite]:
    async with serve_device_vault(net, tmp_path, proxy=False, host_name="localhost") as site:
        yield site


async def platform_authenticator(page: Page, *, prf: bool = True) -> tuple[CDPSession, str]:
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable", {"enableUI": False})
    options = {**PLATFORM_AUTHENTICATOR, "hasPrf": prf}
    added = await cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})
    return cdp, str(added["authenticatorId"])


async def test_a_prf_device_opens_the_vault_and_keeps_no_key(
    browsers: Browsers, lsite: VaultSite, net: TestNetwork, tmp_path: Path
) -> None:
    assert lsite.url.startswith("http://localhost:")
    phone = await make_phone(net, tmp_path / "alice.json", label="alice phone")
    page = await browsers.page()
    cdp, authenticator = await platform_authenticator(page)  # before the vault's page loads
    await ui.sign_up(page, lsite, phone, "alice")
    await ui.create_safe(page, "Home")
    await ui.add_item(page, ITEM)
    await ui.set_passphrase(page, PASSPHRASE)
    await ui.register_prf_device_with_bypass(page)
    with sqlite3.connect(lsite.db_path) as c:
        assert [
            (s, w is not None) for s, w in c.execute("SELECT state, device_wrap FROM devices")
        ] == [("active", True)]
    creds = await cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert len(creds["credentials"]) == 1
    assert creds["credentials"][0]["rpId"] == "localhost"

    # The next QR login opens the vault through the authenticator, without the passphrase.
    await ui.log_out(page)
    await ui.login(page, phone, expect_state="vault")
    await ui.wait_status(page, "Vault opened with this browser's device")
    measure = await ui.login_measure(page)
    assert measure is not None
    assert measure["method"] == "bypass"
    await ui.select_item(page, "Bank")
    await page.get_by_role("button", name="Show the password").click()
    await expect(page.locator("#item-body")).to_contain_text(ITEM["password"])

    # IndexedDB holds the ids and the name only: no CryptoKey, no key bytes.
    assert await page.evaluate(RECORDS) == [
        {
            "keys": ["credential_id", "device_id", "kind", "name", "user_id"],
            "kind": "prf",
            "cryptoKeys": 0,
        }
    ]

    # Without the authenticator the bypass fails, says why, and the passphrase is asked.
    # (It is replaced by an empty one: with none at all, DevTools' virtual environment
    # leaves the request pending, where a real browser would let the person cancel it.)
    await cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": authenticator})
    await cdp.send("WebAuthn.addVirtualAuthenticator", {"options": PLATFORM_AUTHENTICATOR})
    await ui.log_out(page)
    await ui.login(page, phone, expect_state="passphrase")
    await expect(page.locator("#passphrase-reason")).to_contain_text(
        "this computer's authenticator did not give this browser's device key"
    )
    await ui.unlock(page, PASSPHRASE)
    await expect(page.locator("#safe-title")).to_have_text("Home")
    # The device stays registered (its record too): the authenticator may come back.
    assert len(await page.evaluate(RECORDS)) == 1


async def test_an_authenticator_without_prf_registers_nothing(
    browsers: Browsers, lsite: VaultSite, net: TestNetwork, tmp_path: Path
) -> None:
    phone = await make_phone(net, tmp_path / "alice.json", label="alice phone")
    page = await browsers.page()
    await platform_authenticator(page, prf=False)
    await ui.sign_up(page, lsite, phone, "alice")
    await ui.set_passphrase(page, PASSPHRASE)
    await ui.devices_dialog(page)
    await page.get_by_label(
        "Keep this device's key in the computer's authenticator (WebAuthn PRF)"
    ).check()
    await page.get_by_role("button", name="Register this browser").click()
    await ui.device_result(page, "Not registered: this authenticator has no PRF")
    with sqlite3.connect(lsite.db_path) as c:
        assert c.execute("SELECT count(*) FROM devices").fetchone() == (0,)
    assert await page.evaluate(RECORDS) == []
    await expect(page.get_by_role("button", name="Register this browser")).to_be_visible()
