"""`authnet serve --workers 2`: two node processes behind the same ports.

New connections spread over both workers (SO_REUSEPORT): the gateway's
`waiting` event names the node, and many websocket connections see both.
A worker killed with SIGKILL is restarted by the supervisor, and the ports
keep serving meanwhile. A supervisor without shared state refuses to start.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from authnet import errors
from authnet.sdk import AsyncSPClient, BrowserSession, SpCredentials
from tests.cluster.processes import PATTERNS
from tests.redisdb import delete_prefix, ensure_redis, unique_prefix


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str], Path]]:
    url = ensure_redis()
    prefix = unique_prefix("workers")
    data_dir = tmp_path / "network"
    cmd = [
        sys.executable,
        "-m",
        "authnet.cli",
        "--data-dir",
        str(data_dir),
        "serve",
        "--workers",
        "2",
        "--state",
        url,
        "--sp-port",
        "0",
        "--passkey-port",
        "0",
        "--gateway-port",
        "0",
        "--metrics-port",
        "-1",
    ]
    env = {
        **os.environ,
        "AUTHNET_STATE_PREFIX": prefix,
        "AUTHNET_LOG_FILE": str(tmp_path / "node.log"),
    }
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    assert proc.stdout is not None
    found: dict[str, str] = {}
    lines = []
    for line in proc.stdout:
        lines.append(line)
        for name, pattern in PATTERNS.items():
            if m := pattern.match(line):
                found[name] = m.group(1)
        if line.startswith("Stop with Ctrl-C"):
            break
    try:
        assert set(found) == set(PATTERNS), "".join(lines)
        assert "(2 worker processes)" in "".join(lines)
        yield proc, found, data_dir
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        delete_prefix(url, prefix)
    assert proc.returncode == 0, out


async def _nodes_seen(creds: SpCredentials, gateway: str, n: int) -> list[str]:
    """Which node each of `n` fresh gateway connections landed on."""
    seen = []
    async with AsyncSPClient(creds) as sp:
        for _ in range(n):
            t = await sp.get_ticket(auth_types="c")
            session = BrowserSession(
                ticket=t.ticket,
                spid=creds.spid,
                gateway_url=gateway,
                passkey_address=t.passkey_address,
            )
            # Right after a worker dies, a connection the kernel had queued for it
            # is reset: a client tries again, as the SDKs and the page do.
            for attempt in range(10):
                connector = aiohttp.TCPConnector(force_close=True)
                try:
                    async with (
                        aiohttp.ClientSession(connector=connector) as own,
                        session.waiting(own) as wait,
                    ):
                        seen.extend(wait.nodes)
                    break
                except errors.NetworkUnavailable:
                    if attempt == 9:
                        raise
                    await asyncio.sleep(0.2)
    return seen


@pytest.mark.timeout(120)
async def test_workers_share_the_ports_and_a_dead_one_is_restarted(
    supervisor: tuple[subprocess.Popen[str], dict[str, str], Path],
) -> None:
    proc, addresses, data_dir = supervisor
    creds = SpCredentials.load(data_dir / "sps" / "demo")
    gateway = addresses["gateway"]
    first = await _nodes_seen(creds, gateway, 24)
    assert len(set(first)) == 2, first
    workers = _children(proc.pid)
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)
    # The other worker serves at once; the supervisor brings up a new one.
    assert len(await _nodes_seen(creds, gateway, 4)) == 4
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = _children(proc.pid)
        if len(now) == 2 and workers[0] not in now:
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError("the supervisor did not restart the worker")
    # The new worker takes connections once it is serving (it may still be
    # starting when it shows up as a child).
    later: list[str] = []
    while time.monotonic() < deadline and len(set(later)) < 2:
        later = await _nodes_seen(creds, gateway, 16)
    assert len(set(later)) == 2, later
    assert set(later) != set(first)  # one of them is the new worker


def test_workers_need_shared_state(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "authnet.cli",
            "--data-dir",
            str(tmp_path / "n"),
            "serve",
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert re.search(r"--workers needs state shared by every worker", done.stderr), done.stderr
