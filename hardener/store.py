"""SQLite persistence: callers and their certificates, sealed key versions,
per-(caller, user) budgets, attempts, and which key version each record uses.

The server shares one connection inside its event loop: a request does its
reads and writes with no await in between (so they are atomic with respect to
other requests) inside an open transaction, then awaits `durable()`, which
commits once for every request of that loop iteration (group commit) before
any of them answers. Operator commands (`hardener rotate`, `unlock`, ...) use
their own connection and `transaction()`; they bump a generation counter the
server polls, so it notices new keys and revocations.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hardener.errors import StoreError

USER_CACHE = 200_000
_ABSENT = object()

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS callers (
    name TEXT PRIMARY KEY, created_at REAL NOT NULL, revoked_at REAL);
CREATE TABLE IF NOT EXISTS certificates (
    fingerprint BLOB PRIMARY KEY, caller TEXT NOT NULL REFERENCES callers(name),
    serial TEXT NOT NULL, not_after REAL NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS keys (
    version INTEGER PRIMARY KEY, state TEXT NOT NULL, created_at REAL NOT NULL,
    retired_at REAL, public_key BLOB NOT NULL,
    sealed_oprf BLOB, sealed_hash BLOB, sealed_wrap BLOB);
CREATE TABLE IF NOT EXISTS users (
    caller TEXT NOT NULL, user_id TEXT NOT NULL, failures INTEGER NOT NULL DEFAULT 0,
    last_attempt_at REAL NOT NULL DEFAULT 0, success_key BLOB, key_version INTEGER,
    PRIMARY KEY (caller, user_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS used_attempts (
    attempt_id BLOB PRIMARY KEY, created_at REAL NOT NULL, used_at REAL NOT NULL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS secrets (
    name TEXT PRIMARY KEY, sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    caller TEXT NOT NULL, record_id TEXT NOT NULL, key_version INTEGER NOT NULL,
    PRIMARY KEY (caller, record_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_by_version ON records (key_version);
CREATE INDEX IF NOT EXISTS users_by_version ON users (key_version);
"""


@dataclass(frozen=True, kw_only=True)
class UserRow:
    failures: int
    last_attempt_at: float
    success_key: bytes | None
    key_version: int | None


@dataclass(frozen=True, kw_only=True)
class KeyRow:
    version: int
    state: str
    created_at: float
    retired_at: float | None
    public_key: bytes
    sealed_oprf: bytes | None
    sealed_hash: bytes | None
    sealed_wrap: bytes | None

    def __repr__(self) -> str:
        return f"KeyRow(version={self.version}, state={self.state!r})"


@dataclass(frozen=True, kw_only=True)
class CallerRow:
    name: str
    created_at: float
    revoked_at: float | None
    certificates: int


class Store:
    def __init__(self, path: Path, *, create: bool = False) -> None:
        if not create and not path.exists():
            raise StoreError(f"no hardener database at {path}: run `hardener init`")
        self.path = path
        if create and not path.exists():
            # Owner only (SQLite gives its -wal and -shm files the same mode).
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a counted evaluation survives a power cut, not just a crash
        # (group commit amortises the fsync).
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("PRAGMA busy_timeout=5000")
        self.conn.execute("PRAGMA foreign_keys=ON")
        if create:
            self.conn.executescript(SCHEMA)
            self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")
        self._waiters: list[asyncio.Future[None]] = []
        self._flush_scheduled = False
        self._committing = False
        self._idle: asyncio.Event | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="commit")
        # The server's write-through cache of user rows ((caller, user_id) -> row or
        # None for no row), and counted evaluations not yet written (one
        # executemany per group of requests). Only the server's connection uses
        # them; operator commands bump the generation, which clears the cache.
        self._users: dict[tuple[str, str], UserRow | None] = {}
        self._pending_counts: list[tuple[str, str, float]] = []
        # Called after each group commit (the server flushes its audit log there).
        self.on_commit: Callable[[], None] | None = None

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        with contextlib.suppress(sqlite3.Error):
            if self.conn.in_transaction:
                self.conn.commit()
        self.conn.close()

    # -- transactions ---------------------------------------------------------

    def begin(self) -> None:
        """Open the shared write transaction if none is open (server side)."""
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN IMMEDIATE")

    async def writable(self) -> None:
        """Wait until no group commit is running (the connection is the loop's again).

        A request awaits this before its reads and writes; from then on it does
        not await until `durable()`, so its reads and writes are atomic.
        """
        while self._committing:
            if self._idle is None:
                self._idle = asyncio.Event()
            await self._idle.wait()

    async def durable(self) -> None:
        """Wait until everything written so far is committed (group commit).

        The commit (an fsync, with synchronous=FULL) runs in a worker thread so
        the event loop keeps serving; requests arriving meanwhile wait in
        `writable()` and join the next commit.
        """
        self._write_pending()
        if not self.conn.in_transaction:
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._waiters.append(fut)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._start_flush, loop)
        await fut

    def _start_flush(self, loop: asyncio.AbstractEventLoop) -> None:
        self._flush_scheduled = False
        waiters, self._waiters = self._waiters, []
        if not self.conn.in_transaction:
            self._finish(waiters, None)
            return
        self._committing = True
        if self._idle is not None:
            self._idle.clear()
        done = loop.run_in_executor(self._executor, self._commit)
        done.add_done_callback(lambda f: self._finish(waiters, f.exception()))

    def _commit(self) -> None:
        try:
            self.conn.commit()
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                self.conn.rollback()
            raise

    def _finish(self, waiters: list[asyncio.Future[None]], error: BaseException | None) -> None:
        self._committing = False
        if error is not None:
            self._users.clear()  # the cache may hold what was rolled back
        if self._idle is not None:
            self._idle.set()
        if error is None and self.on_commit is not None:
            self.on_commit()
        for f in waiters:
            if f.done():
                continue
            if error is None:
                f.set_result(None)
            else:
                f.set_exception(
                    StoreError(f"the hardener's database refused a write ({type(error).__name__})")
                )

    def rollback(self) -> None:
        self._pending_counts.clear()
        self._users.clear()
        if self.conn.in_transaction:
            self.conn.rollback()

    def invalidate(self) -> None:
        """Forget cached user rows (another process changed the database)."""
        self._users.clear()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One committed unit of work (operator commands), bumping the generation."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.conn.execute("UPDATE meta SET v = CAST(v AS INTEGER) + 1 WHERE k = 'generation'")
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise

    def generation(self) -> int:
        row = self.conn.execute("SELECT v FROM meta WHERE k = 'generation'").fetchone()
        return int(row[0]) if row else 0

    # -- callers ----------------------------------------------------------------

    def add_caller(self, name: str, now: float) -> None:
        self.conn.execute("INSERT OR IGNORE INTO callers VALUES (?, ?, NULL)", (name, now))

    def caller(self, name: str) -> CallerRow | None:
        for c in self.callers():
            if c.name == name:
                return c
        return None

    def add_certificate(
        self, *, fingerprint: bytes, caller: str, serial: int, not_after: float, now: float
    ) -> None:
        self.conn.execute(
            "INSERT INTO certificates VALUES (?, ?, ?, ?, ?)",
            (fingerprint, caller, str(serial), not_after, now),
        )

    def revoke_caller(self, name: str, now: float) -> bool:
        cur = self.conn.execute(
            "UPDATE callers SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", (now, name)
        )
        return cur.rowcount > 0

    def callers(self) -> list[CallerRow]:
        rows = self.conn.execute(
            "SELECT c.name, c.created_at, c.revoked_at, COUNT(f.fingerprint) FROM callers c"
            " LEFT JOIN certificates f ON f.caller = c.name GROUP BY c.name ORDER BY c.name"
        ).fetchall()
        return [
            CallerRow(name=r[0], created_at=r[1], revoked_at=r[2], certificates=r[3]) for r in rows
        ]

    def certificate_table(self) -> dict[bytes, tuple[str, bool]]:
        """fingerprint -> (caller, revoked)."""
        rows = self.conn.execute(
            "SELECT f.fingerprint, c.name, c.revoked_at IS NOT NULL"
            " FROM certificates f JOIN callers c ON c.name = f.caller"
        ).fetchall()
        return {bytes(r[0]): (r[1], bool(r[2])) for r in rows}

    # -- keys -------------------------------------------------------------------

    def add_key(self, row: KeyRow) -> None:
        self.conn.execute(
            "INSERT INTO keys VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.version,
                row.state,
                row.created_at,
                row.retired_at,
                row.public_key,
                row.sealed_oprf,
                row.sealed_hash,
                row.sealed_wrap,
            ),
        )

    def set_key_state(self, version: int, state: str, now: float | None = None) -> None:
        if state == "retired":
            # A retired version's secrets are erased, not just marked.
            self.conn.execute(
                "UPDATE keys SET state = ?, retired_at = ?, sealed_oprf = NULL,"
                " sealed_hash = NULL, sealed_wrap = NULL WHERE version = ?",
                (state, now, version),
            )
        else:
            self.conn.execute("UPDATE keys SET state = ? WHERE version = ?", (state, version))

    def key_rows(self) -> list[KeyRow]:
        rows = self.conn.execute(
            "SELECT version, state, created_at, retired_at, public_key, sealed_oprf,"
            " sealed_hash, sealed_wrap FROM keys ORDER BY version"
        ).fetchall()
        return [
            KeyRow(
                version=r[0],
                state=r[1],
                created_at=r[2],
                retired_at=r[3],
                public_key=bytes(r[4]),
                sealed_oprf=None if r[5] is None else bytes(r[5]),
                sealed_hash=None if r[6] is None else bytes(r[6]),
                sealed_wrap=None if r[7] is None else bytes(r[7]),
            )
            for r in rows
        ]

    # -- users and attempts -----------------------------------------------------

    def user(self, caller: str, user_id: str) -> UserRow | None:
        key = (caller, user_id)
        hit = self._users.get(key, _ABSENT)
        if hit is not _ABSENT:
            return hit  # type: ignore[return-value]
        r = self.conn.execute(
            "SELECT failures, last_attempt_at, success_key, key_version FROM users"
            " WHERE caller = ? AND user_id = ?",
            key,
        ).fetchone()
        row = (
            None
            if r is None
            else UserRow(
                failures=r[0],
                last_attempt_at=r[1],
                success_key=None if r[2] is None else bytes(r[2]),
                key_version=r[3],
            )
        )
        if len(self._users) >= USER_CACHE:
            self._users.clear()
        self._users[key] = row
        return row

    def _cached(self, caller: str, user_id: str, row: UserRow) -> None:
        self._users[(caller, user_id)] = row

    def count_attempt(self, *, caller: str, user_id: str, now: float) -> None:
        """One more evaluation without a proven success (written at the next durable())."""
        old = self.user(caller, user_id)
        self._cached(
            caller,
            user_id,
            UserRow(
                failures=(old.failures if old else 0) + 1,
                last_attempt_at=now,
                success_key=old.success_key if old else None,
                key_version=old.key_version if old else None,
            ),
        )
        self._pending_counts.append((caller, user_id, now))

    def _write_pending(self) -> None:
        if not self._pending_counts:
            return
        rows, self._pending_counts = self._pending_counts, []
        self.begin()
        self.conn.executemany(
            "INSERT INTO users (caller, user_id, failures, last_attempt_at) VALUES (?, ?, 1, ?)"
            " ON CONFLICT (caller, user_id) DO UPDATE SET failures = failures + 1,"
            " last_attempt_at = excluded.last_attempt_at",
            rows,
        )

    def attempt_used(self, attempt_id: bytes) -> bool:
        r = self.conn.execute(
            "SELECT 1 FROM used_attempts WHERE attempt_id = ?", (attempt_id,)
        ).fetchone()
        return r is not None

    def record_success(
        self, *, caller: str, user_id: str, attempt_id: bytes, created_at: float, key_version: int,
        now: float,
    ) -> None:  # fmt: skip
        """A proven success: the attempt used, the count reset, the record's version noted."""
        self._write_pending()
        self.begin()
        self.conn.execute(
            "INSERT INTO used_attempts VALUES (?, ?, ?)", (attempt_id, created_at, now)
        )
        self.conn.execute(
            "UPDATE users SET failures = 0, key_version = ? WHERE caller = ? AND user_id = ?",
            (key_version, caller, user_id),
        )
        old = self.user(caller, user_id)
        if old is not None:
            self._cached(
                caller,
                user_id,
                UserRow(
                    failures=0,
                    last_attempt_at=old.last_attempt_at,
                    success_key=old.success_key,
                    key_version=key_version,
                ),
            )

    def set_success_key(self, caller: str, user_id: str, key: bytes) -> None:
        self._write_pending()
        self.begin()
        self.conn.execute(
            "INSERT INTO users (caller, user_id, success_key) VALUES (?, ?, ?)"
            " ON CONFLICT (caller, user_id) DO UPDATE SET success_key = excluded.success_key",
            (caller, user_id, key),
        )
        self._users.pop((caller, user_id), None)

    def reset_user(self, caller: str, user_id: str) -> bool:
        """The operator's recovery step: the failure count back to zero."""
        cur = self.conn.execute(
            "UPDATE users SET failures = 0, last_attempt_at = 0 WHERE caller = ? AND user_id = ?",
            (caller, user_id),
        )
        self._users.pop((caller, user_id), None)
        return cur.rowcount > 0

    def forget_success_key(self, caller: str, user_id: str) -> bool:
        cur = self.conn.execute(
            "UPDATE users SET success_key = NULL WHERE caller = ? AND user_id = ?",
            (caller, user_id),
        )
        self._users.pop((caller, user_id), None)
        return cur.rowcount > 0

    def expire_attempts(self, before: float) -> int:
        """Forget used attempts older than `before` (they are refused as expired anyway)."""
        cur = self.conn.execute("DELETE FROM used_attempts WHERE created_at < ?", (before,))
        return cur.rowcount

    # -- sealed service secrets -------------------------------------------------

    def secret(self, name: str) -> bytes | None:
        r = self.conn.execute("SELECT sealed FROM secrets WHERE name = ?", (name,)).fetchone()
        return None if r is None else bytes(r[0])

    def set_secret(self, name: str, sealed: bytes) -> None:
        self.conn.execute("INSERT INTO secrets VALUES (?, ?)", (name, sealed))

    # -- records ----------------------------------------------------------------

    def set_record_version(self, caller: str, record_id: str, version: int) -> None:
        self.conn.execute(
            "INSERT INTO records VALUES (?, ?, ?) ON CONFLICT (caller, record_id)"
            " DO UPDATE SET key_version = excluded.key_version",
            (caller, record_id, version),
        )

    def users_per_version(self) -> dict[int, int]:
        rows = self.conn.execute(
            "SELECT key_version, COUNT(*) FROM users WHERE key_version IS NOT NULL"
            " GROUP BY key_version"
        ).fetchall()
        return {r[0]: r[1] for r in rows}

    def records_per_version(self) -> dict[int, int]:
        rows = self.conn.execute(
            "SELECT key_version, COUNT(*) FROM records GROUP BY key_version"
        ).fetchall()
        return {r[0]: r[1] for r in rows}
