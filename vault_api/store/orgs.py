"""Organisations, their members, policy and audit log, as stored
(docs/devices.md 6).

An account belongs to at most one organisation. The policy of the account's
organisation (or, without one, the server's settings) decides whether devices
may be registered and use the bypass, and how long an unused device lives.
Turning a permission off removes every dependent wrap in the same
transaction (the downgrade rule); joining an organisation applies its policy
the same way. Every policy and membership change is in org_events.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vault_api.crypto.ids import short
from vault_api.errors import Conflict, Forbidden, NotFound
from vault_api.models import (
    OrgAuditOut,
    OrgEventOut,
    OrgMemberOut,
    OrgOut,
    OrgRefOut,
    PolicyIn,
    PolicyOut,
    RemovedOut,
)
from vault_api.schema import devices, org_events, org_members, organisations, users
from vault_api.store import devices as device_store
from vault_api.store import factors as factor_store

ACTIONS: Final = frozenset(
    {"org.create", "policy.change", "member.add", "member.remove", "member.role", "member.leave"}
)
POLICY_FIELDS: Final = (
    "allow_device_registration",
    "allow_bypass",
    "require_passphrase",
    "device_expiry_seconds",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Defaults:
    """The server's policy for accounts without an organisation (settings)."""

    require_passphrase: bool = False
    device_expiry_seconds: int = 90 * 24 * 3600


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    allow_device_registration: bool
    allow_bypass: bool
    require_passphrase: bool
    device_expiry_seconds: int
    org_id: bytes | None = None
    org_name: str | None = None
    role: str | None = None

    def require(self, permission: str) -> None:
        if not getattr(self, permission):
            where = "your organisation's" if self.org_id is not None else "this vault's"
            raise Forbidden(
                f"{where} policy does not allow this ({permission} is off)",
                code="policy_forbids",
                policy=permission,
            )

    def values(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in POLICY_FIELDS}

    def out(self) -> PolicyOut:
        org = None
        if self.org_id is not None:
            org = OrgRefOut.model_construct(org_id=self.org_id, name=self.org_name, role=self.role)
        return PolicyOut.model_construct(**self.values(), organisation=org)


def _policy_of(org: Any, role: str | None) -> Policy:
    return Policy(
        allow_device_registration=bool(org.allow_device_registration),
        allow_bypass=bool(org.allow_bypass),
        require_passphrase=bool(org.require_passphrase),
        device_expiry_seconds=int(org.device_expiry_seconds),
        org_id=org.org_id,
        org_name=org.name,
        role=role,
    )


def policy_for(conn: Connection, user_id: bytes, defaults: Defaults) -> Policy:
    row = conn.execute(
        sa.select(organisations, org_members.c.role)
        .select_from(
            organisations.join(org_members, org_members.c.org_id == organisations.c.org_id)
        )
        .where(org_members.c.user_id == user_id)
    ).first()
    if row is None:
        return Policy(
            allow_device_registration=True,
            allow_bypass=True,
            require_passphrase=defaults.require_passphrase,
            device_expiry_seconds=defaults.device_expiry_seconds,
        )
    return _policy_of(row, row.role)


def record(
    conn: Connection, *, org_id: bytes, actor: bytes | None, action: str, now_ms: int, **detail: Any
) -> None:
    assert action in ACTIONS, action
    conn.execute(
        org_events.insert().values(
            org_id=org_id,
            at_ms=now_ms,
            actor=actor,
            action=action,
            detail=json.dumps(detail, separators=(",", ":")),
        )
    )


# --- the downgrade rule ---------------------------------------------------------------


def apply(
    conn: Connection, user_ids: list[bytes], old: Policy | None, new: Policy, now_ms: int
) -> RemovedOut:
    """What `new` removes from these accounts' devices (compared with `old`;
    None: everything `new` forbids)."""
    where = devices.c.user_id.in_(user_ids) if user_ids else sa.false()
    revoked = wraps = 0
    if not new.allow_device_registration and (old is None or old.allow_device_registration):
        with_wraps = conn.execute(
            sa.select(sa.func.count())
            .select_from(devices)
            .where(where, devices.c.state == "active", device_store.HAS_WRAPS)
        ).scalar_one()
        revoked = device_store.revoke_rows(conn, where, now_ms, reason="policy")
        wraps += int(with_wraps)
    if not new.allow_bypass and (old is None or old.allow_bypass):
        wraps += device_store.drop_wraps(conn, where, now_ms, reason="policy")
    if new.device_expiry_seconds and (
        old is None
        or old.device_expiry_seconds == 0
        or new.device_expiry_seconds < old.device_expiry_seconds
    ):
        for user_id in user_ids:
            revoked += device_store.sweep(conn, user_id, new, now_ms)
    return RemovedOut(wraps=wraps, devices=revoked)


# --- organisations ----------------------------------------------------------------------


def _org(conn: Connection, org_id: bytes) -> Any:
    row = conn.execute(organisations.select().where(organisations.c.org_id == org_id)).first()
    if row is None:
        raise NotFound(f"no organisation {short(org_id)} of yours", code="org_not_found")
    return row


def _role(conn: Connection, org_id: bytes, user_id: bytes) -> str:
    """The caller's role; 404 for a non-member (they may not know the organisation)."""
    row = conn.execute(
        sa.select(org_members.c.role).where(
            org_members.c.org_id == org_id, org_members.c.user_id == user_id
        )
    ).first()
    if row is None:
        raise NotFound(f"no organisation {short(org_id)} of yours", code="org_not_found")
    return str(row.role)


def _admin(conn: Connection, org_id: bytes, user_id: bytes) -> None:
    if _role(conn, org_id, user_id) != "admin":
        raise Forbidden("only an admin of the organisation may do this", code="not_org_admin")


def org_out(
    conn: Connection, org_id: bytes, user_id: bytes, removed: RemovedOut | None = None
) -> OrgOut:
    org = _org(conn, org_id)
    role = _role(conn, org_id, user_id)
    rows = conn.execute(
        sa.select(org_members, users.c.handle)
        .select_from(org_members.join(users, users.c.user_id == org_members.c.user_id))
        .where(org_members.c.org_id == org_id)
        .order_by(org_members.c.added_ms, users.c.handle)
    ).all()
    return OrgOut.model_construct(
        org_id=org.org_id,
        name=org.name,
        policy=_policy_of(org, role).out(),
        role=role,
        members=[_member_out(r) for r in rows],
        removed=removed,
    )


def _member_out(r: Any) -> OrgMemberOut:
    return OrgMemberOut.model_construct(
        user_id=r.user_id, handle=r.handle, role=r.role, added_ms=r.added_ms
    )


def _not_member(conn: Connection, user_id: bytes, who: str) -> None:
    if conn.execute(org_members.select().where(org_members.c.user_id == user_id)).first():
        raise Conflict(
            f"{who} already belongs to an organisation (an account belongs to at most one)",
            code="already_member",
        )


def _join(
    conn: Connection, *, org: Any, user_id: bytes, role: str, defaults: Defaults, now_ms: int
) -> RemovedOut:
    before = policy_for(conn, user_id, defaults)
    conn.execute(
        org_members.insert().values(org_id=org.org_id, user_id=user_id, role=role, added_ms=now_ms)
    )
    factor_store.record_event(
        conn,
        user_id=user_id,
        action="org.join",
        now_ms=now_ms,
        session_hash=None,
        org_id=short(org.org_id),
        name=org.name,
        role=role,
    )
    return apply(conn, [user_id], before, _policy_of(org, role), now_ms)


def create(
    conn: Connection, *, user_id: bytes, name: str, defaults: Defaults, now_ms: int
) -> OrgOut:
    _not_member(conn, user_id, "this account")
    org_id = os.urandom(16)
    conn.execute(
        organisations.insert().values(
            org_id=org_id,
            name=name,
            created_ms=now_ms,
            allow_device_registration=True,
            allow_bypass=True,
            require_passphrase=defaults.require_passphrase,
            device_expiry_seconds=defaults.device_expiry_seconds,
        )
    )
    org = _org(conn, org_id)
    _join(conn, org=org, user_id=user_id, role="admin", defaults=defaults, now_ms=now_ms)
    record(conn, org_id=org_id, actor=user_id, action="org.create", now_ms=now_ms, name=name)
    return org_out(conn, org_id, user_id)


def get(conn: Connection, *, org_id: bytes, user_id: bytes) -> OrgOut:
    return org_out(conn, org_id, user_id)


def change_policy(
    conn: Connection, *, org_id: bytes, user_id: bytes, body: PolicyIn, now_ms: int
) -> OrgOut:
    _admin(conn, org_id, user_id)
    org = _org(conn, org_id)
    old = _policy_of(org, None)
    changes = {f: v for f, v in body.model_dump(exclude_none=True).items() if f in POLICY_FIELDS}
    new = replace(old, **changes)
    conn.execute(
        organisations.update().where(organisations.c.org_id == org_id).values(**new.values())
    )
    members = [
        bytes(r.user_id)
        for r in conn.execute(
            sa.select(org_members.c.user_id).where(org_members.c.org_id == org_id)
        )
    ]
    removed = apply(conn, members, old, new, now_ms)
    admin = conn.execute(sa.select(users.c.handle).where(users.c.user_id == user_id)).scalar()
    record(
        conn,
        org_id=org_id,
        actor=user_id,
        action="policy.change",
        now_ms=now_ms,
        old=old.values(),
        new=new.values(),
        removed=removed.model_dump(),
        admin=admin,
    )
    return org_out(conn, org_id, user_id, removed)


def _target(conn: Connection, org_id: bytes, target: bytes) -> Any:
    row = conn.execute(
        sa.select(org_members, users.c.handle)
        .select_from(org_members.join(users, users.c.user_id == org_members.c.user_id))
        .where(org_members.c.org_id == org_id, org_members.c.user_id == target)
    ).first()
    if row is None:
        raise NotFound(
            f"user {short(target)} is not a member of this organisation", code="member_not_found"
        )
    return row


def _admins(conn: Connection, org_id: bytes) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(org_members)
            .where(org_members.c.org_id == org_id, org_members.c.role == "admin")
        ).scalar_one()
    )


def _last_admin() -> Conflict:
    return Conflict(
        "an organisation keeps at least one admin: make another member admin first",
        code="last_admin",
    )


def add_member(
    conn: Connection,
    *,
    org_id: bytes,
    user_id: bytes,
    handle: str,
    role: str,
    defaults: Defaults,
    now_ms: int,
) -> tuple[OrgMemberOut, RemovedOut]:
    _admin(conn, org_id, user_id)
    target = conn.execute(
        users.select().where(users.c.handle == handle, users.c.public_key.is_not(None))
    ).first()
    if target is None:
        raise NotFound(f"no user with the handle {handle!r}", code="user_not_found")
    _not_member(conn, target.user_id, f"{handle!r}")
    org = _org(conn, org_id)
    removed = _join(
        conn, org=org, user_id=target.user_id, role=role, defaults=defaults, now_ms=now_ms
    )
    record(
        conn,
        org_id=org_id,
        actor=user_id,
        action="member.add",
        now_ms=now_ms,
        user_id=short(target.user_id),
        handle=handle,
        role=role,
        removed=removed.model_dump(),
    )
    return _member_out(_target(conn, org_id, target.user_id)), removed


def set_role(
    conn: Connection, *, org_id: bytes, user_id: bytes, target: bytes, role: str, now_ms: int
) -> OrgMemberOut:
    _admin(conn, org_id, user_id)
    row = _target(conn, org_id, target)
    if row.role == "admin" and role != "admin" and _admins(conn, org_id) == 1:
        raise _last_admin()
    conn.execute(
        org_members.update()
        .where(org_members.c.org_id == org_id, org_members.c.user_id == target)
        .values(role=role)
    )
    record(
        conn,
        org_id=org_id,
        actor=user_id,
        action="member.role",
        now_ms=now_ms,
        user_id=short(target),
        handle=row.handle,
        old=row.role,
        new=role,
    )
    return _member_out(_target(conn, org_id, target))


def remove_member(
    conn: Connection,
    *,
    org_id: bytes,
    user_id: bytes,
    target: bytes,
    session_hash: bytes,
    now_ms: int,
) -> None:
    """An admin removes a member, or a member leaves. The account returns to
    the server's defaults (nothing is removed). The last admin cannot go while
    others remain; the last member leaving dissolves the organisation."""
    me = _role(conn, org_id, user_id)
    if target != user_id and me != "admin":
        raise Forbidden("only an admin may remove another member", code="not_org_admin")
    row = _target(conn, org_id, target)
    members = conn.execute(
        sa.select(sa.func.count()).select_from(org_members).where(org_members.c.org_id == org_id)
    ).scalar_one()
    org = _org(conn, org_id)
    if members == 1:
        conn.execute(organisations.delete().where(organisations.c.org_id == org_id))
    else:
        if row.role == "admin" and _admins(conn, org_id) == 1:
            raise _last_admin()
        conn.execute(
            org_members.delete().where(
                org_members.c.org_id == org_id, org_members.c.user_id == target
            )
        )
        leave = target == user_id
        record(
            conn,
            org_id=org_id,
            actor=user_id,
            action="member.leave" if leave else "member.remove",
            now_ms=now_ms,
            user_id=short(target),
            handle=row.handle,
        )
    factor_store.record_event(
        conn,
        user_id=target,
        action="org.leave",
        now_ms=now_ms,
        session_hash=session_hash if target == user_id else None,
        org_id=short(org_id),
        name=org.name,
    )


def audit(conn: Connection, *, org_id: bytes, user_id: bytes, limit: int = 200) -> OrgAuditOut:
    _admin(conn, org_id, user_id)
    rows = conn.execute(
        sa.select(org_events, users.c.handle)
        .select_from(org_events.outerjoin(users, users.c.user_id == org_events.c.actor))
        .where(org_events.c.org_id == org_id)
        .order_by(org_events.c.seq.desc())
        .limit(limit)
    ).all()
    return OrgAuditOut.model_construct(
        events=[
            OrgEventOut.model_construct(
                seq=r.seq,
                at_ms=r.at_ms,
                actor=r.actor,
                actor_handle=r.handle,
                action=r.action,
                detail=json.loads(r.detail),
            )
            for r in rows
        ]
    )
