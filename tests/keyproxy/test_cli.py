"""The `keyproxy` command, run as a user runs it (a child process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.keyproxy.helpers import issuer_key

ROOT = Path(__file__).resolve().parents[2]


def kp(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keyproxy.cli", "--data-dir", str(data_dir), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help() -> None:
    r = kp(Path("/nonexistent"), "--help")
    assert r.returncode == 0
    for word in ("init", "serve", "status", "sweep", "issuer"):
        assert word in r.stdout
    r = kp(Path("/nonexistent"), "serve", "--help")
    assert "--allow-origin" in r.stdout
    assert "--store" in r.stdout


def test_init_issuers_status_sweep(tmp_path: Path) -> None:
    data = tmp_path / "kp"
    r = kp(data, "init")
    assert r.returncode == 0, r.stderr
    assert (data / "deposits.db").exists()
    assert data.stat().st_mode & 0o077 == 0
    _, pub = issuer_key()
    r = kp(data, "issuer", "add", "vault", "--public-key", pub)
    assert (r.returncode, r.stdout.strip()) == (0, "issuer vault added")
    r = kp(data, "issuer", "list")
    assert r.stdout.strip() == f"vault\t{pub}"
    r = kp(data, "issuer", "add", "Bad Name", "--public-key", pub)
    assert r.returncode == 2
    assert "issuer name" in r.stderr
    r = kp(data, "issuer", "add", "short", "--public-key", "AAAA")
    assert r.returncode == 2
    assert "32 bytes" in r.stderr
    r = kp(data, "issuer", "remove", "vault")
    assert (r.returncode, r.stdout.strip()) == (0, "issuer vault removed")
    r = kp(data, "issuer", "remove", "vault")
    assert r.returncode == 1
    assert "no issuer named vault" in r.stderr
    assert kp(data, "issuer", "list").stdout == ""
    r = kp(data, "status")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {
        "waiting": 0,
        "claimed": 0,
        "burned": 0,
        "expired": 0,
        "stored_bytes": 0,
    }
    r = kp(data, "sweep")
    assert json.loads(r.stdout) == {"swept": 0}


def test_status_on_redis(tmp_path: Path, redis_prefix: str) -> None:
    from tests.keyproxy.conftest import REDIS_URL

    r = kp(tmp_path, "status", "--store", REDIS_URL)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["waiting"] == 0


def test_issuer_key_that_starts_with_a_hyphen(tmp_path: Path) -> None:
    """A base64url key starts with "-" one time in 64: argparse alone would
    read it as an option."""
    pub = next(p for _, p in iter(issuer_key, None) if p.startswith("-"))
    r = kp(tmp_path / "kp", "issuer", "add", "vault", "--public-key", pub)
    assert (r.returncode, r.stdout.strip()) == (0, "issuer vault added"), r.stderr
    r = kp(tmp_path / "kp", "issuer", "list")
    assert r.stdout.strip() == f"vault\t{pub}"
