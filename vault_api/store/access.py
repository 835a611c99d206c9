"""Who may do what in a safe. Every safe operation starts here, so the role
check and the change it guards share one transaction.

A caller who is not a member of a safe is told the safe does not exist
(404), exactly as for a safe that does not: membership is not leaked. Writes
lock the safe's row (FOR SHARE on PostgreSQL) so a key rotation's commit
(FOR UPDATE) never interleaves with them; SQLite serialises writers anyway.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vault_api.crypto.ids import short
from vault_api.errors import Conflict, Forbidden, NotFound
from vault_api.roles import Access, Role, allows
from vault_api.schema import memberships, safes


class Lock(enum.Enum):
    NONE = "none"
    SHARE = "share"
    UPDATE = "update"


@dataclass(frozen=True, slots=True, kw_only=True)
class Membership:
    safe_id: bytes
    user_id: bytes
    role: Role
    generation: int
    name_ct: bytes
    name_version: int
    rotation_needed: bool
    sealed_key: bytes
    updated_ms: int

    def check_generation(self, generation: int) -> None:
        """Writes are encrypted under one key generation; it must be the current one."""
        if generation != self.generation:
            raise Conflict(
                f"safe {short(self.safe_id)} is at key generation {self.generation}, not "
                f"{generation}: its key was rotated; fetch the safe again and re-encrypt",
                code="generation_stale",
                current_generation=self.generation,
            )


_NEEDS = {Access.READ: "a member", Access.WRITE: "an editor or admin", Access.MANAGE: "an admin"}

_QUERY = sa.select(
    safes.c.safe_id,
    safes.c.generation,
    safes.c.name_ct,
    safes.c.name_version,
    safes.c.rotation_needed,
    safes.c.updated_ms,
    memberships.c.role,
    memberships.c.sealed_key,
).select_from(safes.join(memberships, memberships.c.safe_id == safes.c.safe_id))


def require(
    conn: Connection, safe_id: bytes, user_id: bytes, access: Access, lock: Lock = Lock.NONE
) -> Membership:
    """The caller's membership of the safe, if it grants `access`."""
    q = _QUERY.where(safes.c.safe_id == safe_id, memberships.c.user_id == user_id)
    if lock is Lock.SHARE:
        q = q.with_for_update(read=True, of=safes)
    elif lock is Lock.UPDATE:
        q = q.with_for_update(of=safes)
    row = conn.execute(q).first()
    if row is None:
        raise NotFound(f"no safe {short(safe_id)} among your safes", code="safe_not_found")
    role = Role(row.role)
    if not allows(role, access):
        raise Forbidden(
            f"you are {role.value} of safe {short(safe_id)}; this needs {_NEEDS[access]}",
            code="role_forbidden",
            role=role.value,
        )
    return Membership(
        safe_id=row.safe_id,
        user_id=user_id,
        role=role,
        generation=row.generation,
        name_ct=row.name_ct,
        name_version=row.name_version,
        rotation_needed=row.rotation_needed,
        sealed_key=row.sealed_key,
        updated_ms=row.updated_ms,
    )


def require_write(conn: Connection, safe_id: bytes, user_id: bytes, generation: int) -> Membership:
    """An editor's or admin's write under the current key generation."""
    m = require(conn, safe_id, user_id, Access.WRITE, Lock.SHARE)
    m.check_generation(generation)
    return m
