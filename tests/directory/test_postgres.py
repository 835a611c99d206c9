"""The directory on PostgreSQL when the database is not there: every call
fails fast with DirectoryUnavailable (retryable, gRPC UNAVAILABLE), health
says so, and the same directory serves again once the database answers,
without being reopened. The database is cut off through a TCP proxy
(tests/directory/proxy.py), never by stopping the shared server."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
import pytest_asyncio
from sqlalchemy.engine import make_url

from authnet import rpc_status
from authnet.directory import TokenRecord
from authnet.directory.backends import PoolOptions, migration_url, runtime_url
from authnet.directory.sql import SqlDirectory
from authnet.errors import DirectoryUnavailable, NetworkUnavailable
from authnet.testing import TestNetwork
from tests.directory.conftest import empty
from tests.directory.proxy import TcpProxy
from tests.pgdb import POSTGRES_DSN

# Short timeouts, so a black-holed database fails these tests in seconds.
LATER = itertools.count(10**13, 3_600_000)  # future times, an hour apart
FAST = PoolOptions(connect_timeout_s=0.5, command_timeout_s=0.5, pool_timeout_s=1.0)


def test_urls_name_asyncpg_to_run_on_and_psycopg_to_migrate_with() -> None:
    for given in (
        "postgresql://u:pw@db.example:5433/authnet",
        "postgres://u:pw@db.example:5433/authnet",
        "postgresql+asyncpg://u:pw@db.example:5433/authnet",
        "postgresql+psycopg://u:pw@db.example:5433/authnet",
    ):
        assert runtime_url(given) == "postgresql+asyncpg://u:pw@db.example:5433/authnet"
        assert migration_url(given) == "postgresql+psycopg://u:pw@db.example:5433/authnet"
    # libpq spells TLS `sslmode`, asyncpg `ssl`; each driver gets its own.
    assert make_url(runtime_url("postgresql://h/db?sslmode=require")).query == {"ssl": "require"}
    assert make_url(migration_url("postgresql+asyncpg://h/db?ssl=verify-full")).query == {
        "sslmode": "verify-full"
    }
    sqlite = "sqlite:////var/lib/authnet/authnet.db"
    assert runtime_url(sqlite) == migration_url(sqlite) == sqlite


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+asyncpg"])
async def test_every_postgresql_url_form_opens(postgres_url: str, scheme: str) -> None:
    empty(postgres_url)
    url = make_url(postgres_url).set(drivername=scheme).render_as_string(hide_password=False)
    d = SqlDirectory.open(url)
    try:
        assert d.dialect == "postgresql"
        assert await d.ping() is True
        assert await d.get_token(secrets.token_bytes(16)) is None
        assert await d.list_sps() == []
    finally:
        await d.close()


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


def through(postgres_url: str, port: int) -> str:
    u = make_url(postgres_url).set(host="127.0.0.1", port=port)
    return u.render_as_string(hide_password=False)


def calls(d: SqlDirectory, token_id: bytes) -> dict[str, Callable[[], Awaitable[Any]]]:
    """One call of each kind: hot statements (reads, idempotent and not), reads, writes."""
    spid, user = secrets.token_bytes(16), secrets.token_bytes(16)
    return {
        "get_token": lambda: d.get_token(token_id),
        # Minutes apart, so the directory does not skip it as too recent.
        "touch_token": lambda: d.touch_token(token_id, next(LATER)),
        "token_for_credential": lambda: d.token_for_credential(token_id),
        "advance_sign_count": lambda: d.advance_sign_count(token_id, next(LATER)),
        "get_sp": lambda: d.get_sp(spid),
        "list_tokens": lambda: d.list_tokens(user),
        "read_data": lambda: d.read_data(spid, user, "c"),
        "write_data": lambda: d.write_data(spid, user, "c", b"x", 3, 1),
        "revoke_token": lambda: d.revoke_token(token_id, 1),
    }


async def assert_unavailable(call: Callable[[], Awaitable[Any]], secret: bytes) -> None:
    t = time.monotonic()
    with pytest.raises(DirectoryUnavailable) as e:
        await call()
    assert time.monotonic() - t < 3.0  # fails fast: short connect and command timeouts
    err = e.value
    assert isinstance(err, NetworkUnavailable)  # what clients retry, on another node
    assert err.code == "directory_unavailable"
    assert "try again" in err.message
    assert secret.hex() not in err.message
    assert rpc_status.status_of(err) is grpc.StatusCode.UNAVAILABLE
    assert err.__suppress_context__  # the driver's text (which can quote parameters) is not chained


async def test_a_closed_port_gives_directory_unavailable_on_every_call() -> None:
    d = SqlDirectory.open(f"postgresql://postgres@127.0.0.1:{closed_port()}/authnet", FAST)
    try:
        token_id = secrets.token_bytes(16)
        for call in calls(d, token_id).values():
            await assert_unavailable(call, token_id)
        assert await d.ping() is False
    finally:
        await d.close()


@pytest_asyncio.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    p = await TcpProxy("127.0.0.1", 5432).start()
    try:
        yield p
    finally:
        await p.close()


async def a_token(d: SqlDirectory) -> TokenRecord:
    user = secrets.token_bytes(16)
    t = TokenRecord(
        token_id=secrets.token_bytes(16),
        user_id=user,
        kind=1,
        algorithm=1,
        public_key=secrets.token_bytes(65),
        label="phone",
        created_ms=1,
    )
    await d.create_account(user, t, 1)
    return t


async def assert_serving(d: SqlDirectory, token: TokenRecord) -> None:
    assert await d.ping() is True
    got = await d.get_token(token.token_id)
    assert got is not None
    assert dataclasses.replace(got, last_used_ms=None) == token  # touched, else the same
    assert [t.token_id for t in await d.list_tokens(token.user_id)] == [token.token_id]
    await d.touch_token(token.token_id, next(LATER))


@pytest.mark.parametrize("outage", ["drop", "stall"])
async def test_the_same_directory_serves_again_when_the_database_is_back(
    postgres_url: str, proxy: TcpProxy, outage: str
) -> None:
    empty(postgres_url)
    d = SqlDirectory.open(through(postgres_url, proxy.port), FAST)
    try:
        token = await a_token(d)
        await assert_serving(d, token)  # both pools hold live connections now
        getattr(proxy, outage)()  # "drop": resets; "stall": a black hole
        for call in calls(d, token.token_id).values():
            await assert_unavailable(call, token.token_id)
        assert await d.ping() is False
        before = proxy.accepted
        proxy.restore()
        await assert_serving(d, token)
        assert proxy.accepted > before  # on new connections
    finally:
        await d.close()


async def test_connections_cut_while_idle_are_replaced_without_an_error(
    postgres_url: str, proxy: TcpProxy
) -> None:
    """A database restart between two calls: the pool finds its connections
    dead and makes new ones; the caller sees nothing."""
    empty(postgres_url)
    d = SqlDirectory.open(through(postgres_url, proxy.port), FAST)
    try:
        token = await a_token(d)
        await assert_serving(d, token)
        proxy.drop()
        proxy.restore()
        await assert_serving(d, token)
        assert await d.read_data(secrets.token_bytes(16), token.user_id, "c") is not None
        # A statement that is not retried (it is not idempotent) does not meet a
        # connection the server closed while it was idle either.
        await d.advance_sign_count(token.token_id, 1)
        proxy.drop()
        proxy.restore()
        await asyncio.sleep(0.1)  # the closed sockets are noticed
        assert await d.advance_sign_count(token.token_id, 2) is True
    finally:
        await d.close()


async def test_more_concurrent_logins_than_hot_connections_all_get_answers(
    postgres_url: str,
) -> None:
    empty(postgres_url)
    d = SqlDirectory.open(postgres_url, PoolOptions(hot_connections=2, pool_size=2))
    try:
        token = await a_token(d)
        got = await asyncio.gather(*(d.get_token(token.token_id) for _ in range(200)))
        assert got == [token] * 200
        # And SQLAlchemy's pool (at most 2 + 2 connections here) queues the rest.
        lists = await asyncio.gather(*(d.list_tokens(token.user_id) for _ in range(50)))
        assert lists == [[token]] * 50  # (never touched here)
    finally:
        await d.close()


async def test_a_node_sizes_its_pool_from_its_settings(postgres_url: str, tmp_path: Path) -> None:
    """database_pool_size and database_hot_connections (docs/operations.md):
    a node holds at most 2 * pool + hot connections, however many calls wait."""
    empty(postgres_url)
    name = make_url(postgres_url).database
    async with TestNetwork(
        tmp_path, database_url=postgres_url, database_pool_size=1, database_hot_connections=1
    ) as net:
        d = net.network.directory
        token = await a_token(d)
        lists = await asyncio.gather(*(d.list_tokens(token.user_id) for _ in range(50)))
        got = await asyncio.gather(*(d.get_token(token.token_id) for _ in range(50)))
        assert lists == [[token]] * 50
        assert got == [token] * 50
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = %s AND application_name = 'authnet'",
                (name,),
            ).fetchone()
        assert row is not None
        assert 1 <= row[0] <= 3
