"""The page's device crypto (js/crypto/devices.js) in headless Chromium against
every entry of tests/vectors/vault-devices.json: fingerprints, Ed25519 proofs,
KEK_b, the device wrap (made with the vector's nonce, opened non-extractable),
the sealed KEK (HPKE with the vector's ephemeral key), one-time link blobs,
and each negative case refused with its code (docs/devices.md 1-4, 7)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Page

from tests.vault_browser.conftest import Browsers, VaultSite, script
from tests.vectorfiles import load

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

V = load("vault-devices.json")
LOAD = script("load_vaultcrypto")
VECTORS = script("device_vectors")


@pytest_asyncio.fixture(loop_scope="session")
async def crypto_page(browsers: Browsers, vault: VaultSite) -> AsyncIterator[Page]:
    page = await browsers.page()
    await page.goto(f"{vault.url}/api/health")
    assert await page.evaluate(LOAD, vault.net.addresses.gateway_url) is True
    yield page


async def test_every_device_vector(crypto_page: Page) -> None:
    got = await crypto_page.evaluate(VECTORS, V)

    assert sorted(got["labels"].values()) == sorted(V["labels"].values())
    assert len(got["device"]) == len(V["device"]) >= 2
    for g, v in zip(got["device"], V["device"], strict=True):
        assert g["public_key"] == v["public_key"]
        assert g["signing_key"] == v["signing_key"]
        assert g["fingerprint"] == v["fingerprint"]
        assert len(g["fingerprint"]) == 24
        assert g["fingerprint"].count("-") == 4
        assert g["registration_message"] == v["registration_message"]
        assert g["registration_proof"] == v["registration_proof"]  # Ed25519 is deterministic
        assert g["login_message"] == v["login_message"]
        assert g["login_proof"] == v["login_proof"]
        assert g["verified"] is True
        assert g["fresh"] == {
            "deviceExtractable": False,
            "signingExtractable": False,
            "exportError": "InvalidAccessError",
            "idBytes": 16,
        }
    assert len(got["bypass"]) == len(V["bypass"]) >= 1
    for g, v in zip(got["bypass"], V["bypass"], strict=True):
        assert g["bypass_kek"] == v["bypass_kek"]
        assert g["device_wrap_aad"] == v["device_wrap_aad"]
        assert g["device_wrap"] == v["device_wrap"]  # wrapKey("pkcs8") with the vector's nonce
        assert g["opened_public_key"] == v["public_key"]
        assert g["opened_extractable"] is False
        assert g["kek_info"] == v["kek_info"]
        assert g["sealed_kek"] == v["sealed_kek"]
        assert g["dkek"] == g["random_opens"] == v["dkek"]
        assert g["random_differs"] is True
    assert len(got["link"]) == len(V["link"]) >= 1
    for g, v in zip(got["link"], V["link"], strict=True):
        assert g["aad"] == v["aad"]
        assert g["blob"] == v["blob"]
        assert g["opened"] == g["random_opens"] == v["padded"]
        assert g["random_key_bytes"] == 32
    assert [n["case"] for n in got["negative"]] == [n["case"] for n in V["negative"]]
    for g, n in zip(got["negative"], V["negative"], strict=True):
        assert g["error"] is not None, f"{n['case']}: accepted"
        assert g["error"]["isVault"] is True, g
        assert g["error"]["code"] == n["error"], f"{n['case']}: {g['error']}"
