"""The database connection: SQLAlchemy Core engines for SQLite (the embedded
default) and PostgreSQL, and how requests use them.

Every API operation is one function `fn(conn, ...)` that runs in one
transaction (vault_api.store): the role check and the change it guards
commit together or not at all. `Database.read` / `Database.write` run such a
function in a worker thread, so a slow query never stalls the event loop.

Write transactions lock what they guard. On PostgreSQL a write first locks
its safe's row (FOR SHARE; a key rotation's commit takes FOR UPDATE), so a
commit and an edit cannot interleave. SQLite has one writer at a time: write
transactions start with BEGIN IMMEDIATE, so two of them never both read and
then fail to upgrade to a write lock.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

import anyio
import sqlalchemy as sa
from anyio.to_thread import run_sync
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from vault_api.errors import Conflict

P = ParamSpec("P")
T = TypeVar("T")

# Worker threads for database calls; the pool holds as many connections.
DB_THREADS = 32
# A write that PostgreSQL aborts as a deadlock victim (or SQLite finds locked
# past its busy timeout) is run again, this many times in all.
WRITE_ATTEMPTS = 3


def _transient(e: sa.exc.OperationalError) -> bool:
    code = getattr(e.orig, "sqlstate", None)
    if code in ("40001", "40P01"):  # serialization_failure, deadlock_detected
        return True
    return "database is locked" in str(e.orig)


def normalize_url(url: str) -> str:
    """postgresql:// means psycopg 3 here (the only PostgreSQL driver installed)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        pool: dict[str, Any] = {} if ":memory:" in url else {"pool_size": DB_THREADS}
        engine = sa.create_engine(url, connect_args={"check_same_thread": False}, **pool)

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            # We emit BEGIN ourselves (below), so pysqlite must not.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get("vault_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    return sa.create_engine(
        url, pool_size=DB_THREADS, max_overflow=8, pool_pre_ping=True, pool_timeout=30
    )


class Database:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._limiter = anyio.CapacityLimiter(DB_THREADS)

    @classmethod
    def open(cls, url: str) -> Database:
        """Open a database already migrated to head (vault_api.migrations.upgrade)."""
        return cls(make_engine(url))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def read_sync(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kw: P.kwargs
    ) -> T:
        with self.engine.connect() as conn, conn.begin():
            return fn(conn, *args, **kw)

    def write_sync(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kw: P.kwargs
    ) -> T:
        for attempt in range(WRITE_ATTEMPTS):
            try:
                with self.engine.connect() as conn:
                    conn = conn.execution_options(vault_write=True)
                    with conn.begin():
                        return fn(conn, *args, **kw)
            except sa.exc.IntegrityError:
                # Two writers raced for one id (the check before the insert
                # passed for both): the later one is told so.
                raise Conflict(
                    "a concurrent change collided with this one; nothing was written, try again",
                    code="conflict",
                ) from None
            except sa.exc.OperationalError as e:
                if not _transient(e) or attempt == WRITE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def read(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kw: P.kwargs
    ) -> T:
        call = functools.partial(self.read_sync, fn, *args, **kw)
        return await run_sync(call, limiter=self._limiter)

    async def write(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kw: P.kwargs
    ) -> T:
        call = functools.partial(self.write_sync, fn, *args, **kw)
        return await run_sync(call, limiter=self._limiter)

    def dispose(self) -> None:
        self.engine.dispose()
