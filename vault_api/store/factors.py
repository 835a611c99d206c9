"""Hardened factors as stored: passphrase wraps (current and history), token
slots of kind "kc+passphrase", the recovery slot, success keys, and the
account's own audit log (account_events), which the user's other sessions
are shown (docs/vault.md 5.4-5.6).

The server cannot open any of it: every wrap and slot is client-made
ciphertext under keys derived from Kc, a hardened passphrase or a hardened
recovery secret. What it enforces: one current wrap per account; a
passphrase change keeps the replaced wrap as history for a configured time; a
token slot only for a token the session proved; a recovery changes an account
only after the route checked a signature by the account's recovery success key.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vault_api.crypto.ids import short
from vault_api.errors import Conflict, Forbidden, Invalid, NotFound
from vault_api.models import (
    AccountEventOut,
    AccountEventsOut,
    FactorsOut,
    RecoveryIn,
    RecoveryOut,
    RecoveryTargetOut,
    SuccessKeyIn,
    SuccessKeyOut,
    TokenSlotIn,
    WrapIn,
    WrapOut,
)
from vault_api.schema import (
    account_events,
    key_slots,
    passphrase_wraps,
    recovery_slots,
    sessions,
    success_keys,
    users,
)

ACTIONS = frozenset(
    {
        "passphrase.set",
        "passphrase.change",
        "passphrase.rollback",
        "recovery.setup",
        "recovery.remove",
        "account.recover",
        # Trusted devices and organisations (docs/devices.md 2, 3, 6).
        "device.register",
        "device.rename",
        "device.revoke",
        "device.expire",
        "device.bypass_on",
        "device.bypass_off",
        "org.join",
        "org.leave",
    }
)
# What the user's other sessions are told about.
NOTIFY = ACTIONS


def record_event(
    conn: Connection,
    *,
    user_id: bytes,
    action: str,
    now_ms: int,
    session_hash: bytes | None,
    **detail: Any,
) -> None:
    assert action in ACTIONS, action
    conn.execute(
        account_events.insert().values(
            user_id=user_id,
            at_ms=now_ms,
            action=action,
            session_hash=session_hash,
            detail=json.dumps(detail, separators=(",", ":")),
        )
    )


def _event_out(r: Any) -> AccountEventOut:
    return AccountEventOut.model_construct(
        seq=r.seq, at_ms=r.at_ms, action=r.action, detail=json.loads(r.detail)
    )


def events(conn: Connection, user_id: bytes, limit: int = 100) -> AccountEventsOut:
    rows = conn.execute(
        account_events.select()
        .where(account_events.c.user_id == user_id)
        .order_by(account_events.c.seq.desc())
        .limit(limit)
    ).all()
    return AccountEventsOut.model_construct(events=[_event_out(r) for r in rows])


def notices(
    conn: Connection, *, user_id: bytes, session_hash: bytes, since_ms: int
) -> list[AccountEventOut]:
    """Events of this account since the session began that another session did."""
    rows = conn.execute(
        account_events.select()
        .where(
            account_events.c.user_id == user_id,
            account_events.c.at_ms >= since_ms,
            account_events.c.action.in_(sorted(NOTIFY)),
            sa.or_(
                account_events.c.session_hash.is_(None),
                account_events.c.session_hash != session_hash,
            ),
        )
        .order_by(account_events.c.seq)
    ).all()
    return [_event_out(r) for r in rows]


# --- reading --------------------------------------------------------------------------


def _wrap_out(r: Any) -> WrapOut:
    return WrapOut.model_construct(
        id=r.wrap_id,
        state=r.state,
        salt=r.salt,
        iterations=r.iterations,
        key_version=r.key_version,
        hardener_public_key=r.hardener_public_key,
        wrap=r.wrap,
        created_ms=r.created_ms,
        replaced_ms=r.replaced_ms,
        expires_ms=r.expires_ms,
    )


def _recovery_out(r: Any) -> RecoveryOut:
    return RecoveryOut.model_construct(
        id=r.record_id,
        kind=r.kind,
        salt=r.salt,
        iterations=r.iterations,
        key_version=r.key_version,
        hardener_public_key=r.hardener_public_key,
        slot=r.slot,
        created_ms=r.created_ms,
    )


def _success_out(r: Any) -> SuccessKeyOut:
    return SuccessKeyOut.model_construct(
        purpose=r.purpose, public_key=r.public_key, sealed=r.sealed
    )


def _purge(conn: Connection, user_id: bytes, now_ms: int) -> None:
    conn.execute(
        passphrase_wraps.delete().where(
            passphrase_wraps.c.user_id == user_id,
            passphrase_wraps.c.state == "history",
            passphrase_wraps.c.expires_ms <= now_ms,
        )
    )


def current_wrap(conn: Connection, user_id: bytes) -> Any:
    return conn.execute(
        passphrase_wraps.select().where(
            passphrase_wraps.c.user_id == user_id, passphrase_wraps.c.state == "current"
        )
    ).first()


def success_key(conn: Connection, user_id: bytes, purpose: str) -> Any:
    return conn.execute(
        success_keys.select().where(
            success_keys.c.user_id == user_id, success_keys.c.purpose == purpose
        )
    ).first()


def factors(conn: Connection, user_id: bytes, now_ms: int) -> FactorsOut:
    rows = conn.execute(
        passphrase_wraps.select()
        .where(passphrase_wraps.c.user_id == user_id)
        .order_by(passphrase_wraps.c.created_ms.desc())
    ).all()
    live = [r for r in rows if r.state == "current" or (r.expires_ms or 0) > now_ms]
    rec = conn.execute(recovery_slots.select().where(recovery_slots.c.user_id == user_id)).first()
    keys = conn.execute(
        success_keys.select()
        .where(success_keys.c.user_id == user_id)
        .order_by(success_keys.c.purpose)
    ).all()
    current = next((r for r in live if r.state == "current"), None)
    return FactorsOut.model_construct(
        passphrase=_wrap_out(current) if current is not None else None,
        history=[_wrap_out(r) for r in live if r.state == "history"],
        recovery=_recovery_out(rec) if rec is not None else None,
        success_keys=[_success_out(k) for k in keys],
        dropped_key_ids=[],
    )


# --- writing --------------------------------------------------------------------------


def _registered(conn: Connection, user_id: bytes) -> Any:
    row = conn.execute(users.select().where(users.c.user_id == user_id)).one()
    if row.public_key is None:
        raise Forbidden("register a key pair first (POST /api/me)", code="not_registered")
    return row


def store_success_key(
    conn: Connection, *, user_id: bytes, purpose: str, key: SuccessKeyIn | None, now_ms: int
) -> tuple[bytes, bool]:
    """The account's success key for `purpose`: the stored one, else `key`
    (stored now). Returns its public key and whether it was new."""
    _registered(conn, user_id)
    row = success_key(conn, user_id, purpose)
    if row is not None:
        return bytes(row.public_key), False
    if key is None:
        raise Invalid(
            f"the account has no {purpose} success key yet: send one (success_key)",
            code="success_key_missing",
        )
    conn.execute(
        success_keys.insert().values(
            user_id=user_id,
            purpose=purpose,
            public_key=key.public_key,
            sealed=key.sealed,
            created_ms=now_ms,
        )
    )
    return key.public_key, True


def _insert_wrap(conn: Connection, user_id: bytes, wrap: WrapIn, now_ms: int) -> None:
    taken = conn.execute(
        sa.select(passphrase_wraps.c.wrap_id).where(passphrase_wraps.c.wrap_id == wrap.id)
    ).first()
    if taken is not None:
        raise Conflict("that wrap id is taken; make a new one", code="id_taken")
    conn.execute(
        passphrase_wraps.insert().values(
            wrap_id=wrap.id,
            user_id=user_id,
            state="current",
            salt=wrap.salt,
            iterations=wrap.iterations,
            key_version=wrap.key_version,
            hardener_public_key=wrap.hardener_public_key,
            wrap=wrap.wrap,
            created_ms=now_ms,
        )
    )


def set_passphrase(
    conn: Connection,
    *,
    user_id: bytes,
    proven_key_ids: tuple[bytes, ...],
    wrap: WrapIn,
    token_slots: list[TokenSlotIn],
    drop_unproven: bool,
    session_hash: bytes,
    now_ms: int,
) -> FactorsOut:
    """Turn every token slot into a kc+passphrase slot and store the first wrap."""
    user = _registered(conn, user_id)
    _purge(conn, user_id, now_ms)
    if current_wrap(conn, user_id) is not None:
        raise Conflict(
            "this account already has a vault passphrase; change it instead", code="passphrase_set"
        )
    given = {s.key_id for s in token_slots}
    if len(given) != len(token_slots):
        raise Invalid("a token slot is given twice", code="duplicate_id")
    unproven = sorted(k for k in given if k not in proven_key_ids)
    if unproven:
        raise Forbidden(
            f"this session has not proved token {short(unproven[0])}; log in with it in this "
            "session (POST /api/session/tokens) first",
            code="key_id_not_proven",
        )
    existing = (
        conn.execute(sa.select(key_slots.c.key_id).where(key_slots.c.user_id == user_id))
        .scalars()
        .all()
    )
    others = sorted(k for k in existing if k not in given)
    if others and not drop_unproven:
        raise Conflict(
            f"token {short(others[0])} (and {len(others) - 1} more) also opens this vault and "
            "this session has not proved it: prove it in this session so it gets a new slot, "
            "or set drop_unproven to remove its slot (add it again later)",
            code="tokens_unproven",
            key_ids=[short(k) for k in others],
        )
    conn.execute(key_slots.delete().where(key_slots.c.user_id == user_id))
    for s in token_slots:
        conn.execute(
            key_slots.insert().values(
                user_id=user_id,
                key_id=s.key_id,
                keypair_version=user.keypair_version,
                slot=s.slot,
                kind="kc+passphrase",
                created_ms=now_ms,
                last_used_ms=None,
            )
        )
    _insert_wrap(conn, user_id, wrap, now_ms)
    record_event(
        conn,
        user_id=user_id,
        action="passphrase.set",
        now_ms=now_ms,
        session_hash=session_hash,
        tokens=len(token_slots),
        dropped=len(others),
    )
    out = factors(conn, user_id, now_ms)
    return out.model_copy(update={"dropped_key_ids": others})


def _retire_current(conn: Connection, row: Any, now_ms: int, history_ms: int) -> None:
    conn.execute(
        passphrase_wraps.update()
        .where(passphrase_wraps.c.wrap_id == row.wrap_id)
        .values(state="history", replaced_ms=now_ms, expires_ms=now_ms + history_ms)
    )


def change_passphrase(
    conn: Connection,
    *,
    user_id: bytes,
    expected_wrap_id: bytes,
    wrap: WrapIn,
    history_ms: int,
    session_hash: bytes,
    now_ms: int,
) -> FactorsOut:
    """A new wrap under the same token factor; the replaced one becomes history."""
    _registered(conn, user_id)
    _purge(conn, user_id, now_ms)
    row = current_wrap(conn, user_id)
    if row is None:
        raise Conflict("this account has no vault passphrase to change", code="passphrase_unset")
    if row.wrap_id != expected_wrap_id:
        raise Conflict(
            "the passphrase changed meanwhile (another session); reload and try again",
            code="passphrase_stale",
        )
    if history_ms > 0:
        _retire_current(conn, row, now_ms, history_ms)
    else:
        conn.execute(passphrase_wraps.delete().where(passphrase_wraps.c.wrap_id == row.wrap_id))
    _insert_wrap(conn, user_id, wrap, now_ms)
    record_event(
        conn, user_id=user_id, action="passphrase.change", now_ms=now_ms, session_hash=session_hash
    )
    return factors(conn, user_id, now_ms)


def rollback(
    conn: Connection,
    *,
    user_id: bytes,
    wrap_id: bytes,
    history_ms: int,
    session_hash: bytes,
    now_ms: int,
) -> FactorsOut:
    """Make a kept wrap (an earlier passphrase) current again; the current one becomes history."""
    _registered(conn, user_id)
    _purge(conn, user_id, now_ms)
    old = conn.execute(
        passphrase_wraps.select().where(
            passphrase_wraps.c.user_id == user_id,
            passphrase_wraps.c.wrap_id == wrap_id,
            passphrase_wraps.c.state == "history",
        )
    ).first()
    if old is None:
        raise NotFound(
            f"no kept passphrase wrap {short(wrap_id)} (it expired, or it is not this account's)",
            code="wrap_not_found",
        )
    row = current_wrap(conn, user_id)
    if row is not None:
        _retire_current(conn, row, now_ms, max(history_ms, 1))
    conn.execute(
        passphrase_wraps.update()
        .where(passphrase_wraps.c.wrap_id == wrap_id)
        .values(state="current", replaced_ms=None, expires_ms=None)
    )
    record_event(
        conn,
        user_id=user_id,
        action="passphrase.rollback",
        now_ms=now_ms,
        session_hash=session_hash,
        to_wrap=short(wrap_id),
    )
    return factors(conn, user_id, now_ms)


def put_recovery(
    conn: Connection, *, user_id: bytes, rec: RecoveryIn, session_hash: bytes, now_ms: int
) -> FactorsOut:
    _registered(conn, user_id)
    replaced = conn.execute(
        recovery_slots.delete().where(recovery_slots.c.user_id == user_id)
    ).rowcount
    conn.execute(
        recovery_slots.insert().values(
            user_id=user_id,
            record_id=rec.id,
            kind=rec.kind,
            salt=rec.salt,
            iterations=rec.iterations,
            key_version=rec.key_version,
            hardener_public_key=rec.hardener_public_key,
            slot=rec.slot,
            created_ms=now_ms,
        )
    )
    record_event(
        conn,
        user_id=user_id,
        action="recovery.setup",
        now_ms=now_ms,
        session_hash=session_hash,
        kind=rec.kind,
        replaced=bool(replaced),
    )
    return factors(conn, user_id, now_ms)


def delete_recovery(conn: Connection, *, user_id: bytes, session_hash: bytes, now_ms: int) -> None:
    n = conn.execute(recovery_slots.delete().where(recovery_slots.c.user_id == user_id)).rowcount
    if not n:
        raise NotFound("this account has no recovery slot", code="recovery_not_found")
    record_event(
        conn, user_id=user_id, action="recovery.remove", now_ms=now_ms, session_hash=session_hash
    )


# --- recovery after losing every token --------------------------------------------------


def recovery_target(conn: Connection, handle: str) -> RecoveryTargetOut:
    row = conn.execute(
        users.select().where(users.c.handle == handle, users.c.public_key.is_not(None))
    ).first()
    rec = (
        None
        if row is None
        else conn.execute(
            recovery_slots.select().where(recovery_slots.c.user_id == row.user_id)
        ).first()
    )
    key = None if row is None else success_key(conn, row.user_id, "recovery")
    if row is None or rec is None or key is None:
        # One answer for "no such user" and "no recovery slot": nothing to learn here
        # that GET /api/users/{handle} would not say.
        raise NotFound(
            f"no account {handle!r} with a recovery slot in this vault", code="recovery_not_found"
        )
    return RecoveryTargetOut.model_construct(
        user_id=row.user_id,
        handle=row.handle,
        public_key=row.public_key,
        keypair_version=row.keypair_version,
        recovery=_recovery_out(rec),
        success_key=_success_out(key),
    )


def recover(
    conn: Connection,
    *,
    session_hash: bytes,
    target_user_id: bytes,
    keypair_version: int,
    slot: bytes,
    now_ms: int,
) -> bytes:
    """After a proven recovery: the session's token becomes the account's only
    token (its PUID the account's), every other slot and the passphrase go.
    Returns the user id the session now belongs to."""
    target = conn.execute(users.select().where(users.c.user_id == target_user_id)).one()
    if keypair_version != target.keypair_version:
        raise Conflict(
            f"the account's key pair is version {target.keypair_version}, not {keypair_version}",
            code="keypair_version",
        )
    sess = conn.execute(sessions.select().where(sessions.c.session_hash == session_hash)).one()
    me = conn.execute(users.select().where(users.c.user_id == sess.user_id)).one()
    if me.user_id != target.user_id:
        if me.public_key is not None:
            raise Conflict(
                "the token you logged in with already opens another vault account "
                f"({me.handle!r}); recover with a new token, or from that account's session",
                code="account_registered",
            )
        conn.execute(
            sessions.update()
            .where(sessions.c.session_hash == session_hash)
            .values(user_id=target.user_id)
        )
        conn.execute(users.delete().where(users.c.user_id == me.user_id))
        conn.execute(users.update().where(users.c.user_id == target.user_id).values(puid=me.puid))
    removed = conn.execute(key_slots.delete().where(key_slots.c.user_id == target.user_id)).rowcount
    conn.execute(passphrase_wraps.delete().where(passphrase_wraps.c.user_id == target.user_id))
    # The recovering session is bound to no device and has proven no passphrase.
    conn.execute(
        sessions.update()
        .where(sessions.c.session_hash == session_hash)
        .values(device_id=None, passphrase_unlocked_ms=None)
    )
    # The new passphrase comes with a new T: every device wrap is dead (docs/devices.md 3).
    # (imported here: store.devices records its events through this module)
    from vault_api.store import devices as device_store

    wraps = device_store.drop_all_wraps(conn, target.user_id, now_ms, reason="recovery")
    conn.execute(
        key_slots.insert().values(
            user_id=target.user_id,
            key_id=sess.key_id,
            keypair_version=keypair_version,
            slot=slot,
            kind="kc",
            created_ms=now_ms,
            last_used_ms=now_ms,
        )
    )
    record_event(
        conn,
        user_id=target.user_id,
        action="account.recover",
        now_ms=now_ms,
        session_hash=session_hash,
        key_id=short(sess.key_id),
        slots_removed=removed,
        device_wraps_removed=wraps,
        new_account_login=me.user_id != target.user_id,
    )
    return bytes(target.user_id)
