"""bench/vault.py runs end to end with tiny durations and prints one JSON
object whose figures are positive and consistent; the browser hook says why
it did not measure when the page has no measure to read."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "vault.py"


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable, str(BENCH), "--seconds", "0.2", "--concurrency", "1",
            "--concurrency", "3", "--file-mb", "0.3", "--safe-items", "120", "--no-browser",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "[bench/vault] writes at concurrency 3" in done.stderr  # progress on stderr
    parsed = json.loads(done.stdout)  # stdout is exactly one JSON object
    assert isinstance(parsed, dict)
    return parsed


def test_item_reads_and_writes(result: dict[str, Any]) -> None:
    assert result["benchmark"] == "vault"
    assert result["settings"]["database"] == "sqlite"
    assert [m["concurrency"] for m in result["items"]] == [1, 3]
    for m in result["items"]:
        for kind in ("writes", "reads"):
            r = m[kind]
            assert r["errors"] == {}, kind
            assert r["n"] >= 2, kind
            assert r["per_s"] > 0, kind
            assert 0 < r["p50_ms"] <= r["p99_ms"], kind
            assert r["server_cpu_ms_per_op"] >= 0, kind


def test_open_safe_and_files(result: dict[str, Any]) -> None:
    login = result["cli_command_login"]
    assert login["n"] == 5
    assert 0 < login["min_ms"] <= login["p50_ms"]
    opened = result["open_safe_cli"]
    assert opened["items"] == 120
    assert opened["total_ms"] >= opened["fetch_ms"] > 0
    files = result["files"]
    assert files["bytes"] == 300_000
    for key in ("upload_MB_per_s", "download_MB_per_s"):
        assert files[key] > 0, key
    assert set(files["disk_copy_same_bytes"]) == {
        "copyfile_MB_per_s",
        "rw_loop_MB_per_s",
        "rw_loop_fsync_MB_per_s",
    }
    assert all(v > 0 for v in files["disk_copy_same_bytes"].values())
    copy = files["disk_copy_same_bytes"]
    ratios = files["to_copy"]
    assert ratios["upload"] == round(files["upload_MB_per_s"] / copy["copyfile_MB_per_s"], 3)
    assert ratios["download"] == round(files["download_MB_per_s"] / copy["copyfile_MB_per_s"], 3)
    assert ratios["upload_to_fsynced_copy"] > 0
    assert files["client_cpu_s"]["upload"] > 0
    assert files["client_cpu_s"]["download"] > 0
    summary = result["files_summary"]
    assert summary["runs"] == 1
    assert summary["upload_to_copy"]["median"] == ratios["upload"]
    crypto = files["client_crypto_alone"]
    assert [c["format"] for c in crypto] == [1, 2]
    assert all(c["encrypt_MB_per_s"] > 0 and c["decrypt_MB_per_s"] > 0 for c in crypto)
    assert result["browser_open_safe"] == {"measured": False, "reason": "--no-browser"}


def test_the_browser_hook_says_why_it_did_not_measure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location("bench_vault", BENCH)
    assert spec is not None
    assert spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_vault", bench)  # its dataclasses look it up
    spec.loader.exec_module(bench)
    assert bench.browser_measure_present() == any(
        "vault:safe-open" in p.read_text() for p in (ROOT / "vault_api/static/js").rglob("*.js")
    )
    monkeypatch.setattr(bench, "STATIC_JS", tmp_path)
    assert bench.browser_measure_present() is False
    (tmp_path / "app.js").write_text('performance.measure("vault:safe-open", a, b);')
    assert bench.browser_measure_present() is True


def test_help() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--help"], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0
    for option in ("--seconds", "--concurrency", "--file-mb", "--safe-items", "--no-browser"):
        assert option in done.stdout
