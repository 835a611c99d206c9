"""A cluster of real `authnet serve` processes, set up the documented way:
`authnet cluster init` on the first node's data directory (which keeps the
CA key), `authnet cluster bundle`, and `authnet node join` for every other
node's own data directory. All nodes share one Redis (a key prefix of the
test's own) and one PostgreSQL database."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PATTERNS = {
    "sp": re.compile(r"\s+SP API \(mTLS\)\s+(\S+)"),
    "passkey": re.compile(r"\s+PassKey API \(TLS\)\s+(\S+)"),
    "gateway": re.compile(r"\s+Browser gateway\s+(\S+)"),
}


def authnet(*args: str, env: dict[str, str] | None = None) -> str:
    """Run one `authnet` command; its stdout, or an AssertionError with its stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "authnet.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert done.returncode == 0, f"authnet {' '.join(args)} failed: {done.stderr.strip()}"
    return done.stdout


@dataclass
class NodeProcess:
    data_dir: Path
    env: dict[str, str]
    extra: tuple[str, ...] = ()
    proc: subprocess.Popen[str] | None = None
    addresses: dict[str, str] = field(default_factory=dict)
    output: list[str] = field(default_factory=list)

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        ports = self.addresses
        cmd = [
            sys.executable,
            "-m",
            "authnet.cli",
            "--data-dir",
            str(self.data_dir),
            "serve",
            "--no-demo-sp",
            "--metrics-port",
            "-1",
            # A restarted node keeps its ports, so clients find it again.
            "--sp-port",
            ports.get("sp", ":0").rsplit(":", 1)[1],
            "--passkey-port",
            ports.get("passkey", ":0").rsplit(":", 1)[1],
            "--gateway-port",
            ports.get("gateway", ":0").rsplit(":", 1)[1],
            *self.extra,
        ]
        env = {**os.environ, **self.env, "AUTHNET_LOG_FILE": str(self.data_dir / "node.log")}
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        found: dict[str, str] = {}
        for line in self.proc.stdout:
            self.output.append(line)
            for name, pattern in PATTERNS.items():
                if m := pattern.match(line):
                    found[name] = m.group(1)
            if line.startswith("Stop with Ctrl-C") or time.monotonic() > deadline:
                break
        if set(found) != set(PATTERNS):
            self.kill()
            raise AssertionError("node did not start:\n" + "".join(self.output[-30:]))
        self.addresses = found
        # Keep reading what it prints, so a full pipe never blocks it.
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()

    def _drain(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        """kill -9: no goodbye to its clients, its websockets or Redis."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._close_pipe()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_pipe()

    def _close_pipe(self) -> None:
        if self.proc is None or self.proc.stdout is None or self.proc.stdout.closed:
            return
        drainer = getattr(self, "_drainer", None)
        if drainer is not None:
            drainer.join(5)  # the process is gone: the drainer reads EOF
        self.proc.stdout.close()


class ProcessCluster:
    """`nodes` node processes; `.sp_creds` is a registered SP's folder."""

    def __init__(
        self, root: Path, *, nodes: int, state_url: str, state_prefix: str, database_url: str
    ) -> None:
        self.root = root
        self.env = {"AUTHNET_STATE_PREFIX": state_prefix}
        first = root / "node0"
        authnet(
            "--data-dir",
            str(first),
            "cluster",
            "init",
            "--state",
            state_url,
            "--database",
            database_url,
            env=self.env,
        )
        authnet("--data-dir", str(first), "sp", "add", "hello", "--out", str(root / "sp"))
        self.sp_creds = root / "sp"
        bundle = root / "node.bundle"
        authnet(
            "--data-dir",
            str(first),
            "cluster",
            "bundle",
            "--out",
            str(bundle),
            env={"AUTHNET_BUNDLE_PASSPHRASE": "correct horse battery staple"},
        )
        dirs = [first]
        for i in range(1, nodes):
            d = root / f"node{i}"
            authnet(
                "--data-dir",
                str(d),
                "node",
                "join",
                str(bundle),
                env={"AUTHNET_BUNDLE_PASSPHRASE": "correct horse battery staple"},
            )
            dirs.append(d)
        self.nodes = [NodeProcess(d, self.env) for d in dirs]

    def __enter__(self) -> ProcessCluster:
        try:
            for node in self.nodes:
                node.start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for node in self.nodes:
            node.stop()

    def addresses(self, kind: str) -> list[str]:
        return [n.addresses[kind] for n in self.nodes]
