"""Safes, their contents, key chain, members and audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from vault_api.blobs import blob_name
from vault_api.context import ID_PATTERN, UserDep, VaultDep, decode_id
from vault_api.models import (
    AuditOut,
    ContentsOut,
    KeyChainOut,
    MemberIn,
    MemberList,
    MemberOut,
    RoleIn,
    SafeIn,
    SafeList,
    SafeOut,
    SafeRenameIn,
)
from vault_api.store import audit
from vault_api.store import safes as store

router = APIRouter(tags=["safes"])

SafePath = Annotated[str, Path(pattern=ID_PATTERN, description="a safe id, base64url")]
UserPath = Annotated[str, Path(pattern=ID_PATTERN, description="a user id, base64url")]


@router.get("/api/safes")
async def list_safes(vault: VaultDep, user: UserDep) -> SafeList:
    """The caller's safes, each with the caller's role and sealed safe key."""
    return await vault.db.read(store.list_safes, user_id=user.user_id)


@router.post("/api/safes", status_code=201)
async def create_safe(vault: VaultDep, user: UserDep, body: SafeIn) -> SafeOut:
    """A new safe at key generation 1; the caller is its admin."""
    return await vault.db.write(
        store.create_safe,
        user_id=user.user_id,
        safe_id=body.id,
        name_ct=body.name_ct,
        sealed_key=body.sealed_key,
        now_ms=vault.clock(),
    )


@router.get("/api/safes/{safe_id}")
async def get_safe(vault: VaultDep, user: UserDep, safe_id: SafePath) -> SafeOut:
    return await vault.db.read(
        store.get_safe, user_id=user.user_id, safe_id=decode_id(safe_id, "safe id")
    )


@router.patch("/api/safes/{safe_id}")
async def rename_safe(
    vault: VaultDep, user: UserDep, safe_id: SafePath, body: SafeRenameIn
) -> SafeOut:
    """Rename (admin): the new name encrypted for version expected_name_version + 1."""
    return await vault.db.write(
        store.rename_safe,
        user_id=user.user_id,
        safe_id=decode_id(safe_id, "safe id"),
        expected_name_version=body.expected_name_version,
        generation=body.generation,
        name_ct=body.name_ct,
        now_ms=vault.clock(),
    )


@router.delete("/api/safes/{safe_id}", status_code=204)
async def delete_safe(vault: VaultDep, user: UserDep, safe_id: SafePath) -> None:
    """Delete a safe with everything in it (admin)."""
    file_ids = await vault.db.write(
        store.delete_safe, user_id=user.user_id, safe_id=decode_id(safe_id, "safe id")
    )
    for file_id in file_ids:
        await vault.blobs.delete(blob_name(file_id))


@router.get("/api/safes/{safe_id}/contents")
async def contents(vault: VaultDep, user: UserDep, safe_id: SafePath) -> ContentsOut:
    """Everything to open a safe in one response: folders, items, files."""
    return await vault.db.read(
        store.contents, user_id=user.user_id, safe_id=decode_id(safe_id, "safe id")
    )


@router.get("/api/safes/{safe_id}/keys")
async def key_chain(vault: VaultDep, user: UserDep, safe_id: SafePath) -> KeyChainOut:
    """The key chain: for each generation, the previous one's key under it."""
    return await vault.db.read(
        store.key_chain, user_id=user.user_id, safe_id=decode_id(safe_id, "safe id")
    )


@router.get("/api/safes/{safe_id}/members")
async def members(vault: VaultDep, user: UserDep, safe_id: SafePath) -> MemberList:
    return await vault.db.read(
        store.members, user_id=user.user_id, safe_id=decode_id(safe_id, "safe id")
    )


@router.post("/api/safes/{safe_id}/members", status_code=201)
async def add_member(
    vault: VaultDep, user: UserDep, safe_id: SafePath, body: MemberIn
) -> MemberOut:
    """Share (admin): the current generation's Ks sealed to the new member."""
    return await vault.db.write(
        store.add_member,
        user_id=user.user_id,
        safe_id=decode_id(safe_id, "safe id"),
        member_id=body.user_id,
        role=body.role,
        generation=body.generation,
        sealed_key=body.sealed_key,
        now_ms=vault.clock(),
    )


@router.patch("/api/safes/{safe_id}/members/{user_id}")
async def set_role(
    vault: VaultDep, user: UserDep, safe_id: SafePath, user_id: UserPath, body: RoleIn
) -> MemberOut:
    return await vault.db.write(
        store.set_role,
        user_id=user.user_id,
        safe_id=decode_id(safe_id, "safe id"),
        member_id=decode_id(user_id, "user id"),
        role=body.role,
        now_ms=vault.clock(),
    )


@router.delete("/api/safes/{safe_id}/members/{user_id}", status_code=204)
async def remove_member(
    vault: VaultDep, user: UserDep, safe_id: SafePath, user_id: UserPath
) -> None:
    """Remove a member (admin) or leave (yourself). The safe is then marked
    rotation_needed: an admin's client rotates its key."""
    await vault.db.write(
        store.remove_member,
        user_id=user.user_id,
        safe_id=decode_id(safe_id, "safe id"),
        member_id=decode_id(user_id, "user id"),
        now_ms=vault.clock(),
    )


@router.get("/api/safes/{safe_id}/audit")
async def audit_log(
    vault: VaultDep,
    user: UserDep,
    safe_id: SafePath,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditOut:
    """Who did what, newest first (admin)."""
    return await vault.db.read(
        audit.events,
        safe_id=decode_id(safe_id, "safe id"),
        user_id=user.user_id,
        before=before,
        limit=limit,
    )
