"""bench/waiters.py runs end to end, briefly, as `make bench` runs it, holds
every wait open, and prints one JSON object whose figures agree with each
other."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
N = 200


def test_waiters_bench_holds_every_wait_and_reports_consistent_memory() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "waiters.py"),
            "--waiters",
            str(N),
            "--settle",
            "0.5",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    r = json.loads(done.stdout)  # stdout is exactly one JSON object
    assert r["benchmark"] == "waiters"
    assert r["waiters"] == N
    assert r["held_open"] == N
    assert r["dropped"] == 0
    assert r["deflate_offered"] is True
    # The gateway declines permessage-deflate, which would cost about 100 KiB
    # more per waiting browser (every browser offers it, as the bench does).
    assert r["deflate_negotiated"] == 0
    assert r["per_address_limit"] == 64  # spread over source addresses, the node's default
    for key in ("rss_idle_kib", "rss_before_kib", "rss_with_waiters_kib", "rss_after_close_kib"):
        assert isinstance(r[key], int), key
        assert r[key] > 0, key
    # N open websockets cost the node something, and the figure is their share.
    assert r["rss_with_waiters_kib"] > r["rss_before_kib"]
    per_waiter = (r["rss_with_waiters_kib"] - r["rss_before_kib"]) / N
    assert r["kib_per_waiter"] == pytest.approx(per_waiter, abs=0.01)
    assert r["kib_per_ticket"] == pytest.approx(
        (r["rss_before_kib"] - r["rss_idle_kib"]) / N, abs=0.01
    )
    assert r["target_kib"] == 30
    assert r["meets_target"] is (per_waiter <= 30)
    assert r["connects_per_s"] > 0
    assert r["connect_s"] == pytest.approx(N / r["connects_per_s"], rel=0.05)
    assert r["server_cpu_us_per_connect"] > 0
    assert r["cpus"] == os.cpu_count()
    assert r["python"] == platform.python_version()
