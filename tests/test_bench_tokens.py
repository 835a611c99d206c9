"""bench/tokens.py runs end to end (phone and PKCS#11 on SoftHSM2, briefly) and
prints one JSON object whose figures are positive and consistent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "tokens.py"


def run(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    done = run("--seconds", "0.2", "--only", "phone", "--only", "pkcs11")
    assert done.returncode == 0, done.stderr
    assert "[bench/tokens] pkcs11: logins" in done.stderr  # progress goes to stderr
    parsed = json.loads(done.stdout)  # stdout is exactly one JSON object
    assert isinstance(parsed, dict)
    return parsed


def test_only_the_requested_backends_run(result: dict[str, Any]) -> None:
    assert result["benchmark"] == "tokens"
    assert list(result["backends"]) == ["phone", "pkcs11"]
    assert result["seconds_per_measurement"] == 0.2
    assert result["machine"]["cpus"] >= 1
    assert result["machine"]["python"].count(".") == 2


@pytest.mark.parametrize("kind", ["phone", "pkcs11"])
def test_rates_are_positive_and_logins_complete(result: dict[str, Any], kind: str) -> None:
    b = result["backends"][kind]
    for measure in ("kc", "proof", "pin_verify"):
        m = b[measure]
        assert m["n"] >= 2, measure
        assert m["per_s"] > 0, measure
        assert 0 < m["p50_ms"] <= m["p95_ms"], measure
        assert m["measured"], measure
    login = b["login"]
    assert login["errors"] == {}
    assert b["errors_outside_logins"] == {}
    assert login["n"] >= 3
    assert login["logins_per_s"] > 0
    assert 0 < login["p50_ms"] <= login["p95_ms"]
    # Sequential logins: the rate cannot beat one over the mean latency.
    assert login["logins_per_s"] <= 1000 / login["mean_ms"] * 1.01
    phases = login["phases_mean_ms"]
    for phase in (
        "sp_get_ticket",
        "browser_connect",
        "begin_auth",
        "token_derive_kc",
        "token_sign",
        "complete_auth",
        "browser_open_kc",
        "sp_get_puid",
    ):
        assert phases[phase] > 0, phase
    # The phases add up to the login, and the split is a partition of them.
    assert sum(phases.values()) == pytest.approx(login["mean_ms"], rel=0.02)
    split = login["split_mean_ms"]
    assert sum(split.values()) == pytest.approx(login["mean_ms"], rel=0.02)
    assert abs(split["unaccounted"]) < 0.05 * login["mean_ms"]
    assert split["network_round_trips"] > 0
    assert split["token_operations"] == pytest.approx(
        phases["token_derive_kc"] + phases["token_sign"], abs=0.01
    )


def test_pkcs11_calls_per_login_are_counted(result: dict[str, Any]) -> None:
    b = result["backends"]["pkcs11"]
    per_login = b["login"]["pkcs11_per_login"]
    assert per_login["by_operation"] == {
        "derive_kc": {"C_Sign(SHA256_HMAC)": 1.0, "find key": 1.0},
        "sign": {"C_Sign(ECDSA)": 1.0, "find key": 1.0},
    }
    assert per_login["calls"] == 4.0
    assert 0 < per_login["host_wait_ms"] <= b["login"]["split_mean_ms"]["token_operations"]
    for micro in ("c_sign_ecdsa_p256", "c_sign_hmac_sha256", "find_key", "host_hkdf"):
        assert b["device"][micro]["per_s"] > 0, micro
    # The phone has no device: nothing to count.
    assert not any(k.endswith("_per_login") for k in result["backends"]["phone"]["login"])


def test_help_names_every_backend_and_bad_kinds_are_refused() -> None:
    helped = run("--help", timeout=30)
    assert helped.returncode == 0
    for kind in ("phone", "pkcs11", "fido2", "piv", "otp"):
        assert kind in helped.stdout
    assert "--seconds" in helped.stdout
    refused = run("--only", "yubikey", timeout=30)
    assert refused.returncode == 2
    assert "invalid choice" in refused.stderr
    assert refused.stdout == ""
