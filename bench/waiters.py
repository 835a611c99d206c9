"""Node memory per waiting browser: N websockets held open on one node.

Issue 8 asks for 10,000 browsers waiting on one node at <= 30 KiB of node
memory each. A waiting browser costs the node its socket, aiohttp's request
and websocket objects, the wait's tasks and futures, the ticket's bound
browser (key hash, wait-secret hash, hints) and its event subscription; this
program measures all of that together as the node process's resident memory
(VmRSS in /proc/<pid>/status), the figure an operator sizes a machine by.

The node is `authnet serve` in a child process (fresh data directory, SQLite,
in-memory ticket state, metrics off). The program gets N tickets from the demo
SP with the SP SDK (ttl 600 s, so none expires during the run), then opens N
websockets to the gateway and sends each the hello `BrowserSession.hello()`
sends (a fresh X25519 key and 32-byte wait secret), with the Origin and
User-Agent a browser on the demo SP's page would send, and waits for each
`waiting` event. Each socket keeps a read pending, as a page does, so the
node's 20 s heartbeat pings are answered and nothing is closed for silence.
Like Chrome and Firefox, every socket offers permessage-deflate (RFC 7692) in
its handshake; a node that accepts it holds a zlib compressor and decompressor
per socket (about 100 KiB more each, measured before the gateway declined it),
and `deflate_negotiated` counts the sockets where it did. `--no-deflate`
offers no extension, as authnet's Python `BrowserSession` (aiohttp's client
default) does.

    .venv/bin/python bench/waiters.py --waiters 10000

The node's RSS is read four times: after a warm-up of 50 waits that are then
closed (`rss_idle_kib`), with the N tickets issued (`rss_before_kib`), with
all N waiting (`rss_with_waiters_kib`) and after closing them all
(`rss_after_close_kib`: how much memory came back). `kib_per_waiter` is
(rss_with_waiters - rss_before) / N, so the tickets themselves, which an SP
creates whether or not a browser waits, are counted apart (`kib_per_ticket`).
`--rounds R` opens and closes N waits R times, to tell memory the allocator
keeps for reuse from memory leaked (`later_rounds`). `connects_per_s` is N
over the time from the first connect to the last `waiting`, `--concurrency`
sockets at a time, and `server_cpu_us_per_connect` the node's CPU over that
phase per socket.

Connection limits: the client sockets are spread over the source addresses
127.0.0.2 .. 127.0.0.254 (one aiohttp session per address), as browsers come
from many addresses, so the node runs with its default per-address limit
(gateway_max_connections_per_address = 64) up to about 16,000 waiters; only
beyond that does the program raise the limit for its node through
AUTHNET_GATEWAY_MAX_CONNECTIONS_PER_ADDRESS. The total limit stays automatic
(the node's file-descriptor limit less a reserve): the program raises its own
RLIMIT_NOFILE soft limit to the hard one before starting the node, which
inherits it, and refuses to run when that cannot hold N connections.

Prints one JSON object.
"""

# ruff: noqa: E402  (the imports below come after the sys.path fix)
from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/waiters.py`, Python puts bench/ first on sys.path, where
# bench/tokens.py would shadow the `tokens` package authnet's imports may need.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
import asyncio
import json
import math
import os
import platform
import re
import resource
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp

from authnet.gateway.limits import default_total_connections
from authnet.sdk import AsyncSPClient, BrowserSession, SpCredentials

TARGET_KIB = 30
TICK = os.sysconf("SC_CLK_TCK")
WARMUP_WAITS = 50
TICKET_TTL_S = 600
# The node's default gateway_max_connections_per_address.
DEFAULT_PER_ADDRESS = 64
# What the demo SP's page would send (authnet cli's DEMO_ORIGINS; a current
# desktop Chrome), so the node stores hints of a browser's size.
ORIGIN = "http://localhost:8000"
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
T = TypeVar("T")


def rss_kib(pid: int) -> int:
    """The process's resident set (VmRSS), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no VmRSS line")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def raise_fd_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit, for this process and the node
    it will start (children inherit limits); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1_048_576)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def source_addresses(count: int) -> list[str]:
    """Loopback source addresses 127.0.0.2 .. 127.0.0.(count + 1); Linux
    routes all of 127/8 to the loopback interface."""
    if not 1 <= count <= 253:
        raise ValueError("between 1 and 253 loopback source addresses")
    return [f"127.0.0.{i}" for i in range(2, 2 + count)]


@dataclass(frozen=True, kw_only=True)
class NodeAddresses:
    """Where the node answers, as `authnet serve` printed it."""

    sp: str
    gateway: str


def start_node(data_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], NodeAddresses]:
    """`authnet serve` on free ports, metrics off, in a child process with `env`
    added to its environment; returns once it printed its addresses. (The same
    start as bench/login.py's, kept here so this program depends on no other
    benchmark.)"""
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
        "--metrics-port",
        "-1",
        "--log-level",
        "warning",
    ]
    child_env = {**os.environ, "AUTHNET_LOG_FILE": str(data_dir / "authnet.log"), **env}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=child_env
    )
    found: dict[str, str] = {}
    patterns = {"sp": r"\s+SP API \(mTLS\)\s+(\S+)", "gateway": r"\s+Browser gateway\s+(\S+)"}
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
        raise SystemExit(f"the node did not start (it printed {sorted(found)} of its addresses)")
    return proc, NodeAddresses(**found)


async def bounded(
    items: Sequence[T], job: Callable[[T], Awaitable[Any]], concurrency: int
) -> list[Any]:
    """`job` over `items`, at most `concurrency` at a time, results in order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(item: T) -> Any:
        async with gate:
            return await job(item)

    return await asyncio.gather(*(one(item) for item in items))


class Waiters:
    """Browsers waiting on one gateway, each from one of `sources`."""

    def __init__(self, wait_url: str, sources: Sequence[str], *, deflate: bool = False) -> None:
        self.wait_url = wait_url
        # Offer permessage-deflate (RFC 7692), as Chrome and Firefox do.
        self.compress = 15 if deflate else 0
        self.http = [
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, local_addr=(ip, 0)),
                headers={"Origin": ORIGIN, "User-Agent": USER_AGENT},
            )
            for ip in sources
        ]
        self.open: list[aiohttp.ClientWebSocketResponse] = []
        self.readers: list[asyncio.Task[None]] = []
        # Sockets that ended, or heard anything but pings, while held open.
        self.dropped = 0
        # Sockets on which the node accepted permessage-deflate.
        self.deflated = 0
        self._next = 0
        self._closing = False

    async def wait(self, session: BrowserSession) -> None:
        """Connect, send the hello, return once the gateway says `waiting`;
        the socket stays open with a read pending."""
        http = self.http[self._next % len(self.http)]
        self._next += 1
        # No client heartbeat: a page cannot send pings, it only answers them.
        ws = await http.ws_connect(self.wait_url, autoping=True, compress=self.compress)
        await ws.send_str(session.hello())
        msg = await ws.receive(timeout=30)
        event = json.loads(msg.data) if msg.type is aiohttp.WSMsgType.TEXT else {}
        if event.get("type") != "waiting":
            await ws.close()
            raise RuntimeError(f"the gateway answered the hello with {msg.type.name} {event!r}")
        self.deflated += ws.compress != 0
        self.open.append(ws)
        self.readers.append(asyncio.ensure_future(self._hold(ws)))

    async def _hold(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        # receive() answers pings itself and returns on anything else.
        await ws.receive()
        if not self._closing:
            self.dropped += 1

    async def close_all(self, concurrency: int) -> None:
        self._closing = True
        await bounded(self.open, lambda ws: ws.close(), concurrency)
        await asyncio.gather(*self.readers, return_exceptions=True)
        self.open, self.readers = [], []
        self._closing = False

    async def close(self) -> None:
        for http in self.http:
            await http.close()


async def settle(seconds: float) -> None:
    """Let the node finish what the last phase queued before reading its RSS."""
    await asyncio.sleep(seconds)


async def main_async(ns: argparse.Namespace) -> dict[str, Any]:
    n: int = ns.waiters
    if n < 1:
        raise SystemExit("--waiters must be at least 1")
    fd_limit = raise_fd_limit()
    # Both this process and the node hold one descriptor per connection.
    need = n + WARMUP_WAITS
    node_total = default_total_connections()
    if need + 512 > fd_limit or need > node_total:
        raise SystemExit(
            f"{n} waiters need about {need + 512} open files per process, but the "
            f"limit is {fd_limit} (the node's gateway would take {node_total}): "
            "raise the hard RLIMIT_NOFILE (ulimit -Hn) or lower --waiters"
        )
    sources = source_addresses(ns.sources)
    per_source = math.ceil(need / len(sources))
    env = {"AUTHNET_EVENT_LOOP": ns.server_loop}
    if per_source > DEFAULT_PER_ADDRESS:
        env["AUTHNET_GATEWAY_MAX_CONNECTIONS_PER_ADDRESS"] = str(per_source + 100)
    with tempfile.TemporaryDirectory(prefix="authnet-bench-") as tmp:
        root = Path(tmp)
        proc, addresses = start_node(root / "network", env)
        pid = proc.pid
        port = urlsplit(addresses.gateway).port
        # The node binds 127.0.0.1; its advertised "localhost" could resolve
        # to ::1 first, which an IPv4 source address cannot reach.
        waiters = Waiters(f"ws://127.0.0.1:{port}/v1/wait", sources, deflate=ns.deflate)
        sp = AsyncSPClient(
            SpCredentials.load(root / "network" / "sps" / "demo"), address=addresses.sp
        )
        try:

            async def browser(_: int) -> BrowserSession:
                t = await sp.get_ticket(ttl_seconds=TICKET_TTL_S, auth_types="c")
                return BrowserSession.for_ticket(t, sp.spid)

            warm = await bounded(range(WARMUP_WAITS), browser, ns.concurrency)
            await bounded(warm, waiters.wait, ns.concurrency)
            await waiters.close_all(ns.concurrency)
            await settle(ns.settle)
            rss_idle = rss_kib(pid)

            sessions: list[BrowserSession] = await bounded(range(n), browser, ns.concurrency)
            await settle(ns.settle)
            rss_before = rss_kib(pid)

            waiters.deflated = 0
            cpu0, t0 = cpu_seconds(pid), time.perf_counter()
            await bounded(sessions, waiters.wait, ns.concurrency)
            connect_s = time.perf_counter() - t0
            cpu1 = cpu_seconds(pid)
            await settle(ns.settle)
            rss_with = rss_kib(pid)
            held = len(waiters.open) - waiters.dropped
            dropped, deflated = waiters.dropped, waiters.deflated

            t1 = time.perf_counter()
            await waiters.close_all(ns.concurrency)
            close_s = time.perf_counter() - t1
            await settle(ns.settle)
            rss_after = rss_kib(pid)

            # Memory kept after closing is either held by the allocator for
            # reuse or leaked: further rounds of N waits tell them apart.
            rounds: list[dict[str, Any]] = []
            for _ in range(ns.rounds - 1):
                sessions = await bounded(range(n), browser, ns.concurrency)
                await settle(ns.settle)
                before = rss_kib(pid)
                dropped0 = waiters.dropped
                await bounded(sessions, waiters.wait, ns.concurrency)
                await settle(ns.settle)
                with_waiters = rss_kib(pid)
                round_held = len(waiters.open) - (waiters.dropped - dropped0)
                await waiters.close_all(ns.concurrency)
                await settle(ns.settle)
                rounds.append(
                    {
                        "rss_before_kib": before,
                        "rss_with_waiters_kib": with_waiters,
                        "rss_after_close_kib": rss_kib(pid),
                        "kib_per_waiter": round((with_waiters - before) / n, 2),
                        "held_open": round_held,
                    }
                )
        finally:
            await waiters.close()
            await sp.close()
            proc.terminate()
            proc.wait(timeout=10)
    per_waiter = (rss_with - rss_before) / n
    return {
        "benchmark": "waiters",
        "waiters": n,
        "held_open": held,
        "dropped": dropped,
        "source_addresses": len(sources),
        "per_address_limit": int(
            env.get("AUTHNET_GATEWAY_MAX_CONNECTIONS_PER_ADDRESS", DEFAULT_PER_ADDRESS)
        ),
        "rss_idle_kib": rss_idle,
        "rss_before_kib": rss_before,
        "rss_with_waiters_kib": rss_with,
        "rss_after_close_kib": rss_after,
        "kib_per_ticket": round((rss_before - rss_idle) / n, 2),
        "kib_per_waiter": round(per_waiter, 2),
        # Of the waiters' memory, the share the node still held after they closed.
        "retained_after_close_kib_per_waiter": round((rss_after - rss_before) / n, 2),
        "target_kib": TARGET_KIB,
        "meets_target": per_waiter <= TARGET_KIB,
        "connect_s": round(connect_s, 4),
        "connects_per_s": round(n / connect_s, 1),
        "close_s": round(close_s, 2),
        "server_cpu_us_per_connect": round((cpu1 - cpu0) / n * 1e6, 1),
        "deflate_offered": ns.deflate,
        "deflate_negotiated": deflated,
        "concurrency": ns.concurrency,
        "fd_limit": fd_limit,
        "server_loop": ns.server_loop,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "later_rounds": rounds,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--waiters", type=int, default=10_000, help="browsers waiting at once")
    p.add_argument(
        "--concurrency", type=int, default=200, help="tickets / connections opened at a time"
    )
    p.add_argument("--sources", type=int, default=253, help="loopback source addresses (1..253)")
    p.add_argument(
        "--settle", type=float, default=1.0, help="seconds to wait before each RSS reading"
    )
    p.add_argument(
        "--deflate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="offer permessage-deflate in the handshake, as browsers do (default); "
        "--no-deflate: offer no extension, as authnet's Python BrowserSession does",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="open and close N waits this many times (later rounds under later_rounds: "
        "memory the allocator reuses adds little, a leak adds as much again)",
    )
    p.add_argument(
        "--server-loop",
        default="uvloop",
        choices=["uvloop", "asyncio"],
        help="event loop of the node process",
    )
    ns = p.parse_args()
    import uvloop  # the load generator runs on uvloop, as bench/login.py's does

    print(json.dumps(uvloop.run(main_async(ns))))


if __name__ == "__main__":
    main()
