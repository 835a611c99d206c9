"""The one-time key proxy's deposits and claims per second (docs/devices.md 11).

A real proxy (keyproxy.testing.TestKeyProxy: the aiohttp JSON front, the
service, a real store; rate limits off) on each store, SQLite (a fresh data
directory; synchronous=FULL, secure_delete) and Redis (127.0.0.1:6379, a
prefix of its own, deleted afterwards), driven over HTTP by `--concurrency`
asyncio clients in this process:

  * deposits: `POST /v1/deposits` with a `--blob-bytes` blob and a secret
    condition, for `--seconds`;
  * claims: `POST /v1/deposits/{token}/claim` with the secret, of the
    deposits just made, for at most `--seconds`.

Figures per operation: `per_s` (operations per wall second), `p50_ms`,
`p99_ms` of the requests. The client and the server share this process (and
the machine's cores), so these are floors of what the proxy serves.

With `--login` (off by default: each starts a whole vault stack) the login
figures of bench/device_login.py (the CLI) and bench/page_login.py (the page,
headless Chromium) are added under "login": the login with the device bypass
beside the login with the passphrase.

    .venv/bin/python bench/proxy.py                     # ~15 s
    .venv/bin/python bench/proxy.py --seconds 2 --concurrency 16 --login

Prints one JSON object on stdout; progress goes to stderr.
"""

# ruff: noqa: E402  (the imports below come after the sys.path fix)
from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/proxy.py`, Python puts bench/ first on sys.path, where
# bench/tokens.py would shadow the `tokens` package; the repo root goes there.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse
import asyncio
import hashlib
import json
import os
import platform
import secrets
import statistics
import tempfile
import time
from typing import Any

import httpx
import redis

from keyproxy import grants
from keyproxy.service import Limits
from keyproxy.testing import TestKeyProxy

REDIS_URL = os.environ.get("KEYPROXY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def log(text: str) -> None:
    print(f"[bench/proxy] {text}", file=sys.stderr, flush=True)


def summary(took: list[float], wall: float) -> dict[str, Any]:
    if not took:
        return {"n": 0}
    ordered = sorted(took)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "n": len(took),
        "per_s": round(len(took) / wall, 1),
        "p50_ms": round(statistics.median(took) * 1000, 2),
        "p99_ms": round(p99 * 1000, 2),
    }


async def _deposits(
    url: str, seconds: float, concurrency: int, blob: bytes
) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    made: list[tuple[str, bytes]] = []
    took: list[float] = []
    stop = time.perf_counter() + seconds
    body_blob = grants.b64u(blob)

    async def worker() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            while time.perf_counter() < stop:
                secret = secrets.token_bytes(32)
                cond = {"kind": "secret", "hash": grants.b64u(hashlib.sha256(secret).digest())}
                t0 = time.perf_counter()
                r = await client.post(
                    "/v1/deposits",
                    json={"blob": body_blob, "ttl_seconds": 600, "conditions": [cond]},
                )
                took.append(time.perf_counter() - t0)
                if r.status_code != 201:
                    raise RuntimeError(f"deposit refused: HTTP {r.status_code} {r.text[:200]}")
                made.append((r.json()["token"], secret))

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return summary(took, time.perf_counter() - t0), made


async def _claims(
    url: str, seconds: float, concurrency: int, made: list[tuple[str, bytes]], size: int
) -> dict[str, Any]:
    took: list[float] = []
    todo = list(made)
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            while todo and time.perf_counter() < stop:
                token, secret = todo.pop()
                t0 = time.perf_counter()
                r = await client.post(
                    f"/v1/deposits/{token}/claim", json={"secret": grants.b64u(secret)}
                )
                took.append(time.perf_counter() - t0)
                if r.status_code != 200 or len(grants.unb64u(r.json()["blob"])) != size:
                    raise RuntimeError(f"claim refused: HTTP {r.status_code} {r.text[:200]}")

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return summary(took, time.perf_counter() - t0)


def measure(engine: str, seconds: float, concurrency: int, blob_bytes: int) -> dict[str, Any]:
    limits = Limits(deposit_rate=0, claim_rate=0)
    prefix = f"keyproxy-bench-{secrets.token_hex(4)}:"
    with tempfile.TemporaryDirectory(prefix="kp-bench-") as tmp:
        if engine == "redis":
            kp = TestKeyProxy(Path(tmp), store_url=REDIS_URL, redis_prefix=prefix, limits=limits)
        else:
            kp = TestKeyProxy(Path(tmp), limits=limits)
        try:
            with kp:
                blob = secrets.token_bytes(blob_bytes)
                log(f"{engine}: deposits for {seconds} s at concurrency {concurrency}")
                dep, made = asyncio.run(_deposits(kp.http_url, seconds, concurrency, blob))
                log(f"{engine}: claims of {len(made)} deposits")
                claims = asyncio.run(_claims(kp.http_url, seconds, concurrency, made, blob_bytes))
        finally:
            if engine == "redis":
                client = redis.Redis.from_url(REDIS_URL)
                keys = list(client.scan_iter(match=prefix + "*"))
                if keys:
                    client.delete(*keys)
                client.close()
    store = (
        f"redis {REDIS_URL}"
        if engine == "redis"
        else "sqlite (synchronous=FULL, secure_delete, rollback journal)"
    )
    return {"store": store, "deposits": dep, "claims": claims}


def login_figures() -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        from bench.device_login import cli_login_figures

        log("login: the CLI (bench/device_login.py)")
        out["cli"] = cli_login_figures()
    except ImportError as e:
        out["cli"] = {"measured": False, "reason": f"bench.device_login: {e}"}
    try:
        from bench.page_login import page_login_figures

        log("login: the page (bench/page_login.py)")
        out["page"] = page_login_figures()
    except ImportError as e:
        out["page"] = {"measured": False, "reason": f"bench.page_login: {e}"}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=5.0, help="per measurement (default 5)")
    p.add_argument("--concurrency", type=int, default=16, help="clients (default 16)")
    p.add_argument("--blob-bytes", type=int, default=1024, help="blob size (default 1024)")
    p.add_argument(
        "--store",
        choices=("sqlite", "redis", "both"),
        default="both",
        help="which stores to measure (default both)",
    )
    p.add_argument("--json", action="store_true", default=True, help="JSON on stdout (default)")
    p.add_argument(
        "--login",
        action="store_true",
        help="add the CLI and page login figures (bypass vs passphrase; starts a vault stack)",
    )
    ns = p.parse_args()
    engines = ("sqlite", "redis") if ns.store == "both" else (ns.store,)
    out: dict[str, Any] = {
        "proxy": {e: measure(e, ns.seconds, ns.concurrency, ns.blob_bytes) for e in engines},
        "setup": {
            "seconds": ns.seconds,
            "concurrency": ns.concurrency,
            "blob_bytes": ns.blob_bytes,
            "transport": "HTTP/1.1 JSON, client and server in one process",
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
    }
    if ns.login:
        out["login"] = login_figures()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
