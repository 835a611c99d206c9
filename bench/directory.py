"""What one directory call costs on the login path, on SQLite and PostgreSQL.

A login reads its token twice (`get_token`) and, at most once a minute per
token, writes its last-used time (`touch_token`). This program times those
calls one after another on one event loop (each figure is the wall time of
one awaited call, so on PostgreSQL it includes the loopback round trip and
the server's work), plus a data-container read and compare-and-set write:

    .venv/bin/python bench/directory.py [--database postgresql://postgres@127.0.0.1:5432/postgres]

Without --database it measures SQLite (a file in a temporary directory).
With a PostgreSQL URL it creates a database with a random name next to the
one named, measures, and drops it. Prints one JSON object.
"""

# ruff: noqa: E402  (the imports below come after the sys.path fix)
from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
import asyncio
import contextlib
import json
import secrets
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import psycopg

from authnet.directory import ServiceProvider, TokenRecord
from authnet.directory.sql import SqlDirectory
from authnet.migrations import upgrade


@contextlib.contextmanager
def scratch_database(url: str | None) -> Iterator[str]:
    if url is None:
        with tempfile.TemporaryDirectory(prefix="authnet-dirbench-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    head, _, _ = url.rpartition("/")
    name = f"authnet_bench_{secrets.token_hex(4)}"
    plain = url.replace("postgresql+asyncpg://", "postgresql://").replace(
        "postgresql+psycopg://", "postgresql://"
    )
    with psycopg.connect(plain, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"{head}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def per_call_us(n: int, call: Callable[[int], Awaitable[Any]]) -> dict[str, float]:
    for i in range(min(200, n)):
        await call(-1 - i)  # warm caches, connections and prepared statements
    samples = []
    for i in range(n):
        t = time.perf_counter_ns()
        await call(i)
        samples.append((time.perf_counter_ns() - t) / 1000)
    samples.sort()
    return {
        "mean_us": round(statistics.fmean(samples), 1),
        "p50_us": round(samples[len(samples) // 2], 1),
        "p99_us": round(samples[int(len(samples) * 0.99)], 1),
    }


async def measure(url: str, n: int) -> dict[str, Any]:
    upgrade(url)
    d = SqlDirectory.open(url)
    try:
        sp = ServiceProvider(
            spid=secrets.token_bytes(16),
            name="bench",
            display_name="bench",
            origins=(),
            created_ms=1,
        )
        await d.add_sp(sp)
        user = secrets.token_bytes(16)
        token = TokenRecord(
            token_id=secrets.token_bytes(16),
            user_id=user,
            kind=1,
            algorithm=1,
            public_key=secrets.token_bytes(65),
            label="bench",
            created_ms=1,
        )
        await d.create_account(user, token, 1)
        base = 10**12

        async def get(_: int) -> None:
            assert await d.get_token(token.token_id) is not None

        async def miss(_: int) -> None:
            assert await d.get_token(b"\x00" * 16) is None

        async def touch(i: int) -> None:
            # A minute and a bit apart: every call writes the row.
            await d.touch_token(token.token_id, base + (i + 1000) * 61_000)

        async def touch_skipped(_: int) -> None:
            await d.touch_token(token.token_id, base + (n + 2000) * 61_000)

        async def read(_: int) -> None:
            await d.read_data(sp.spid, user, "c")

        version = 0

        async def write(_: int) -> None:
            nonlocal version
            version = await d.write_data(sp.spid, user, "c", b"x" * 100, version, 1)

        return {
            "get_token": await per_call_us(n, get),
            "get_token_missing": await per_call_us(n, miss),
            "touch_token_write": await per_call_us(n, touch),
            "touch_token_skipped": await per_call_us(n, touch_skipped),
            "read_data": await per_call_us(n, read),
            "write_data": await per_call_us(n, write),
        }
    finally:
        await d.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database", help="a PostgreSQL URL; SQLite when absent")
    p.add_argument("-n", type=int, default=2000, help="calls per figure")
    ns = p.parse_args()
    with scratch_database(ns.database) as url:
        figures = asyncio.run(measure(url, ns.n))
    backend = "postgresql" if ns.database else "sqlite"
    print(json.dumps({"benchmark": "directory", "backend": backend, "n": ns.n, **figures}))


if __name__ == "__main__":
    main()
