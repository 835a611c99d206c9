"""Seal and open time of the sealed Kc, per suite (docs/protocol.md §7).

Python (one core, what the token and the Python browser client run):
`seal` is `seal_kc_to` as the token calls it (parse the browser's key, check
the X-Wing key against the QR code's hash, HPKE SealBase), `open` is
`BrowserKeys.open` (HPKE OpenBase with the context's info), `keygen` the
browser's key pair for one ticket (X25519, or X25519 + X-Wing).

With `--browser`: the same open in headless Chromium through authnet.js
(`openSealedKc`: WebCrypto X25519 / AES-GCM; X-Wing Decap in JavaScript by
@noble/post-quantum), and the page's X-Wing key generation, over a page
served with the import map xwing.js needs.

    .venv/bin/python bench/sealing.py                 # ~5 s
    .venv/bin/python bench/sealing.py --browser -n 200

Prints one JSON object on stdout: per suite, microseconds per operation
(median and mean of `-n` timed runs after a warm-up), and the sizes on the
wire (enc, QR code payload, hello frame).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import x25519

from authnet.protocol.encoding import b64u_encode
from authnet.protocol.ids import new_ticket, ticket_hash
from authnet.protocol.payload import Address, LoginPayload
from authnet.protocol.sealing import BrowserKeys, SealedKey, seal_kc_to
from authnet.protocol.suites import BrowserOffer, SealSuite, pq_key_hash, xwing_key_pair

CHROMIUM = "/usr/bin/chromium"
STATIC = Path(__file__).resolve().parent.parent / "authnet" / "gateway" / "static"


def _time(fn: Callable[[], object], n: int) -> dict[str, float]:
    for _ in range(max(3, n // 10)):
        fn()
    runs = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        runs.append((time.perf_counter_ns() - t0) / 1000)
    return {
        "median_us": round(statistics.median(runs), 1),
        "mean_us": round(statistics.fmean(runs), 1),
    }


def _keys(suite: SealSuite) -> BrowserKeys:
    return BrowserKeys(
        x25519_private=x25519.X25519PrivateKey.generate(),
        xwing=xwing_key_pair(secrets.token_bytes(32)) if suite is SealSuite.XWING else None,
    )


def _case(suite: SealSuite) -> tuple[BrowserKeys, bytes, bytes, bytes, SealedKey]:
    keys = _keys(suite)
    kc, ticket, spid = secrets.token_bytes(32), new_ticket(), secrets.token_bytes(16)
    th = ticket_hash(ticket)
    pq = keys.xwing.public_bytes if keys.xwing else None
    sealed = seal_kc_to(kc, keys.offer, suite=suite, ticket_hash=th, spid=spid, pq_key=pq)
    return keys, kc, th, spid, sealed


def python_figures(n: int) -> dict[str, Any]:
    return {suite.value: _python_suite(suite, n) for suite in (SealSuite.X25519, SealSuite.XWING)}


def _python_suite(suite: SealSuite, n: int) -> dict[str, Any]:
    keys, kc, th, spid, sealed = _case(suite)
    offer = keys.offer
    pq = keys.xwing.public_bytes if keys.xwing else None
    payload = LoginPayload(
        ticket=new_ticket(),
        browser_key=offer.x25519_key,
        network=Address(host="passkey.example.net", port=7443),
        pq_key_hash=offer.pq_key_hash,
    )
    hello = {
        "type": "hello",
        "v": 1,
        "ticket": payload.ticket,
        "browser_key": b64u_encode(offer.x25519_key),
        "wait_secret": b64u_encode(bytes(32)),
    }
    if pq is not None:
        hello["browser_pq_key"] = b64u_encode(pq)
    return {
        "hpke_suite": suite.suite_id.hex(),
        "seal": _time(
            lambda: seal_kc_to(kc, offer, suite=suite, ticket_hash=th, spid=spid, pq_key=pq), n
        ),
        "open": _time(lambda: keys.open(sealed, ticket_hash=th, spid=spid), n),
        "keygen": _time(lambda: _keys(suite), n),
        "enc_bytes": len(sealed.enc),
        "qr_payload_chars": len(payload.encode()),
        "hello_frame_bytes": len(json.dumps(hello)),
    }


PAGE = """<!doctype html><html><head><meta charset="utf-8">
<script type="importmap">{"imports": {
  "@noble/curves/": "/v1/vendor/noble-curves-2.4.0/",
  "@noble/hashes/": "/v1/vendor/noble-hashes-2.4.0/"}}</script>
<script type="module">
import * as authnet from "/v1/authnet.js";
window.authnet = authnet;
window.ready = true;
</script></head><body></body></html>"""

BROWSER_RUN = """
async ([n, seal]) => {
  const unhex = (s) => new Uint8Array(s.match(/../g).map((x) => parseInt(x, 16)));
  const { keyPair, publicKey } = await authnet.generateBrowserKey();
  const xwing = await authnet.generateXWingKey();
  return { x25519: Array.from(publicKey), xwing: Array.from(xwing.publicKey),
           keyHash: Array.from(xwing.keyHash), keep: (window.keys = { keyPair, xwing }) && 1 };
}
"""

BROWSER_TIME = """
async ([n, sealed, ticket, spid, pq]) => {
  const { keyPair, xwing } = window.keys;
  const opts = pq ? { xwing } : {};
  const once = () => authnet.openSealedKc(sealed, keyPair, ticket, spid, opts);
  for (let i = 0; i < Math.max(3, n / 10); i++) await once();
  const runs = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await once();
    runs.push((performance.now() - t0) * 1000);
  }
  const gen = [];
  for (let i = 0; i < n && pq; i++) {
    const t0 = performance.now();
    await authnet.generateXWingKey();
    gen.push((performance.now() - t0) * 1000);
  }
  const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;
  const out = { open: { median_us: med(runs), mean_us: mean(runs) } };
  if (pq) out.keygen_xwing = { median_us: med(gen), mean_us: mean(gen) };
  return out;
}
"""


async def browser_figures(n: int) -> dict[str, Any]:
    from aiohttp import web
    from playwright.async_api import async_playwright

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def static(request: web.Request) -> web.Response:
        path = (STATIC / request.match_info["name"]).resolve()
        if STATIC not in path.parents or path.suffix not in (".js", ".mjs"):
            raise web.HTTPNotFound()
        return web.Response(body=path.read_bytes(), content_type="text/javascript")

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/v1/{name:.+}", static)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    out: dict[str, Any] = {}
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True
            )
            tab = await browser.new_page()
            await tab.goto(f"http://localhost:{port}/")
            await tab.wait_for_function("window.ready === true")
            got = await tab.evaluate(BROWSER_RUN, [n, True])
            x25519_key, xwing_pk = bytes(got["x25519"]), bytes(got["xwing"])
            for suite in (SealSuite.X25519, SealSuite.XWING):
                pq = suite is SealSuite.XWING
                offer = BrowserOffer(
                    x25519_key=x25519_key, pq_key_hash=pq_key_hash(xwing_pk) if pq else None
                )
                kc, ticket, spid = secrets.token_bytes(32), new_ticket(), secrets.token_bytes(16)
                sealed = seal_kc_to(
                    kc,
                    offer,
                    suite=suite,
                    ticket_hash=ticket_hash(ticket),
                    spid=spid,
                    pq_key=xwing_pk if pq else None,
                )
                js = {"enc": b64u_encode(sealed.enc), "ciphertext": b64u_encode(sealed.ciphertext)}
                r = await tab.evaluate(BROWSER_TIME, [n, js, ticket, spid.hex(), pq])
                out[suite.value] = {k: {m: round(v, 1) for m, v in d.items()} for k, d in r.items()}
            out["chromium"] = browser.version
            await browser.close()
    finally:
        await runner.cleanup()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=500, help="timed runs per figure")
    ap.add_argument("--browser", action="store_true", help="also time the page (Chromium)")
    ns = ap.parse_args()
    out: dict[str, Any] = {"python": python_figures(ns.n)}
    if ns.browser:
        out["browser"] = asyncio.run(browser_figures(min(ns.n, 200)))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
