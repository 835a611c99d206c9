"""Accounts, handles, public keys and key slots.

An account is created at its first login (from the PUID authnet gives this
SP) and registered once its client has made a key pair: the public key, a
handle others share with, and the first key slot, for the token that logged
in. Further slots are added per token, only for key ids the session proved.
"""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vault_api.crypto.factors import TOKEN_SLOT_BYTES
from vault_api.crypto.ids import short
from vault_api.crypto.userkeys import SLOT_BYTES
from vault_api.errors import Conflict, Forbidden, Invalid, NotFound
from vault_api.models import MeOut, PublicUserOut, SlotOut, UserOut
from vault_api.schema import key_slots, passphrase_wraps, users


def user_out(row: Any) -> UserOut:
    return UserOut.model_construct(
        user_id=row.user_id,
        handle=row.handle,
        public_key=row.public_key,
        keypair_version=row.keypair_version,
        registered=row.public_key is not None,
    )


def slot_out(row: Any) -> SlotOut:
    return SlotOut.model_construct(
        key_id=row.key_id,
        keypair_version=row.keypair_version,
        kind=row.kind,
        slot=row.slot,
        created_ms=row.created_ms,
        last_used_ms=row.last_used_ms,
    )


def user_for_puid(conn: Connection, puid: str, now_ms: int) -> Any:
    """The account of this PUID, created on its first login."""
    row = conn.execute(users.select().where(users.c.puid == puid)).first()
    if row is None:
        conn.execute(users.insert().values(user_id=os.urandom(16), puid=puid, created_ms=now_ms))
        row = conn.execute(users.select().where(users.c.puid == puid)).one()
    return row


def get_user(conn: Connection, user_id: bytes) -> Any:
    return conn.execute(users.select().where(users.c.user_id == user_id)).one()


def slot_for(conn: Connection, user_id: bytes, key_id: bytes) -> Any:
    return conn.execute(
        key_slots.select().where(key_slots.c.user_id == user_id, key_slots.c.key_id == key_id)
    ).first()


def me(conn: Connection, user_id: bytes) -> MeOut:
    slots = conn.execute(
        key_slots.select().where(key_slots.c.user_id == user_id).order_by(key_slots.c.created_ms)
    ).all()
    return MeOut.model_construct(
        user=user_out(get_user(conn, user_id)), slots=[slot_out(s) for s in slots]
    )


def register(
    conn: Connection,
    *,
    user_id: bytes,
    key_id: bytes,
    handle: str,
    public_key: bytes,
    slot: bytes,
    now_ms: int,
) -> MeOut:
    """Set the account's public key and handle, with the first slot (for the
    token the session logged in with)."""
    row = get_user(conn, user_id)
    if row.public_key is not None:
        raise Conflict(
            "this account already has a key pair; open it with a token's key slot",
            code="already_registered",
        )
    taken = conn.execute(sa.select(users.c.user_id).where(users.c.handle == handle)).first()
    if taken is not None:
        raise Conflict(f"the handle {handle!r} is taken; choose another", code="handle_taken")
    conn.execute(
        users.update()
        .where(users.c.user_id == user_id)
        .values(handle=handle, public_key=public_key, keypair_version=1, registered_ms=now_ms)
    )
    conn.execute(
        key_slots.insert().values(
            user_id=user_id,
            key_id=key_id,
            keypair_version=1,
            slot=slot,
            created_ms=now_ms,
            last_used_ms=now_ms,
        )
    )
    return me(conn, user_id)


def _require_registered(conn: Connection, user_id: bytes) -> Any:
    row = get_user(conn, user_id)
    if row.public_key is None:
        raise Forbidden("register a key pair first (POST /api/me)", code="not_registered")
    return row


def get_slot(conn: Connection, *, user_id: bytes, key_id: bytes) -> SlotOut:
    row = slot_for(conn, user_id, key_id)
    if row is None:
        raise NotFound(f"no key slot for key id {short(key_id)}", code="slot_not_found")
    return slot_out(row)


def put_slot(
    conn: Connection,
    *,
    user_id: bytes,
    key_id: bytes,
    keypair_version: int,
    slot: bytes,
    now_ms: int,
    kind: str = "kc",
) -> SlotOut:
    """Create or replace the slot of a token (the caller checked the session proved it).
    With a vault passphrase set, a slot holds the token factor (kind kc+passphrase)."""
    user = _require_registered(conn, user_id)
    has_passphrase = (
        conn.execute(
            sa.select(passphrase_wraps.c.wrap_id).where(
                passphrase_wraps.c.user_id == user_id, passphrase_wraps.c.state == "current"
            )
        ).first()
        is not None
    )
    want = "kc+passphrase" if has_passphrase else "kc"
    size = TOKEN_SLOT_BYTES if has_passphrase else SLOT_BYTES
    if kind != want or len(slot) != size:
        raise Invalid(
            f"this account {'has' if has_passphrase else 'has no'} vault passphrase, so a "
            f"token's slot is of kind {want} ({size} bytes), not {kind} ({len(slot)} bytes)",
            code="slot_kind",
            kind=want,
        )
    if keypair_version != user.keypair_version:
        raise Conflict(
            f"the account's key pair is version {user.keypair_version}, not {keypair_version}",
            code="keypair_version",
            current_version=user.keypair_version,
        )
    conn.execute(
        key_slots.delete().where(key_slots.c.user_id == user_id, key_slots.c.key_id == key_id)
    )
    conn.execute(
        key_slots.insert().values(
            user_id=user_id,
            key_id=key_id,
            keypair_version=keypair_version,
            slot=slot,
            kind=kind,
            created_ms=now_ms,
            last_used_ms=None,
        )
    )
    return get_slot(conn, user_id=user_id, key_id=key_id)


def delete_slot(conn: Connection, *, user_id: bytes, key_id: bytes) -> None:
    count = conn.execute(
        sa.select(sa.func.count()).select_from(key_slots).where(key_slots.c.user_id == user_id)
    ).scalar_one()
    if slot_for(conn, user_id, key_id) is None:
        raise NotFound(f"no key slot for key id {short(key_id)}", code="slot_not_found")
    if count <= 1:
        raise Conflict(
            "this is the account's only key slot: without it nothing opens the vault",
            code="last_slot",
        )
    conn.execute(
        key_slots.delete().where(key_slots.c.user_id == user_id, key_slots.c.key_id == key_id)
    )


def by_handle(conn: Connection, handle: str) -> PublicUserOut:
    row = conn.execute(
        users.select().where(users.c.handle == handle, users.c.public_key.is_not(None))
    ).first()
    if row is None:
        raise NotFound(f"no user with the handle {handle!r}", code="user_not_found")
    return PublicUserOut.model_construct(
        user_id=row.user_id,
        handle=row.handle,
        public_key=row.public_key,
        keypair_version=row.keypair_version,
    )
