"""The pcscd helper's failure paths: it detects leftovers and fails loudly."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from simulators.smartcard import Pcscd, PcscError, VirtualCard, VpcdError, VpcdLink
from simulators.smartcard.pcsc import clear_stale_pcscd_files, pcscd_listening


def _dead_socket(path: Path) -> None:
    """A socket file nobody listens on, as a killed pcscd leaves behind."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()


def test_leftover_socket_is_not_a_running_pcscd(tmp_path: Path) -> None:
    sock, pid = tmp_path / "pcscd.comm", tmp_path / "pcscd.pid"
    assert not pcscd_listening(sock)
    _dead_socket(sock)
    assert sock.exists()
    assert not pcscd_listening(sock)
    pid.write_text(f"{os.getpid()}\n")  # a live process, but not a pcscd
    assert clear_stale_pcscd_files(sock, pid)
    assert not sock.exists()
    assert not pid.exists()
    assert not clear_stale_pcscd_files(sock, pid)


def test_a_listening_socket_is_left_alone(tmp_path: Path) -> None:
    sock = tmp_path / "pcscd.comm"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(sock))
        s.listen(1)
        assert pcscd_listening(sock)
        assert not clear_stale_pcscd_files(sock, tmp_path / "pcscd.pid")
        assert sock.exists()


def test_missing_pcscd_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(PcscError, match="not installed"):
        Pcscd.ensure(executable="no-such-pcscd", socket_path=tmp_path / "pcscd.comm")


def test_pcscd_dying_at_startup_fails_loudly_with_its_output(tmp_path: Path) -> None:
    fake = tmp_path / "fake-pcscd"
    fake.write_text("#!/bin/sh\necho 'cannot create /run/pcscd: Permission denied'\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(PcscError, match="exited with status 1") as e:
        Pcscd.ensure(executable=str(fake), socket_path=tmp_path / "pcscd.comm", timeout=5)
    assert "Permission denied" in str(e.value)


def test_vpcd_not_listening() -> None:
    link = VpcdLink(VirtualCard.create(), port=1)  # nothing listens on port 1
    with pytest.raises(VpcdError, match="pcscd must be running"):
        link.insert()
    assert not link.inserted
