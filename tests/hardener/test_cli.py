"""The operator CLI: useful help, and a third party's deployment from init
to serve (a real process) to rotate, status, retire, revoke and unlock."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hardener.cli import main, parser
from hardener.client import HardenerClient, SyncHardenerClient
from hardener.credentials import CallerCredentials
from hardener.errors import CallerRevoked, UserLocked
from tests.hardener.conftest import element

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = [
    ["init"],
    ["serve"],
    ["caller"],
    ["caller", "add"],
    ["caller", "list"],
    ["caller", "revoke"],
    ["rotate"],
    ["status"],
    ["retire"],
    ["unlock"],
    ["backup"],
]


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    top = capsys.readouterr().out
    for cmd in ("init", "serve", "caller", "rotate", "status", "retire", "unlock", "backup"):
        assert cmd in top
    assert "POPRF" in top


@pytest.mark.parametrize("cmd", COMMANDS, ids=" ".join)
def test_each_subcommand_has_useful_help(
    cmd: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main([*cmd, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert f"hardener {' '.join(cmd)}" in text
    # A description beyond the usage line.
    assert len([line for line in text.splitlines() if line.strip()]) >= 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_third_party_deployment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, creds_dir = tmp_path / "data", tmp_path / "network-creds"
    assert main(["init", str(data), "--name", "friend", "--backoff-base-ms", "0"]) == 0
    assert "key version 1 is active" in capsys.readouterr().out
    assert main(["init", str(data)]) == 2
    assert "already" in capsys.readouterr().err
    assert main(["caller", "add", "network", "--data", str(data), "--out", str(creds_dir)]) == 0
    assert str(creds_dir / "caller.key") in capsys.readouterr().out
    assert (
        main(["caller", "add", "Bad Name", "--data", str(data), "--out", str(tmp_path / "x")]) == 2
    )
    assert "not valid" in capsys.readouterr().err

    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hardener.cli", "serve", "--data", str(data),
         "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert "serving on" in proc.stdout.readline()
        creds = CallerCredentials.load(creds_dir)
        with SyncHardenerClient(f"127.0.0.1:{port}", creds) as c:
            assert c.get_keys().caller == "network"
            for i in range(10):
                c.evaluate("token:aa", element(b"%d" % i))
            with pytest.raises(UserLocked):
                c.evaluate("token:aa", element(b"x"))
            assert main(["unlock", "network", "token:aa", "--data", str(data)]) == 0
            for _ in range(50):  # the server notices within its poll interval
                try:
                    left = c.evaluate("token:aa", element(b"x")).attempts_left
                    break
                except UserLocked:
                    time.sleep(0.1)
            assert left == 9
            w = c.wrap("rec", b"blob")

            assert main(["rotate", "--data", str(data)]) == 0
            capsys.readouterr()
            assert main(["status", "--data", str(data)]) == 0
            table = capsys.readouterr().out
            assert "active" in table
            assert "old" in table
            assert main(["retire", "1", "--data", str(data)]) == 2
            assert "still needed by 0 user record(s) and 1 wrapped" in capsys.readouterr().err
            for _ in range(50):  # the server notices the rotation by itself
                if c.get_keys().current_version == 2:
                    break
                time.sleep(0.1)
            assert c.rewrap("rec", w.wrapped).key_version == 2
            assert main(["retire", "1", "--data", str(data)]) == 0

            assert main(["caller", "revoke", "network", "--data", str(data)]) == 0
            for _ in range(50):
                try:
                    c.get_keys()
                except CallerRevoked:
                    break
                time.sleep(0.1)
            with pytest.raises(CallerRevoked):
                c.get_keys()
        assert main(["caller", "list", "--data", str(data)]) == 0
        assert "network" in capsys.readouterr().out
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    audit = (data / "audit.log").read_text()
    for op in ("init", "caller_add", "unlock", "rotate", "retire", "caller_revoke", "evaluate"):
        assert f'"operation":"{op}"' in audit


def test_operator_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--data", str(tmp_path / "nothing")]) == 2
    assert "hardener init" in capsys.readouterr().err
    main(["init", str(tmp_path / "d")])
    capsys.readouterr()
    assert main(["unlock", "network", "u", "--data", str(tmp_path / "d")]) == 2
    assert "no user" in capsys.readouterr().err
    assert main(["caller", "revoke", "ghost", "--data", str(tmp_path / "d")]) == 2
    assert "no caller" in capsys.readouterr().err
    assert main(["retire", "7", "--data", str(tmp_path / "d")]) == 2
    assert "no key version 7" in capsys.readouterr().err


def test_parser_builds() -> None:
    assert parser().prog == "hardener"


def test_counts_survive_a_killed_server(tmp_path: Path) -> None:
    """Every evaluation is committed before it is answered: SIGKILL loses none."""
    data, creds_dir = tmp_path / "data", tmp_path / "creds"
    assert main(["init", str(data), "--backoff-base-ms", "0"]) == 0
    assert main(["caller", "add", "network", "--data", str(data), "--out", str(creds_dir)]) == 0
    creds = CallerCredentials.load(creds_dir)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def serve(port: int) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hardener.cli", "serve", "--data", str(data),
             "--listen", f"127.0.0.1:{port}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=ROOT, text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        assert "serving on" in proc.stdout.readline()
        return proc

    port = _free_port()
    proc = serve(port)
    try:
        with SyncHardenerClient(f"127.0.0.1:{port}", creds) as c:
            for i in range(10):
                c.evaluate("token:bb", element(b"%d" % i))
    finally:
        proc.kill()
        proc.communicate(timeout=10)
    port = _free_port()
    proc = serve(port)
    try:
        with SyncHardenerClient(f"127.0.0.1:{port}", creds) as c, pytest.raises(UserLocked):
            c.evaluate("token:bb", element(b"after the kill"))
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


async def test_backup_while_serving_and_restore(tmp_path: Path) -> None:
    from hardener.testing import TestHardener

    with TestHardener(tmp_path / "live") as h:
        async with h.client("network") as c:
            for i in range(10):
                await c.evaluate("token:cc", element(b"%d" % i))
            w = await c.wrap("rec", b"blob")
            pk = (await c.get_keys()).public_key()
            out = tmp_path / "backup"
            assert main(["backup", "--data", str(h.root), "--out", str(out)]) == 0
        assert not (out / "master.key").exists()
        assert main(["backup", "--data", str(h.root), "--out", str(out)]) == 2  # no overwrite
        key = (h.root / "master.key").read_bytes()
    # Restore: the copy (and the master key, kept apart) as a data directory.
    restored = tmp_path / "restore" / "hardener-data"
    restored.mkdir(parents=True)
    for f in out.iterdir():
        (restored / f.name).write_bytes(f.read_bytes())
    (restored / "master.key").write_bytes(key)
    (restored / "master.key").chmod(0o600)
    with TestHardener(tmp_path / "restore") as r:  # finds the directory: no init
        creds = CallerCredentials.load(h.credentials_dir("network"))
        async with HardenerClient(r.address, creds) as c:
            assert (await c.get_keys()).public_key() == pk
            assert await c.unwrap("rec", w.wrapped) == b"blob"
            with pytest.raises(UserLocked):
                await c.evaluate("token:cc", element(b"x"))
