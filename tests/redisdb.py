"""Redis for the tests: the machine's shared server, and throwaway servers.

`ensure_redis()` makes sure the Redis at `REDIS_URL` answers, starting the
machine's server (127.0.0.1:6379, no persistence) when it is down, and fails
loudly when it cannot: a test that needs Redis is never skipped.

`REDIS_URL` is `AUTHNET_TEST_REDIS_URL` or redis://127.0.0.1:6379/11. Other
suites share that server, so every test works under its own key prefix
(`unique_prefix`) and deletes its keys afterwards (`delete_prefix`); Pub/Sub
channels ignore the database number, which is why the prefix, not the
database, is what keeps tests apart.

`RedisServer` is a private `redis-server` on a free port in a temporary
directory, for tests that kill, freeze and restart Redis: never do that to the
shared one.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import redis

REDIS_URL = os.environ.get("AUTHNET_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")

# How the machine's Redis is started when it is down (no persistence).
SHARED_START = [
    "redis-server",
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "-::1",
    "--port",
    "6379",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "/var/lib/redis",
    "--logfile",
    "/var/log/redis/ci.log",
]


def _answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def _wait_until_answers(url: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _answers(url):
            return True
        time.sleep(0.05)
    return False


def ensure_redis(url: str = REDIS_URL) -> str:
    """The URL, once Redis answers there; RuntimeError if it cannot be had."""
    if _answers(url):
        return url
    parts = urlsplit(url)
    if (parts.hostname, parts.port or 6379) != ("127.0.0.1", 6379):
        raise RuntimeError(f"Redis at {parts.hostname}:{parts.port} does not answer")
    if shutil.which("redis-server") is None:
        raise RuntimeError("Redis is down and redis-server is not installed (apt install redis)")
    Path("/var/lib/redis").mkdir(parents=True, exist_ok=True)
    Path("/var/log/redis").mkdir(parents=True, exist_ok=True)
    done = subprocess.run(SHARED_START, capture_output=True, text=True, check=False)
    if not _wait_until_answers(url, 10):
        raise RuntimeError(
            f"started redis-server but it does not answer: rc={done.returncode} "
            f"{done.stderr.strip() or done.stdout.strip()}"
        )
    return url


def unique_prefix(label: str = "t") -> str:
    return f"authnet-test:{label}:{secrets.token_hex(6)}:"


def delete_prefix(url: str, prefix: str) -> int:
    """Delete every key under `prefix`; returns how many went."""
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        keys = list(client.scan_iter(match=prefix.encode() + b"*", count=1000))
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        client.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """A private redis-server: start, kill -9, freeze (SIGSTOP), thaw, restart
    on the same port. Use as a context manager; it is killed on exit."""

    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed (apt install redis)")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="authnet-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def unix_url(self) -> str:
        """The same server over its Unix socket."""
        return f"unix://{self.dir / 'redis.sock'}?db=0"

    def start(self) -> None:
        assert self.proc is None, "already running"
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                "--logfile",
                str(self.dir / "redis.log"),
                "--unixsocket",
                str(self.dir / "redis.sock"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not _wait_until_answers(self.url, 10):
            log = (self.dir / "redis.log").read_text(errors="replace")[-2000:]
            self.kill()
            raise RuntimeError(f"private redis-server on port {self.port} did not start:\n{log}")

    def kill(self) -> None:
        """kill -9: connections drop at once, nothing is saved."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGCONT)  # a frozen process dies too
                self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def freeze(self) -> None:
        """SIGSTOP: connections stay open and nothing answers, as when a
        network path dies silently."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
