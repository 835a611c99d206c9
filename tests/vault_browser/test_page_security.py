"""What the page does not do: run markup or script that arrives inside an
item (every decrypted value is text; links only for http(s) URLs), run
inline script at all (its Content-Security-Policy), or keep anything in
storage, cookies it can read, or its URL."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import expect

from simulators.phone.app import PhoneApp
from tests.vault_browser import ui
from tests.vault_browser.conftest import Browsers, VaultSite

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

ROOT = Path(__file__).resolve().parents[2]

HOSTILE = {
    "type": "login",
    "title": '<img src=x onerror="window.__pwned=1">',
    "username": "<b>bold</b>",
    "urls": ["javascript:window.__pwned=3", "https://ok.example/"],
    "notes": "<script>window.__pwned=2</script>",
}


async def test_the_page_has_a_strict_content_security_policy(vault: VaultSite) -> None:
    gateway = vault.net.addresses.gateway_url.rstrip("/")
    async with aiohttp.ClientSession() as http, http.get(vault.url + "/") as r:
        assert r.status == 200
        csp = r.headers["Content-Security-Policy"]
        assert "authnet vault" in await r.text()
    directives = dict(d.split(" ", 1) for d in csp.split("; "))
    async with aiohttp.ClientSession() as http:
        async with http.get(vault.url + "/authnet/v1/authnet.js") as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/javascript")
            assert "export class AuthnetLogin" in await r.text()
        async with http.get(vault.url + "/authnet/v1/nope.js") as r:
            assert r.status == 404
    # No code from the network: the vault serves its own copy of authnet.js.
    # The one inline script allowed is the import map, by its hash.
    page = (ROOT / "vault_api/static/index.html").read_bytes()
    maps = re.findall(rb'<script type="importmap">(.*?)</script>', page, re.DOTALL)
    assert json.loads(maps[0]) == {
        "imports": {
            "@noble/curves/": "/authnet/v1/vendor/noble-curves-2.4.0/",
            "@noble/hashes/": "/authnet/v1/vendor/noble-hashes-2.4.0/",
        }
    }
    digest = base64.b64encode(hashlib.sha256(maps[0]).digest()).decode()
    assert directives["script-src"] == f"'self' 'sha256-{digest}'"
    assert gateway in directives["connect-src"]
    assert directives["default-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "'unsafe-inline'" not in csp
    assert "'unsafe-eval'" not in csp


async def test_hostile_item_content_is_shown_as_text_and_nothing_is_stored(
    browsers: Browsers, vault: VaultSite, alice_phone: PhoneApp
) -> None:
    page = await browsers.page()
    await ui.sign_up(page, vault, alice_phone, "alice")
    async with vault.client() as py:
        await py.login(alice_phone)
        sid = await py.create_safe("<i>Safe</i>")
        await py.add_folder(sid, "<u>folder</u>")
        await py.add_item(sid, HOSTILE)
    await ui.reload_and_open(page, "<i>Safe</i>")
    await expect(page.locator("#safe-title")).to_have_text("<i>Safe</i>")
    await expect(page.locator("#folder-tree")).to_contain_text("<u>folder</u>")
    row = page.locator(".vlist-row").first
    await expect(row.locator(".row-title")).to_have_text(HOSTILE["title"])
    await row.click()
    body = page.locator("#item-body")
    await expect(body.locator("#item-heading")).to_have_text(HOSTILE["title"])
    await expect(body.locator(".notes")).to_have_text(HOSTILE["notes"])
    await expect(body).to_contain_text("<b>bold</b>")
    # Only the https URL is a link; the javascript: one is plain text.
    links = body.locator("a")
    await expect(links).to_have_count(1)
    await expect(links).to_have_attribute("href", "https://ok.example/")
    await expect(links).to_have_attribute("rel", "noopener noreferrer")
    await expect(body).to_contain_text("javascript:window.__pwned=3")
    assert await page.evaluate("window.__pwned") is None
    assert await page.locator("#item-body img, #item-body script, #item-body b").count() == 0

    # Inline script is refused by the policy, even when added to the DOM.
    refused = await page.evaluate(
        """() => new Promise((resolve) => {
             document.addEventListener("securitypolicyviolation",
               (e) => resolve(e.violatedDirective), { once: true });
             const s = document.createElement("script");
             s.textContent = "window.__inline = 1";
             document.body.append(s);
             setTimeout(() => resolve(window.__inline === 1 ? "ran" : "no event"), 2000);
           })"""
    )
    assert refused.startswith("script-src")
    assert await page.evaluate("window.__inline") is None

    # Nothing in storage, no cookie the page can read, nothing in the URL.
    stored = await page.evaluate(
        """async () => ({ local: localStorage.length, session: sessionStorage.length,
                          idb: (await indexedDB.databases()).length, cookie: document.cookie,
                          url: location.href })"""
    )
    assert stored == {"local": 0, "session": 0, "idb": 0, "cookie": "", "url": vault.url + "/"}
