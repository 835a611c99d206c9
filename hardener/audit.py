"""The audit log: one JSON line per operation, in the data directory.

Fields: time, caller, user_id (or record_id), operation, key_version, outcome
(`ok` or an error code), attempts_left. Never an input, an output, a
blinded element, a proof, a digest, a MAC, a blob or a key.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import IO


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._file: IO[str] = os.fdopen(fd, "a", buffering=1 << 16, encoding="utf-8")
        self._lock = threading.Lock()

    def write(
        self,
        *,
        operation: str,
        caller: str,
        outcome: str,
        user_id: str | None = None,
        record_id: str | None = None,
        key_version: int | None = None,
        attempts_left: int | None = None,
        actor: str | None = None,
    ) -> None:
        entry: dict[str, object] = {
            "time": round(time.time(), 3),
            "caller": caller,
            "operation": operation,
            "outcome": outcome,
        }
        if user_id is not None:
            entry["user_id"] = user_id
        if record_id is not None:
            entry["record_id"] = record_id
        if key_version is not None:
            entry["key_version"] = key_version
        if attempts_left is not None:
            entry["attempts_left"] = attempts_left
        if actor is not None:
            entry["actor"] = actor
        line = json.dumps(entry, separators=(",", ":"), ensure_ascii=True) + "\n"
        with self._lock:
            self._file.write(line)

    def flush(self) -> None:
        with self._lock:
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()
