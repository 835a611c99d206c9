"""How a SqlDirectory reaches its database: SQLite inline, PostgreSQL through
an async driver and a pool.

SqlDirectory writes each operation once, as a function of a synchronous
SQLAlchemy `Connection`; a backend runs that function in a connection (`read`)
or a transaction (`write`):

- `SqliteBackend` calls it inline on the event loop. SQLite statements take
  tens of microseconds, less than a hop to a worker thread would cost.
- `PostgresBackend` runs it through SQLAlchemy's asyncio engine on asyncpg
  (`AsyncConnection.run_sync`: the same code, its I/O awaited through
  greenlet), from a pool that checks a connection before handing it out
  (pre-ping), so the pool recovers by itself when the database comes back.

The login path's single statements (a token by id or by credential id, its
last-used time, its FIDO2 counter) are compiled once, from the same
SQLAlchemy statements, to each dialect's SQL and run without SQLAlchemy's
execution layer (`Backend.hot`): on SQLite on one raw sqlite3 connection, on
PostgreSQL on a few asyncpg connections of their own in autocommit, where the
driver keeps them prepared. That is one round trip per call instead of the
pool's ping, BEGIN, the statement and COMMIT or ROLLBACK, and about a tenth
of the client CPU.

On PostgreSQL every way of not reaching the database (refused, reset, timed
out, pool exhausted, server shutting down or starting up) is raised as
`DirectoryUnavailable`, without chaining the driver's exception: its text can
quote statement parameters.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, cast

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from authnet.errors import DirectoryUnavailable

P = ParamSpec("P")
T = TypeVar("T")

POSTGRES_SCHEMES = ("postgresql", "postgres")


@dataclass(frozen=True, kw_only=True)
class PoolOptions:
    """Connections one node keeps to PostgreSQL: at most 2 * pool_size for
    SQLAlchemy's pool (pool_size kept, as many again on demand) plus
    hot_connections for the login path; 14 with the defaults. Mind the
    server's max_connections (100 by default) across all nodes."""

    pool_size: int = 5
    hot_connections: int = 4
    # Short: a node that cannot reach its database should say so quickly, and
    # the client retry on another node, rather than hold the call.
    connect_timeout_s: float = 3.0
    command_timeout_s: float = 10.0
    # How long a call waits for a free connection before it gives up.
    pool_timeout_s: float = 5.0


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() in POSTGRES_SCHEMES


def runtime_url(url: str) -> str:
    """The URL the directory runs on: PostgreSQL through asyncpg, whatever
    driver the URL names (libpq's `sslmode` is asyncpg's `ssl`)."""
    u = make_url(url)
    if u.get_backend_name() not in POSTGRES_SCHEMES:
        return url
    query = dict(u.query)
    if "sslmode" in query:
        query["ssl"] = query.pop("sslmode")
    return u.set(drivername="postgresql+asyncpg", query=query).render_as_string(hide_password=False)


def migration_url(url: str) -> str:
    """The URL Alembic migrates with: PostgreSQL through psycopg 3, a sync
    driver (asyncpg's `ssl` is libpq's `sslmode`)."""
    u = make_url(url)
    if u.get_backend_name() not in POSTGRES_SCHEMES:
        return url
    query = dict(u.query)
    if "ssl" in query:
        query["sslmode"] = query.pop("ssl")
    return u.set(drivername="postgresql+psycopg", query=query).render_as_string(hide_password=False)


def make_engine(url: str) -> Engine:
    """A synchronous engine: the directory's own on SQLite; on PostgreSQL one
    for Alembic and for inspection (psycopg, no pool kept)."""
    if is_postgres(url):
        return sa.create_engine(
            migration_url(url), poolclass=NullPool, connect_args={"connect_timeout": 5}
        )
    engine = sa.create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=5000")
        cur.close()

    return engine


# SQLSTATEs that mean "the database is not there for us right now": class 08
# (connection exceptions) and these.
_UNAVAILABLE_STATES = frozenset(
    {
        "57P01",  # admin_shutdown: the server is stopping
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now: starting up or in recovery
        "53300",  # too_many_connections
        "57014",  # query_canceled: a statement timeout
    }
)


def unreachable(e: BaseException) -> bool:
    """Whether a PostgreSQL driver or pool error means the database could not
    be reached in time (retryable), as opposed to a bug or a constraint."""
    if isinstance(e, (OSError, sa.exc.TimeoutError, asyncpg.InterfaceError)):
        return True  # refused, reset, timed out (TimeoutError is an OSError); pool exhausted
    if isinstance(e, sa.exc.DBAPIError):
        if e.connection_invalidated or isinstance(e, sa.exc.InterfaceError):
            return True
        state = getattr(e.orig, "sqlstate", None)
    else:
        state = getattr(e, "sqlstate", None)
    return isinstance(state, str) and (state.startswith("08") or state in _UNAVAILABLE_STATES)


def _unavailable(e: BaseException) -> DirectoryUnavailable:
    return DirectoryUnavailable(
        f"the network's directory database is unreachable ({type(e).__name__}); try again"
    )


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except Exception as e:
        if unreachable(e):
            raise _unavailable(e) from None
        raise


class HotStatement(Protocol):
    """One statement of the login path, compiled once; parameters by name.
    Constants in the statement (`x == 0`) are bound by the statement itself."""

    async def fetchrow(self, **params: Any) -> Sequence[Any] | None: ...
    async def execute(self, **params: Any) -> int:
        """Run it; the number of rows it changed."""
        ...


class Backend(Protocol):
    dialect: str

    async def read(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kw: P.kwargs
    ) -> T: ...
    async def write(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kw: P.kwargs
    ) -> T: ...
    def hot(self, statement: ClauseElement, *, idempotent: bool) -> HotStatement:
        """`statement` compiled for this database. `idempotent`: running it
        twice does what running it once does, so a call whose connection died
        may run it again on another."""
        ...

    def sync_engine(self) -> Engine: ...
    async def ping(self) -> bool: ...
    async def close(self) -> None: ...


@dataclass(frozen=True)
class _Compiled:
    sql: str
    order: tuple[str, ...]  # positional dialects: the parameters' names, in order
    constants: dict[str, Any]  # the values of the binds the statement holds itself


def _compiled(statement: ClauseElement, dialect: sa.Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    required = {b.key for b in compiled.binds.values() if b.required}
    constants = {k: v for k, v in compiled.params.items() if k not in required}
    return _Compiled(str(compiled), tuple(compiled.positiontup or ()), constants)


# --- SQLite -------------------------------------------------------------------

_SQLITE_NAMED = sqlite_dialect.dialect(paramstyle="named")


class _SqliteStatement:
    def __init__(self, driver: Any, compiled: _Compiled) -> None:
        self._driver = driver
        self._sql = compiled.sql  # named parameters (:token_id): sqlite3 takes a dict
        self._constants = compiled.constants

    async def fetchrow(self, **params: Any) -> Sequence[Any] | None:
        if self._constants:
            params.update(self._constants)
        row: Sequence[Any] | None = self._driver.execute(self._sql, params).fetchone()
        return row

    async def execute(self, **params: Any) -> int:
        if self._constants:
            params.update(self._constants)
        cur = self._driver.execute(self._sql, params)
        n: int = cur.rowcount
        cur.close()
        return n


class SqliteBackend:
    dialect = "sqlite"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # One DB-API connection answers the login path's statements in
        # microseconds, where a pooled SQLAlchemy round trip costs a hundred
        # or more. Autocommit: every lookup sees the latest committed rows (a
        # revocation takes effect at once) without a transaction to end.
        self._fast: Any = cast(Any, engine.raw_connection())
        self._driver: Any = self._fast.driver_connection
        self._driver.isolation_level = None

    async def read(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kw: P.kwargs
    ) -> T:
        with self.engine.connect() as c:
            return fn(c, *args, **kw)

    async def write(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kw: P.kwargs
    ) -> T:
        with self.engine.begin() as c:
            return fn(c, *args, **kw)

    def hot(self, statement: ClauseElement, *, idempotent: bool) -> HotStatement:
        # One connection, inline: nothing is ever retried.
        return _SqliteStatement(self._driver, _compiled(statement, _SQLITE_NAMED))

    def sync_engine(self) -> Engine:
        return self.engine

    async def ping(self) -> bool:
        try:
            with self.engine.connect() as c:
                c.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError:
            return False
        return True

    async def close(self) -> None:
        if self._fast is not None:
            self._fast.close()
            self._fast = None
        self.engine.dispose()


# --- PostgreSQL ---------------------------------------------------------------


class _HotConnections:
    """A few asyncpg connections of the login path's own, in autocommit.

    A connection is used by one call at a time and goes back to the idle list
    only after a clean answer; one that failed in any way is terminated. When
    one turns out dead, the idle ones went through the same outage: they are
    dropped too, and an idempotent statement that found its reused
    connection dead runs once more on a new one (whether the dead one ran it
    cannot be known).
    """

    def __init__(self, connect_kwargs: dict[str, Any], options: PoolOptions) -> None:
        self._kwargs = connect_kwargs
        self._options = options
        self._idle: list[Any] = []
        self._slots = asyncio.Semaphore(options.hot_connections)
        self._closed = False

    async def _connect(self) -> Any:
        try:
            return await asyncpg.connect(
                **self._kwargs,
                timeout=self._options.connect_timeout_s,
                command_timeout=self._options.command_timeout_s,
            )
        except Exception as e:
            if unreachable(e):
                raise _unavailable(e) from None
            raise

    def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.terminate()

    async def run(self, method: str, sql: str, args: Sequence[Any], idempotent: bool) -> Any:
        if self._closed:
            raise DirectoryUnavailable("this directory was closed; open it again")
        if not self._slots.locked():
            await self._slots.acquire()  # free: does not wait
        else:
            try:
                async with asyncio.timeout(self._options.pool_timeout_s):
                    await self._slots.acquire()
            except TimeoutError:
                raise DirectoryUnavailable(
                    "the network's directory database is busy (no free connection); try again"
                ) from None
        try:
            for attempt in range(2):
                while self._idle and self._idle[-1].is_closed():
                    self._idle.pop()  # the server closed it while idle (a restart)
                reused = bool(self._idle)
                conn = self._idle.pop() if reused else await self._connect()
                try:
                    result = await getattr(conn, method)(sql, *args)
                except BaseException as e:
                    conn.terminate()
                    if not isinstance(e, Exception) or not unreachable(e):
                        raise
                    self._drop_idle()
                    if idempotent and reused and attempt == 0 and not isinstance(e, TimeoutError):
                        continue
                    raise _unavailable(e) from None
                if self._closed:
                    conn.terminate()
                else:
                    self._idle.append(conn)
                return result
            raise AssertionError("unreachable: the second attempt returns or raises")
        finally:
            self._slots.release()

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            try:
                await conn.close(timeout=2)
            except Exception:  # closing: a dead connection is as good as closed
                conn.terminate()


class _PostgresStatement:
    def __init__(self, pool: _HotConnections, compiled: _Compiled, idempotent: bool) -> None:
        self._pool = pool
        self._sql = compiled.sql
        self._order = compiled.order
        self._constants = compiled.constants
        self._idempotent = idempotent

    def _args(self, params: dict[str, Any]) -> list[Any]:
        if self._constants:
            params.update(self._constants)
        return [params[k] for k in self._order]

    async def fetchrow(self, **params: Any) -> Sequence[Any] | None:
        row: Sequence[Any] | None = await self._pool.run(
            "fetchrow", self._sql, self._args(params), self._idempotent
        )
        return row

    async def execute(self, **params: Any) -> int:
        status: str = await self._pool.run(
            "execute", self._sql, self._args(params), self._idempotent
        )
        # A command tag: "UPDATE 1", "INSERT 0 1", "DELETE 3".
        return int(status.rsplit(" ", 1)[-1])


class PostgresBackend:
    dialect = "postgresql"

    def __init__(self, url: str, options: PoolOptions) -> None:
        self._url = runtime_url(url)
        self.options = options
        self.engine: AsyncEngine = create_async_engine(
            self._url,
            pool_size=options.pool_size,
            max_overflow=options.pool_size,
            pool_timeout=options.pool_timeout_s,
            pool_pre_ping=True,
            connect_args={
                "timeout": options.connect_timeout_s,
                "command_timeout": options.command_timeout_s,
                "server_settings": {"application_name": "authnet"},
            },
        )
        # The hot connections connect with the same arguments as the pool's.
        _, kwargs = self.engine.dialect.create_connect_args(self.engine.url)
        for sqlalchemy_only in ("prepared_statement_cache_size", "prepared_statement_name_func"):
            kwargs.pop(sqlalchemy_only, None)
        kwargs["server_settings"] = {"application_name": "authnet"}
        self._hot = _HotConnections(dict(kwargs), options)
        self._sync: Engine | None = None

    async def read(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kw: P.kwargs
    ) -> T:
        with _translated():
            async with self.engine.connect() as c:
                return await c.run_sync(fn, *args, **kw)

    async def write(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kw: P.kwargs
    ) -> T:
        with _translated():
            async with self.engine.begin() as c:
                return await c.run_sync(fn, *args, **kw)

    def hot(self, statement: ClauseElement, *, idempotent: bool) -> HotStatement:
        compiled = _compiled(statement, self.engine.dialect)
        return _PostgresStatement(self._hot, compiled, idempotent)

    def sync_engine(self) -> Engine:
        if self._sync is None:
            self._sync = make_engine(self._url)
        return self._sync

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as c:
                await c.execute(sa.text("SELECT 1"))
        except Exception:  # a health check: any failure means "not serving"
            return False
        return True

    async def close(self) -> None:
        await self._hot.close()
        await self.engine.dispose()
        if self._sync is not None:
            self._sync.dispose()
