"""bench/login.py and bench/floors.py run end to end, briefly, as `make bench`
runs them (`python bench/X.py`, where bench/tokens.py sits beside them and must
not shadow the `tokens` package), and print one JSON object of sane figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def bench(name: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / f"{name}.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    parsed = json.loads(done.stdout)  # stdout is exactly one JSON object
    assert isinstance(parsed, dict)
    assert parsed["benchmark"] == name
    return parsed


@pytest.mark.parametrize(
    ("args", "mode"),
    [
        (["--concurrency", "4"], "closed loop"),
        (["--rate", "40"], "open loop at 40/s"),
    ],
)
def test_login_bench_completes_logins_and_measures_the_server(args: list[str], mode: str) -> None:
    r = bench("login", "--seconds", "0.6", "--warmup", "0.2", *args)
    assert r["mode"] == mode
    assert r["nodes"] == 1
    assert r["errors"] == {}
    # Every login begun in the measured phase is accounted for: none failed,
    # none was retried (one node: nowhere to retry), and the counts agree.
    assert r["completed"] == r["logins"] >= 5
    assert r["completed"] <= r["started"]
    assert r["lost_logins"] == r["started"] - r["completed"] == 0
    assert r["retried"] == 0
    assert r["logins_per_s"] > 0
    assert 0 < r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"] <= r["max_ms"]
    # A login costs the server at least one ECDSA verification, and some CPU
    # is always spent by both sides.
    assert r["server_cpu_us_per_login"] > r["floor_verify_us"] > 0
    assert r["cpu_x_floor"] == pytest.approx(
        r["server_cpu_us_per_login"] / r["floor_verify_us"], rel=0.01
    )
    assert r["cpu_x_floor"] > 1
    assert r["loadgen_cpu_us_per_login"] > 0
    assert 0 < r["server_cpu_utilisation"] <= r["cpus"]
    # The event loop's thread does most of the server's work; the threads'
    # shares cannot add up to more than the process's total, give or take the
    # one clock tick each separately read counter may round by (a 0.6 s run
    # has few logins to spread a 10 ms tick over).
    threads = r["server_thread_cpu_us_per_login"]
    assert threads["main"] > 0
    tick_us_per_login = 1e6 / os.sysconf("SC_CLK_TCK") / r["completed"]
    slack = (len(threads) + 1) * tick_us_per_login
    assert sum(threads.values()) <= r["server_cpu_us_per_login"] * 1.01 + slack


def test_floors_bench_sums_its_parts() -> None:
    r = bench("floors", "--calls", "200")
    parts = (
        r["grpc_unary_call_server_cpu_us"] * r["grpc_calls_per_login"]
        + r["websocket_session_server_cpu_us"]
        + r["network_logic_cpu_us_per_login"]
    )
    assert r["sum_of_floors_us"] == pytest.approx(parts, rel=0.01)
    for key in (
        "grpc_unary_call_server_cpu_us",
        "websocket_session_server_cpu_us",
        "network_logic_cpu_us_per_login",
        "floor_verify_us",
    ):
        assert r[key] > 0, key
    assert r["sum_x_floor"] == pytest.approx(r["sum_of_floors_us"] / r["floor_verify_us"], rel=0.01)


def test_floors_bench_passes_grpc_options_to_its_grpc_floor() -> None:
    r = bench("floors", "--calls", "100", "--only-grpc", "--grpc-option", "grpc.http2.bdp_probe=0")
    assert r["grpc_options"] == ["grpc.http2.bdp_probe=0"]
    assert r["grpc_unary_call_server_cpu_us"] > 0
