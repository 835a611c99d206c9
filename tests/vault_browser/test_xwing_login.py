"""The vault's login page offers X-Wing (docs/protocol.md section 3): its
import map resolves @noble/curves and @noble/hashes to the copies it serves
under /authnet/v1/vendor/, so authnet.js loads its X-Wing module, the QR code
carries the key's hash, and the phone seals Kc with X-Wing, which the page
opens (it would refuse an X25519 seal after offering X-Wing)."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from authnet.protocol.payload import parse_payload
from authnet.protocol.suites import SealSuite
from authnet.testing import TestNetwork
from simulators.phone.app import PhoneApp
from simulators.phone.camera import read_qr
from tests.helpers import mailbox_sizes
from tests.vault_browser import ui
from tests.vault_browser.conftest import Browsers, VaultSite

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def test_the_vault_login_seals_kc_with_xwing(
    browsers: Browsers, vault: VaultSite, alice_phone: PhoneApp, net: TestNetwork
) -> None:
    page = await browsers.page()
    await ui.open_vault(page, vault)
    await expect(page.locator("#login .authnet-qr svg")).to_be_visible(timeout=ui.TIMEOUT)
    text = read_qr(await page.screenshot())
    payload = parse_payload(text)
    assert payload.pq_key_hash is not None, text  # the page offered X-Wing

    with mailbox_sizes(net) as sizes:
        report = await alice_phone.scan(text, confirm=lambda _: True)
        assert report.accepted
        await expect(page.locator("html")).to_have_attribute(
            "data-state", "register", timeout=ui.TIMEOUT
        )
    # One seal, X-Wing's size (enc + Kc + tag), not X25519's.
    assert sizes == [SealSuite.XWING.enc_bytes + 48]
    await ui.register(page, "alice")
