"""Folders and items: optimistic concurrency and item history.

Every write names the version it replaces (`expected_version`) and the key
generation its ciphertext is made under. A stale version or generation is a
409 and nothing is written. An item update keeps the replaced ciphertext in
its history (the newest `history_versions` of them); history entries are the
exact ciphertexts that were current, bound to their own version and
generation, so the client checks them like any record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vault_api.crypto.ids import short
from vault_api.errors import Conflict, Invalid, NotFound
from vault_api.models import (
    FolderOut,
    HistoryOut,
    ItemIn,
    ItemList,
    ItemOut,
    ItemVersionOut,
)
from vault_api.roles import Access
from vault_api.schema import folders, item_versions, items
from vault_api.store import audit
from vault_api.store.access import Lock, require, require_write
from vault_api.store.safes import folder_out, item_out


def _stale(kind: str, record_id: bytes, current: int, expected: int) -> Conflict:
    return Conflict(
        f"{kind} {short(record_id)} is at version {current}, not {expected}: someone changed "
        "it; fetch it, merge, and write again (nothing was changed)",
        code="version_conflict",
        current_version=current,
    )


def _check_folder(conn: Connection, safe_id: bytes, folder_id: bytes | None) -> None:
    if folder_id is None:
        return
    found = conn.execute(
        sa.select(folders.c.folder_id).where(
            folders.c.folder_id == folder_id, folders.c.safe_id == safe_id
        )
    ).first()
    if found is None:
        raise Invalid(f"no folder {short(folder_id)} in this safe", code="unknown_folder")


def _id_free(conn: Connection, column: sa.Column[bytes], ids: Sequence[bytes]) -> None:
    taken = conn.execute(sa.select(column).where(column.in_(ids))).scalars().first()
    if taken is not None:
        raise Conflict(f"id {short(taken)} is taken; make a new id", code="id_taken")


# --- folders ----------------------------------------------------------------------


def create_folder(
    conn: Connection,
    *,
    user_id: bytes,
    safe_id: bytes,
    folder_id: bytes,
    parent_id: bytes | None,
    generation: int,
    name_ct: bytes,
    now_ms: int,
) -> FolderOut:
    require_write(conn, safe_id, user_id, generation)
    _id_free(conn, folders.c.folder_id, [folder_id])
    _check_folder(conn, safe_id, parent_id)
    conn.execute(
        folders.insert().values(
            folder_id=folder_id,
            safe_id=safe_id,
            parent_id=parent_id,
            version=1,
            generation=generation,
            name_ct=name_ct,
            updated_by=user_id,
            updated_ms=now_ms,
        )
    )
    audit.record(
        conn,
        safe_id=safe_id,
        actor=user_id,
        action="folder.create",
        now_ms=now_ms,
        target=folder_id,
    )
    return _folder(conn, safe_id, folder_id)


def _folder(conn: Connection, safe_id: bytes, folder_id: bytes, *, lock: bool = False) -> FolderOut:
    q = folders.select().where(folders.c.folder_id == folder_id, folders.c.safe_id == safe_id)
    row = conn.execute(q.with_for_update() if lock else q).first()
    if row is None:
        raise NotFound(f"no folder {short(folder_id)} in this safe", code="folder_not_found")
    return folder_out(row)


def update_folder(
    conn: Connection,
    *,
    user_id: bytes,
    safe_id: bytes,
    folder_id: bytes,
    expected_version: int,
    parent_id: bytes | None,
    generation: int,
    name_ct: bytes,
    now_ms: int,
) -> FolderOut:
    """Rename or move a folder (its name is re-encrypted for the new place)."""
    require_write(conn, safe_id, user_id, generation)
    current = _folder(conn, safe_id, folder_id, lock=True)
    if current.version != expected_version:
        raise _stale("folder", folder_id, current.version, expected_version)
    if parent_id is not None:
        parents: dict[bytes, bytes | None] = {
            r.folder_id: r.parent_id
            for r in conn.execute(
                sa.select(folders.c.folder_id, folders.c.parent_id).where(
                    folders.c.safe_id == safe_id
                )
            )
        }
        if parent_id not in parents:
            raise Invalid(f"no folder {short(parent_id)} in this safe", code="unknown_folder")
        at: bytes | None = parent_id
        while at is not None:
            if at == folder_id:
                raise Invalid("a folder cannot move into itself or its subfolders", code="cycle")
            at = parents.get(at)
    conn.execute(
        folders.update()
        .where(folders.c.folder_id == folder_id)
        .values(
            parent_id=parent_id,
            version=expected_version + 1,
            generation=generation,
            name_ct=name_ct,
            updated_by=user_id,
            updated_ms=now_ms,
        )
    )
    audit.record(
        conn,
        safe_id=safe_id,
        actor=user_id,
        action="folder.update",
        now_ms=now_ms,
        target=folder_id,
        version=expected_version + 1,
    )
    return _folder(conn, safe_id, folder_id)


def delete_folder(
    conn: Connection,
    *,
    user_id: bytes,
    safe_id: bytes,
    folder_id: bytes,
    expected_version: int,
    now_ms: int,
) -> None:
    require(conn, safe_id, user_id, Access.WRITE, Lock.SHARE)
    current = _folder(conn, safe_id, folder_id, lock=True)
    if current.version != expected_version:
        raise _stale("folder", folder_id, current.version, expected_version)
    used = (
        conn.execute(
            sa.select(items.c.item_id).where(items.c.folder_id == folder_id).limit(1)
        ).first()
        or conn.execute(
            sa.select(folders.c.folder_id).where(folders.c.parent_id == folder_id).limit(1)
        ).first()
    )
    if used is not None:
        raise Conflict(
            f"folder {short(folder_id)} is not empty; move or delete what is in it first",
            code="folder_not_empty",
        )
    conn.execute(folders.delete().where(folders.c.folder_id == folder_id))
    audit.record(
        conn,
        safe_id=safe_id,
        actor=user_id,
        action="folder.delete",
        now_ms=now_ms,
        target=folder_id,
    )


# --- items ------------------------------------------------------------------------


def create_items(
    conn: Connection, *, user_id: bytes, safe_id: bytes, new: Sequence[ItemIn], now_ms: int
) -> ItemList:
    """Create items (one, or a batch for imports): all of them or none."""
    m = require(conn, safe_id, user_id, Access.WRITE, Lock.SHARE)
    for generation in {i.generation for i in new}:
        m.check_generation(generation)
    ids = [i.id for i in new]
    if len(set(ids)) != len(ids):
        raise Invalid("the batch names an item id twice", code="duplicate_id")
    _id_free(conn, items.c.item_id, ids)
    for folder_id in {i.folder_id for i in new if i.folder_id is not None}:
        _check_folder(conn, safe_id, folder_id)
    conn.execute(
        items.insert(),
        [
            {
                "item_id": i.id,
                "safe_id": safe_id,
                "folder_id": i.folder_id,
                "version": 1,
                "generation": i.generation,
                "schema": i.schema_version,
                "ct": i.ct,
                "created_by": user_id,
                "created_ms": now_ms,
                "updated_by": user_id,
                "updated_ms": now_ms,
            }
            for i in new
        ],
    )
    audit.record_many(
        conn,
        [
            {
                "safe_id": safe_id,
                "at_ms": now_ms,
                "actor": user_id,
                "action": "item.create",
                "target": i.id,
                "detail": '{"version":1}',
            }
            for i in new
        ],
    )
    return ItemList.model_construct(
        items=[
            ItemOut.model_construct(
                id=i.id,
                folder_id=i.folder_id,
                version=1,
                generation=i.generation,
                schema_version=i.schema_version,
                ct=i.ct,
                updated_by=user_id,
                updated_ms=now_ms,
            )
            for i in new
        ]
    )


def _item_row(conn: Connection, safe_id: bytes, item_id: bytes, *, lock: bool = False) -> Any:
    q = items.select().where(items.c.item_id == item_id, items.c.safe_id == safe_id)
    row = conn.execute(q.with_for_update() if lock else q).first()
    if row is None:
        raise NotFound(f"no item {short(item_id)} in this safe", code="item_not_found")
    return row


def get_item(conn: Connection, *, user_id: bytes, safe_id: bytes, item_id: bytes) -> ItemOut:
    require(conn, safe_id, user_id, Access.READ)
    return item_out(_item_row(conn, safe_id, item_id))


def update_item(
    conn: Connection,
    *,
    user_id: bytes,
    safe_id: bytes,
    item_id: bytes,
    expected_version: int,
    folder_id: bytes | None,
    generation: int,
    schema: int,
    ct: bytes,
    history_versions: int,
    now_ms: int,
) -> ItemOut:
    require_write(conn, safe_id, user_id, generation)
    row = _item_row(conn, safe_id, item_id, lock=True)
    if row.version != expected_version:
        raise _stale("item", item_id, row.version, expected_version)
    _check_folder(conn, safe_id, folder_id)
    new_version = expected_version + 1
    if history_versions > 0:
        conn.execute(
            item_versions.insert().values(
                item_id=item_id,
                version=row.version,
                folder_id=row.folder_id,
                generation=row.generation,
                schema=row.schema,
                ct=row.ct,
                updated_by=row.updated_by,
                updated_ms=row.updated_ms,
            )
        )
        conn.execute(
            item_versions.delete().where(
                item_versions.c.item_id == item_id,
                item_versions.c.version < new_version - history_versions,
            )
        )
    conn.execute(
        items.update()
        .where(items.c.item_id == item_id)
        .values(
            folder_id=folder_id,
            version=new_version,
            generation=generation,
            schema=schema,
            ct=ct,
            updated_by=user_id,
            updated_ms=now_ms,
        )
    )
    audit.record(
        conn,
        safe_id=safe_id,
        actor=user_id,
        action="item.update",
        now_ms=now_ms,
        target=item_id,
        version=new_version,
    )
    return ItemOut.model_construct(
        id=item_id,
        folder_id=folder_id,
        version=new_version,
        generation=generation,
        schema_version=schema,
        ct=ct,
        updated_by=user_id,
        updated_ms=now_ms,
    )


def delete_item(
    conn: Connection,
    *,
    user_id: bytes,
    safe_id: bytes,
    item_id: bytes,
    expected_version: int,
    now_ms: int,
) -> None:
    """Delete an item and its history (a stale version refuses, as for updates)."""
    require(conn, safe_id, user_id, Access.WRITE, Lock.SHARE)
    row = _item_row(conn, safe_id, item_id, lock=True)
    if row.version != expected_version:
        raise _stale("item", item_id, row.version, expected_version)
    conn.execute(item_versions.delete().where(item_versions.c.item_id == item_id))
    conn.execute(items.delete().where(items.c.item_id == item_id))
    audit.record(
        conn,
        safe_id=safe_id,
        actor=user_id,
        action="item.delete",
        now_ms=now_ms,
        target=item_id,
        version=expected_version,
    )


def history(conn: Connection, *, user_id: bytes, safe_id: bytes, item_id: bytes) -> HistoryOut:
    require(conn, safe_id, user_id, Access.READ)
    _item_row(conn, safe_id, item_id)
    rows = conn.execute(
        item_versions.select()
        .where(item_versions.c.item_id == item_id)
        .order_by(item_versions.c.version.desc())
    ).all()
    return HistoryOut.model_construct(
        versions=[
            ItemVersionOut.model_construct(
                version=r.version,
                folder_id=r.folder_id,
                generation=r.generation,
                schema_version=r.schema,
                ct=r.ct,
                updated_by=r.updated_by,
                updated_ms=r.updated_ms,
            )
            for r in rows
        ]
    )
