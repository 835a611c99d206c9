"""Fixtures of the vault tests: a real authnet network (tests/conftest.py's
`net`), the vault's API served by uvicorn on a real socket in the test's
event loop, on SQLite and on PostgreSQL, and logged-in clients.

PostgreSQL: tests/pgdb.py (the server at 127.0.0.1:5432, or the libpq DSN in
AUTHNET_TEST_POSTGRES or VAULT_TEST_POSTGRES). Each test creates its own
database and drops it afterwards. If PostgreSQL is not reachable the tests
fail (they do not skip): the vault claims to support it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import uvicorn

from authnet.sdk import AsyncSPClient
from authnet.sdk.credentials import SpCredentials
from authnet.testing import TestNetwork
from hardener.testing import TestHardener
from simulators.phone.app import PhoneApp
from tests.helpers import make_phone
from tests.pgdb import postgres_database
from tests.vault.driver import VaultClient
from vault_api import migrations
from vault_api.app import create_app
from vault_api.config import Settings

MAX_FILE_BYTES = 16 * 1024 * 1024
# PBKDF2 iterations of the tests' passphrases (production: 600,000).
FAST_ITERATIONS = int(os.environ.get("VAULT_TEST_KDF_ITERATIONS", "1000"))


class Clock:
    """The server's clock: wall time plus an offset tests can advance."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def __call__(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms

    def advance(self, seconds: float) -> None:
        self.offset_ms += int(seconds * 1000)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'vault.db'}"
        return
    with postgres_database("vault_test", driver="psycopg") as url:
        yield url


class _Server(uvicorn.Server):
    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
        return contextlib.nullcontext()  # the test runner keeps its own signal handlers


@dataclass
class VaultServer:
    url: str
    settings: Settings
    clock: Clock
    db_url: str
    creds: SpCredentials
    net: TestNetwork

    def client(self) -> VaultClient:
        return VaultClient(self.url)


@pytest_asyncio.fixture
async def vault(net: TestNetwork, db_url: str, tmp_path: Path) -> AsyncIterator[VaultServer]:
    async with serve_vault(net, db_url, tmp_path) as server:
        yield server


@pytest.fixture
def hardener(tmp_path: Path) -> Iterator[TestHardener]:
    """A real hardener (mTLS gRPC, its own data directory) with a `vault` caller."""
    with TestHardener(tmp_path) as h:
        yield h


@pytest_asyncio.fixture
async def hvault(
    net: TestNetwork, db_url: str, tmp_path: Path, hardener: TestHardener
) -> AsyncIterator[VaultServer]:
    """The vault as the hardener's caller (passphrase and recovery enabled),
    with a small PBKDF2 count so tests do not wait on it."""
    async with serve_hardened_vault(
        net, db_url, tmp_path, hardener, passphrase_history_seconds=3600
    ) as server:
        yield server


@contextlib.asynccontextmanager
async def serve_hardened_vault(
    net: TestNetwork, db_url: str, tmp_path: Path, hardener: TestHardener, **extra: Any
) -> AsyncIterator[VaultServer]:
    """serve_vault as the hardener's `vault` caller, with FAST_ITERATIONS and `extra`."""
    hardener.caller_credentials("vault")
    async with serve_vault(
        net,
        db_url,
        tmp_path,
        hardener_address=hardener.address,
        hardener_credentials=hardener.credentials_dir("vault"),
        passphrase_kdf_iterations=FAST_ITERATIONS,
        **extra,
    ) as server:
        yield server


@contextlib.asynccontextmanager
async def serve_vault(
    net: TestNetwork, db_url: str, tmp_path: Path, **extra: Any
) -> AsyncIterator[VaultServer]:
    creds = await net.add_sp("vault", "Vault")
    await asyncio.to_thread(migrations.upgrade, db_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    # Accepted connections inherit this; without it each response waits out a
    # delayed ACK (about 40 ms) when uvicorn is handed a socket.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    port = sock.getsockname()[1]
    settings = Settings(
        data_dir=tmp_path / "vault",
        credentials=creds_dir(net, "vault"),
        host="127.0.0.1",
        port=port,
        public_url=f"http://127.0.0.1:{port}",
        database_url=db_url,
        max_file_bytes=MAX_FILE_BYTES,
        history_versions=3,
        **extra,
    )
    clock = Clock()
    async with AsyncSPClient(creds) as sp:
        app = create_app(settings, sp=sp, clock=clock)
        server = _Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        try:
            yield VaultServer(
                url=f"http://127.0.0.1:{port}",
                settings=settings,
                clock=clock,
                db_url=db_url,
                creds=creds,
                net=net,
            )
        finally:
            server.should_exit = True
            await task
            sock.close()


def creds_dir(net: TestNetwork, name: str) -> Path:
    return net.root / "sps" / name


@pytest_asyncio.fixture
async def alice_phone(net: TestNetwork, tmp_path: Path) -> PhoneApp:
    return await make_phone(net, tmp_path / "alice-phone.json", label="alice phone")


@pytest_asyncio.fixture
async def bob_phone(net: TestNetwork, tmp_path: Path) -> PhoneApp:
    return await make_phone(net, tmp_path / "bob-phone.json", label="bob phone")


@pytest_asyncio.fixture
async def alice(vault: VaultServer, alice_phone: PhoneApp) -> AsyncIterator[VaultClient]:
    """Alice, logged in with her phone and registered (handle "alice")."""
    async with vault.client() as c:
        await c.login(alice_phone)
        await c.register("alice")
        yield c


@pytest_asyncio.fixture
async def bob(vault: VaultServer, bob_phone: PhoneApp) -> AsyncIterator[VaultClient]:
    async with vault.client() as c:
        await c.login(bob_phone)
        await c.register("bob")
        yield c
