"""`authnet serve --workers N`: N node processes on one machine, behind the
same ports.

Python runs one core per process, so a machine's cores are used by several
node processes. They share the SP, PassKey and gateway ports with
SO_REUSEPORT (the kernel spreads new connections over them); they share
nothing else but the state store and the directory, exactly like nodes on
different machines, so a worker's death loses no login (its clients resume
on another). The supervisor (this process) forks the workers before any
gRPC object exists in it (gRPC's fork rule), reserves free ports when port
0 is asked for, restarts a worker that dies, and stops them all on SIGINT or
SIGTERM. Each worker has its own metrics port (metrics_port + i).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from types import FrameType

from authnet.config import Config, ConfigError

# A worker that dies more often than this is not restarted again.
MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
STOP_TIMEOUT_S = 10.0


def reserve_port(host: str, port: int) -> tuple[socket.socket, int]:
    """A bound (not listening) SO_REUSEPORT socket that keeps `port` (0: a free
    one) for the workers, who bind it with SO_REUSEPORT too."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock, sock.getsockname()[1]


def worker_config(cfg: Config, i: int) -> Config:
    """Worker i's settings: the shared ports, its own metrics port and name."""
    metrics_port = cfg.metrics_port
    if metrics_port > 0:
        metrics_port += i
    node_id = f"{cfg.node_id}-w{i}" if cfg.node_id else ""
    return dataclasses.replace(cfg, metrics_port=metrics_port, node_id=node_id)


def check(cfg: Config, workers: int) -> None:
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    if workers > 1 and cfg.state_url in ("", "memory", "memory://"):
        raise ConfigError(
            "--workers needs state shared by every worker: set state_url "
            "(e.g. --state redis://127.0.0.1:6379/0); in-memory state is one process's"
        )


class Supervisor:
    def __init__(self, cfg: Config, workers: int, run: Callable[[Config, int, int], int]) -> None:
        """`run(config, worker index, ready fd)` runs one worker in a forked
        child and returns its exit status; it writes one line to the ready fd
        once its node is serving (or why it is not)."""
        self.cfg = cfg
        self.workers = workers
        self._run = run
        self._children: dict[int, int] = {}  # pid -> worker index
        self._restarts: list[float] = []
        self._stopping = False
        self._held: list[socket.socket] = []

    def _spawn(self, i: int, cfg: Config) -> tuple[int, int]:
        read_fd, write_fd = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(read_fd)
            for sock in self._held:
                sock.close()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            status = 1
            try:
                status = self._run(worker_config(cfg, i), i, write_fd)
            finally:
                os._exit(status)
        os.close(write_fd)
        self._children[pid] = i
        return pid, read_fd

    @staticmethod
    def _ready(read_fd: int, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        data = b""
        with os.fdopen(read_fd, "rb", buffering=0) as f:
            os.set_blocking(read_fd, False)
            while not data.endswith(b"\n") and time.monotonic() < deadline:
                try:
                    chunk = f.read(512)
                except BlockingIOError:
                    chunk = None
                if chunk == b"":
                    break  # the worker exited without a word
                if chunk:
                    data += chunk
                else:
                    time.sleep(0.02)
        return data.decode(errors="replace").strip() or "exited before it was ready"

    def run(self, announce: Callable[[Config], None]) -> int:
        cfg = self.cfg
        ports = []
        for port in (cfg.sp_port, cfg.passkey_port, cfg.gateway_port):
            sock, bound = reserve_port(cfg.bind_host, port)
            self._held.append(sock)
            ports.append(bound)
        cfg = dataclasses.replace(
            cfg, sp_port=ports[0], passkey_port=ports[1], gateway_port=ports[2]
        )

        def stop(signum: int, _frame: FrameType | None) -> None:
            self._stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        pending = [self._spawn(i, cfg) for i in range(self.workers)]
        failed = [w for _, fd in pending if (w := self._ready(fd, 60.0)) != "ready"]
        if failed:
            print(f"authnet: a worker did not start: {failed[0]}", file=sys.stderr)
            self._stop_all()
            return 1
        announce(cfg)
        status = 0
        while not self._stopping:
            try:
                pid, code = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.2)
                continue
            i = self._children.pop(pid, None)
            if i is None or self._stopping:
                continue
            now = time.monotonic()
            self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW_S]
            if len(self._restarts) >= MAX_RESTARTS:
                print(
                    f"authnet: worker {i} keeps dying ({MAX_RESTARTS} restarts in "
                    f"{RESTART_WINDOW_S:g} s); stopping",
                    file=sys.stderr,
                )
                status = 1
                break
            self._restarts.append(now)
            print(f"worker {i} (pid {pid}) exited ({_describe(code)}); restarting", flush=True)
            _, fd = self._spawn(i, cfg)
            word = self._ready(fd, 60.0)
            if word != "ready":
                print(f"authnet: worker {i} did not restart: {word}", file=sys.stderr)
        print("stopping...", flush=True)
        self._stop_all()
        return status

    def _stop_all(self) -> None:
        for pid in list(self._children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                self._children.pop(pid, None)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while self._children and time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid:
                self._children.pop(pid, None)
            else:
                time.sleep(0.05)
        for pid in list(self._children):
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        self._children.clear()
        for sock in self._held:
            sock.close()
        self._held.clear()


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"status {os.WEXITSTATUS(status)}"
