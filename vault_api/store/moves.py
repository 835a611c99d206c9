"""Moving an item (with its files and kept versions), or a lone file, to
another safe (docs/vault.md 8.4 and 13.8).

The client re-encrypts everything for the target safe (the item and its
history under the target's current Ks, each file key re-wrapped under it);
the server swaps the new ciphertexts in, in ONE transaction:

  1. the caller must be an editor or admin of both safes (403, or 404 for a
     safe they are not in);
  2. neither safe may have a key rotation open or due (409 rotation_pending:
     the rotation would have to re-encrypt what moves, under keys the move
     did not use);
  3. the ciphertexts must be made under the target's current generation
     (409 generation_stale) for the item's current version (409
     version_conflict), and the history sent must be exactly the versions
     the server keeps (422 history_mismatch), so nothing is lost;
  4. then every row changes safe: the item (same version), its history rows,
     its files' rows with their new key wraps. File bodies are not touched:
     a blob is named by its file id, and its chunks name only the file id.

Each safe's audit log records the move (item.move_out / item.move_in, and
file.move_out / file.move_in per file), with the other safe's id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from authnet.protocol.encoding import b64u_encode
from vault_api.crypto.ids import short
from vault_api.errors import Conflict, Invalid
from vault_api.models import FileOut, ItemMoveOut, MovedFileIn, MovedVersionIn
from vault_api.roles import Access
from vault_api.schema import files, item_versions, items, rotations
from vault_api.store import audit
from vault_api.store.access import Lock, Membership, require
from vault_api.store.files import UPLOAD_STALE_MS
from vault_api.store.files import _row as file_row
from vault_api.store.records import _check_folder, _item_row, _stale
from vault_api.store.safes import file_out, item_out


def _same_safe(kind: str) -> Invalid:
    return Invalid(
        f"the {kind} is already in this safe: a move names another safe as to_safe_id"
        + (" (to change an item's folder, update the item)" if kind == "item" else ""),
        code="same_safe",
    )


def _both(
    conn: Connection, user_id: bytes, from_safe: bytes, to_safe: bytes
) -> tuple[Membership, Membership]:
    """The caller's write access to both safes, their rows locked FOR SHARE
    (in id order, so two opposite moves never wait on each other)."""
    held = {
        sid: require(conn, sid, user_id, Access.WRITE, Lock.SHARE)
        for sid in sorted((from_safe, to_safe))
    }
    for m in held.values():
        _no_rotation(conn, m)
    return held[from_safe], held[to_safe]


def _no_rotation(conn: Connection, m: Membership) -> None:
    open_since = conn.execute(
        sa.select(rotations.c.created_ms).where(rotations.c.safe_id == m.safe_id)
    ).scalar()
    if open_since is not None:
        raise Conflict(
            f"safe {short(m.safe_id)} has a key rotation that was begun and not committed: "
            "an admin finishes it (the page does when it opens the safe, or Safe settings > "
            "Rotate the key now); move after that. Nothing was moved.",
            code="rotation_pending",
            safe_id=b64u_encode(m.safe_id),
        )
    if m.rotation_needed:
        raise Conflict(
            f"safe {short(m.safe_id)} is waiting for its key to be rotated (a member was "
            "removed or left): an admin's page rotates it when it opens the safe; move after "
            "that. Nothing was moved.",
            code="rotation_pending",
            safe_id=b64u_encode(m.safe_id),
        )


def _file_rows(conn: Connection, safe_id: bytes, moved: Sequence[MovedFileIn], now_ms: int) -> Any:
    ids = [f.id for f in moved]
    if len(set(ids)) != len(ids):
        raise Invalid("the move names one of its files twice", code="duplicate_id")
    if not ids:
        return []
    rows = {
        r.file_id: r
        for r in conn.execute(
            files.select()
            .where(files.c.safe_id == safe_id, files.c.file_id.in_(ids))
            .with_for_update()
        )
    }
    unknown = [i for i in ids if i not in rows]
    if unknown:
        raise Invalid(
            f"{len(unknown)} of the files to move are not in this safe (first: "
            f"{short(unknown[0])}); nothing was moved",
            code="unknown_ids",
            kind="files",
            ids=[b64u_encode(i) for i in unknown],
        )
    for r in rows.values():
        stalled = (r.upload_started_ms or 0) < now_ms - UPLOAD_STALE_MS
        if r.state == "uploading" and not stalled:
            raise Conflict(
                f"file {short(r.file_id)} is being uploaded; move it when the upload has "
                "finished. Nothing was moved.",
                code="file_state",
                state=r.state,
            )
    return [rows[i] for i in ids]


def _move_files(
    conn: Connection,
    *,
    user_id: bytes,
    rows: Sequence[Any],
    moved: Sequence[MovedFileIn],
    from_safe: bytes,
    to_safe: bytes,
    generation: int,
    now_ms: int,
) -> list[FileOut]:
    wraps = {f.id: f.key_wrap for f in moved}
    out = []
    for r in rows:
        values: dict[str, Any] = {
            "safe_id": to_safe,
            "generation": generation,
            "key_wrap": wraps[r.file_id],
        }
        if r.state == "uploading":  # stalled (checked above): its upload is dead
            values.update(state="pending", upload_started_ms=None)
        conn.execute(files.update().where(files.c.file_id == r.file_id).values(**values))
        for safe, action, other in (
            (from_safe, "file.move_out", {"to_safe": b64u_encode(to_safe)}),
            (to_safe, "file.move_in", {"from_safe": b64u_encode(from_safe)}),
        ):
            audit.record(
                conn,
                safe_id=safe,
                actor=user_id,
                action=action,
                now_ms=now_ms,
                target=r.file_id,
                size=r.size,
                **other,
            )
        out.append(file_out(conn.execute(files.select().where(files.c.file_id == r.file_id)).one()))
    return out


def move_item(
    conn: Connection,
    *,
    user_id: bytes,
    safe_id: bytes,
    item_id: bytes,
    to_safe_id: bytes,
    expected_version: int,
    generation: int,
    folder_id: bytes | None,
    ct: bytes,
    history: Sequence[MovedVersionIn],
    moved_files: Sequence[MovedFileIn],
    now_ms: int,
) -> ItemMoveOut:
    if to_safe_id == safe_id:
        raise _same_safe("item")
    _, target = _both(conn, user_id, safe_id, to_safe_id)
    target.check_generation(generation)
    row = _item_row(conn, safe_id, item_id, lock=True)
    if row.version != expected_version:
        raise _stale("item", item_id, row.version, expected_version)
    _check_folder(conn, to_safe_id, folder_id)
    kept = sorted(
        conn.execute(
            sa.select(item_versions.c.version).where(item_versions.c.item_id == item_id)
        ).scalars()
    )
    sent = sorted(h.version for h in history)
    if sent != kept:
        raise Invalid(
            f"item {short(item_id)} keeps versions {kept or 'none'} in its history, and the "
            f"move re-encrypts {sent or 'none'}: send each kept version, re-encrypted for the "
            "target safe. Nothing was moved.",
            code="history_mismatch",
            versions=kept,
        )
    file_rows = _file_rows(conn, safe_id, moved_files, now_ms)

    conn.execute(
        items.update()
        .where(items.c.item_id == item_id)
        .values(safe_id=to_safe_id, folder_id=folder_id, generation=generation, ct=ct)
    )
    if history:
        conn.execute(
            item_versions.update()
            .where(
                item_versions.c.item_id == sa.bindparam("b_item"),
                item_versions.c.version == sa.bindparam("b_version"),
            )
            .values(folder_id=folder_id, generation=generation, ct=sa.bindparam("b_ct")),
            [{"b_item": item_id, "b_version": h.version, "b_ct": h.ct} for h in history],
        )
    moved = _move_files(
        conn,
        user_id=user_id,
        rows=file_rows,
        moved=moved_files,
        from_safe=safe_id,
        to_safe=to_safe_id,
        generation=generation,
        now_ms=now_ms,
    )
    facts = {"version": expected_version, "files": len(moved), "history": len(history)}
    audit.record(
        conn,
        safe_id=safe_id,
        actor=user_id,
        action="item.move_out",
        now_ms=now_ms,
        target=item_id,
        to_safe=b64u_encode(to_safe_id),
        **facts,
    )
    audit.record(
        conn,
        safe_id=to_safe_id,
        actor=user_id,
        action="item.move_in",
        now_ms=now_ms,
        target=item_id,
        from_safe=b64u_encode(safe_id),
        **facts,
    )
    return ItemMoveOut.model_construct(
        item=item_out(_item_row(conn, to_safe_id, item_id)), files=moved, history=len(history)
    )


def move_file(
    conn: Connection,
    *,
    user_id: bytes,
    safe_id: bytes,
    file_id: bytes,
    to_safe_id: bytes,
    generation: int,
    key_wrap: bytes,
    now_ms: int,
) -> FileOut:
    """A lone file: one no item lists (the server cannot tell; clients move
    a file an item lists with its item, so the item and file stay together)."""
    if to_safe_id == safe_id:
        raise _same_safe("file")
    _, target = _both(conn, user_id, safe_id, to_safe_id)
    target.check_generation(generation)
    file_row(conn, safe_id, file_id)  # 404 file_not_found
    moved = [MovedFileIn.model_construct(id=file_id, key_wrap=key_wrap)]
    rows = _file_rows(conn, safe_id, moved, now_ms)
    [out] = _move_files(
        conn,
        user_id=user_id,
        rows=rows,
        moved=moved,
        from_safe=safe_id,
        to_safe=to_safe_id,
        generation=generation,
        now_ms=now_ms,
    )
    return out
