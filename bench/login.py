"""Complete logins against a network node running in its own process.

Each login: GetTicket (SP, mTLS) -> the browser opens a websocket and waits ->
BeginAuth (token) -> sign + derive Kc + seal (HPKE) -> CompleteAuth -> the
sealed Kc reaches the browser, which opens it -> GetPUID(finalize) (SP).
`--concurrency` workers run logins back to back; each measures its login from
GetTicket to GetPUID. The server is `authnet serve` in a child process (fresh
data directory, SQLite, in-memory ticket state); its CPU time is read from
/proc before and after the measured phase.

    .venv/bin/python bench/login.py --concurrency 32 --seconds 10

Prints one JSON object. `--profile` also samples the server with py-spy
and adds where its CPU time goes.
"""

# ruff: noqa: E402  (the imports below come after the sys.path fix)
from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/login.py`, Python puts bench/ first on sys.path, where
# bench/tokens.py would shadow the `tokens` package this program imports.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from authnet.protocol.ids import browser_key_hash
from authnet.sdk import AsyncSPClient, BrowserSession, SpCredentials
from tokens import handshake
from tokens import login as flow
from tokens.api import PassKeyApi
from tokens.phone import PhoneKeyStore, PhonePassKey

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def ecdsa_verify_us(n: int = 3000) -> float:
    key = ec.generate_private_key(ec.SECP256R1())
    msg = b"authnet benchmark" * 8
    sig = key.sign(msg, ec.ECDSA(hashes.SHA256()))
    pub = key.public_key()
    t = time.perf_counter()
    for _ in range(n):
        pub.verify(sig, msg, ec.ECDSA(hashes.SHA256()))
    return (time.perf_counter() - t) / n * 1e6


def start_server(data_dir: Path, log_level: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    cmd = [
        sys.executable,
        "-m",
        "authnet.cli",
        "--data-dir",
        str(data_dir),
        "serve",
        "--sp-port",
        "0",
        "--passkey-port",
        "0",
        "--gateway-port",
        "0",
        "--log-level",
        log_level,
    ]
    env = {**os.environ, "AUTHNET_LOG_FILE": str(data_dir / "authnet.log")}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    addresses: dict[str, str] = {}
    assert proc.stdout is not None
    deadline = time.time() + 30
    for line in proc.stdout:
        if m := re.match(r"\s+PassKey API \(TLS\)\s+(\S+)", line):
            addresses["passkey"] = m.group(1)
        if line.startswith("Stop with Ctrl-C"):
            break
        if time.time() > deadline:
            break
    if "passkey" not in addresses:
        proc.kill()
        raise SystemExit("the server did not start")
    return proc, addresses


def start_profiler(pid: int, seconds: float, root: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling the server for the measured phase (raw folded stacks)."""
    # The locked dev dependencies install py-spy next to this interpreter;
    # the virtual environment's bin/ need not be on PATH.
    beside = Path(sys.executable).parent / "py-spy"
    py_spy = str(beside) if beside.exists() else shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("--profile needs py-spy: `make` installs it into .venv (uv.lock)")
    return subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(root / "profile.txt"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


class Loadgen:
    def __init__(self, creds: SpCredentials, passkey: str, phones: int, root: Path) -> None:
        self.creds = creds
        self.passkey = passkey
        self.root = root
        self.n_phones = phones
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}
        self.done = 0

    async def setup(self) -> None:
        self.sp = AsyncSPClient(self.creds)
        self.api = PassKeyApi(self.passkey, ca_pem=self.creds.ca_pem)
        connector = aiohttp.TCPConnector(limit=0)
        self.http = aiohttp.ClientSession(connector=connector)
        self.phones: list[tuple[PhonePassKey, bytes]] = []
        for i in range(self.n_phones):
            token = PhoneKeyStore.create(self.root / f"phone{i}.json", label=f"p{i}").unlock()
            token_id, _, _ = await flow.enrol(self.api, token, label=f"p{i}")
            self.phones.append((token, token_id))

    async def close(self) -> None:
        await self.http.close()
        await self.api.close()
        await self.sp.close()

    async def login(self, phone: tuple[PhonePassKey, bytes]) -> None:
        token, token_id = phone
        t = await self.sp.get_ticket(auth_types="c")
        session = BrowserSession.for_ticket(t, self.sp.spid)
        async with session.waiting(self.http) as wait:
            payload = session.payload()
            request = await self.api.begin_auth(
                ticket=t.ticket,
                token_id=token_id,
                browser_key_hash=browser_key_hash(payload.browser_key),
            )
            response = handshake.respond(
                payload=payload, request=request, token=token, token_id=token_id
            )
            await self.api.complete_auth(response)
            outcome = await wait.result()
        who = await self.sp.get_puid(t.ticket, finalize=True)
        if outcome.kc is None or not who.puid:
            raise RuntimeError("login finished without Kc or PUID")

    async def worker(self, i: int, until: float, record: bool) -> None:
        phone = self.phones[i % len(self.phones)]
        while time.perf_counter() < until:
            t0 = time.perf_counter()
            try:
                await self.login(phone)
            except Exception as e:  # counted and reported, never hidden
                name = type(e).__name__
                self.errors[name] = self.errors.get(name, 0) + 1
                continue
            if record:
                self.latencies.append((time.perf_counter() - t0) * 1000)
                self.done += 1

    async def run_open(self, rate: float, concurrency: int, seconds: float) -> float:
        """Open loop: logins start at `rate` per second on a fixed schedule, at most
        `concurrency` at a time; each latency counts from its scheduled start, so
        time spent queued behind a slow server is not hidden."""
        gate = asyncio.Semaphore(concurrency)
        start = time.perf_counter()

        async def one(i: int, scheduled: float) -> None:
            async with gate:
                try:
                    await self.login(self.phones[i % len(self.phones)])
                except Exception as e:  # counted and reported, never hidden
                    name = type(e).__name__
                    self.errors[name] = self.errors.get(name, 0) + 1
                    return
            self.latencies.append((time.perf_counter() - scheduled) * 1000)
            self.done += 1

        tasks = []
        for i in range(int(rate * seconds)):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(i, scheduled)))
        await asyncio.gather(*tasks)
        return time.perf_counter() - start

    async def run(self, concurrency: int, seconds: float, record: bool) -> float:
        start = time.perf_counter()
        until = start + seconds
        await asyncio.gather(*(self.worker(i, until, record) for i in range(concurrency)))
        return time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main_async(ns: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="authnet-bench-") as tmp:
        root = Path(tmp)
        proc, addresses = start_server(root / "network", ns.log_level)
        try:
            creds = SpCredentials.load(root / "network" / "sps" / "demo")
            gen = Loadgen(creds, addresses["passkey"], ns.concurrency, root)
            await gen.setup()
            await gen.run(ns.concurrency, ns.warmup, record=False)
            profiler = start_profiler(proc.pid, ns.seconds, root) if ns.profile else None
            cpu0, loadgen0 = cpu_seconds(proc.pid), time.process_time()
            if ns.rate:
                elapsed = await gen.run_open(ns.rate, ns.concurrency, ns.seconds)
            else:
                elapsed = await gen.run(ns.concurrency, ns.seconds, record=True)
            cpu1, loadgen1 = cpu_seconds(proc.pid), time.process_time()
            await gen.close()
            profile = None
            if profiler is not None:
                await asyncio.to_thread(profiler.wait, 60)
                profile = summarise_profile(root / "profile.txt")
                if ns.profile_out:
                    ns.profile_out.write_bytes((root / "profile.txt").read_bytes())
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    n = gen.done
    result: dict[str, Any] = {
        "benchmark": "login",
        "mode": f"open loop at {ns.rate:g}/s" if ns.rate else "closed loop",
        "concurrency": ns.concurrency,
        "seconds": round(elapsed, 2),
        "logins": n,
        "errors": gen.errors,
        "logins_per_s": round(n / elapsed, 1),
        "p50_ms": round(percentile(gen.latencies, 0.50), 2) if n else None,
        "p90_ms": round(percentile(gen.latencies, 0.90), 2) if n else None,
        "p99_ms": round(percentile(gen.latencies, 0.99), 2) if n else None,
        "max_ms": round(max(gen.latencies), 2) if n else None,
        "mean_ms": round(statistics.fmean(gen.latencies), 2) if n else None,
        "server_cpu_us_per_login": round((cpu1 - cpu0) / n * 1e6, 1) if n else None,
        "server_cpu_utilisation": round((cpu1 - cpu0) / elapsed, 3),
        "loadgen_cpu_us_per_login": round((loadgen1 - loadgen0) / n * 1e6, 1) if n else None,
        "ecdsa_p256_verify_us": round(ecdsa_verify_us(), 1),
        "server_log_level": ns.log_level,
        "server_loop": ns.server_loop,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    if profile is not None:
        result["server_profile_share"] = profile
    return result


CATEGORIES = [
    ("ecdsa_verify", ("verify (cryptography", "signatures.py:verify", "_ecdsa")),
    ("sqlite", ("sqlalchemy", "sqlite3")),
    ("grpc", ("grpc", "_cython", "cygrpc")),
    ("websocket_http", ("aiohttp", "web_ws", "web_protocol", "http_websocket", "http_parser")),
    ("asyncio", ("asyncio", "selector_events", "base_events", "uvloop")),
    ("logging", ("logging/",)),
    ("protobuf", ("protobuf", "_pb2")),
    ("authnet", ("authnet/",)),
]


def summarise_profile(path: Path) -> dict[str, float]:
    """Share of server samples by the innermost recognisable frame (py-spy raw)."""
    counts: dict[str, int] = {}
    total = 0
    if not path.exists():
        return {}
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        frames = stack.split(";")
        total += int(n)
        category = "other"
        for frame in reversed(frames):
            hit = next((c for c, keys in CATEGORIES if any(k in frame for k in keys)), None)
            if hit:
                category = hit
                break
        counts[category] = counts.get(category, 0) + int(n)
    return {k: round(v / total, 3) for k, v in sorted(counts.items(), key=lambda kv: -kv[1])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--seconds", type=float, default=10.0, help="measured phase")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="open loop: start this many logins per second (at most --concurrency at once); "
        "default: closed loop, every worker starts its next login at once",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    p.add_argument("--profile", action="store_true", help="sample the server with py-spy")
    p.add_argument("--profile-out", type=Path, help="keep py-spy's raw samples here")
    p.add_argument(
        "--server-loop",
        default="uvloop",
        choices=["uvloop", "asyncio"],
        help="event loop of the server process",
    )
    ns = p.parse_args()
    os.environ["AUTHNET_EVENT_LOOP"] = ns.server_loop
    import uvloop  # the load generator always runs on uvloop, to leave the server room

    print(json.dumps(uvloop.run(main_async(ns))))


if __name__ == "__main__":
    main()
