"""`authnet demo`: one complete phone-QR login, in-process, narrated.

Starts a network (SQLite, temporary directory) and the example SP
(examples/hello_sp) on free ports, enrols a phone simulator, and plays the
browser: it asks hello_sp for a ticket, waits on the gateway, draws the QR
code as a PNG, lets the phone read that image from its pixels, confirm and
answer, opens the sealed Kc, and hands the ticket back to hello_sp, which
calls GetPUID. Exits 0 only when the browser's Kc fingerprint equals the
phone's and the PUID hello_sp got equals the one the network computes for
the phone's account.

`--nodes N --state redis://... [--database postgresql://...]` runs the same
login on a cluster of N nodes sharing that Redis and database: the steps are
spread over the nodes (the SP's calls go to the last node, the browser waits
on the first, the phone begins on the first and completes on the second),
and `nodes` in the result says which node served each step, from the nodes'
own answers.

This composition of the network, an example SP and a phone simulator lives
above all three (the network's own packages import none of them); the
`authnet demo` command finds it through the `authnet.commands` entry point.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import psycopg
from aiohttp import web
from psycopg import sql
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from authnet.protocol.kc import kc_fingerprint
from authnet.sdk import AsyncSPClient, BrowserSession
from authnet.testing import TestCluster, TestNetwork
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


@dataclass(frozen=True, kw_only=True)
class Topology:
    """Where the demo's network runs: one embedded node by default."""

    nodes: int = 1
    state_url: str = ""
    database_url: str = ""

    @property
    def embedded(self) -> bool:
        return self.nodes == 1 and not self.state_url and not self.database_url

    def check(self) -> None:
        if self.nodes < 1:
            raise ValueError("--nodes must be at least 1")
        if self.nodes > 1 and not self.state_url:
            raise ValueError("--nodes N needs the nodes' shared state: --state redis://...")


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database the demo was pointed at if it is missing
    (the demo's SP and account stay in it: each run uses new names)."""
    dsn = make_url(url)
    if not dsn.drivername.startswith("postgres"):
        return
    name = dsn.database or "postgres"
    admin = dsn.set(drivername="postgresql", database="postgres")
    conninfo = admin.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


async def _network(
    root: Path, where: Topology, stack: AsyncExitStack
) -> tuple[list[TestNetwork], list[str]]:
    """The demo's nodes, and the other nodes' PassKey addresses for the phone."""
    if where.embedded:
        return [await stack.enter_async_context(TestNetwork(root))], []
    if where.database_url:
        await asyncio.to_thread(ensure_database, where.database_url)
    cluster = await stack.enter_async_context(
        TestCluster(
            root,
            nodes=where.nodes,
            state_url=where.state_url,
            state_prefix=f"authnet-demo:{secrets.token_hex(4)}:",
            database_url=where.database_url,
        )
    )
    return cluster.nodes, cluster.passkey_addresses[1:]


async def run(
    root: Path, say: Callable[[str], None], where: Topology | None = None
) -> dict[str, Any]:
    where = where or Topology()
    where.check()
    started = time.perf_counter()
    async with AsyncExitStack() as stack:
        nets, other_passkeys = await _network(root, where, stack)
        net, last = nets[0], nets[-1]
        for each in nets:
            who = "network" if where.embedded else f"node {each.network.node_id}"
            say(
                f"{who} up: SP API {each.addresses.sp} (mTLS), PassKey API "
                f"{each.addresses.passkey}, gateway {each.addresses.gateway_url}"
            )
        if not where.embedded:
            say(
                f"{len(nets)} node(s) sharing state {_redact(where.state_url) or 'in memory'} "
                f"and directory {_redact(where.database_url) or 'SQLite'}"
            )
        name = "hello" if where.embedded else f"hello-{secrets.token_hex(3)}"
        creds = await net.add_sp(name, "Hello SP")
        say(
            f"registered SP {name!r} (SPID {creds.spid.hex()}) with a client certificate "
            "from the network CA"
        )
        # The SP knows every node; it starts on the last one (GetTicket, GetPUID).
        sp_nodes = [last.addresses.sp, *(n.addresses.sp for n in nets[:-1])]
        sp = await stack.enter_async_context(AsyncSPClient(creds, address=sp_nodes))
        site = await _serve(make_app(sp), stack)
        say(f"example SP hello_sp serving {site}")

        phone = PhoneApp.create(root / "phone.json", label="demo phone")
        phone.nodes = tuple(other_passkeys)
        enrolment, _ = await phone.enrol(net.network.passkey_address, net.ca_pem)
        say("phone simulator enrolled: new account, P-256 auth key, 256-bit Kc secret on the phone")

        served: dict[str, str] = {}
        http = await stack.enter_async_context(aiohttp.ClientSession())
        async with http.post(f"{site}/api/ticket", headers={"Origin": site}) as r:
            r.raise_for_status()
            t = await r.json()
        served["get_ticket"] = sp.last_node
        say(f"browser: hello_sp got a ticket over mTLS (TTL {t['ttl_seconds']} s)")
        urls = list(t.get("gateway_urls") or [t["gateway_url"]])
        # The browser waits on another node than the one that issued the ticket.
        urls = urls[1:] + urls[:1]
        session = BrowserSession(
            ticket=t["ticket"],
            spid=bytes.fromhex(t["spid"]),
            gateway_url=urls[0],
            passkey_address=t["passkey_address"],
            gateway_urls=urls,
        )
        async with session.waiting(http) as wait:
            served["browser_wait"] = wait.nodes[-1] if wait.nodes else ""
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
            served["begin_auth"] = served["complete_auth"] = phone.last_node
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
        served["get_puid"] = sp.last_node
        say(f"hello_sp: GetPUID(finalize) -> PUID {who['puid']}, key id {who['key_id']}")

        token = await net.network.directory.get_token(enrolment.token_id)
        assert token is not None
        expected_puid = net.network.identity.puid(token.user_id, creds.spid)
        ok = fp_browser == report.kc_fingerprint and who["puid"] == expected_puid
        distinct = len(set(served.values()))
        if len(nets) > 1 and distinct < 2:
            ok = False
            say("FAILED: every step landed on one node")
        result: dict[str, Any] = {
            "ok": ok,
            "spid": creds.spid.hex(),
            "puid": who["puid"],
            "puid_expected": expected_puid,
            "key_id": who["key_id"],
            "kc_fingerprint_phone": report.kc_fingerprint,
            "kc_fingerprint_browser": fp_browser,
            "ms": round((time.perf_counter() - started) * 1000, 1),
        }
        if not where.embedded:
            result["nodes"] = served
            result["node_count"] = len(nets)
            for step, node in served.items():
                say(f"  {step:14} served by node {node}")
        say(
            "OK: browser and phone hold the same Kc; the network never saw it"
            if ok
            else "FAILED: fingerprints or PUIDs differ"
        )
        return result


def _redact(url: str) -> str:
    """A URL without its password, for the narration."""
    if not url:
        return ""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(a URL)"


def main(*, as_json: bool, keep: Path | None = None, where: Topology | None = None) -> int:
    narrator = Narrator(None if as_json else sys.stdout)
    with tempfile.TemporaryDirectory(prefix="authnet-demo-") as tmp:
        root = keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        try:
            result = asyncio.run(run(root, narrator.step, where))
        except Exception as e:  # the demo reports any failure as its result
            result = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            if not as_json:
                print(f"demo failed: {result['error']}", file=sys.stderr)
    if as_json:
        print(json.dumps(result))
    return 0 if result.get("ok") else 1


def command(ns: Any) -> int:
    """`authnet demo`, found through the `authnet.commands` entry point."""
    where = Topology(
        nodes=ns.nodes, state_url=ns.state_url or "", database_url=ns.database_url or ""
    )
    return main(as_json=ns.json, keep=ns.keep, where=where)
