"""Organisations and their policy (docs/devices.md 6, 9)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path

from vault_api.context import ID_PATTERN, AccountDep, SessionDep, VaultDep, decode_id
from vault_api.crypto.ids import short
from vault_api.models import (
    OrgAuditOut,
    OrgIn,
    OrgMemberIn,
    OrgMemberOut,
    OrgOut,
    OrgRoleIn,
    PolicyIn,
    PolicyOut,
)
from vault_api.sessions import policy_defaults
from vault_api.store import orgs as store

log = logging.getLogger("vault_api.orgs")
router = APIRouter(tags=["organisations"])

OrgId = Annotated[str, Path(pattern=ID_PATTERN, description="an organisation id, base64url")]
UserId = Annotated[str, Path(pattern=ID_PATTERN, description="a user id, base64url")]


@router.get("/api/me/policy")
async def my_policy(vault: VaultDep, principal: SessionDep) -> PolicyOut:
    """What this account's organisation (or this server) allows."""
    policy = await vault.db.read(
        store.policy_for, principal.user_id, policy_defaults(vault.settings)
    )
    return policy.out()


@router.post("/api/orgs", status_code=201)
async def create(vault: VaultDep, principal: AccountDep, body: OrgIn) -> OrgOut:
    """A new organisation with the caller as its first admin."""
    out: OrgOut = await vault.db.write(
        store.create,
        user_id=principal.user_id,
        name=body.name,
        defaults=policy_defaults(vault.settings),
        now_ms=vault.clock(),
    )
    log.info("organisation created user=%s", short(principal.user_id))
    return out


@router.get("/api/orgs/{org_id}")
async def get(vault: VaultDep, principal: AccountDep, org_id: OrgId) -> OrgOut:
    return await vault.db.read(
        store.get, org_id=decode_id(org_id, "organisation id"), user_id=principal.user_id
    )


@router.patch("/api/orgs/{org_id}/policy")
async def change_policy(
    vault: VaultDep, principal: AccountDep, org_id: OrgId, body: PolicyIn
) -> OrgOut:
    """Change the policy; what it turns off is removed at once (`removed`)."""
    out: OrgOut = await vault.db.write(
        store.change_policy,
        org_id=decode_id(org_id, "organisation id"),
        user_id=principal.user_id,
        body=body,
        now_ms=vault.clock(),
    )
    log.info("organisation policy changed by user=%s", short(principal.user_id))
    return out


@router.post("/api/orgs/{org_id}/members", status_code=201)
async def add_member(
    vault: VaultDep, principal: AccountDep, org_id: OrgId, body: OrgMemberIn
) -> OrgMemberOut:
    """Add an account by handle; the organisation's policy applies to it at once."""
    member, _ = await vault.db.write(
        store.add_member,
        org_id=decode_id(org_id, "organisation id"),
        user_id=principal.user_id,
        handle=body.handle,
        role=body.role,
        defaults=policy_defaults(vault.settings),
        now_ms=vault.clock(),
    )
    return member


@router.patch("/api/orgs/{org_id}/members/{user_id}")
async def set_role(
    vault: VaultDep, principal: AccountDep, org_id: OrgId, user_id: UserId, body: OrgRoleIn
) -> OrgMemberOut:
    return await vault.db.write(
        store.set_role,
        org_id=decode_id(org_id, "organisation id"),
        user_id=principal.user_id,
        target=decode_id(user_id, "user id"),
        role=body.role,
        now_ms=vault.clock(),
    )


@router.delete("/api/orgs/{org_id}/members/{user_id}", status_code=204)
async def remove_member(
    vault: VaultDep, principal: AccountDep, org_id: OrgId, user_id: UserId
) -> None:
    """An admin removes a member, or a member leaves (back to the server's defaults)."""
    await vault.db.write(
        store.remove_member,
        org_id=decode_id(org_id, "organisation id"),
        user_id=principal.user_id,
        target=decode_id(user_id, "user id"),
        session_hash=principal.session_hash,
        now_ms=vault.clock(),
    )


@router.get("/api/orgs/{org_id}/audit")
async def audit(vault: VaultDep, principal: AccountDep, org_id: OrgId) -> OrgAuditOut:
    return await vault.db.read(
        store.audit, org_id=decode_id(org_id, "organisation id"), user_id=principal.user_id
    )
