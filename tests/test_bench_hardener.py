"""bench/hardener.py --unlock runs end to end, briefly (`python bench/hardener.py`,
as `make bench` runs it), and prints the unlock a person waits for beside its
slow hash: the phone PIN (Argon2id), the vault passphrase in the CLI (PBKDF2
in Python) and in the page (PBKDF2 in WebCrypto, headless Chromium)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tokens.phone_secrets import ARGON2

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
SUMMARY = {"n", "median_ms", "p90_ms", "min_ms"}

pytestmark = pytest.mark.browser


def figure(d: dict[str, Any], name: str, n: int) -> dict[str, float]:
    got = d[name]
    assert set(got) == SUMMARY, name
    assert got["n"] == n, name
    assert 0 < got["min_ms"] <= got["median_ms"] <= got["p90_ms"], (name, got)
    return dict(got)


def whole_above_step(d: dict[str, Any], whole: str, step: str, n: int) -> None:
    """The whole unlock includes its slow hash, so it takes longer. Compared by
    the minimum of each: the machine is shared and load only adds time."""
    w, s = figure(d, whole, n), figure(d, step, n)
    assert w["min_ms"] >= s["min_ms"], (whole, w, step, s)


def test_bench_hardener_unlock_prints_each_unlock_beside_its_slow_hash() -> None:
    n, browser_n = 2, 2
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "hardener.py"),
            "--unlock",
            "--only",
            "bare",
            "--seconds",
            "0.2",
            "--unlock-n",
            str(n),
            "--unlock-browser-n",
            str(browser_n),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)  # stdout is exactly one JSON object
    assert out["bare_poprf"]["per_core_s"] > 0  # --unlock adds to the chosen parts
    assert "service_evaluate" not in out
    unlock = out["unlock"]
    assert set(unlock) == {"phone_pin", "cli_passphrase", "browser_passphrase"}

    phone = unlock["phone_pin"]
    assert phone["argon2id"] == ARGON2  # the key store's real parameters
    figure(phone, "unlock_connected_ms", n)
    whole_above_step(phone, "unlock_ms", "argon2id_ms", n)
    whole_above_step(phone, "unlock_connected_ms", "argon2id_ms", n)

    places = [unlock["cli_passphrase"]]
    if CHROMIUM.exists():
        assert unlock["browser_passphrase"]["measured"] is True
        assert unlock["browser_passphrase"]["browser"].startswith("chromium ")
        places.append(unlock["browser_passphrase"])
    else:
        assert unlock["browser_passphrase"]["measured"] is False
    for place in places:
        count = n if place is unlock["cli_passphrase"] else browser_n
        assert place["pbkdf2_iterations"] == 600_000  # the vault's default
        figure(place, "unlock_round_trip_ms", count)
        whole_above_step(place, "unlock_ms", "pbkdf2_ms", count)
        whole_above_step(place, "unlock_ms", "unlock_pbkdf2_ms", count)
        whole_above_step(place, "login_ms", "unlock_ms", count)
