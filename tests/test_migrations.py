"""The Alembic migrations are the schema: after upgrading, the database matches
the metadata the code queries, on SQLite and PostgreSQL, and every step can be
undone and redone. On PostgreSQL, nodes that start at once migrate one after
another under an advisory lock, and the schema is migrated exactly once."""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from authnet import migrations
from authnet.config import ConfigError
from authnet.directory.sql import METADATA, make_engine
from tests.helpers import serve_command
from tests.pgdb import admin_connection, postgres_database

ROOT = Path(__file__).resolve().parent.parent


def diff(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            return list(compare_metadata(MigrationContext.configure(c), METADATA))
    finally:
        engine.dispose()


def head(url: str) -> str:
    script = ScriptDirectory.from_config(migrations.config(url))
    revision = script.get_current_head()
    assert revision is not None
    return revision


def version_rows(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            return [r[0] for r in c.execute(sa.text("SELECT version_num FROM alembic_version"))]
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'a.db'}"
        return
    with postgres_database("authnet_migr") as pg:
        yield pg


def test_head_matches_the_metadata(url: str) -> None:
    migrations.upgrade(url)
    assert diff(url) == []
    assert version_rows(url) == [head(url)]


def test_every_step_goes_down_and_up_again(url: str) -> None:
    script = ScriptDirectory.from_config(migrations.config(url))
    revisions = [r.revision for r in script.walk_revisions()]
    assert revisions[-1] == "0001"
    migrations.upgrade(url)
    for revision in revisions[1:]:
        migrations.downgrade(url, revision)
        assert version_rows(url) == [revision]
    migrations.downgrade(url, "base")
    migrations.upgrade(url)
    assert diff(url) == []


def test_the_migration_lock_key_is_the_documented_constant() -> None:
    # Nodes of different versions must agree on it: it must never change.
    assert migrations.MIGRATION_LOCK_KEY == 0x617574686E65744D
    assert -(2**63) <= migrations.MIGRATION_LOCK_KEY < 2**63  # a PostgreSQL bigint


def _upgrade_process(url: str, barrier: Path | None = None) -> subprocess.Popen[str]:
    """`migrations.upgrade(url)` in a process of its own, as a node runs it.
    With `barrier` (a directory), it imports everything, says it is ready
    there, and waits for `go`, so several processes upgrade at one moment."""
    code = (
        "import os, sys, time\n"
        "from authnet import migrations\n"
        "barrier = sys.argv[2]\n"
        "if barrier:\n"
        "    open(os.path.join(barrier, f'ready-{os.getpid()}'), 'w').close()\n"
        "    while not os.path.exists(os.path.join(barrier, 'go')):\n"
        "        time.sleep(0.001)\n"
        "migrations.upgrade(sys.argv[1])\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, url, str(barrier or "")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_four_nodes_upgrading_a_fresh_database_at_once_all_succeed(tmp_path: Path) -> None:
    with postgres_database("authnet_migr") as url:
        procs = [_upgrade_process(url, tmp_path) for _ in range(4)]
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("ready-*"))) < len(procs):
            assert time.monotonic() < deadline, "the upgrade processes did not start"
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            time.sleep(0.01)
        (tmp_path / "go").touch()
        results = [p.communicate(timeout=90) for p in procs]
        failures = [(p.returncode, err[-1500:]) for p, (_, err) in zip(procs, results, strict=True)]
        assert all(rc == 0 for rc, _ in failures), failures
        assert version_rows(url) == [head(url)]  # migrated once: one row, at head
        assert diff(url) == []


def test_an_upgrade_waits_while_another_node_holds_the_lock() -> None:
    with postgres_database("authnet_migr") as url:
        holder = psycopg.connect(url, autocommit=True)
        try:
            holder.execute("SELECT pg_advisory_lock(%s)", (migrations.MIGRATION_LOCK_KEY,))
            proc = _upgrade_process(url)
            deadline = time.monotonic() + 60
            while True:  # until it waits on the lock (start-up is slow on a busy machine)
                assert proc.poll() is None, proc.communicate()[1][-1500:]
                waiting = holder.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND database = (SELECT oid FROM pg_database"
                    " WHERE datname = current_database())"
                ).fetchone()
                if waiting == (1,):
                    break
                assert time.monotonic() < deadline, "the upgrade never waited on the lock"
                time.sleep(0.05)
            time.sleep(0.5)
            assert proc.poll() is None  # still waiting
            tables = holder.execute(
                "SELECT count(*) FROM pg_tables WHERE tablename = 'alembic_version'"
            ).fetchone()
            assert tables == (0,)  # and it has not started migrating
            holder.execute("SELECT pg_advisory_unlock(%s)", (migrations.MIGRATION_LOCK_KEY,))
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err[-1500:]
        finally:
            holder.close()
        assert version_rows(url) == [head(url)]
        # And the lock is free again once the upgrade is done.
        with psycopg.connect(url, autocommit=True) as probe:
            got = probe.execute(
                "SELECT pg_try_advisory_lock(%s)", (migrations.MIGRATION_LOCK_KEY,)
            ).fetchone()
            assert got == (True,)


def test_a_missing_database_is_a_clear_error_without_the_password() -> None:
    admin_connection().close()  # the server answers (started if it was down)
    name = f"authnet_missing_{secrets.token_hex(4)}"
    url = f"postgresql://postgres:not-a-real-pw@127.0.0.1:5432/{name}"
    with pytest.raises(ConfigError) as e:
        migrations.upgrade(url)
    message = str(e.value)
    assert f"'{name}' does not exist on 127.0.0.1:5432" in message
    assert f"createdb -h 127.0.0.1 -p 5432 -U postgres {name}" in message
    assert "not-a-real-pw" not in message
    assert e.value.__cause__ is None
    assert e.value.__suppress_context__


def test_an_unreachable_database_server_is_a_clear_error() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConfigError) as e:
        migrations.upgrade(f"postgresql://postgres:pw@127.0.0.1:{port}/authnet")
    assert str(e.value).startswith(
        f"cannot reach the directory database 'authnet' at 127.0.0.1:{port}"
    )
    assert "pw@" not in str(e.value)


def test_serve_on_a_missing_database_exits_with_the_message(tmp_path: Path) -> None:
    name = f"authnet_missing_{secrets.token_hex(4)}"
    database = f"postgresql://postgres@127.0.0.1:5432/{name}"
    r = subprocess.run(
        serve_command(tmp_path, "--database", database),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert r.returncode == 2, r.stderr[-2000:]
    assert f"authnet: the directory database '{name}' does not exist" in r.stderr
    assert "Traceback" not in r.stderr
