"""Fixtures of the directory suite: a migrated directory on SQLite (a fresh
file per test) and on PostgreSQL (one migrated database per module, emptied
before each test), with ids "sqlite" and "postgres"."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
import sqlalchemy as sa

from authnet import migrations
from authnet.directory.sql import METADATA, SqlDirectory, make_engine
from tests.pgdb import postgres_database


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_database("authnet_dir") as url:
        migrations.upgrade(url)
        yield url


def empty(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as c:
            names = ", ".join(t.name for t in reversed(METADATA.sorted_tables))
            c.execute(sa.text(f"TRUNCATE {names}"))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def directory_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'directory.db'}"
        migrations.upgrade(url)
        return url
    url = str(request.getfixturevalue("postgres_url"))
    empty(url)
    return url


@pytest_asyncio.fixture
async def directory(directory_url: str) -> AsyncIterator[SqlDirectory]:
    d = SqlDirectory.open(directory_url)
    try:
        yield d
    finally:
        await d.close()
