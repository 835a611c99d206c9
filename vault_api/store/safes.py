"""Safes, their key chain, and their members.

A safe is created by its first admin with generation 1: the encrypted name
and Ks sealed to the creator. Sharing adds a member with Ks of the current
generation sealed to them; removing one (or leaving) marks the safe
`rotation_needed`, and an admin's client then rotates the key (rotations.py).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vault_api.crypto.files import format_of
from vault_api.crypto.ids import short
from vault_api.errors import Conflict, NotFound
from vault_api.models import (
    ContentsOut,
    FileOut,
    FolderOut,
    ItemOut,
    KeyChainOut,
    KeyLinkOut,
    MemberList,
    MemberOut,
    SafeList,
    SafeOut,
)
from vault_api.roles import Access, Role
from vault_api.schema import files, folders, items, memberships, safe_keys, safes, users
from vault_api.store import audit
from vault_api.store.access import Lock, Membership, require


def safe_out(m: Membership) -> SafeOut:
    return SafeOut.model_construct(
        id=m.safe_id,
        name_ct=m.name_ct,
        name_version=m.name_version,
        generation=m.generation,
        role=m.role,
        sealed_key=m.sealed_key,
        rotation_needed=m.rotation_needed,
        updated_ms=m.updated_ms,
    )


def folder_out(r: Any) -> FolderOut:
    return FolderOut.model_construct(
        id=r.folder_id,
        parent_id=r.parent_id,
        version=r.version,
        generation=r.generation,
        name_ct=r.name_ct,
        updated_ms=r.updated_ms,
    )


def item_out(r: Any) -> ItemOut:
    return ItemOut.model_construct(
        id=r.item_id,
        folder_id=r.folder_id,
        version=r.version,
        generation=r.generation,
        schema_version=r.schema,
        ct=r.ct,
        updated_by=r.updated_by,
        updated_ms=r.updated_ms,
    )


def file_out(r: Any) -> FileOut:
    return FileOut.model_construct(
        id=r.file_id,
        generation=r.generation,
        key_wrap=r.key_wrap,
        size=r.size,
        body_size=r.body_size,
        chunk_bytes=format_of(r.size, r.body_size).chunk_bytes,
        state=r.state,
        created_ms=r.created_ms,
    )


def list_safes(conn: Connection, *, user_id: bytes) -> SafeList:
    rows = conn.execute(
        sa.select(safes, memberships.c.role, memberships.c.sealed_key)
        .select_from(safes.join(memberships, memberships.c.safe_id == safes.c.safe_id))
        .where(memberships.c.user_id == user_id)
        .order_by(safes.c.created_ms, safes.c.safe_id)
    ).all()
    return SafeList.model_construct(
        safes=[
            SafeOut.model_construct(
                id=r.safe_id,
                name_ct=r.name_ct,
                name_version=r.name_version,
                generation=r.generation,
                role=Role(r.role),
                sealed_key=r.sealed_key,
                rotation_needed=r.rotation_needed,
                updated_ms=r.updated_ms,
            )
            for r in rows
        ]
    )


def create_safe(
    conn: Connection,
    *,
    user_id: bytes,
    safe_id: bytes,
    name_ct: bytes,
    sealed_key: bytes,
    now_ms: int,
) -> SafeOut:
    if conn.execute(sa.select(safes.c.safe_id).where(safes.c.safe_id == safe_id)).first():
        raise Conflict(f"safe id {short(safe_id)} is taken; make a new id", code="id_taken")
    conn.execute(
        safes.insert().values(
            safe_id=safe_id,
            generation=1,
            name_ct=name_ct,
            name_version=1,
            rotation_needed=False,
            created_by=user_id,
            created_ms=now_ms,
            updated_ms=now_ms,
        )
    )
    conn.execute(
        safe_keys.insert().values(
            safe_id=safe_id, generation=1, previous_key=None, created_by=user_id, created_ms=now_ms
        )
    )
    conn.execute(
        memberships.insert().values(
            safe_id=safe_id,
            user_id=user_id,
            role=Role.ADMIN.value,
            generation=1,
            sealed_key=sealed_key,
            added_by=user_id,
            added_ms=now_ms,
        )
    )
    audit.record(conn, safe_id=safe_id, actor=user_id, action="safe.create", now_ms=now_ms)
    return get_safe(conn, user_id=user_id, safe_id=safe_id)


def get_safe(conn: Connection, *, user_id: bytes, safe_id: bytes) -> SafeOut:
    return safe_out(require(conn, safe_id, user_id, Access.READ))


def rename_safe(
    conn: Connection,
    *,
    user_id: bytes,
    safe_id: bytes,
    expected_name_version: int,
    generation: int,
    name_ct: bytes,
    now_ms: int,
) -> SafeOut:
    m = require(conn, safe_id, user_id, Access.MANAGE, Lock.UPDATE)
    m.check_generation(generation)
    if m.name_version != expected_name_version:
        raise Conflict(
            f"the name of safe {short(safe_id)} is at version {m.name_version}, not "
            f"{expected_name_version}; nothing was changed",
            code="version_conflict",
            current_version=m.name_version,
        )
    conn.execute(
        safes.update()
        .where(safes.c.safe_id == safe_id)
        .values(name_ct=name_ct, name_version=m.name_version + 1, updated_ms=now_ms)
    )
    audit.record(
        conn,
        safe_id=safe_id,
        actor=user_id,
        action="safe.rename",
        now_ms=now_ms,
        version=m.name_version + 1,
    )
    return get_safe(conn, user_id=user_id, safe_id=safe_id)


def delete_safe(conn: Connection, *, user_id: bytes, safe_id: bytes) -> list[bytes]:
    """Delete a safe and everything in it; returns the file ids whose bodies
    the caller deletes once this commits."""
    require(conn, safe_id, user_id, Access.MANAGE, Lock.UPDATE)
    file_ids = list(
        conn.execute(sa.select(files.c.file_id).where(files.c.safe_id == safe_id)).scalars()
    )
    conn.execute(safes.delete().where(safes.c.safe_id == safe_id))
    return file_ids


def contents(conn: Connection, *, user_id: bytes, safe_id: bytes) -> ContentsOut:
    """Everything a client needs to open a safe, in one transaction."""
    m = require(conn, safe_id, user_id, Access.READ)
    folder_rows = conn.execute(
        folders.select().where(folders.c.safe_id == safe_id).order_by(folders.c.folder_id)
    ).all()
    item_rows = conn.execute(
        sa.select(
            items.c.item_id,
            items.c.folder_id,
            items.c.version,
            items.c.generation,
            items.c.schema,
            items.c.ct,
            items.c.updated_by,
            items.c.updated_ms,
        )
        .where(items.c.safe_id == safe_id)
        .order_by(items.c.item_id)
    ).all()
    file_rows = conn.execute(
        files.select().where(files.c.safe_id == safe_id).order_by(files.c.file_id)
    ).all()
    return ContentsOut.model_construct(
        safe=safe_out(m),
        folders=[folder_out(r) for r in folder_rows],
        items=[item_out(r) for r in item_rows],
        files=[file_out(r) for r in file_rows],
    )


def key_chain(conn: Connection, *, user_id: bytes, safe_id: bytes) -> KeyChainOut:
    require(conn, safe_id, user_id, Access.READ)
    rows = conn.execute(
        sa.select(safe_keys.c.generation, safe_keys.c.previous_key)
        .where(safe_keys.c.safe_id == safe_id)
        .order_by(safe_keys.c.generation.desc())
    ).all()
    return KeyChainOut.model_construct(
        keys=[
            KeyLinkOut.model_construct(generation=r.generation, previous_key=r.previous_key)
            for r in rows
        ]
    )


# --- members ----------------------------------------------------------------------


def _member_rows(conn: Connection, safe_id: bytes) -> list[Any]:
    return list(
        conn.execute(
            sa.select(
                memberships.c.user_id,
                memberships.c.role,
                memberships.c.generation,
                memberships.c.added_ms,
                users.c.handle,
                users.c.public_key,
            )
            .select_from(memberships.join(users, users.c.user_id == memberships.c.user_id))
            .where(memberships.c.safe_id == safe_id)
            .order_by(memberships.c.added_ms, memberships.c.user_id)
        ).all()
    )


def _member_out(r: Any) -> MemberOut:
    return MemberOut.model_construct(
        user_id=r.user_id,
        handle=r.handle,
        public_key=r.public_key,
        role=Role(r.role),
        generation=r.generation,
        added_ms=r.added_ms,
    )


def members(conn: Connection, *, user_id: bytes, safe_id: bytes) -> MemberList:
    require(conn, safe_id, user_id, Access.READ)
    return MemberList.model_construct(members=[_member_out(r) for r in _member_rows(conn, safe_id)])


def add_member(
    conn: Connection,
    *,
    user_id: bytes,
    safe_id: bytes,
    member_id: bytes,
    role: Role,
    generation: int,
    sealed_key: bytes,
    now_ms: int,
) -> MemberOut:
    m = require(conn, safe_id, user_id, Access.MANAGE, Lock.SHARE)
    m.check_generation(generation)
    target = conn.execute(
        sa.select(users.c.user_id).where(
            users.c.user_id == member_id, users.c.public_key.is_not(None)
        )
    ).first()
    if target is None:
        raise NotFound(f"no user {short(member_id)} with a key pair", code="user_not_found")
    exists = conn.execute(
        sa.select(memberships.c.role).where(
            memberships.c.safe_id == safe_id, memberships.c.user_id == member_id
        )
    ).first()
    if exists is not None:
        raise Conflict(
            f"user {short(member_id)} is already {exists.role} of this safe; change the role "
            "instead",
            code="already_member",
        )
    conn.execute(
        memberships.insert().values(
            safe_id=safe_id,
            user_id=member_id,
            role=role.value,
            generation=generation,
            sealed_key=sealed_key,
            added_by=user_id,
            added_ms=now_ms,
        )
    )
    audit.record(
        conn,
        safe_id=safe_id,
        actor=user_id,
        action="member.add",
        now_ms=now_ms,
        target=member_id,
        role=role.value,
    )
    return next(_member_out(r) for r in _member_rows(conn, safe_id) if r.user_id == member_id)


def _admins(conn: Connection, safe_id: bytes) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(memberships)
            .where(memberships.c.safe_id == safe_id, memberships.c.role == Role.ADMIN.value)
        ).scalar_one()
    )


def _member_role(conn: Connection, safe_id: bytes, member_id: bytes) -> Role:
    row = conn.execute(
        sa.select(memberships.c.role).where(
            memberships.c.safe_id == safe_id, memberships.c.user_id == member_id
        )
    ).first()
    if row is None:
        raise NotFound(f"user {short(member_id)} is not a member of this safe", code="not_member")
    return Role(row.role)


def set_role(
    conn: Connection,
    *,
    user_id: bytes,
    safe_id: bytes,
    member_id: bytes,
    role: Role,
    now_ms: int,
) -> MemberOut:
    require(conn, safe_id, user_id, Access.MANAGE, Lock.SHARE)
    current = _member_role(conn, safe_id, member_id)
    if current is Role.ADMIN and role is not Role.ADMIN and _admins(conn, safe_id) <= 1:
        raise Conflict(
            "this is the safe's only admin; make another member admin first", code="last_admin"
        )
    conn.execute(
        memberships.update()
        .where(memberships.c.safe_id == safe_id, memberships.c.user_id == member_id)
        .values(role=role.value)
    )
    audit.record(
        conn,
        safe_id=safe_id,
        actor=user_id,
        action="member.role",
        now_ms=now_ms,
        target=member_id,
        role=role.value,
        previous=current.value,
    )
    return next(_member_out(r) for r in _member_rows(conn, safe_id) if r.user_id == member_id)


def remove_member(
    conn: Connection, *, user_id: bytes, safe_id: bytes, member_id: bytes, now_ms: int
) -> None:
    """An admin removes a member, or a member leaves. The safe's key must then
    rotate: the safe is marked rotation_needed until an admin's client does it."""
    leaving = member_id == user_id
    require(conn, safe_id, user_id, Access.READ if leaving else Access.MANAGE, Lock.UPDATE)
    current = _member_role(conn, safe_id, member_id)
    if current is Role.ADMIN and _admins(conn, safe_id) <= 1:
        raise Conflict(
            "this is the safe's only admin; make another member admin first, or delete the safe",
            code="last_admin",
        )
    conn.execute(
        memberships.delete().where(
            memberships.c.safe_id == safe_id, memberships.c.user_id == member_id
        )
    )
    conn.execute(
        safes.update()
        .where(safes.c.safe_id == safe_id)
        .values(rotation_needed=True, updated_ms=now_ms)
    )
    audit.record(
        conn,
        safe_id=safe_id,
        actor=user_id,
        action="member.leave" if leaving else "member.remove",
        now_ms=now_ms,
        target=member_id,
        role=current.value,
    )
