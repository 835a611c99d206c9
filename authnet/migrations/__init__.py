"""Alembic migrations of the network directory. `upgrade(url)` brings a
database to the newest schema; `authnet serve` and `authnet sp` call it, so
every node of a cluster does when it starts.

On PostgreSQL the migrating connection first takes a session-level advisory
lock, `MIGRATION_LOCK_KEY`, and holds it until the migrations committed: nodes
that start at once migrate one after another, and each one after the first
finds the schema at head and does nothing. A node that dies mid-migration
releases the lock with its session (and its transaction rolls back: all
steps run in one transaction, PostgreSQL's DDL being transactional). SQLite
needs no lock: the file has one writer at a time.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from authnet.config import ConfigError
from authnet.directory.backends import migration_url

HERE = Path(__file__).resolve().parent

# pg_advisory_lock key of the directory's migrations: b"authnetM" as a
# big-endian signed 64-bit integer (0x617574686E65744D). Fixed: nodes of
# different versions must agree on it. Another application migrating in the
# same database must use another key.
MIGRATION_LOCK_KEY = int.from_bytes(b"authnetM", "big", signed=True)

log = logging.getLogger(__name__)


def config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("sqlalchemy.url", migration_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the directory at `url` to `revision`. A database that is missing
    or unreachable is a ConfigError saying which one and what to do (its text
    names host, port and database, never the password)."""
    try:
        command.upgrade(config(url), revision)
    except sa.exc.OperationalError as e:
        raise ConfigError(_connect_problem(url, e)) from None


def _connect_problem(url: str, e: sa.exc.OperationalError) -> str:
    u = sa.engine.make_url(url)
    where = f"{u.host or 'localhost'}:{u.port or 5432}"
    name = u.database or "postgres"
    # libpq reports a failed connection without a SQLSTATE: its text says why.
    state = getattr(e.orig, "sqlstate", None)
    text = str(e.orig)
    if state == "3D000" or f'database "{name}" does not exist' in text:
        return (
            f"the directory database {name!r} does not exist on {where}: create it "
            f"(createdb -h {u.host or 'localhost'} -p {u.port or 5432} "
            f"-U {u.username or 'postgres'} {name}) or pass another --database"
        )
    if state in ("28P01", "28000") or "authentication failed" in text:
        return f"PostgreSQL at {where} refused the login to {name!r} (check the user and password)"
    return (
        f"cannot reach the directory database {name!r} at {where} "
        f"({type(e.orig).__name__}): is PostgreSQL running there?"
    )


def downgrade(url: str, revision: str) -> None:
    command.downgrade(config(url), revision)


@contextlib.contextmanager
def migration_lock(connection: Connection) -> Iterator[None]:
    """Hold MIGRATION_LOCK_KEY on `connection` (PostgreSQL) for the block;
    wait while another node holds it. Leaves no transaction open, so the
    migrations begin their own."""
    key = {"key": MIGRATION_LOCK_KEY}
    got = connection.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), key).scalar_one()
    if not got:
        log.info("another node is migrating the directory; waiting for it to finish")
        connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), key)
    connection.commit()
    try:
        yield
    finally:
        # If the session broke, the lock went with it: nothing left to release.
        with contextlib.suppress(sa.exc.DBAPIError):
            connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), key)
            connection.commit()
