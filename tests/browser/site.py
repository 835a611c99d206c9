"""A stand-in SP web site for the browser tests, and helpers to drive its page.

The site (aiohttp on http://localhost, a secure context) serves one page that
imports the browser client from the network's gateway, exactly as an SP page
would, and a `/ticket` endpoint that gets a ticket through the SP SDK and hands
the page the JSON documented in authnet.js.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from playwright.async_api import Page

from authnet.sdk.sp_client import AsyncSPClient, Ticket
from simulators.phone.camera import read_qr

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>authnet browser client test</title></head>
<body>
<main><h1>Log in to Hello SP</h1><div id="login"></div></main>
<script type="module">
import * as authnet from "__GATEWAY__/v1/authnet.js";
import * as hpke from "__GATEWAY__/v1/hpke.js";

window.authnet = authnet;
window.hpke = hpke;
window.hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
window.unhex = (s) => new Uint8Array((s.match(/../g) || []).map((x) => parseInt(x, 16)));
window.errorOf = async (promise) => {
  try {
    await promise;
    return null;
  } catch (e) {
    return { name: e.name, code: e.code ?? null, message: e.message };
  }
};

// Start the widget; events land in window.loginEvents, the result in window.outcome.
window.startLogin = (options = {}) => {
  const events = (window.loginEvents = []);
  window.ticketTimes = [];
  window.outcome = null;
  const login = (window.login = new authnet.AuthnetLogin({
    getTicket: async () => {
      const r = await fetch("/ticket", { method: "POST" });
      if (!r.ok) throw new Error(`ticket endpoint said ${r.status}`);
      const json = await r.json();
      window.ticketTimes.push(Date.now());
      return json;
    },
    container: document.getElementById("login"),
    ...options,
  }));
  const types = ["waiting", "scanned", "authenticated", "rejected", "expired", "error"];
  for (const type of [...types, "agent", "agentfailed", "securitykeyfailed"]) {
    login.addEventListener(type, (e) => {
      const d = e.detail;
      events.push({
        type,
        code: d.code ?? null,
        message: d.message ?? null,
        payload: d.payload ?? null,
        scanned: d.scanned ?? null,
        ticket: d.ticket ?? null,
        token: d.token ?? null,
        kcIsClientKey: d.kc instanceof authnet.ClientKey,
      });
    });
  }
  login.start().then(
    async ({ ticket, kc }) => {
      window.outcome = {
        ticket,
        fingerprint: kc ? await kc.fingerprint() : null,
        extractable: kc ? kc.key.extractable : null,
        exportError: kc ? await window.errorOf(crypto.subtle.exportKey("raw", kc.key)) : null,
      };
    },
    (e) => {
      window.outcome = { error: e.code, name: e.name };
    },
  );
};
window.authnetReady = true;
</script>
</body>
</html>
"""


# What an SP page adds to offer X-Wing (authnet/gateway/static/xwing.js): noble's
# files import their sibling packages by bare specifier. Served at /pq.
IMPORT_MAP = """<script type="importmap">{"imports": {
  "@noble/curves/": "__GATEWAY__/v1/vendor/noble-curves-2.4.0/",
  "@noble/hashes/": "__GATEWAY__/v1/vendor/noble-hashes-2.4.0/"}}</script>
"""


@dataclass
class Site:
    """The SP site's state: every ticket it handed out, and knobs for tests."""

    sp: AsyncSPClient
    gateway_url: str
    url: str = ""
    ttl_seconds: int = 0
    fail_next_ticket: bool = False
    issued: list[Ticket] = field(default_factory=list)

    def app(self) -> web.Application:
        page = PAGE.replace("__GATEWAY__", self.gateway_url)
        pq_page = page.replace(
            '<script type="module">',
            IMPORT_MAP.replace("__GATEWAY__", self.gateway_url) + '<script type="module">',
            1,
        )

        async def index(_: web.Request) -> web.Response:
            return web.Response(text=page, content_type="text/html")

        async def index_pq(_: web.Request) -> web.Response:
            return web.Response(text=pq_page, content_type="text/html")

        async def ticket(_: web.Request) -> web.Response:
            if self.fail_next_ticket:
                self.fail_next_ticket = False
                raise web.HTTPServiceUnavailable(text="try later")
            t = await self.sp.get_ticket(ttl_seconds=self.ttl_seconds, auth_types="c")
            self.issued.append(t)
            return web.json_response(
                {
                    "ticket": t.ticket,
                    "spid": self.sp.spid.hex(),
                    "gateway_url": t.gateway_url,
                    "gateway_urls": list(t.gateway_urls),
                    "passkey_address": t.passkey_address,
                    "ttl_seconds": t.ttl_seconds,
                    "expires_at_unix_ms": t.expires_at_unix_ms,
                }
            )

        app = web.Application()
        app.router.add_get("/", index)
        app.router.add_get("/pq", index_pq)
        app.router.add_post("/ticket", ticket)
        return app


async def open_site(page: Page, site: Site, path: str = "/") -> None:
    await page.goto(site.url.rstrip("/") + path)
    await page.wait_for_function("window.authnetReady === true", timeout=5000)


async def wait_state(page: Page, state: str, *, timeout_ms: int = 5000) -> None:
    await page.wait_for_selector(
        f'.authnet-login[data-state="{state}"]', state="attached", timeout=timeout_ms
    )


async def events(page: Page) -> list[dict[str, Any]]:
    got = await page.evaluate("window.loginEvents")
    assert isinstance(got, list)
    return got


async def wait_events(page: Page, kind: str, count: int, *, timeout_ms: int = 5000) -> None:
    await page.wait_for_function(
        f"window.loginEvents.filter((e) => e.type === {json.dumps(kind)}).length >= {count}",
        timeout=timeout_ms,
    )


async def outcome(page: Page, *, timeout_ms: int = 10000) -> dict[str, Any]:
    await page.wait_for_function("window.outcome !== null", timeout=timeout_ms)
    got = await page.evaluate("window.outcome")
    assert isinstance(got, dict)
    return got


async def scan_screen(page: Page) -> str:
    """What a phone camera pointed at the screen reads: the QR code, from pixels."""
    return read_qr(await page.screenshot())
