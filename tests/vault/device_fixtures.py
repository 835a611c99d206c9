"""A real OS keyring for the CLI's keyring devices (docs/devices.md 8): a
private D-Bus session bus and a gnome-keyring-daemon (Secret Service) on it,
with every XDG folder under the test's tmp_path, so no other keyring or bus
on the machine is touched. The CLI runs in-process (tests.vault.clirunner),
so the bus address goes into this process's environment (monkeypatch) and
keyring's backend is chosen again from it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import keyring
import keyring.core
import pytest
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection
from keyring.backend import KeyringBackend
from keyring.backends import SecretService

SECRETS_NAME = "org.freedesktop.secrets"
KEYRING_PASSWORD = "test keyring login password"


@dataclass(frozen=True)
class OsKeyring:
    """The running keyring: its bus address and the environment it runs in."""

    address: str
    env: dict[str, str]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: the OS keyring tests need it "
            "(scripts/install-system-deps.sh installs gnome-keyring and dbus-daemon)"
        )
    return path


def _gone(pid: int, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _wait_for_secret_service(address: str, deadline_s: float = 10.0) -> None:
    """Until the daemon owns the Secret Service's name on the bus (asked over
    a connection closed each time: keyring's backend leaks one when the
    service is not up yet)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        with open_dbus_connection(bus=address) as conn:
            reply = conn.send_and_get_reply(message_bus.NameHasOwner(SECRETS_NAME))
        if reply.body[0]:
            return
        time.sleep(0.05)
    pytest.fail(f"gnome-keyring-daemon did not take {SECRETS_NAME} on the private bus")


@pytest.fixture
def os_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OsKeyring]:
    dbus_daemon = _tool("dbus-daemon")
    gkd = _tool("gnome-keyring-daemon")
    home = tmp_path / "keyring-home"
    runtime = home / "run"
    runtime.mkdir(parents=True, mode=0o700)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_RUNTIME_DIR": str(runtime),
    }
    bus = subprocess.run(
        [dbus_daemon, "--session", "--fork", "--print-address=1", "--print-pid=1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    address, pid_text = bus.stdout.split("\n")[:2]
    bus_pid = int(pid_text)
    daemon: subprocess.Popen[bytes] | None = None
    previous: KeyringBackend | None = keyring.core._keyring_backend
    try:
        env["DBUS_SESSION_BUS_ADDRESS"] = address
        daemon = subprocess.Popen(
            [gkd, "--foreground", "--unlock", "--components=secrets"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert daemon.stdin is not None
        daemon.stdin.write(KEYRING_PASSWORD.encode())
        daemon.stdin.close()
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        monkeypatch.setenv("XDG_CONFIG_HOME", env["XDG_CONFIG_HOME"])  # no keyringrc.cfg
        monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
        _wait_for_secret_service(address)
        keyring.core.init_backend()  # chosen as the CLI would, from this environment
        chosen = keyring.get_keyring()
        if not isinstance(chosen, SecretService.Keyring):
            pytest.fail(f"keyring chose {chosen!r}, not the Secret Service on the private bus")
        yield OsKeyring(address=address, env=env)
    finally:
        keyring.core._keyring_backend = previous
        if daemon is not None:
            daemon.terminate()
            try:
                daemon.wait(5)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait(5)
        os.kill(bus_pid, signal.SIGTERM)
        if not _gone(bus_pid):
            os.kill(bus_pid, signal.SIGKILL)
