"""Roles in a safe and what each may do. The server checks them on every
request, in the same transaction as the change they guard.

| role   | read | write | manage |
|--------|------|-------|--------|
| viewer | yes  | no    | no     |
| editor | yes  | yes   | no     |
| admin  | yes  | yes   | yes    |

read: items, folders, files, history, members, the key chain. write: create,
update and delete items, folders and files. manage: share, change roles,
remove members, rotate the key, rename or delete the safe, read the audit log.

A viewer holds the safe key (that is what reading client-side encrypted data
takes), so "viewer" means "can read", enforced for writes by the server.
"""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"


class Access(enum.IntEnum):
    READ = 1
    WRITE = 2
    MANAGE = 3


_GRANTS = {Role.VIEWER: Access.READ, Role.EDITOR: Access.WRITE, Role.ADMIN: Access.MANAGE}


def allows(role: Role, access: Access) -> bool:
    return _GRANTS[role] >= access
