"""Driving the vault's page like a person: log in by QR code (the phone
simulator reads it off a screenshot), register, make safes and items, share.
Each helper waits for what the page shows, so tests read as the story."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import Page, expect

from simulators.phone.app import PhoneApp
from simulators.phone.camera import read_qr
from tests.vault_browser.conftest import VaultSite

TIMEOUT = 15_000


async def open_vault(page: Page, vault: VaultSite) -> None:
    await page.goto(vault.url + "/")
    await expect(page.locator("html")).to_have_attribute("data-state", "login", timeout=TIMEOUT)


async def scan_qr(page: Page, phone: PhoneApp, container: str = "#login") -> None:
    """What a phone pointed at the screen does: read the QR code from pixels, confirm."""
    qr = page.locator(f"{container} .authnet-qr svg")
    await expect(qr).to_be_visible(timeout=TIMEOUT)
    payload = read_qr(await page.screenshot())
    assert payload.startswith("authnet:login?v=1&t=at1_")
    await phone.scan(payload, confirm=lambda _: True)


async def login(page: Page, phone: PhoneApp, *, expect_state: str = "vault") -> None:
    await scan_qr(page, phone)
    await expect(page.locator("html")).to_have_attribute(
        "data-state", expect_state, timeout=TIMEOUT
    )


async def register(page: Page, handle: str) -> None:
    await page.get_by_label("Your handle").fill(handle)
    await page.get_by_role("button", name="Create my keys").click()
    await expect(page.locator("html")).to_have_attribute("data-state", "vault", timeout=TIMEOUT)
    await expect(page.locator("#who")).to_have_text(f"Logged in as {handle}")


async def sign_up(page: Page, vault: VaultSite, phone: PhoneApp, handle: str) -> None:
    await open_vault(page, vault)
    await login(page, phone, expect_state="register")
    await register(page, handle)


async def status(page: Page) -> str:
    return (await page.locator("#status").text_content()) or ""


async def wait_status(page: Page, pattern: str, wait_ms: int = TIMEOUT) -> None:
    await expect(page.locator("#status")).to_have_text(re.compile(pattern), timeout=wait_ms)


async def create_safe(page: Page, name: str) -> None:
    await page.get_by_role("button", name="New safe").click()
    await page.get_by_label("Name of the new safe").fill(name)
    await page.locator("dialog").get_by_role("button", name="OK", exact=True).click()
    await expect(page.locator("#safe-title")).to_have_text(name, timeout=TIMEOUT)
    await wait_status(page, f"Safe {re.escape(name)} created")


def safe_button(page: Page, name: str) -> Any:
    return page.locator("#safe-list button").filter(has_text=name).first


async def open_safe(page: Page, name: str) -> None:
    await safe_button(page, name).click()
    await wait_status(page, r"^Opened ", wait_ms=60_000)


async def add_item(page: Page, content: dict[str, Any], folder: str | None = None) -> None:
    """New item through the editor; `content` uses the vault's field names."""
    await page.get_by_role("button", name="New item").click()
    await page.locator("#edit-type").select_option(content["type"])
    await page.locator("#edit-title").fill(content["title"])
    for key, value in content.items():
        if key in ("type", "title"):
            continue
        if key == "notes":
            await page.locator("#edit-notes").fill(value)
        elif key == "urls":
            await page.locator("#edit-urls").fill("\n".join(value))
        else:
            await page.locator(f"#edit-{key}").fill(value)
    if folder is not None:
        await page.locator("#edit-folder").select_option(label=folder)
    await page.get_by_role("button", name="Save", exact=True).click()
    await wait_status(page, f"Saved {re.escape(content['title'])} ")


async def select_item(page: Page, title: str) -> None:
    await page.locator(".vlist-row", has_text=title).first.click()
    await expect(page.locator("#item-heading")).to_have_text(title)


async def csrf_token(page: Page) -> str:
    """The session's CSRF token as the page would get it after a reload."""
    token = await page.evaluate(
        "fetch('/api/session').then((r) => r.json()).then((s) => s.csrf_token)"
    )
    assert isinstance(token, str)
    return token


async def bulk_items(
    py: Any, sid: bytes, contents: list[dict[str, Any]], folder_id: bytes | None = None
) -> list[bytes]:
    """Add many items through the Python reference client, 1000 per request."""
    from tests.vault.driver import enc
    from vault_api import crypto as vc

    ks, g = await py.key(sid)
    ids = []
    for at in range(0, len(contents), 1000):
        batch = []
        for content in contents[at : at + 1000]:
            iid = vc.new_id()
            ids.append(iid)
            batch.append(
                {
                    "id": enc(iid),
                    **py.item_body(
                        sid, iid, content, ks=ks, generation=g, version=1, folder_id=folder_id
                    ),
                }
            )
        await py.call(
            "POST", f"/api/safes/{enc(sid)}/items/batch", json={"items": batch}, expect=201
        )
    return ids


async def reload_and_open(page: Page, name: str, expect_status: str | None = None) -> None:
    """Reload the list of safes (new ones shared or made elsewhere), open `name`."""
    await page.get_by_role("button", name="Reload safes").click()
    await expect(safe_button(page, name)).to_be_visible()
    await safe_button(page, name).click()
    await wait_status(page, expect_status or f"^Opened {re.escape(name)}", wait_ms=60_000)


async def downloaded(download: Any) -> bytes:
    """The bytes of a finished Playwright download."""
    import asyncio
    from pathlib import Path

    path = Path(await download.path())
    return await asyncio.to_thread(path.read_bytes)


async def until(page: Page, predicate: str, wait_ms: int = TIMEOUT) -> None:
    """Poll a function in the page until it returns true. (Playwright's
    wait_for_function compiles strings with eval, which the page's
    Content-Security-Policy refuses; evaluate does not.)"""
    import asyncio
    import time

    deadline = time.monotonic() + wait_ms / 1000
    while not await page.evaluate(predicate):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not true within {wait_ms} ms: {predicate}")
        await asyncio.sleep(0.005)


# --- the vault passphrase, devices and the organisation (docs/devices.md) -------------------


async def set_passphrase(page: Page, passphrase: str) -> None:
    """Account and tokens -> Set passphrase (the session is then passphrase-unlocked)."""
    await page.get_by_role("button", name="Account and tokens").click()
    await expect(page.locator("#account-dialog")).to_be_visible()
    await page.locator("#new-passphrase").fill(passphrase)
    await page.locator("#new-passphrase-again").fill(passphrase)
    await page.get_by_role("button", name="Set passphrase").click()
    await expect(page.locator("#passphrase-result")).to_contain_text(
        "Vault passphrase set", timeout=TIMEOUT
    )
    await page.keyboard.press("Escape")


async def unlock(page: Page, passphrase: str) -> None:
    await expect(page.locator("html")).to_have_attribute("data-state", "passphrase")
    await page.get_by_label("Vault passphrase", exact=True).fill(passphrase)
    await page.get_by_role("button", name="Unlock").click()
    await expect(page.locator("html")).to_have_attribute("data-state", "vault", timeout=TIMEOUT)


async def devices_dialog(page: Page) -> None:
    await page.get_by_role("button", name="Devices", exact=True).click()
    await expect(page.locator("#devices-dialog")).to_be_visible()
    await expect(page.locator("#device-list")).not_to_be_empty(timeout=TIMEOUT)


async def device_result(page: Page, pattern: str) -> None:
    await expect(page.locator("#device-result")).to_contain_text(
        re.compile(pattern), timeout=TIMEOUT
    )


async def register_device_with_bypass(page: Page) -> None:
    """Devices -> Register this browser -> Turn the bypass on; the dialog closed again."""
    await devices_dialog(page)
    await page.get_by_role("button", name="Register this browser").click()
    await device_result(page, "This browser is registered as a device")
    await page.get_by_role("button", name="Turn the bypass on").click()
    await device_result(page, "The bypass is on")
    await expect(page.locator("#device-list")).to_contain_text("(this browser)")
    await page.keyboard.press("Escape")


async def log_out(page: Page) -> None:
    await page.get_by_role("button", name="Log out").click()
    await expect(page.locator("html")).to_have_attribute("data-state", "login")
    # The next login's measure is then the only one (login_measure waits for it).
    await page.evaluate("performance.clearMeasures('vault:login')")


async def login_measure(page: Page) -> dict[str, Any] | None:
    """The 'vault:login' measure (token login -> vault open) of the login since
    log_out, and how it unlocked; it is set once the vault has been drawn."""
    await until(page, "performance.getEntriesByName('vault:login', 'measure').length > 0")
    got = await page.evaluate(
        """() => {
             const e = performance.getEntriesByName("vault:login", "measure").at(-1);
             return e ? { ms: e.duration, method: e.detail?.method ?? null } : null;
           }"""
    )
    return None if got is None else dict(got)


async def register_prf_device_with_bypass(page: Page) -> None:
    """Devices -> (keep the key in the computer's authenticator) Register -> bypass on."""
    await devices_dialog(page)
    await page.get_by_label(
        "Keep this device's key in the computer's authenticator (WebAuthn PRF)"
    ).check()
    await page.get_by_role("button", name="Register this browser").click()
    await device_result(page, "This browser is registered as a device")
    await page.get_by_role("button", name="Turn the bypass on").click()
    await device_result(page, "The bypass is on")
    await expect(page.locator("#device-list")).to_contain_text("(this browser)")
    await page.keyboard.press("Escape")
