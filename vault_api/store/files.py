"""File records and their upload states.

A file is announced first (its id, size and wrapped key), which reserves its
exact encrypted body size; then its body is streamed in (routes/files.py and
blobs.py) and the record becomes complete. States:

    pending --upload starts--> uploading --body stored--> complete
                                   '--upload fails--> pending

An upload that stalls (a server died mid-way) may be restarted after
UPLOAD_STALE_MS. Only complete files can be downloaded.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from vault_api.crypto.files import ciphertext_size, format_for
from vault_api.crypto.ids import short
from vault_api.errors import Conflict, NotFound, TooLarge
from vault_api.models import FileOut
from vault_api.roles import Access
from vault_api.schema import files
from vault_api.store import audit
from vault_api.store.access import Lock, require, require_write
from vault_api.store.safes import file_out

UPLOAD_STALE_MS = 10 * 60 * 1000


def _row(conn: Connection, safe_id: bytes, file_id: bytes, *, lock: bool = False) -> Any:
    q = files.select().where(files.c.file_id == file_id, files.c.safe_id == safe_id)
    row = conn.execute(q.with_for_update() if lock else q).first()
    if row is None:
        raise NotFound(f"no file {short(file_id)} in this safe", code="file_not_found")
    return row


def too_large(size: int, limit: int) -> TooLarge:
    return TooLarge(
        f"the file is {size} bytes; this vault takes files up to {limit} bytes",
        code="file_too_large",
        limit=limit,
    )


def create_file(
    conn: Connection,
    *,
    user_id: bytes,
    safe_id: bytes,
    file_id: bytes,
    generation: int,
    key_wrap: bytes,
    size: int,
    max_bytes: int,
    now_ms: int,
    chunk_bytes: int = 65536,
) -> FileOut:
    if size > max_bytes:
        raise too_large(size, max_bytes)
    require_write(conn, safe_id, user_id, generation)
    if conn.execute(files.select().where(files.c.file_id == file_id)).first() is not None:
        raise Conflict(f"file id {short(file_id)} is taken; make a new id", code="id_taken")
    conn.execute(
        files.insert().values(
            file_id=file_id,
            safe_id=safe_id,
            generation=generation,
            key_wrap=key_wrap,
            size=size,
            body_size=ciphertext_size(size, format_for(size, chunk_bytes)),
            state="pending",
            upload_started_ms=None,
            created_by=user_id,
            created_ms=now_ms,
        )
    )
    audit.record(
        conn,
        safe_id=safe_id,
        actor=user_id,
        action="file.create",
        now_ms=now_ms,
        target=file_id,
        size=size,
    )
    return file_out(_row(conn, safe_id, file_id))


def get_file(conn: Connection, *, user_id: bytes, safe_id: bytes, file_id: bytes) -> FileOut:
    require(conn, safe_id, user_id, Access.READ)
    return file_out(_row(conn, safe_id, file_id))


def begin_upload(
    conn: Connection, *, user_id: bytes, safe_id: bytes, file_id: bytes, now_ms: int
) -> FileOut:
    """Claim a pending file for one upload; returns it (body_size is the exact
    number of bytes the body must have)."""
    require(conn, safe_id, user_id, Access.WRITE, Lock.SHARE)
    row = _row(conn, safe_id, file_id, lock=True)
    stalled = row.state == "uploading" and (row.upload_started_ms or 0) < now_ms - UPLOAD_STALE_MS
    if row.state != "pending" and not stalled:
        raise Conflict(
            f"file {short(file_id)} is {row.state}; a body is uploaded once",
            code="file_state",
            state=row.state,
        )
    conn.execute(
        files.update()
        .where(files.c.file_id == file_id)
        .values(state="uploading", upload_started_ms=now_ms)
    )
    return file_out(row)


def finish_upload(
    conn: Connection,
    *,
    user_id: bytes,
    safe_id: bytes,
    file_id: bytes,
    started_ms: int,
    now_ms: int,
) -> FileOut | None:
    """Mark the upload complete; None if the file was deleted (or the upload
    taken over) meanwhile, and the caller then discards the body."""
    result = conn.execute(
        files.update()
        .where(
            files.c.file_id == file_id,
            files.c.safe_id == safe_id,
            files.c.state == "uploading",
            files.c.upload_started_ms == started_ms,
        )
        .values(state="complete")
    )
    if result.rowcount != 1:
        return None
    row = _row(conn, safe_id, file_id)
    audit.record(
        conn,
        safe_id=safe_id,
        actor=user_id,
        action="file.upload",
        now_ms=now_ms,
        target=file_id,
        size=row.size,
    )
    return file_out(row)


def abort_upload(conn: Connection, *, safe_id: bytes, file_id: bytes, started_ms: int) -> None:
    conn.execute(
        files.update()
        .where(
            files.c.file_id == file_id,
            files.c.safe_id == safe_id,
            files.c.state == "uploading",
            files.c.upload_started_ms == started_ms,
        )
        .values(state="pending", upload_started_ms=None)
    )


def open_download(conn: Connection, *, user_id: bytes, safe_id: bytes, file_id: bytes) -> FileOut:
    require(conn, safe_id, user_id, Access.READ)
    row = _row(conn, safe_id, file_id)
    if row.state != "complete":
        raise Conflict(
            f"file {short(file_id)} is {row.state}: its body is not uploaded yet",
            code="file_state",
            state=row.state,
        )
    return file_out(row)


def delete_file(
    conn: Connection, *, user_id: bytes, safe_id: bytes, file_id: bytes, now_ms: int
) -> None:
    require(conn, safe_id, user_id, Access.WRITE, Lock.SHARE)
    _row(conn, safe_id, file_id, lock=True)
    conn.execute(files.delete().where(files.c.file_id == file_id))
    audit.record(
        conn, safe_id=safe_id, actor=user_id, action="file.delete", now_ms=now_ms, target=file_id
    )
