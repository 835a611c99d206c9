"""The audit log of a safe: who did what, when. Admins read it.

Entries hold public facts only (an action, a target id, versions, a role, a
size), never a ciphertext. Reads are not logged: a member who can read holds
the safe key and can read offline anyway.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vault_api.models import AuditEventOut, AuditOut
from vault_api.roles import Access
from vault_api.schema import audit_events, users
from vault_api.store.access import require

ACTIONS = frozenset(
    {
        "safe.create",
        "safe.rename",
        "member.add",
        "member.role",
        "member.remove",
        "member.leave",
        "folder.create",
        "folder.update",
        "folder.delete",
        "item.create",
        "item.update",
        "item.delete",
        "item.move_out",
        "item.move_in",
        "file.create",
        "file.upload",
        "file.delete",
        "file.move_out",
        "file.move_in",
        "rotation.begin",
        "rotation.commit",
        "rotation.abort",
    }
)


def record(
    conn: Connection,
    *,
    safe_id: bytes,
    actor: bytes,
    action: str,
    now_ms: int,
    target: bytes | None = None,
    **detail: Any,
) -> None:
    assert action in ACTIONS, action
    conn.execute(
        audit_events.insert().values(
            safe_id=safe_id,
            at_ms=now_ms,
            actor=actor,
            action=action,
            target=target,
            detail=json.dumps(detail, separators=(",", ":")),
        )
    )


def record_many(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(audit_events.insert(), rows)


def events(
    conn: Connection, *, safe_id: bytes, user_id: bytes, before: int | None, limit: int
) -> AuditOut:
    require(conn, safe_id, user_id, Access.MANAGE)
    q = (
        sa.select(audit_events, users.c.handle)
        .select_from(audit_events.outerjoin(users, users.c.user_id == audit_events.c.actor))
        .where(audit_events.c.safe_id == safe_id)
        .order_by(audit_events.c.seq.desc())
        .limit(limit + 1)
    )
    if before is not None:
        q = q.where(audit_events.c.seq < before)
    rows = conn.execute(q).all()
    out = [
        AuditEventOut.model_construct(
            seq=r.seq,
            at_ms=r.at_ms,
            actor=r.actor,
            actor_handle=r.handle,
            action=r.action,
            target=r.target,
            detail=json.loads(r.detail),
        )
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    return AuditOut.model_construct(events=out, next_before=out[-1].seq if more else None)
