"""Browser-native security-key login in headless Chromium: a DevTools virtual
authenticator (CTAP 2.1, resident keys, user verification, PRF) is the key.
It enrols on the gateway's own page, then logs in on an SP page, which derives
Kc from the PRF output itself: the network relays no key at all."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, CDPSession, Page

from authnet.protocol import labels
from authnet.protocol.ids import ticket_hash
from authnet.protocol.kc import derive_kc, fido2_prf_input, kc_fingerprint
from authnet.sdk.sp_client import AsyncSPClient
from authnet.testing import TestNetwork
from tests.browser.security_key import attach_virtual_key, enrol_on_gateway
from tests.browser.site import Site, events, open_site, outcome, wait_events, wait_state

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


@pytest_asyncio.fixture(loop_scope="session")
async def key(context: BrowserContext, bare_page: Page) -> AsyncIterator[tuple[CDPSession, str]]:
    """A virtual security key attached to the page (it stays across navigations)."""
    cdp = await context.new_cdp_session(bare_page)
    yield cdp, await attach_virtual_key(cdp)
    await cdp.send("WebAuthn.disable")


async def enrol(page: Page, net: TestNetwork, label: str = "my key") -> str:
    return await enrol_on_gateway(page, net.addresses.gateway_url, label)


async def log_in_with_the_key(page: Page, site: Site) -> dict[str, Any]:
    await open_site(page, site)
    await page.evaluate("startLogin({ agentUrl: null })")
    await wait_state(page, "waiting")
    button = page.get_by_role("button", name="Use a security key in this browser")
    assert await button.is_visible()
    await button.click()
    got = await outcome(page, timeout_ms=15000)
    await wait_state(page, "authenticated")
    assert await button.is_hidden()
    return got


async def test_enrol_then_log_in_with_kc_derived_in_the_page(
    bare_page: Page,
    key: tuple[CDPSession, str],
    net: TestNetwork,
    site: Site,
    sp: AsyncSPClient,
) -> None:
    cdp, authenticator = key
    token_id = await enrol(bare_page, net)
    assert len(token_id) == 22
    creds = (await cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator}))[
        "credentials"
    ]
    assert len(creds) == 1
    assert creds[0]["isResidentCredential"] is True
    assert creds[0]["rpId"] == "localhost"

    delivered: list[bytes] = []
    genuine_put_mail = net.network.state.put_mail

    async def put_mail(th: bytes, sealed: bytes, *, keep_until_ms: int) -> None:
        delivered.append(th)
        await genuine_put_mail(th, sealed, keep_until_ms=keep_until_ms)

    net.network.state.put_mail = put_mail  # type: ignore[method-assign]

    first = await log_in_with_the_key(bare_page, site)
    assert first["fingerprint"] is not None
    assert first["extractable"] is False
    assert first["exportError"] is not None
    kinds = [e["type"] for e in await events(bare_page)]
    assert kinds == ["waiting", "authenticated"]
    who = await sp.get_puid(first["ticket"], finalize=True)
    assert "c" in who.auth_types
    assert "p" in who.auth_types

    # Again: the same Kc (the PRF is stable under UV) and the same PUID.
    second = await log_in_with_the_key(bare_page, site)
    assert second["ticket"] != first["ticket"]
    assert second["fingerprint"] == first["fingerprint"]
    assert (await sp.get_puid(second["ticket"], finalize=True)).puid == who.puid

    # No sealed key ever went through the network's mailbox.
    assert delivered == []
    assert ticket_hash(first["ticket"]) != ticket_hash(second["ticket"])
    # The key's counter moved with each assertion (the network checks it).
    creds = (await cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator}))[
        "credentials"
    ]
    assert creds[0]["signCount"] >= 2


async def test_a_key_the_network_does_not_know_is_refused_and_the_qr_stays(
    bare_page: Page, key: tuple[CDPSession, str], net: TestNetwork, site: Site
) -> None:
    cdp, authenticator = key
    # The key makes its credential, but the enrolment never reaches the network.
    await bare_page.route("**/v1/webauthn/enrol", lambda route: route.abort())
    await bare_page.goto(f"{net.addresses.gateway_url}/v1/enrol")
    await bare_page.wait_for_selector("body[data-ready=true]")
    await bare_page.get_by_role("button", name="Enrol my security key").click()
    result = bare_page.locator("#result.error")
    await result.wait_for(timeout=10000)
    assert (await result.inner_text()).startswith("Not enrolled:")
    creds = await cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert len(creds["credentials"]) == 1

    await open_site(bare_page, site)
    await bare_page.evaluate("startLogin({ agentUrl: null })")
    await wait_state(bare_page, "waiting")
    await bare_page.get_by_role("button", name="Use a security key in this browser").click()
    await wait_events(bare_page, "securitykeyfailed", 1, timeout_ms=15000)
    (failed,) = [e for e in await events(bare_page) if e["type"] == "securitykeyfailed"]
    assert failed["code"] == "token_unknown"
    assert "not enrolled" in failed["message"]
    # Still waiting: the QR code (or another key) remains the way in.
    assert await bare_page.evaluate("window.login.state") == "waiting"
    assert await bare_page.locator(".authnet-qr svg").count() == 1
    status = (await bare_page.locator(".authnet-status").inner_text()).strip()
    assert status == failed["message"]


async def test_the_page_derives_kc_from_prf_exactly_as_the_protocol_says(page: Page) -> None:
    """kcFromPrf and fido2PrfInput against the Python reference (authnet.protocol.kc)."""
    for _ in range(3):
        prf, spid = secrets.token_bytes(32), secrets.token_bytes(16)
        got = await page.evaluate(
            """async ([prf, spid]) => {
                 const kc = await authnet.kcFromPrf(unhex(prf), unhex(spid));
                 return {
                   fingerprint: await kc.fingerprint(),
                   input: hex(authnet.fido2PrfInput(unhex(spid))),
                   extractable: kc.key.extractable,
                 };
               }""",
            [prf.hex(), spid.hex()],
        )
        expected = derive_kc(prf, spid, salt=labels.KC_FIDO2_SALT)
        assert got["fingerprint"] == kc_fingerprint(expected)
        assert got["input"] == fido2_prf_input(spid).hex()
        assert got["extractable"] is False
    error = await page.evaluate("errorOf(authnet.kcFromPrf(new Uint8Array(8), new Uint8Array(16)))")
    assert error["name"] == "TypeError"
