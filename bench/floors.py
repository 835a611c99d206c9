"""Where a login's server CPU goes: the floors of its parts, measured here.

A login costs the server four unary gRPC calls (GetTicket, BeginAuth,
CompleteAuth, GetPUID), one websocket session (hello, three events, an ack),
and the network's own logic (ticket state, SQLite token lookups, signature
verification, logging). This program measures each part's server CPU on its
own, in the same process layout as bench/login.py (server in a child process,
load generator beside it), and one ECDSA P-256 verification:

    .venv/bin/python bench/floors.py

prints one JSON object; compare `sum_of_floors_us` with bench/login.py's
`server_cpu_us_per_login`.
"""

# ruff: noqa: E402  (the imports below come after the sys.path fix)
from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/floors.py`, Python puts bench/ first on sys.path, where
# bench/tokens.py would shadow the `tokens` package this program imports.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import tempfile
import time
from typing import Any

import aiohttp
import grpc
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

TICK = os.sysconf("SC_CLK_TCK")
HERE = Path(__file__).resolve()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


# --- servers, run in a child process -------------------------------------------


def grpc_options(pairs: list[str]) -> list[tuple[str, int | str]]:
    """`NAME=VALUE` pairs as grpc channel arguments (integers where they parse)."""
    out: list[tuple[str, int | str]] = []
    for pair in pairs:
        name, _, value = pair.partition("=")
        out.append((name, int(value) if value.lstrip("-").isdigit() else value))
    return out


async def grpc_server(port_file: Path, cert_dir: Path, options: list[str]) -> None:
    server = grpc.aio.server(options=grpc_options(options))
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    creds = grpc.ssl_server_credentials(
        [((cert_dir / "server.key").read_bytes(), (cert_dir / "server.crt").read_bytes())],
        root_certificates=(cert_dir / "ca.crt").read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", creds)
    await server.start()
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    port_file.write_text(str(port))
    await server.wait_for_termination()


async def ws_server(port_file: Path) -> None:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=4096)
        await ws.prepare(request)
        json.loads((await ws.receive()).data)
        await ws.send_str('{"type":"waiting","expires_at":1}')
        await ws.send_str('{"type":"scanned"}')
        sealed = {"enc": "e" * 43, "ciphertext": "c" * 64}
        await ws.send_str(json.dumps({"type": "authenticated", "sealed_kc": sealed}))
        await ws.receive()  # the ack
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/v1/wait", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port_file.write_text(str(site._server.sockets[0].getsockname()[1]))  # type: ignore[union-attr]
    await asyncio.Event().wait()


def start(kind: str, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    port_file = Path(tempfile.mkdtemp()) / "port"
    proc = subprocess.Popen([sys.executable, str(HERE), "--serve", kind, str(port_file), *extra])
    deadline = time.time() + 20
    while not port_file.exists() or not port_file.read_text():
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            raise SystemExit(f"the {kind} server did not start")
        time.sleep(0.05)
    return proc, int(port_file.read_text())


async def load(n: int, concurrency: int, one: Any) -> None:
    async def worker(k: int) -> None:
        for _ in range(k):
            await one()

    await worker(min(200, n))  # warm up
    await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))


async def measure_grpc(cert_dir: Path, sp_dir: Path, n: int, options: list[str]) -> float:
    proc, port = start("grpc", str(cert_dir), *options)
    try:
        creds = grpc.ssl_channel_credentials(
            (cert_dir / "ca.crt").read_bytes(),
            (sp_dir / "sp.key").read_bytes(),
            (sp_dir / "sp.crt").read_bytes(),
        )
        client_options = grpc_options(options)
        async with grpc.aio.secure_channel(
            f"localhost:{port}", creds, options=client_options
        ) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest()

            async def one() -> None:
                await stub.Check(request)

            await one()
            c0 = cpu_seconds(proc.pid)
            await load(n, 32, one)
            return (cpu_seconds(proc.pid) - c0) / n * 1e6
    finally:
        proc.kill()


async def measure_ws(n: int) -> float:
    proc, port = start("ws")
    try:
        hello = json.dumps(
            {
                "type": "hello",
                "v": 1,
                "ticket": "at1_" + "A" * 22,
                "browser_key": "k" * 43,
                "wait_secret": "s" * 43,
            }
        )
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

            async def one() -> None:
                async with http.ws_connect(f"http://127.0.0.1:{port}/v1/wait") as ws:
                    await ws.send_str(hello)
                    for _ in range(3):
                        await ws.receive()
                    await ws.send_str('{"type":"ack"}')

            await one()
            c0 = cpu_seconds(proc.pid)
            await load(n, 32, one)
            return (cpu_seconds(proc.pid) - c0) / n * 1e6
    finally:
        proc.kill()


async def measure_logic(root: Path, n: int) -> float:
    """The network's own work per login, called in-process with no transport,
    without the token's side (signing, sealing)."""
    import logging

    from cryptography.hazmat.primitives.asymmetric import x25519

    from authnet.protocol.ids import browser_key_hash, ticket_hash
    from authnet.protocol.payload import LoginPayload, parse_address
    from authnet.testing import TestNetwork
    from authnet.tickets import BrowserHints
    from tokens import handshake
    from tokens import login as flow
    from tokens.api import PassKeyApi
    from tokens.phone import PhoneKeyStore

    async with TestNetwork(root / "logic") as tn:
        logging.getLogger("authnet").setLevel(logging.INFO)  # as `authnet serve` runs
        net = tn.network
        net.sp_cache_seconds = 5.0  # the server's default (TestNetwork turns it off)
        creds = await tn.add_sp()
        sp = await net.directory.get_sp(creds.spid)
        assert sp is not None
        token = PhoneKeyStore.create(root / "logic-phone.json", label="p").unlock()
        async with PassKeyApi(tn.addresses.passkey, ca_pem=tn.ca_pem) as api:
            token_id, _, _ = await flow.enrol(api, token, label="p")
        browser = x25519.X25519PrivateKey.generate().public_key().public_bytes_raw()
        hints = BrowserHints(ip="127.0.0.1", user_agent="bench", origin="")
        address = parse_address("localhost:1")
        spent = 0.0
        for _ in range(n):
            t0 = time.process_time()
            issued = await net.get_ticket(sp, 0, "c")
            await net.browser_hello(
                issued.ticket,
                browser_key=browser,
                wait_secret=secrets.token_bytes(32),
                hints=hints,
            )
            challenge = await net.begin_auth(issued.ticket, token_id, browser_key_hash(browser))
            t1 = time.process_time()
            response = handshake.respond(
                payload=LoginPayload(ticket=issued.ticket, browser_key=browser, network=address),
                request=handshake.auth_request(
                    nonce=challenge.nonce,
                    spid=challenge.spid,
                    sp_name="",
                    sp_display_name="",
                    sp_origins=[],
                    browser_ip="",
                    browser_user_agent="",
                    browser_origin="",
                    auth_types="c",
                    expires_at_unix_ms=0,
                ),
                token=token,
                token_id=token_id,
            )
            t2 = time.process_time()
            await net.complete_auth(
                issued.ticket,
                token_id=token_id,
                nonce=response.nonce,
                user_verified=False,
                sealed=response.sealed_kc,
                proof=response.proof,
            )
            th = ticket_hash(issued.ticket)
            await net.peek_sealed_kc(th)
            await net.ack_sealed_kc(th)
            await net.get_puid(sp, issued.ticket, True)
            spent += (t1 - t0) + (time.process_time() - t2)
        return spent / n * 1e6


def floor_verify_us(batches: int = 5, n: int = 600) -> float:
    """One ECDSA P-256 verification in this thread's CPU time, the median over
    a few batches: the same measure as bench/login.py's `floor_verify_us`."""
    import statistics

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    sig = key.sign(b"m" * 100, ec.ECDSA(hashes.SHA256()))
    pub = key.public_key()
    runs = []
    for _ in range(batches):
        t = time.thread_time()
        for _ in range(n):
            pub.verify(sig, b"m" * 100, ec.ECDSA(hashes.SHA256()))
        runs.append((time.thread_time() - t) / n * 1e6)
    return statistics.median(runs)


async def main_async(n: int, options: list[str], *, only_grpc: bool = False) -> dict[str, Any]:
    from authnet import admin
    from authnet.datadir import DataDir
    from authnet.directory.sql import SqlDirectory
    from authnet.migrations import upgrade

    with tempfile.TemporaryDirectory(prefix="authnet-floors-") as tmp:
        root = Path(tmp)
        data = DataDir(root / "net")
        data.ensure(network_name="floors", hostnames=["localhost", "127.0.0.1"])
        url = f"sqlite:///{root / 'net.db'}"
        upgrade(url)
        directory = SqlDirectory.open(url)
        creds = await admin.register_sp(
            directory,
            data,
            name="floors",
            display_name="floors",
            origins=[],
            sp_address="localhost:0",
        )
        await directory.close()
        grpc_us = await measure_grpc(data.path, creds.directory, n, options)
        if only_grpc:
            return {
                "benchmark": "floors",
                "grpc_unary_call_server_cpu_us": round(grpc_us, 1),
                "grpc_options": options,
            }
        ws_us = await measure_ws(n // 2)
        logic_us = await measure_logic(root, n // 4)
    verify_us = floor_verify_us()
    floors = 4 * grpc_us + ws_us + logic_us
    return {
        "benchmark": "floors",
        "grpc_unary_call_server_cpu_us": round(grpc_us, 1),
        "grpc_calls_per_login": 4,
        "grpc_options": options,
        "websocket_session_server_cpu_us": round(ws_us, 1),
        "network_logic_cpu_us_per_login": round(logic_us, 1),
        "floor_verify_us": round(verify_us, 1),
        "sum_of_floors_us": round(floors, 1),
        "sum_x_floor": round(floors / verify_us, 2),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=6400, help="gRPC calls to time")
    p.add_argument(
        "--grpc-option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a grpc channel argument for the gRPC floor's server and client (repeatable)",
    )
    p.add_argument("--only-grpc", action="store_true", help="measure the gRPC floor alone")
    p.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)
    ns = p.parse_args()
    import uvloop

    if ns.serve:
        kind, port_file, *extra = ns.serve
        if kind == "grpc":
            uvloop.run(grpc_server(Path(port_file), Path(extra[0]), extra[1:]))
        else:
            uvloop.run(ws_server(Path(port_file)))
        return
    print(json.dumps(uvloop.run(main_async(ns.calls, ns.grpc_option, only_grpc=ns.only_grpc))))


if __name__ == "__main__":
    main()
