"""Complete logins against a network node running in its own process.

Each login: GetTicket (SP, mTLS) -> the browser opens a websocket and waits ->
BeginAuth (token) -> sign + derive Kc + seal (HPKE) -> CompleteAuth -> the
sealed Kc reaches the browser, which opens it -> GetPUID(finalize) (SP).
`--concurrency` workers run logins back to back; each measures its login from
GetTicket to GetPUID. The server is `authnet serve` in a child process (fresh
data directory, SQLite, in-memory ticket state); its CPU time is read from
/proc before and after the measured phase.

    .venv/bin/python bench/login.py --concurrency 32 --seconds 10

Prints one JSON object. `server_cpu_us_per_login` (the server processes' CPU
over the measured phase, per completed login) is the figure to compare across
changes: unlike logins/s it hardly depends on how much CPU the load generator
leaves the server on a shared machine. `floor_verify_us` is one ECDSA P-256
verification measured in the same run, the least work a login can cost the
server, and `cpu_x_floor` the ratio of the two. `started`, `completed` and
`lost_logins` (started - completed: logins that failed or whose client gave
up) count the logins begun in the measured phase; `retried` counts calls sent again to
another node and browser waits resumed on another gateway.
`--nodes N --state redis://... [--database postgresql://...]` runs N node
processes on one data directory sharing that Redis and database, and adds
the Redis and PostgreSQL server processes' CPU to `server_cpu_us_per_login`;
`--kill-node-after S` kill -9s the first node S seconds into the run. `--profile` also samples the
server with py-spy and adds where its CPU time goes.
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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from authnet.protocol.ids import browser_key_hash
from authnet.sdk import AsyncSPClient, BrowserSession, SpCredentials
from examples.demo import ensure_database
from tokens import handshake
from tokens import login as flow
from tokens.api import PassKeyApi
from tokens.phone import PhoneKeyStore, PhonePassKey

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: Sequence[int], last: dict[int, float] | None = None) -> float:
    """User + system CPU of these processes (all their threads), from /proc.
    `last` remembers each one's figure, so a process that died (a killed node)
    counts with what it had used when it was last read."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            used = (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
        except (OSError, IndexError):
            used = (last or {}).get(pid, 0.0)
        if last is not None:
            last[pid] = used
        total += used
    return total


def service_pids(names: Sequence[str]) -> list[int]:
    """Processes of these programs (redis-server, postgres: every backend)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if any(comm.startswith(n) for n in names):
            found.append(int(entry.name))
    return found


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """CPU of each of a process's threads, summed by thread name (`comm`: the
    event loop's thread is "python", grpc's are "event_engine", ...)."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            comm = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        name = "main" if task.name == str(pid) else comm
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICK
    return out


def floor_verify_us(batches: int = 5, n: int = 600) -> float:
    """One ECDSA P-256 verification (SHA-256), in this thread's CPU time (as the
    server's figure is CPU time, so time spent descheduled on a busy machine
    counts in neither), the median over a few batches."""
    key = ec.generate_private_key(ec.SECP256R1())
    msg = b"authnet benchmark" * 8
    sig = key.sign(msg, ec.ECDSA(hashes.SHA256()))
    pub = key.public_key()
    pub.verify(sig, msg, ec.ECDSA(hashes.SHA256()))
    runs = []
    for _ in range(batches):
        t = time.thread_time()
        for _ in range(n):
            pub.verify(sig, msg, ec.ECDSA(hashes.SHA256()))
        runs.append((time.thread_time() - t) / n * 1e6)
    return statistics.median(runs)


@dataclass(frozen=True, kw_only=True)
class NodeAddresses:
    """Where one node answers, as `authnet serve` printed it."""

    sp: str
    passkey: str
    gateway: str


def start_node(
    data_dir: Path, extra_args: Sequence[str], *, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], NodeAddresses]:
    """`authnet serve` on free ports in a child process, with `extra_args`
    appended to its command line (`--log-level info`, later a cluster's
    state and database URLs) and `env` added to its environment; returns
    once it printed its addresses."""
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
        # Metrics on, as a node runs by default, on a free port.
        "--metrics-port",
        "0",
        *extra_args,
    ]
    child_env = {**os.environ, "AUTHNET_LOG_FILE": str(data_dir / "authnet.log"), **(env or {})}
    # The node's stderr goes to a file, so a node that fails to start says why.
    errors = data_dir.parent / f"serve-{time.monotonic_ns()}.stderr"
    with errors.open("w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=child_env)
    found: dict[str, str] = {}
    patterns = {
        "sp": r"\s+SP API \(mTLS\)\s+(\S+)",
        "passkey": r"\s+PassKey API \(TLS\)\s+(\S+)",
        "gateway": r"\s+Browser gateway\s+(\S+)",
    }
    assert proc.stdout is not None
    deadline = time.time() + 30
    for line in proc.stdout:
        for name, pattern in patterns.items():
            if m := re.match(pattern, line):
                found[name] = m.group(1)
        if line.startswith("Stop with Ctrl-C") or time.time() > deadline:
            break
    if set(found) != set(patterns):
        proc.kill()
        proc.wait()
        said = errors.read_text(errors="replace").strip().splitlines()[-3:]
        raise SystemExit(
            f"the server did not start (it printed {sorted(found)} of its addresses)"
            + ("; it said:\n  " + "\n  ".join(said) if said else "")
        )
    return proc, NodeAddresses(**found)


def register_sp(root: Path, database: str | None) -> SpCredentials:
    """A new SP for this run (`authnet sp add`): a database shared between runs
    already has the demo SP, registered under another run's CA."""
    name = f"bench-{os.getpid()}-{int(time.time())}"
    env = {**os.environ, **({"AUTHNET_DATABASE_URL": database} if database else {})}
    added = subprocess.run(
        [
            sys.executable,
            "-m",
            "authnet.cli",
            "--data-dir",
            str(root / "network"),
            "sp",
            "add",
            name,
            "--out",
            str(root / name),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    if added.returncode != 0:
        raise SystemExit(f"`authnet sp add` failed: {added.stderr.strip()[-500:]}")
    return SpCredentials.load(root / name)


def start_profiler(
    pid: int, seconds: float, root: Path, *, rate: int = 100, native: bool = False
) -> subprocess.Popen[bytes]:
    """py-spy sampling the server for the measured phase (raw folded stacks,
    one root frame per thread; `native` adds C frames, at a higher cost)."""
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
            # --native must pause the process to unwind its C stacks.
            *(["--native"] if native else ["--nonblocking"]),
            "--threads",
            "--rate",
            str(rate),
            "--output",
            str(root / "profile.txt"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


class Loadgen:
    """Logins against one or more nodes: each login takes its SP and PassKey
    addresses round-robin from the lists given (one of each today)."""

    def __init__(
        self,
        creds: SpCredentials,
        *,
        passkey_addresses: Sequence[str],
        sp_addresses: Sequence[str],
        phones: int,
        root: Path,
    ) -> None:
        if not passkey_addresses or not sp_addresses:
            raise ValueError("the load generator needs at least one PassKey and one SP address")
        self.creds = creds
        self.passkey_addresses = list(passkey_addresses)
        self.sp_addresses = list(sp_addresses)
        self.root = root
        self.n_phones = phones
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}
        self.started = 0
        self.completed = 0
        self.retried = 0
        self._next = 0
        # Every gateway, for browsers to resume on (a cluster's nodes).
        self.gateways: list[str] = []

    @staticmethod
    def _rotations(items: list[str]) -> list[list[str]]:
        """Each node's list first, then the others: clients spread over the
        nodes, and each fails over to the rest (authnet.sdk.failover)."""
        return [items[i:] + items[:i] for i in range(len(items))]

    async def setup(self) -> None:
        self.sps = [
            AsyncSPClient(self.creds, address=a) for a in self._rotations(self.sp_addresses)
        ]
        self.apis = [
            PassKeyApi(a, ca_pem=self.creds.ca_pem) for a in self._rotations(self.passkey_addresses)
        ]
        connector = aiohttp.TCPConnector(limit=0)
        self.http = aiohttp.ClientSession(connector=connector)
        self.phones: list[tuple[PhonePassKey, bytes]] = []
        for i in range(self.n_phones):
            token = PhoneKeyStore.create(self.root / f"phone{i}.json", label=f"p{i}").unlock()
            token_id, _, _ = await flow.enrol(self.apis[0], token, label=f"p{i}")
            self.phones.append((token, token_id))

    def client_retries(self) -> int:
        """Calls the SP and PassKey clients sent again to another node."""
        return sum(sp.retried for sp in self.sps) + sum(api.retried for api in self.apis)

    async def close(self) -> None:
        await self.http.close()
        for api in self.apis:
            await api.close()
        for sp in self.sps:
            await sp.close()

    async def login(self, phone: tuple[PhonePassKey, bytes]) -> None:
        token, token_id = phone
        k, self._next = self._next, self._next + 1
        sp = self.sps[k % len(self.sps)]
        api = self.apis[k % len(self.apis)]
        t = await sp.get_ticket(auth_types="c")
        session = BrowserSession(
            ticket=t.ticket,
            spid=sp.spid,
            gateway_url=t.gateway_url,
            passkey_address=t.passkey_address,
            gateway_urls=[*t.gateway_urls, *self.gateways],
        )
        async with session.waiting(self.http) as wait:
            payload = session.payload()
            request = await api.begin_auth(
                ticket=t.ticket,
                token_id=token_id,
                browser_key_hash=browser_key_hash(payload.browser_key),
            )
            response = handshake.respond(
                payload=payload, request=request, token=token, token_id=token_id
            )
            await api.complete_auth(response)
            outcome = await wait.result()
            self.retried += wait.reconnects
        who = await sp.get_puid(t.ticket, finalize=True)
        if outcome.kc is None or not who.puid:
            raise RuntimeError("login finished without Kc or PUID")

    async def measured_login(self, phone: tuple[PhonePassKey, bytes], t0: float) -> None:
        """One counted login; its latency runs from `t0`. A failure is a lost
        login, counted by error type and reported, never hidden."""
        self.started += 1
        try:
            await self.login(phone)
        except Exception as e:
            name = type(e).__name__
            self.errors[name] = self.errors.get(name, 0) + 1
            return
        self.latencies.append((time.perf_counter() - t0) * 1000)
        self.completed += 1

    async def worker(self, i: int, until: float, record: bool) -> None:
        phone = self.phones[i % len(self.phones)]
        while time.perf_counter() < until:
            if record:
                await self.measured_login(phone, time.perf_counter())
                continue
            try:
                await self.login(phone)
            except Exception as e:  # warm-up: counted, so a broken server still shows
                name = type(e).__name__
                self.errors[name] = self.errors.get(name, 0) + 1

    async def run_open(self, rate: float, concurrency: int, seconds: float) -> float:
        """Open loop: logins start at `rate` per second on a fixed schedule, at most
        `concurrency` at a time; each latency counts from its scheduled start, so
        time spent queued behind a slow server is not hidden."""
        gate = asyncio.Semaphore(concurrency)
        start = time.perf_counter()

        async def one(i: int, scheduled: float) -> None:
            async with gate:
                await self.measured_login(self.phones[i % len(self.phones)], scheduled)

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
        server_env = dict(pair.partition("=")[::2] for pair in ns.server_env)
        args = ["--log-level", ns.log_level]
        if ns.state:
            args += ["--state", ns.state]
            server_env.setdefault("AUTHNET_STATE_PREFIX", f"authnet-bench:{os.getpid()}:")
        if ns.database:
            # A benchmark database is created when missing, as the demo does.
            await asyncio.to_thread(ensure_database, ns.database)
            args += ["--database", ns.database]
        procs: list[subprocess.Popen[str]] = []
        nodes: list[NodeAddresses] = []
        for i in range(ns.nodes):
            # One data directory for all (one machine); each node its own log.
            env = {**server_env, "AUTHNET_LOG_FILE": str(root / f"node{i}.log")}
            proc, addresses = start_node(root / "network", args, env=env)
            procs.append(proc)
            nodes.append(addresses)
        proc = procs[0]
        server_pids = [p.pid for p in procs]
        # The state store's and the database's server processes count too.
        service_names = (["redis-server"] if ns.state else []) + (
            ["postgres"] if ns.database else []
        )
        killer: asyncio.Task[None] | None = None
        try:
            creds = register_sp(root, ns.database)
            gen = Loadgen(
                creds,
                passkey_addresses=[n.passkey for n in nodes],
                sp_addresses=[n.sp for n in nodes],
                phones=ns.concurrency,
                root=root,
            )
            gen.gateways = [n.gateway for n in nodes]
            await gen.setup()
            await gen.run(ns.concurrency, ns.warmup, record=False)
            warmup_errors, gen.errors = gen.errors, {}
            profiler = None
            if ns.profile:
                profiler = start_profiler(
                    proc.pid, ns.seconds, root, rate=ns.profile_rate, native=ns.profile_native
                )
            services = service_pids(service_names)
            seen: dict[int, float] = {}
            cpu0, loadgen0 = cpu_seconds(server_pids, seen), time.process_time()
            services0 = cpu_seconds(services)
            threads0 = thread_cpu_seconds(proc.pid)
            retried0 = gen.client_retries() + gen.retried
            if ns.kill_node_after is not None:
                victim = procs[0]

                async def kill() -> None:
                    await asyncio.sleep(ns.kill_node_after)
                    cpu_seconds(server_pids, seen)  # its last figure, before it dies
                    victim.kill()

                killer = asyncio.ensure_future(kill())
            if ns.rate:
                elapsed = await gen.run_open(ns.rate, ns.concurrency, ns.seconds)
            else:
                elapsed = await gen.run(ns.concurrency, ns.seconds, record=True)
            cpu1, loadgen1 = cpu_seconds(server_pids, seen), time.process_time()
            services1 = cpu_seconds(services)
            threads1 = thread_cpu_seconds(proc.pid) if proc.poll() is None else threads0
            retried = gen.client_retries() + gen.retried - retried0
            await gen.close()
            # Measured while the server idles, in the same run and machine state.
            floor = floor_verify_us()
            profile = None
            if profiler is not None:
                await asyncio.to_thread(profiler.wait, 60)
                profile = summarise_profile(root / "profile.txt")
                if ns.profile_out:
                    ns.profile_out.write_bytes((root / "profile.txt").read_bytes())
        finally:
            if killer is not None:
                killer.cancel()
            for p in procs:
                p.terminate()
                p.wait(timeout=10)
    n = gen.completed
    nodes_cpu = cpu1 - cpu0
    services_cpu = services1 - services0
    per_login = (nodes_cpu + services_cpu) / n * 1e6 if n else None
    lat = gen.latencies
    result: dict[str, Any] = {
        "benchmark": "login",
        "mode": f"open loop at {ns.rate:g}/s" if ns.rate else "closed loop",
        "nodes": len(server_pids),
        "state": "redis" if ns.state else "memory",
        "database": "postgresql" if ns.database else "sqlite",
        "killed_node_after_s": ns.kill_node_after,
        "concurrency": ns.concurrency,
        "seconds": round(elapsed, 2),
        "started": gen.started,
        "completed": n,
        "retried": retried,
        "lost_logins": gen.started - n,
        "logins": n,
        "errors": gen.errors,
        "warmup_errors": warmup_errors,
        "logins_per_s": round(n / elapsed, 1),
        "p50_ms": round(percentile(lat, 0.50), 2) if n else None,
        "p90_ms": round(percentile(lat, 0.90), 2) if n else None,
        "p99_ms": round(percentile(lat, 0.99), 2) if n else None,
        "max_ms": round(max(lat), 2) if n else None,
        "mean_ms": round(statistics.fmean(lat), 2) if n else None,
        "server_cpu_us_per_login": round(per_login, 1) if per_login is not None else None,
        "floor_verify_us": round(floor, 1),
        "cpu_x_floor": round(per_login / floor, 2) if per_login is not None else None,
        "server_cpu_utilisation": round((nodes_cpu + services_cpu) / elapsed, 3),
        # Of server_cpu_us_per_login: the node processes, and Redis + PostgreSQL.
        "nodes_cpu_us_per_login": round(nodes_cpu / n * 1e6, 1) if n else None,
        "services_cpu_us_per_login": round(services_cpu / n * 1e6, 1) if n else None,
        # The first node's CPU by thread ("main" runs the event loop): threads
        # that come and go within the phase are missed.
        "server_thread_cpu_us_per_login": {
            name: round((sec - threads0.get(name, 0.0)) / n * 1e6, 1)
            for name, sec in sorted(threads1.items())
            if n and sec > threads0.get(name, 0.0)
        },
        "loadgen_cpu_us_per_login": round((loadgen1 - loadgen0) / n * 1e6, 1) if n else None,
        "server_log_level": ns.log_level,
        "server_env": server_env,
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
    p.add_argument("--nodes", type=int, default=1, help="node processes (a cluster)")
    p.add_argument(
        "--state",
        metavar="URL",
        help="shared state, redis://...; needed for --nodes > 1",
    )
    p.add_argument(
        "--database", metavar="URL", help="the nodes' directory, postgresql://... (default SQLite)"
    )
    p.add_argument(
        "--kill-node-after",
        type=float,
        metavar="SECONDS",
        help="kill -9 the first node this long into the measured phase",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set this in the server's environment only (repeatable), e.g. to compare "
        "GRPC_EXPERIMENTS settings",
    )
    p.add_argument("--profile", action="store_true", help="sample the server with py-spy")
    p.add_argument("--profile-out", type=Path, help="keep py-spy's raw samples here")
    p.add_argument("--profile-rate", type=int, default=100, help="py-spy samples per second")
    p.add_argument(
        "--profile-native", action="store_true", help="py-spy --native: C frames as well"
    )
    p.add_argument(
        "--server-loop",
        default="uvloop",
        choices=["uvloop", "asyncio"],
        help="event loop of the server process",
    )
    ns = p.parse_args()
    if ns.nodes < 1:
        p.error("--nodes must be at least 1")
    if ns.nodes > 1 and not ns.state:
        p.error("--nodes > 1 needs --state redis://... (the nodes share no memory)")
    if ns.kill_node_after is not None and ns.nodes < 2:
        p.error("--kill-node-after needs --nodes 2 or more")
    os.environ["AUTHNET_EVENT_LOOP"] = ns.server_loop
    import uvloop  # the load generator always runs on uvloop, to leave the server room

    print(json.dumps(uvloop.run(main_async(ns))))


if __name__ == "__main__":
    main()
