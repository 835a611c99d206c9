"""Fixtures of the key proxy's tests: both stores, and a real proxy on each.

Redis is the machine's server at 127.0.0.1:6379 (AUTHNET_TEST_REDIS_URL to
change it); nothing is started: when it does not answer the tests fail,
naming it. Every test works under a prefix of its own and deletes its keys.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
import redis

from keyproxy.redis_store import RedisStore
from keyproxy.service import Limits
from keyproxy.store import DepositStore, SqliteStore
from keyproxy.testing import TestKeyProxy

REDIS_URL = os.environ.get("AUTHNET_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    client = redis_client()
    try:
        client.ping()
    except redis.exceptions.ConnectionError as e:
        pytest.fail(f"the tests need Redis at {REDIS_URL} and it does not answer: {e}")
    prefix = f"kp-test-{secrets.token_hex(6)}:"
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()


def redis_keys(prefix: str) -> list[bytes]:
    with redis_client() as c:
        return list(c.scan_iter(match=prefix + "*"))


@pytest_asyncio.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DepositStore]:
    s: DepositStore
    if request.param == "sqlite":
        s = SqliteStore(tmp_path / "deposits.db")
    else:
        s = RedisStore(REDIS_URL, prefix=request.getfixturevalue("redis_prefix"))
    try:
        yield s
    finally:
        await s.close()


def make_proxy(engine: str, data_dir: Path, prefix: str | None, **kw: object) -> TestKeyProxy:
    if engine == "sqlite":
        return TestKeyProxy(data_dir, **kw)  # type: ignore[arg-type]
    return TestKeyProxy(data_dir, store_url=REDIS_URL, redis_prefix=prefix or "", **kw)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", "redis"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def proxy(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestKeyProxy]:
    prefix = request.getfixturevalue("redis_prefix") if engine == "redis" else None
    with make_proxy(engine, tmp_path / "kp", prefix, grpc=True) as kp:
        yield kp


LOW_RATE = Limits(deposit_rate=1, deposit_burst=3, claim_rate=1, claim_burst=3)
