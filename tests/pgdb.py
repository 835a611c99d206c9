"""PostgreSQL for tests: the server at 127.0.0.1:5432 (trust auth, user
postgres), or the libpq DSN in AUTHNET_TEST_POSTGRES (VAULT_TEST_POSTGRES is
still read, for the vault's tests).

`postgres_database()` creates a database with a random name and drops it
afterwards (WITH (FORCE): connections a failed test left open do not keep it
alive). When the server does not answer and it is the local one, the helper
starts it (`pg_ctlcluster`); when it still does not answer the test fails,
loudly: the code under test claims to support PostgreSQL, so a missing server
is a failure, never a skip.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

POSTGRES_DSN = os.environ.get(
    "AUTHNET_TEST_POSTGRES",
    os.environ.get("VAULT_TEST_POSTGRES", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"),
)
START_TIMEOUT_S = 30


def _connect() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(POSTGRES_DSN, autocommit=True, connect_timeout=5)


def _start_local_server() -> str:
    """Start the Debian cluster; what went wrong, or "" once it answers."""
    versions = sorted(p.name for p in Path("/etc/postgresql").glob("*") if p.is_dir())
    if not versions:
        return "no cluster in /etc/postgresql to start"
    done = subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
        check=False,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    last = done.stderr.strip()
    while time.monotonic() < deadline:
        try:
            _connect().close()
            return ""
        except psycopg.OperationalError as e:
            last = f"{done.stderr.strip()} {e}".strip()
            time.sleep(0.2)
    return last or "it did not start"


def admin_connection() -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit connection to the server's maintenance database."""
    try:
        return _connect()
    except psycopg.OperationalError as first:
        local = "127.0.0.1" in POSTGRES_DSN or "localhost" in POSTGRES_DSN
        why = _start_local_server() if local else str(first)
        if not why:
            return _connect()
        pytest.fail(
            f"PostgreSQL is not reachable ({POSTGRES_DSN}): {why}. These tests run on "
            "PostgreSQL; start it or set AUTHNET_TEST_POSTGRES to a libpq DSN.",
            pytrace=False,
        )


@contextlib.contextmanager
def postgres_database(prefix: str = "authnet_test", driver: str | None = None) -> Iterator[str]:
    """A fresh, empty database; yields its URL, `postgresql://` or, with
    `driver`, `postgresql+<driver>://`."""
    admin = admin_connection()
    name = f"{prefix}_{secrets.token_hex(6)}"
    info = admin.info
    scheme = f"postgresql+{driver}" if driver else "postgresql"
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
        yield f"{scheme}://{info.user}@{info.host}:{info.port}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
