"""The authnet command: the demo (the main job), serve, and SP administration."""

from __future__ import annotations

import json
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from authnet.cli import main
from authnet.sdk import SPClient, SpCredentials

AUTHNET = [sys.executable, "-m", "authnet.cli"]


def test_demo_json_reports_a_matching_login() -> None:
    done = subprocess.run(
        [*AUTHNET, "demo", "--json"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] is True
    assert re.fullmatch(r"[0-9a-f]{32}", result["spid"])
    assert result["puid"] == result["puid_expected"]
    assert result["kc_fingerprint_phone"] == result["kc_fingerprint_browser"]
    assert re.fullmatch(r"([0-9a-f]{8}-){3}[0-9a-f]{8}", result["kc_fingerprint_browser"])
    assert 0 < result["ms"] < 60_000


def test_demo_narrates_each_step(tmp_path: Path) -> None:
    done = subprocess.run(
        [*AUTHNET, "demo", "--keep", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for step in (
        "network up",
        "registered SP",
        "phone simulator enrolled",
        "waiting on the gateway websocket",
        "decoded the QR code from the image's pixels",
        "sealed it to the browser key",
        "opened the sealed Kc",
        "GetPUID(finalize)",
        "OK: browser and phone hold the same Kc",
    ):
        assert step in done.stdout, step
    assert (tmp_path / "demo" / "login-qr.png").exists()


def test_serve_from_nothing_then_stop(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [
            *AUTHNET,
            "--data-dir",
            str(data),
            "serve",
            "--sp-port",
            "0",
            "--passkey-port",
            "0",
            "--gateway-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Stop with Ctrl-C"):
                break
        text = "".join(lines)
        assert "registered the demo SP" in text
        passkey = re.search(r"PassKey API \(TLS\)\s+(\S+)", text)
        assert passkey is not None
        # Zero configuration: secrets created owner-only, a usable demo SP.
        for secret in ("network.key", "ca.key", "server.key", "sps/demo/sp.key"):
            assert stat.S_IMODE((data / secret).stat().st_mode) == 0o600, secret
        with grpc.secure_channel(
            passkey.group(1), grpc.ssl_channel_credentials((data / "ca.crt").read_bytes())
        ) as channel:
            r = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            assert r.status == health_pb2.HealthCheckResponse.SERVING
        with SPClient.from_credentials(data / "sps" / "demo") as sp:
            assert sp.get_ticket().ticket.startswith("at1_")
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_sp_administration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = ["--data-dir", str(tmp_path / "net")]
    code, out, _ = run(
        capsys,
        *d,
        "sp",
        "add",
        "shop",
        "--display-name",
        "Example Shop",
        "--origin",
        "https://shop.example",
    )
    assert code == 0
    spid = re.search(r"SPID ([0-9a-f]{32})", out)
    assert spid is not None
    creds = SpCredentials.load(tmp_path / "net" / "sps" / "shop")
    assert creds.spid.hex() == spid.group(1)

    code, out, _ = run(capsys, *d, "sp", "list", "-v")
    assert code == 0
    assert "shop" in out
    assert "1 live cert(s)" in out
    assert "https://shop.example" in out

    code, out, _ = run(capsys, *d, "sp", "cert", "shop", "--out", str(tmp_path / "rotated"))
    assert code == 0
    new_fp = re.search(r"new certificate ([0-9a-f]{64})", out)
    assert new_fp is not None
    code, out, _ = run(capsys, *d, "sp", "list", "-v")
    assert "2 live cert(s)" in out
    old_fp = next(m for m in re.findall(r"cert ([0-9a-f]{64})", out) if m != new_fp.group(1))
    code, out, _ = run(capsys, *d, "sp", "revoke-cert", "shop", old_fp[:16])
    assert code == 0
    assert "revoked" in out
    code, out, _ = run(capsys, *d, "sp", "list")
    assert "1 live cert(s)" in out

    code, out, _ = run(capsys, *d, "sp", "disable", "shop")
    assert (code, "disabled" in run(capsys, *d, "sp", "list")[1]) == (0, True)
    code, out, _ = run(capsys, *d, "sp", "enable", "shop")
    assert code == 0
    assert "active" in run(capsys, *d, "sp", "list")[1]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["sp", "add", "Bad Name"], "SP name must be lowercase"),
        (["sp", "add", "ok", "--origin", "https://x.example/path"], "must look like"),
        (["sp", "cert", "nobody"], "no SP named 'nobody'"),
        (["sp", "revoke-cert", "nobody", "abcd"], "no SP named 'nobody'"),
    ],
)
def test_sp_administration_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    code, _, err = run(capsys, "--data-dir", str(tmp_path / "net"), *argv)
    assert code == 2
    assert words in err


def test_duplicate_sp_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = ["--data-dir", str(tmp_path / "net")]
    assert run(capsys, *d, "sp", "add", "twice")[0] == 0
    code, _, err = run(capsys, *d, "sp", "add", "twice")
    assert code == 2
    assert "already exists" in err


@pytest.mark.parametrize("argv", [[], ["serve"], ["sp"], ["sp", "add"], ["demo"]])
def test_help_says_what_to_do(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: authnet")
    if not argv:
        for command in ("demo", "serve", "sp"):
            assert command in out
