"""The hardener's evaluation rate, bare and through its gRPC service.

Bare (one core, no I/O): the POPRF blind evaluation with its DLEQ proof
(`hardener.oprf.poprf_blind_evaluate`, RFC 9497 ristretto255-SHA512) and the
keyed hash (HMAC-SHA256 over the framed transcript), as the service runs them.

In process: HardenerService's batch methods called directly (real SQLite
commits and audit log, no gRPC): what the service's own logic costs.

Through the service: `hardener serve` in a child process (a fresh data
directory, mTLS, SQLite with synchronous=FULL and group commit, the audit
log), driven by an asyncio client in this process at a given concurrency:
`Evaluate` one element per call, `EvaluateBatch` (many users' elements per
call), and `Hash`. Every evaluation is counted and committed before it is
answered, as in production; the bench's policy lifts the per-user lockout and
the rate limits only so one run can make many evaluations per user.

Figures: `per_s` is evaluations per wall second; `per_core_s` divides the
evaluations by the server process's CPU seconds (user + system, all threads,
from /proc/<pid>/stat), i.e. what one core of server sustains;
`server_cpu_us_per_eval`; latency percentiles of the calls (ms).

    .venv/bin/python bench/hardener.py                  # ~40 s
    .venv/bin/python bench/hardener.py --seconds 3 --concurrency 32
    .venv/bin/python bench/hardener.py --unlock         # + the unlock times (~1-2 min)
    .venv/bin/python bench/hardener.py --only unlock --unlock-n 10 --unlock-browser-n 5

With `--unlock` (or `--only unlock`; off by default because it starts whole
stacks: a network with a hardener, `vault-api serve`, headless Chromium) an
"unlock" object is added: the time a person waits for a hardened unlock (the
phone PIN, the vault passphrase in the CLI and in the page) beside its slow
hash alone (Argon2id, PBKDF2 in Python, PBKDF2 in WebCrypto); bench/unlock.py
says exactly what each figure includes.

Prints one JSON object on stdout, progress on stderr. The client shares the
machine's cores with the server, so on a small machine the client can be the
limit of `per_s`; `per_core_s` is not affected by that.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from hashlib import sha256
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hardener import admin, group, labels, oprf  # noqa: E402
from hardener.client import HardenerClient  # noqa: E402
from hardener.credentials import CallerCredentials  # noqa: E402
from hardener.datadir import Policy  # noqa: E402
from hardener.transcripts import hash_transcript  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
RATE_MODES = ["bare", "inprocess", "evaluate", "batch", "hash", "hash_batch"]
BENCH_POLICY = Policy(
    max_failures=10**9,
    backoff_base_ms=0,
    caller_rate=1e9,
    caller_burst=1e9,
    global_rate=1e9,
    global_burst=1e9,
)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def elements(n: int) -> list[bytes]:
    return [group.hash_to_group(b"bench %d" % i, b"hardener-bench") for i in range(n)]


def bare_poprf(seconds: float) -> dict[str, Any]:
    pair = oprf.generate_key_pair()
    pool = elements(64)
    info = labels.poprf_info("bench", "token:0123456789abcdef")
    n, start = 0, time.perf_counter()
    cpu0 = time.process_time()
    best = float("inf")  # the quietest window of 64 evaluations: the machine is shared
    while time.perf_counter() - start < seconds:
        w0 = time.process_time()
        for b in pool:
            oprf.poprf_blind_evaluate(pair.secret, b, info)
        best = min(best, (time.process_time() - w0) / len(pool))
        n += len(pool)
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    return {
        "per_core_s": round(n / cpu),
        "us_per_eval": round(cpu / n * 1e6, 1),
        "best_window_per_core_s": round(1 / best) if best > 0 else None,
        "n": n,
        "wall_s": round(wall, 2),
    }


def bare_hash(seconds: float) -> dict[str, Any]:
    key = os.urandom(32)
    digest = os.urandom(32)
    n, start = 0, time.perf_counter()
    cpu0 = time.process_time()
    while time.perf_counter() - start < seconds:
        for i in range(1000):
            hmac.new(key, hash_transcript("bench", f"token:{i}", digest), sha256).digest()
        n += 1000
    cpu = time.process_time() - cpu0
    return {"per_core_s": round(n / cpu), "us_per_eval": round(cpu / n * 1e6, 2), "n": n}


async def inprocess(data: Path, seconds: float, batch: int, mode: str) -> dict[str, Any]:
    """The service's own work per evaluation without gRPC: HardenerService's batch
    methods called directly (real SQLite commits, audit log, limits)."""
    from hardener.server import HardenerServer

    server = HardenerServer(data)
    try:
        svc = server.service
        pool = elements(256)
        digest = os.urandom(32)
        n, i = 0, 0
        cpu0, t0 = time.process_time(), time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            users = [f"token:{(i + k) % 10000:06d}" for k in range(batch)]
            if mode == "evaluate":
                ev = [(u, pool[(i + k) % len(pool)], 0) for k, u in enumerate(users)]
                await svc.evaluate_batch("bench", ev)
            else:
                await svc.hash_batch("bench", [(u, digest, 0) for u in users])
            n += batch
            i += batch
        cpu = time.process_time() - cpu0
    finally:
        await server.stop()
    return {
        "path": "HardenerService in-process (no gRPC): SQLite counted + committed, audit log",
        "batch": batch,
        "per_core_s": round(n / cpu),
        "cpu_us_per_eval": round(cpu / n * 1e6, 1),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data: Path) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hardener.cli",
            "serve",
            "--data",
            str(data),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "serving on" not in line:
        proc.kill()
        raise SystemExit(f"hardener serve did not start: {line!r}")
    return proc, f"127.0.0.1:{port}"


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


async def drive(
    address: str,
    creds: CallerCredentials,
    pid: int,
    *,
    mode: str,
    seconds: float,
    concurrency: int,
    batch: int = 1,
) -> dict[str, Any]:
    pool = elements(256)
    digest = os.urandom(32)
    latencies: list[float] = []
    count = 0
    async with HardenerClient(address, creds, timeout=30) as c:
        await c.get_keys()  # connect and warm up

        async def worker(w: int) -> None:
            nonlocal count
            i = w
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                if mode == "evaluate":
                    await c.evaluate(f"token:{i % 10000:06d}", pool[i % len(pool)])
                    done = 1
                elif mode == "batch":
                    items = [
                        (f"token:{(i + k) % 10000:06d}", pool[(i + k) % len(pool)], 0)
                        for k in range(batch)
                    ]
                    results = await c.evaluate_batch(items)
                    assert not any(isinstance(r, Exception) for r in results)
                    done = batch
                elif mode == "hash_batch":
                    hitems = [(f"token:{(i + k) % 10000:06d}", digest, 0) for k in range(batch)]
                    hresults = await c.hash_batch(hitems)
                    assert not any(isinstance(r, Exception) for r in hresults)
                    done = batch
                else:
                    await c.hash(f"token:{i % 10000:06d}", digest)
                    done = 1
                latencies.append(time.perf_counter() - t0)
                count += done
                i += concurrency * batch

        # Warm-up pass, then the measured one.
        deadline = time.perf_counter() + min(1.0, seconds / 3)
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        latencies.clear()
        count = 0
        cpu0, t0 = cpu_seconds(pid), time.perf_counter()
        deadline = t0 + seconds
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        wall, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
    return {
        "path": "gRPC service (mTLS, SQLite counted + committed, audit log)",
        "rpc": {
            "evaluate": "Evaluate",
            "batch": f"EvaluateBatch x{batch}",
            "hash": "Hash",
            "hash_batch": f"HashBatch x{batch}",
        }[mode],
        "concurrency": concurrency,
        "evaluations": count,
        "per_s": round(count / wall),
        "per_core_s": round(count / cpu) if cpu else None,
        "server_cpu_us_per_eval": round(cpu / count * 1e6, 1) if count else None,
        "server_cores_busy": round(cpu / wall, 2),
        "latency_ms": {
            "p50": round(statistics.median(latencies) * 1000, 2) if latencies else None,
            "p99": round(pct(latencies, 0.99) * 1000, 2),
            "max": round(max(latencies) * 1000, 2) if latencies else None,
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="per measurement (default 5)")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64, help="elements per EvaluateBatch call")
    ap.add_argument("--hash-batch", type=int, default=256, help="digests per HashBatch call")
    ap.add_argument(
        "--only",
        action="append",
        choices=[*RATE_MODES, "unlock"],
        help="run only these parts (repeatable; default: every rate, not unlock)",
    )
    ap.add_argument(
        "--unlock",
        action="store_true",
        help="add the unlock times (phone PIN, CLI and page passphrase; starts whole stacks)",
    )
    ap.add_argument("--unlock-n", type=int, default=10, help="phone and CLI unlocks (default 10)")
    ap.add_argument("--unlock-browser-n", type=int, default=5, help="page unlocks (default 5)")
    ap.add_argument(
        "--unlock-iterations",
        type=int,
        default=600_000,
        help="the vault passphrase's PBKDF2 count (default 600000, the vault's default)",
    )
    ns = ap.parse_args()
    if min(ns.unlock_n, ns.unlock_browser_n) < 1:
        ap.error("--unlock-n and --unlock-browser-n must be at least 1")
    only = set(ns.only or RATE_MODES)
    if ns.unlock:
        only.add("unlock")
    out: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "targets_per_core_s": {"poprf": 3000, "hash": 20000},
    }
    if "bare" in only:
        log("bare POPRF blind-evaluate with proof ...")
        out["bare_poprf"] = bare_poprf(ns.seconds)
        log("bare keyed hash ...")
        out["bare_hash"] = bare_hash(ns.seconds)
    if "inprocess" in only:
        with tempfile.TemporaryDirectory(prefix="hardener-bench-") as tmp:
            data = Path(tmp) / "data"
            admin.init(data, name="bench", policy=BENCH_POLICY)
            log("in-process service, POPRF ...")
            out["inprocess_poprf"] = asyncio.run(inprocess(data, ns.seconds, ns.batch, "evaluate"))
            log("in-process service, keyed hash ...")
            out["inprocess_hash"] = asyncio.run(inprocess(data, ns.seconds, ns.hash_batch, "hash"))
    service_modes = [m for m in ("evaluate", "batch", "hash", "hash_batch") if m in only]
    if service_modes:
        with tempfile.TemporaryDirectory(prefix="hardener-bench-") as tmp:
            data = Path(tmp) / "data"
            admin.init(data, name="bench", policy=BENCH_POLICY)
            creds = admin.add_caller(data, "bench", Path(tmp) / "creds")
            proc, address = start_server(data)
            try:
                for mode in service_modes:
                    batched = mode in ("batch", "hash_batch")
                    conc = max(1, ns.concurrency // 8) if batched else ns.concurrency
                    log(f"service {mode} at concurrency {conc} ...")
                    out[f"service_{mode}"] = asyncio.run(
                        drive(
                            address,
                            creds,
                            proc.pid,
                            mode=mode,
                            seconds=ns.seconds,
                            concurrency=conc,
                            batch=(ns.batch if mode == "batch" else ns.hash_batch)
                            if batched
                            else 1,
                        )
                    )
                if "evaluate" in service_modes:
                    out["p99_ms_at_concurrency_32"] = out["service_evaluate"]["latency_ms"]["p99"]
            finally:
                proc.terminate()
                proc.wait(timeout=10)
                if proc.stdout is not None:
                    proc.stdout.close()
    if "unlock" in only:
        from bench.unlock import unlock_figures

        out["unlock"] = unlock_figures(ns.unlock_n, ns.unlock_browser_n, ns.unlock_iterations)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
