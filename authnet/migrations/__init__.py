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
    command.upgrade(config(url), revision)


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
