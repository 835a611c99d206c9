"""A DevTools virtual security key for headless Chromium, and enrolling it on
the gateway's own page (GET /v1/enrol): shared by the SP-page and vault tests."""

from __future__ import annotations

from playwright.async_api import CDPSession, Page

# CTAP 2.1 with resident keys, user verification and PRF (hmac-secret), touched
# automatically: what the browser-native login needs of a key.
VIRTUAL_KEY = {
    "protocol": "ctap2",
    "ctap2Version": "ctap2_1",
    "transport": "usb",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "hasPrf": True,
    "automaticPresenceSimulation": True,
}


async def attach_virtual_key(cdp: CDPSession) -> str:
    """Attach a virtual key through `cdp`; returns its authenticator id."""
    await cdp.send("WebAuthn.enable", {"enableUI": False})
    added = await cdp.send("WebAuthn.addVirtualAuthenticator", {"options": VIRTUAL_KEY})
    return str(added["authenticatorId"])


async def enrol_on_gateway(page: Page, gateway_url: str, label: str = "my key") -> str:
    """Enrol the page's security key with the network; returns the new token id."""
    await page.goto(f"{gateway_url}/v1/enrol")
    await page.wait_for_selector("body[data-ready=true]")
    await page.get_by_label("Name for this key").fill(label)
    await page.get_by_role("button", name="Enrol my security key").click()
    token = page.locator("#token-id")
    await token.wait_for(timeout=10_000)
    return (await token.inner_text()).strip()
