"""`authnet demo`: one complete phone-QR login, in-process, narrated.

Starts a network (SQLite, temporary directory) and the example SP
(examples/hello_sp) on free ports, enrols a phone simulator, and plays the
browser: it asks hello_sp for a ticket, waits on the gateway, draws the QR
code as a PNG, lets the phone read that image from its pixels, confirm and
answer, opens the sealed Kc, and hands the ticket back to hello_sp, which
calls GetPUID. Exits 0 only when the browser's Kc fingerprint equals the
phone's and the PUID hello_sp got equals the one the network computes for
the phone's account.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TextIO

import aiohttp
from aiohttp import web

from authnet.protocol.kc import kc_fingerprint
from authnet.sdk import AsyncSPClient, BrowserSession
from authnet.testing import TestNetwork
from examples.hello_sp.app import make_app
from simulators.phone.app import PhoneApp
from simulators.phone.camera import read_qr, render_qr
from tokens.handshake import AuthRequest


class Narrator:
    def __init__(self, out: TextIO | None) -> None:
        self.out = out
        self.t0 = time.perf_counter()

    def step(self, text: str) -> None:
        if self.out is not None:
            ms = (time.perf_counter() - self.t0) * 1000
            print(f"[{ms:7.1f} ms] {text}", file=self.out, flush=True)


async def _serve(app: web.Application, stack: AsyncExitStack) -> str:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return f"http://localhost:{port}"


async def run(root: Path, say: Callable[[str], None]) -> dict[str, Any]:
    started = time.perf_counter()
    async with AsyncExitStack() as stack:
        net = await stack.enter_async_context(TestNetwork(root))
        say(
            f"network up: SP API {net.addresses.sp} (mTLS), PassKey API {net.addresses.passkey}, "
            f"gateway {net.addresses.gateway_url}"
        )
        creds = await net.add_sp("hello", "Hello SP")
        say(
            f"registered SP 'hello' (SPID {creds.spid.hex()}) with a client certificate "
            "from the network CA"
        )
        sp = await stack.enter_async_context(AsyncSPClient(creds))
        site = await _serve(make_app(sp), stack)
        say(f"example SP hello_sp serving {site}")

        phone = PhoneApp.create(root / "phone.json", label="demo phone")
        enrolment, _ = await phone.enrol(net.addresses.passkey, net.ca_pem)
        say("phone simulator enrolled: new account, P-256 auth key, 256-bit Kc secret on the phone")

        http = await stack.enter_async_context(aiohttp.ClientSession())
        async with http.post(f"{site}/api/ticket", headers={"Origin": site}) as r:
            r.raise_for_status()
            t = await r.json()
        say(f"browser: hello_sp got a ticket over mTLS (TTL {t['ttl_seconds']} s)")
        session = BrowserSession(
            ticket=t["ticket"],
            spid=bytes.fromhex(t["spid"]),
            gateway_url=t["gateway_url"],
            passkey_address=t["passkey_address"],
        )
        async with session.waiting(http) as wait:
            say("browser: ephemeral X25519 key generated; waiting on the gateway websocket")
            qr = root / "login-qr.png"
            render_qr(session.payload().encode()).save(qr)
            say(f"browser: QR code drawn ({qr.name})")
            text = read_qr(qr)
            say("phone: decoded the QR code from the image's pixels")

            def confirm(req: AuthRequest) -> bool:
                say(
                    f"phone: asks 'Log in to {req.sp_display_name}?' (browser "
                    f"{req.browser_ip}, {req.browser_user_agent[:40]}); confirmed"
                )
                return True

            report = await phone.scan(text, confirm=confirm)
            say(
                "phone: signed the challenge, derived Kc for this SPID, sealed it to the "
                "browser key (HPKE), sent both"
            )
            async with asyncio.timeout(10):
                outcome = await wait.result(on_scanned=lambda: say("browser: 'scanned' shown"))
        assert outcome.kc is not None
        fp_browser = kc_fingerprint(outcome.kc)
        say(f"browser: opened the sealed Kc; fingerprint {fp_browser}")

        async with http.post(
            f"{site}/api/login", json={"ticket": t["ticket"]}, headers={"Origin": site}
        ) as r:
            r.raise_for_status()
            who = await r.json()
        say(f"hello_sp: GetPUID(finalize) -> PUID {who['puid']}, key id {who['key_id']}")

        token = await net.network.directory.get_token(enrolment.token_id)
        assert token is not None
        expected_puid = net.network.identity.puid(token.user_id, creds.spid)
        ok = fp_browser == report.kc_fingerprint and who["puid"] == expected_puid
        result = {
            "ok": ok,
            "spid": creds.spid.hex(),
            "puid": who["puid"],
            "puid_expected": expected_puid,
            "key_id": who["key_id"],
            "kc_fingerprint_phone": report.kc_fingerprint,
            "kc_fingerprint_browser": fp_browser,
            "ms": round((time.perf_counter() - started) * 1000, 1),
        }
        say(
            "OK: browser and phone hold the same Kc; the network never saw it"
            if ok
            else "FAILED: fingerprints or PUIDs differ"
        )
        return result


def main(*, as_json: bool, keep: Path | None = None) -> int:
    narrator = Narrator(None if as_json else sys.stdout)
    with tempfile.TemporaryDirectory(prefix="authnet-demo-") as tmp:
        root = keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        try:
            result = asyncio.run(run(root, narrator.step))
        except Exception as e:  # the demo reports any failure as its result
            result = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            if not as_json:
                print(f"demo failed: {result['error']}", file=sys.stderr)
    if as_json:
        print(json.dumps(result))
    return 0 if result.get("ok") else 1
