"""Where deposits live: one interface, two engines (docs/keyproxy.md 5).

`SqliteStore` (the default, a file in the data directory) and
`keyproxy.redis_store.RedisStore` pass the same conformance suite
(tests/keyproxy/test_store.py). Every method is atomic on its own; `take` is
the claim: the blob is read and deleted in one step, so of any number of
concurrent claims exactly one gets it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from keyproxy.deposits import Record, conditions_from_json, conditions_json

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Stats:
    waiting: int
    claimed: int
    burned: int
    expired: int
    stored_bytes: int


class DepositStore(Protocol):
    async def put(self, record: Record) -> None:
        """Store a new deposit (its token hash is new: 32 random bytes)."""

    async def get(self, token_hash: bytes) -> Record | None:
        """The deposit (blob included while it waits), or None once purged."""

    async def take(self, token_hash: bytes, now_ms: int) -> bytes | None:
        """The blob of a waiting, unexpired deposit, which becomes `claimed`
        in the same step; None if it is not (any longer) there to take."""

    async def fail(self, token_hash: bytes, now_ms: int, max_failures: int) -> int | None:
        """Count a failed claim condition; at `max_failures` the deposit is
        burned (blob deleted). The failures so far, or None if it is not waiting."""

    async def sweep(self, now_ms: int) -> int:
        """Delete expired blobs and purge tombstones past their time; how many rows changed."""

    async def stats(self, now_ms: int) -> Stats: ...

    async def stored_bytes(self) -> int: ...

    async def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS deposits (
    token_hash BLOB PRIMARY KEY,
    blob BLOB,
    size INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    conditions TEXT NOT NULL,
    state TEXT NOT NULL,
    claimed_ms INTEGER,
    failures INTEGER NOT NULL DEFAULT 0,
    purge_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deposits_purge ON deposits (purge_ms);
CREATE INDEX IF NOT EXISTS deposits_expires ON deposits (expires_ms);
"""


def _record(row: sqlite3.Row) -> Record:
    return Record(
        token_hash=row["token_hash"],
        blob=row["blob"],
        size=row["size"],
        created_ms=row["created_ms"],
        expires_ms=row["expires_ms"],
        conditions=conditions_from_json(row["conditions"]),
        state=row["state"],
        claimed_ms=row["claimed_ms"],
        failures=row["failures"],
        purge_ms=row["purge_ms"],
    )


class SqliteStore:
    """Deposits in one SQLite file. `secure_delete` overwrites a claimed blob's
    bytes in the file, and the rollback journal (not WAL, whose frames would
    keep old pages) is deleted after each commit, so a claimed blob is gone
    from disk, not only from the table. Writes take the database lock first
    (BEGIN IMMEDIATE), so several processes may share the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=DELETE")
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.to_thread(self._locked, fn)

    def _locked(self, fn: Callable[[], T]) -> T:
        with self._lock:
            return fn()

    async def _tx(self, fn: Callable[[], T]) -> T:
        """`fn` in one write transaction (BEGIN IMMEDIATE takes the lock first)."""

        def run() -> T:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                out = fn()
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return out

        return await self._run(run)

    async def put(self, record: Record) -> None:
        def run() -> None:
            self._db.execute(
                "INSERT INTO deposits VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    record.token_hash,
                    record.blob,
                    record.size,
                    record.created_ms,
                    record.expires_ms,
                    conditions_json(record.conditions),
                    record.state,
                    record.claimed_ms,
                    record.failures,
                    record.purge_ms,
                ),
            )

        await self._tx(run)

    async def get(self, token_hash: bytes) -> Record | None:
        def run() -> Record | None:
            row = self._db.execute(
                "SELECT * FROM deposits WHERE token_hash = ?", (token_hash,)
            ).fetchone()
            return None if row is None else _record(row)

        result: Record | None = await self._run(run)
        return result

    async def take(self, token_hash: bytes, now_ms: int) -> bytes | None:
        def run() -> bytes | None:
            row = self._db.execute(
                "SELECT blob FROM deposits WHERE token_hash = ? AND state = 'waiting' "
                "AND expires_ms > ? AND blob IS NOT NULL",
                (token_hash, now_ms),
            ).fetchone()
            if row is None:
                return None
            self._db.execute(
                "UPDATE deposits SET blob = NULL, state = 'claimed', claimed_ms = ? "
                "WHERE token_hash = ?",
                (now_ms, token_hash),
            )
            blob: bytes = row["blob"]
            return blob

        result: bytes | None = await self._tx(run)
        return result

    async def fail(self, token_hash: bytes, now_ms: int, max_failures: int) -> int | None:
        def run() -> int | None:
            row = self._db.execute(
                "SELECT failures FROM deposits WHERE token_hash = ? AND state = 'waiting' "
                "AND expires_ms > ?",
                (token_hash, now_ms),
            ).fetchone()
            if row is None:
                return None
            failures = int(row["failures"]) + 1
            if failures >= max_failures:
                self._db.execute(
                    "UPDATE deposits SET failures = ?, blob = NULL, state = 'burned' "
                    "WHERE token_hash = ?",
                    (failures, token_hash),
                )
            else:
                self._db.execute(
                    "UPDATE deposits SET failures = ? WHERE token_hash = ?", (failures, token_hash)
                )
            return failures

        result: int | None = await self._tx(run)
        return result

    async def sweep(self, now_ms: int) -> int:
        def run() -> int:
            n = self._db.execute("DELETE FROM deposits WHERE purge_ms <= ?", (now_ms,)).rowcount
            n += self._db.execute(
                "UPDATE deposits SET blob = NULL WHERE expires_ms <= ? AND blob IS NOT NULL",
                (now_ms,),
            ).rowcount
            return int(n)

        result: int = await self._tx(run)
        return result

    async def stats(self, now_ms: int) -> Stats:
        def run() -> Stats:
            row = self._db.execute(
                "SELECT "
                "SUM(state = 'waiting' AND expires_ms > ?) AS waiting, "
                "SUM(state = 'claimed') AS claimed, "
                "SUM(state = 'burned') AS burned, "
                "SUM(state = 'waiting' AND expires_ms <= ?) AS expired, "
                "COALESCE(SUM(LENGTH(blob)), 0) AS bytes FROM deposits",
                (now_ms, now_ms),
            ).fetchone()
            return Stats(
                waiting=int(row["waiting"] or 0),
                claimed=int(row["claimed"] or 0),
                burned=int(row["burned"] or 0),
                expired=int(row["expired"] or 0),
                stored_bytes=int(row["bytes"] or 0),
            )

        result: Stats = await self._run(run)
        return result

    async def stored_bytes(self) -> int:
        def run() -> int:
            row = self._db.execute("SELECT COALESCE(SUM(LENGTH(blob)), 0) FROM deposits").fetchone()
            return int(row[0])

        result: int = await self._run(run)
        return result

    async def close(self) -> None:
        def run() -> None:
            self._db.close()

        await self._run(run)
