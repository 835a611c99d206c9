"""Sessions and pending logins, as stored.

A session row is keyed by the SHA-256 of its cookie, so the database holds no
usable cookie. It keeps the authnet ticket the session renews (PutTicket)
while it is used, the key id of the token it logged in with, and the key ids
of further tokens it proved (so it may add their key slots).

A pending login maps the hash of a ticket to the hash of the login-binding
cookie of the browser it was issued to: a ticket is accepted only from that
browser (a photographed QR code is useless elsewhere).
"""

from __future__ import annotations

import hmac
import json
import os
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from authnet.protocol.encoding import b64u_decode, b64u_encode
from vault_api.errors import Unauthenticated
from vault_api.models import SessionOut
from vault_api.schema import (
    key_slots,
    org_members,
    organisations,
    passphrase_wraps,
    pending_logins,
    sessions,
    users,
)
from vault_api.store import factors as factor_store
from vault_api.store import orgs as org_store
from vault_api.store import users as user_store
from vault_api.store.orgs import Defaults


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRecord:
    session_hash: bytes
    user_id: bytes
    puid: str
    key_id: bytes
    proven_key_ids: tuple[bytes, ...]
    csrf_token: str = field(repr=False)
    ticket: str = field(repr=False)
    ticket_expires_ms: int
    renewed_ms: int
    created_ms: int
    last_seen_ms: int
    registered: bool
    device_id: bytes | None = None
    device_nonce: bytes | None = field(default=None, repr=False)
    passphrase_unlocked: bool = False
    # The passphrase rule (docs/vault.md 5.4), read with the session so that
    # enforcing it costs no query of its own and nothing has to be invalidated
    # when a passphrase is set or a policy changes: whether the account has a
    # current passphrase wrap, and the name of its organisation if that
    # organisation's policy requires one.
    has_passphrase: bool = False
    org_requiring_passphrase: str | None = None


def _proven(text: str) -> tuple[bytes, ...]:
    return tuple(b64u_decode(k, field="key id") for k in json.loads(text))


_HAS_PASSPHRASE = (
    sa.exists()
    .where(
        passphrase_wraps.c.user_id == sessions.c.user_id,
        passphrase_wraps.c.state == "current",
    )
    .label("has_passphrase")
)
# An account belongs to at most one organisation (org_members' key is user_id).
_ORG_REQUIRING = (
    sa.select(organisations.c.name)
    .select_from(organisations.join(org_members, org_members.c.org_id == organisations.c.org_id))
    .where(org_members.c.user_id == sessions.c.user_id, organisations.c.require_passphrase)
    .scalar_subquery()
    .label("org_requiring_passphrase")
)
_LOAD = sa.select(
    sessions,
    users.c.puid,
    users.c.public_key.is_not(None).label("registered"),
    _HAS_PASSPHRASE,
    _ORG_REQUIRING,
).select_from(sessions.join(users, users.c.user_id == sessions.c.user_id))


def load(conn: Connection, session_hash: bytes) -> SessionRecord | None:
    row = conn.execute(_LOAD.where(sessions.c.session_hash == session_hash)).first()
    if row is None:
        return None
    return SessionRecord(
        session_hash=row.session_hash,
        user_id=row.user_id,
        puid=row.puid,
        key_id=row.key_id,
        proven_key_ids=_proven(row.proven_key_ids),
        csrf_token=row.csrf_token,
        ticket=row.ticket,
        ticket_expires_ms=row.ticket_expires_ms,
        renewed_ms=row.renewed_ms,
        created_ms=row.created_ms,
        last_seen_ms=row.last_seen_ms,
        registered=bool(row.registered),
        device_id=row.device_id,
        device_nonce=row.device_nonce,
        passphrase_unlocked=row.passphrase_unlocked_ms is not None,
        has_passphrase=bool(row.has_passphrase),
        org_requiring_passphrase=row.org_requiring_passphrase,
    )


def create(
    conn: Connection,
    *,
    puid: str,
    key_id: bytes,
    session_hash: bytes,
    csrf_token: str,
    ticket: str,
    ticket_expires_ms: int,
    ticket_hash: bytes,
    now_ms: int,
    idle_ms: int,
    max_ms: int,
    replaces: bytes | None = None,
) -> SessionRecord:
    """A new session for the account of `puid` (created if new); consumes the
    pending login, ends the session this browser had (`replaces`), and sweeps
    sessions that ended."""
    conn.execute(pending_logins.delete().where(pending_logins.c.ticket_hash == ticket_hash))
    if replaces is not None:
        conn.execute(sessions.delete().where(sessions.c.session_hash == replaces))
    conn.execute(
        sessions.delete().where(
            (sessions.c.last_seen_ms < now_ms - idle_ms) | (sessions.c.created_ms < now_ms - max_ms)
        )
    )
    user = user_store.user_for_puid(conn, puid, now_ms)
    conn.execute(
        sessions.insert().values(
            session_hash=session_hash,
            user_id=user.user_id,
            key_id=key_id,
            proven_key_ids=json.dumps([b64u_encode(key_id)]),
            csrf_token=csrf_token,
            ticket=ticket,
            ticket_expires_ms=ticket_expires_ms,
            renewed_ms=now_ms,
            created_ms=now_ms,
            last_seen_ms=now_ms,
            device_nonce=os.urandom(32),
        )
    )
    conn.execute(
        key_slots.update()
        .where(key_slots.c.user_id == user.user_id, key_slots.c.key_id == key_id)
        .values(last_used_ms=now_ms)
    )
    record = load(conn, session_hash)
    assert record is not None
    return record


def touch(conn: Connection, session_hash: bytes, now_ms: int) -> None:
    conn.execute(
        sessions.update().where(sessions.c.session_hash == session_hash).values(last_seen_ms=now_ms)
    )


def postpone_renewal(conn: Connection, session_hash: bytes, now_ms: int) -> None:
    conn.execute(
        sessions.update()
        .where(sessions.c.session_hash == session_hash)
        .values(renewed_ms=now_ms, last_seen_ms=now_ms)
    )


def renewed(
    conn: Connection,
    *,
    session_hash: bytes,
    old_ticket: str,
    ticket: str,
    ticket_expires_ms: int,
    now_ms: int,
) -> bool:
    """Store a renewed ticket, if no one else renewed it first (compare-and-set)."""
    result = conn.execute(
        sessions.update()
        .where(sessions.c.session_hash == session_hash, sessions.c.ticket == old_ticket)
        .values(
            ticket=ticket,
            ticket_expires_ms=ticket_expires_ms,
            renewed_ms=now_ms,
            last_seen_ms=now_ms,
        )
    )
    return result.rowcount == 1


def mark_passphrase_unlocked(conn: Connection, session_hash: bytes, now_ms: int) -> None:
    """The session reported a proven passphrase success (docs/devices.md 2)."""
    conn.execute(
        sessions.update()
        .where(sessions.c.session_hash == session_hash)
        .values(passphrase_unlocked_ms=now_ms)
    )


def delete(conn: Connection, session_hash: bytes) -> None:
    conn.execute(sessions.delete().where(sessions.c.session_hash == session_hash))


def add_proven_key(
    conn: Connection, *, session_hash: bytes, key_id: bytes, ticket_hash: bytes
) -> None:
    conn.execute(pending_logins.delete().where(pending_logins.c.ticket_hash == ticket_hash))
    row = conn.execute(
        sa.select(sessions.c.proven_key_ids).where(sessions.c.session_hash == session_hash)
    ).first()
    if row is None:
        return
    proven: list[str] = json.loads(row.proven_key_ids)
    if b64u_encode(key_id) not in proven:
        proven.append(b64u_encode(key_id))
    conn.execute(
        sessions.update()
        .where(sessions.c.session_hash == session_hash)
        .values(proven_key_ids=json.dumps(proven))
    )


def add_pending(
    conn: Connection, *, ticket_hash: bytes, binding_hash: bytes, expires_ms: int, now_ms: int
) -> None:
    conn.execute(pending_logins.delete().where(pending_logins.c.expires_ms < now_ms))
    conn.execute(
        pending_logins.insert().values(
            ticket_hash=ticket_hash, binding_hash=binding_hash, expires_ms=expires_ms
        )
    )


def pending_matches(
    conn: Connection, *, ticket_hash: bytes, binding_hash: bytes, now_ms: int
) -> bool:
    row = conn.execute(
        pending_logins.select().where(pending_logins.c.ticket_hash == ticket_hash)
    ).first()
    if row is None or row.expires_ms < now_ms:
        return False
    return hmac.compare_digest(row.binding_hash, binding_hash)


def view(
    conn: Connection, session_hash: bytes, idle_timeout_seconds: int, defaults: Defaults
) -> SessionOut:
    """What GET /api/session returns (the page's CSRF token included)."""
    rec = load(conn, session_hash)
    if rec is None:
        raise Unauthenticated("this session ended; log in again", code="session_ended")
    user = user_store.get_user(conn, rec.user_id)
    slot = user_store.slot_for(conn, rec.user_id, rec.key_id)
    return SessionOut.model_construct(
        user=user_store.user_out(user),
        key_id=rec.key_id,
        proven_key_ids=list(rec.proven_key_ids),
        slot=user_store.slot_out(slot) if slot is not None else None,
        csrf_token=rec.csrf_token,
        idle_timeout_seconds=idle_timeout_seconds,
        notices=factor_store.notices(
            conn, user_id=rec.user_id, session_hash=session_hash, since_ms=rec.created_ms
        ),
        device_nonce=rec.device_nonce,
        device_id=rec.device_id,
        passphrase_unlocked=rec.passphrase_unlocked,
        policy=org_store.policy_for(conn, rec.user_id, defaults).out(),
    )
