"""Staged key rotation: the server side of moving a safe to a new Ks.

An admin's client begins a rotation (naming the generation it rotates from
and carrying the old key wrapped under the new one), stages every
re-encrypted record in as many batches as it likes, then commits. Staged
ciphertexts wait apart from the live ones; the live safe is untouched until
the commit, which in ONE transaction, with the safe's row locked:

  1. checks the rotation still starts from the safe's current generation;
  2. checks completeness: a staged record for every item, folder and file of
     the safe, at the version it has now, a sealed key for every member, and
     the safe's name at its current version;
  3. swaps them all in, moves the safe to the new generation, records the
     previous-key link, clears rotation_needed, and drops the staging area.

If anything is missing or stale (someone edited an item after it was
staged), the commit is a 409 listing what to (re)stage, and nothing changes.
A client that dies mid-way leaves the safe exactly as it was; the staging
area is dropped when a new rotation begins or the safe is deleted. Members
keep writing under the old generation while a rotation is staged; the commit
then asks for their changed records again.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from authnet.protocol.encoding import b64u_encode
from vault_api.crypto.ids import short
from vault_api.errors import Conflict, Invalid, NotFound
from vault_api.models import RotationOut, SafeOut, StageIn
from vault_api.roles import Access
from vault_api.schema import (
    files,
    folders,
    items,
    memberships,
    rotations,
    safe_keys,
    safes,
    staged_files,
    staged_folders,
    staged_items,
    staged_members,
)
from vault_api.store import audit
from vault_api.store.access import Lock, Membership, require
from vault_api.store.safes import get_safe

# Ids listed per kind in a status (the counts are always complete).
LIST_LIMIT = 1000


def begin(
    conn: Connection,
    *,
    user_id: bytes,
    safe_id: bytes,
    from_generation: int,
    previous_key: bytes,
    now_ms: int,
) -> RotationOut:
    """Open a rotation from the current generation; one that was open is dropped."""
    m = require(conn, safe_id, user_id, Access.MANAGE, Lock.SHARE)
    m.check_generation(from_generation)
    conn.execute(rotations.delete().where(rotations.c.safe_id == safe_id))
    rotation_id = os.urandom(16)
    conn.execute(
        rotations.insert().values(
            rotation_id=rotation_id,
            safe_id=safe_id,
            from_generation=from_generation,
            previous_key=previous_key,
            name_base_version=None,
            name_ct=None,
            created_by=user_id,
            created_ms=now_ms,
        )
    )
    audit.record(
        conn,
        safe_id=safe_id,
        actor=user_id,
        action="rotation.begin",
        now_ms=now_ms,
        target=rotation_id,
        from_generation=from_generation,
    )
    return _status(conn, _rotation(conn, safe_id, rotation_id), m)


def _rotation(conn: Connection, safe_id: bytes, rotation_id: bytes) -> Any:
    row = conn.execute(
        rotations.select().where(
            rotations.c.rotation_id == rotation_id, rotations.c.safe_id == safe_id
        )
    ).first()
    if row is None:
        raise NotFound(
            f"no open rotation {short(rotation_id)} for this safe: it was committed, aborted, "
            "or superseded by a newer one",
            code="rotation_not_found",
        )
    return row


def _current(rot: Any, m: Membership) -> None:
    if rot.from_generation != m.generation:
        raise Conflict(
            f"this rotation starts from generation {rot.from_generation}, but the safe is at "
            f"{m.generation}; begin a new rotation",
            code="rotation_stale",
            current_generation=m.generation,
        )


def status(conn: Connection, *, user_id: bytes, safe_id: bytes, rotation_id: bytes) -> RotationOut:
    m = require(conn, safe_id, user_id, Access.MANAGE)
    return _status(conn, _rotation(conn, safe_id, rotation_id), m)


def _unknown(
    conn: Connection, column: sa.Column[bytes], scope: sa.ColumnElement[bool], ids: Sequence[bytes]
) -> list[bytes]:
    if not ids:
        return []
    known = set(conn.execute(sa.select(column).where(scope, column.in_(ids))).scalars())
    return [i for i in ids if i not in known]


def stage(
    conn: Connection, *, user_id: bytes, safe_id: bytes, rotation_id: bytes, body: StageIn
) -> RotationOut:
    """Add (or replace) staged ciphertexts. Ids must be records or members of this safe."""
    m = require(conn, safe_id, user_id, Access.MANAGE, Lock.SHARE)
    rot = _rotation(conn, safe_id, rotation_id)
    _current(rot, m)
    checks = [
        ("items", items.c.item_id, items.c.safe_id == safe_id, [i.id for i in body.items]),
        (
            "folders",
            folders.c.folder_id,
            folders.c.safe_id == safe_id,
            [f.id for f in body.folders],
        ),
        ("files", files.c.file_id, files.c.safe_id == safe_id, [f.id for f in body.files]),
        (
            "members",
            memberships.c.user_id,
            memberships.c.safe_id == safe_id,
            [s.user_id for s in body.members],
        ),
    ]
    for kind, column, scope, ids in checks:
        if len(set(ids)) != len(ids):
            raise Invalid(f"the batch names one of its {kind} twice", code="duplicate_id")
        unknown = _unknown(conn, column, scope, ids)
        if unknown:
            raise Invalid(
                f"{len(unknown)} of the staged {kind} are not in this safe (first: "
                f"{short(unknown[0])})",
                code="unknown_ids",
                kind=kind,
                ids=[b64u_encode(i) for i in unknown[:LIST_LIMIT]],
            )
    rid = rotation_id
    _replace(
        conn,
        staged_items,
        staged_items.c.item_id,
        rid,
        [{"item_id": i.id, "base_version": i.base_version, "ct": i.ct} for i in body.items],
    )
    _replace(
        conn,
        staged_folders,
        staged_folders.c.folder_id,
        rid,
        [
            {"folder_id": f.id, "base_version": f.base_version, "name_ct": f.name_ct}
            for f in body.folders
        ],
    )
    _replace(
        conn,
        staged_files,
        staged_files.c.file_id,
        rid,
        [{"file_id": f.id, "key_wrap": f.key_wrap} for f in body.files],
    )
    _replace(
        conn,
        staged_members,
        staged_members.c.user_id,
        rid,
        [{"user_id": s.user_id, "sealed_key": s.sealed_key} for s in body.members],
    )
    if body.safe_name is not None:
        conn.execute(
            rotations.update()
            .where(rotations.c.rotation_id == rid)
            .values(name_base_version=body.safe_name.base_version, name_ct=body.safe_name.name_ct)
        )
        rot = _rotation(conn, safe_id, rid)
    return _status(conn, rot, m)


def _replace(
    conn: Connection,
    table: sa.Table,
    key: sa.Column[bytes],
    rotation_id: bytes,
    rows: list[dict[str, Any]],
) -> None:
    if not rows:
        return
    ids = [next(iter(r.values())) for r in rows]
    conn.execute(table.delete().where(table.c.rotation_id == rotation_id, key.in_(ids)))
    conn.execute(table.insert(), [{"rotation_id": rotation_id, **r} for r in rows])


def _gaps(
    conn: Connection,
    live: sa.Table,
    live_key: sa.Column[bytes],
    staged: sa.Table,
    staged_key: sa.Column[bytes],
    safe_id: bytes,
    rotation_id: bytes,
    *,
    versioned: bool,
) -> tuple[list[bytes], list[bytes]]:
    """(missing, stale) ids: live records with no staged copy, or one staged
    from another version. One query, whatever the size of the safe."""
    join = sa.and_(staged.c.rotation_id == rotation_id, staged_key == live_key)
    cols: list[Any] = [live_key, staged_key.label("staged")]
    where: Any = staged_key.is_(None)
    if versioned:
        where = sa.or_(where, staged.c.base_version != live.c.version)
    rows = conn.execute(
        sa.select(*cols)
        .select_from(live.outerjoin(staged, join))
        .where(live.c.safe_id == safe_id, where)
        .order_by(live_key)
    ).all()
    missing = [r[0] for r in rows if r.staged is None]
    stale = [r[0] for r in rows if r.staged is not None]
    return missing, stale


def _count(conn: Connection, table: sa.Table, rotation_id: bytes) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.count()).select_from(table).where(table.c.rotation_id == rotation_id)
        ).scalar_one()
    )


def _status(conn: Connection, rot: Any, m: Membership) -> RotationOut:
    sid, rid = m.safe_id, rot.rotation_id
    missing: dict[str, list[bytes]] = {}
    stale: dict[str, list[bytes]] = {}
    missing["items"], stale["items"] = _gaps(
        conn, items, items.c.item_id, staged_items, staged_items.c.item_id, sid, rid, versioned=True
    )
    missing["folders"], stale["folders"] = _gaps(
        conn,
        folders,
        folders.c.folder_id,
        staged_folders,
        staged_folders.c.folder_id,
        sid,
        rid,
        versioned=True,
    )
    missing["files"], _ = _gaps(
        conn,
        files,
        files.c.file_id,
        staged_files,
        staged_files.c.file_id,
        sid,
        rid,
        versioned=False,
    )
    missing["members"], _ = _gaps(
        conn,
        memberships,
        memberships.c.user_id,
        staged_members,
        staged_members.c.user_id,
        sid,
        rid,
        versioned=False,
    )
    missing["safe_name"] = [sid] if rot.name_base_version is None else []
    stale["safe_name"] = [sid] if rot.name_base_version not in (None, m.name_version) else []
    complete = not any(missing.values()) and not any(stale.values())
    return RotationOut.model_construct(
        id=rid,
        from_generation=rot.from_generation,
        to_generation=rot.from_generation + 1,
        created_ms=rot.created_ms,
        staged={
            "items": _count(conn, staged_items, rid),
            "folders": _count(conn, staged_folders, rid),
            "files": _count(conn, staged_files, rid),
            "members": _count(conn, staged_members, rid),
            "safe_name": 0 if rot.name_base_version is None else 1,
        },
        missing={k: v[:LIST_LIMIT] for k, v in missing.items()},
        stale={k: v[:LIST_LIMIT] for k, v in stale.items() if k != "files"},
        complete=complete,
    )


def _swap(
    conn: Connection,
    live: sa.Table,
    live_key: sa.Column[bytes],
    staged: sa.Table,
    staged_key: sa.Column[bytes],
    columns: dict[str, str],
    safe_id: bytes,
    rotation_id: bytes,
    generation: int,
) -> int:
    """Replace live ciphertexts with their staged copies in one statement."""
    values: dict[str, Any] = {"generation": generation}
    for live_col, staged_col in columns.items():
        values[live_col] = (
            sa.select(staged.c[staged_col])
            .where(staged.c.rotation_id == rotation_id, staged_key == live_key)
            .scalar_subquery()
        )
    result = conn.execute(live.update().where(live.c.safe_id == safe_id).values(**values))
    return int(result.rowcount)


def commit(
    conn: Connection, *, user_id: bytes, safe_id: bytes, rotation_id: bytes, now_ms: int
) -> SafeOut:
    m = require(conn, safe_id, user_id, Access.MANAGE, Lock.UPDATE)
    rot = _rotation(conn, safe_id, rotation_id)
    _current(rot, m)
    st = _status(conn, rot, m)
    if not st.complete:
        raise Conflict(
            "the rotation is not complete: stage what `missing` and `stale` list, then commit "
            "again (the safe is unchanged)",
            code="rotation_incomplete",
            missing={k: [b64u_encode(i) for i in v] for k, v in st.missing.items()},
            stale={k: [b64u_encode(i) for i in v] for k, v in st.stale.items()},
        )
    g = m.generation + 1
    args = (safe_id, rotation_id, g)
    n_items = _swap(
        conn, items, items.c.item_id, staged_items, staged_items.c.item_id, {"ct": "ct"}, *args
    )
    n_folders = _swap(
        conn,
        folders,
        folders.c.folder_id,
        staged_folders,
        staged_folders.c.folder_id,
        {"name_ct": "name_ct"},
        *args,
    )
    n_files = _swap(
        conn,
        files,
        files.c.file_id,
        staged_files,
        staged_files.c.file_id,
        {"key_wrap": "key_wrap"},
        *args,
    )
    n_members = _swap(
        conn,
        memberships,
        memberships.c.user_id,
        staged_members,
        staged_members.c.user_id,
        {"sealed_key": "sealed_key"},
        *args,
    )
    conn.execute(
        safes.update()
        .where(safes.c.safe_id == safe_id)
        .values(generation=g, name_ct=rot.name_ct, rotation_needed=False, updated_ms=now_ms)
    )
    conn.execute(
        safe_keys.insert().values(
            safe_id=safe_id,
            generation=g,
            previous_key=rot.previous_key,
            created_by=user_id,
            created_ms=now_ms,
        )
    )
    conn.execute(rotations.delete().where(rotations.c.rotation_id == rotation_id))
    audit.record(
        conn,
        safe_id=safe_id,
        actor=user_id,
        action="rotation.commit",
        now_ms=now_ms,
        target=rotation_id,
        generation=g,
        items=n_items,
        folders=n_folders,
        files=n_files,
        members=n_members,
    )
    return get_safe(conn, user_id=user_id, safe_id=safe_id)


def abort(
    conn: Connection, *, user_id: bytes, safe_id: bytes, rotation_id: bytes, now_ms: int
) -> None:
    require(conn, safe_id, user_id, Access.MANAGE, Lock.SHARE)
    _rotation(conn, safe_id, rotation_id)
    conn.execute(rotations.delete().where(rotations.c.rotation_id == rotation_id))
    audit.record(
        conn,
        safe_id=safe_id,
        actor=user_id,
        action="rotation.abort",
        now_ms=now_ms,
        target=rotation_id,
    )
