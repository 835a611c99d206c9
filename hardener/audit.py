"""The audit log: one JSON line per operation, in the data directory.

Fields: time, caller, user_id (or record_id), operation, key_version, outcome
(`ok` or an error code), attempts_left. Never an input, an output, a
blinded element, a proof, a digest, a MAC, a blob or a key.
"""

from __future__ import annotations

import json
import os
import re
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
        # Hand-built (this runs once per evaluation): strings through json.dumps,
        # numbers as they are; the same line json.dumps(dict) would give.
        parts = [f'{{"time":{time.time():.3f},"caller":{_s(caller)},"operation":{_s(operation)}']
        parts.append(f',"outcome":{_s(outcome)}')
        if user_id is not None:
            parts.append(f',"user_id":{_s(user_id)}')
        if record_id is not None:
            parts.append(f',"record_id":{_s(record_id)}')
        if key_version is not None:
            parts.append(f',"key_version":{int(key_version)}')
        if attempts_left is not None:
            parts.append(f',"attempts_left":{int(attempts_left)}')
        if actor is not None:
            parts.append(f',"actor":{_s(actor)}')
        parts.append("}\n")
        line = "".join(parts)
        with self._lock:
            self._file.write(line)

    def flush(self) -> None:
        with self._lock:
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


_PLAIN = re.compile(r"[ !#-\[\]-~]*")


def _s(value: str) -> str:
    """A JSON string (printable ASCII without quotes or backslashes needs no escaping)."""
    if _PLAIN.fullmatch(value):
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=True)
