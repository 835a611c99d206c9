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


# A device kept in a platform authenticator (docs/devices.md 1): the PRF salt
# and the two keys from a fixed PRF output, imported non-extractable.
PRF_VECTORS = """async (V) => {
  const d = await import("/js/crypto/devices.js");
  const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  const unhex = (t) => new Uint8Array(t.match(/../g).map((x) => parseInt(x, 16)));
  const out = [];
  for (const v of V.prf) {
    const ids = { userId: unhex(v.user_id), deviceId: unhex(v.device_id) };
    const prf = unhex(v.prf_output);
    const dev = await d.deviceFromPrf(ids.deviceId, prf);
    const nonce = new Uint8Array(32).fill(9);
    const proof = await d.loginProof(dev, { userId: ids.userId, nonce });
    let verified = true;
    try {
      await d.verifyProof(dev.signingPublicKey, proof, d.loginMessage({ ...ids, nonce }), ids);
    } catch {
      verified = false;
    }
    let exportError = null;
    try {
      await crypto.subtle.exportKey("pkcs8", dev.signingKey.privateKey);
    } catch (e) {
      exportError = e.name;
    }
    let shortError = null;
    try {
      await d.deviceFromPrf(ids.deviceId, prf.subarray(0, 31));
    } catch (e) {
      shortError = e.code;
    }
    out.push({
      prf_salt: hex(await d.prfSalt(ids)),
      public_key: hex(dev.publicKey),
      signing_key: hex(dev.signingPublicKey),
      extractable: [dev.deviceKey.privateKey.extractable, dev.signingKey.privateKey.extractable],
      verified,
      exportError,
      shortError,
      input_kept: hex(prf) === v.prf_output,
    });
  }
  return out;
}"""


async def test_every_prf_device_vector(crypto_page: Page) -> None:
    got = await crypto_page.evaluate(PRF_VECTORS, V)
    assert len(got) == len(V["prf"]) >= 2
    for g, v in zip(got, V["prf"], strict=True):
        assert g["prf_salt"] == v["prf_salt"]
        assert g["public_key"] == v["public_key"]
        assert g["signing_key"] == v["signing_key"]
        assert g["extractable"] == [False, False]
        assert g["exportError"] == "InvalidAccessError"
        assert g["verified"] is True
        assert g["shortError"] == "malformed_ciphertext"
        assert g["input_kept"] is True  # the caller's PRF output is the caller's to zero
