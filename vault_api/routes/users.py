"""The caller's account and key slots; other users' public keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from vault_api.context import ID_PATTERN, AccountDep, SessionDep, UserDep, VaultDep, decode_id
from vault_api.errors import Forbidden
from vault_api.models import MeOut, PublicUserOut, RegisterIn, SlotIn, SlotOut
from vault_api.store import users as store

router = APIRouter(tags=["users"])

KeyIdPath = Annotated[str, Path(pattern=ID_PATTERN, description="a key id, base64url")]
HandlePath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{2,31}$")]


@router.get("/api/me")
async def me(vault: VaultDep, principal: SessionDep) -> MeOut:
    return await vault.db.read(store.me, principal.user_id)


@router.post("/api/me", status_code=201)
async def register(vault: VaultDep, principal: SessionDep, body: RegisterIn) -> MeOut:
    """Register the account's key pair (made on the client), its handle, and
    the key slot of the token this session logged in with."""
    return await vault.db.write(
        store.register,
        user_id=principal.user_id,
        key_id=principal.key_id,
        handle=body.handle,
        public_key=body.public_key,
        slot=body.slot,
        now_ms=vault.clock(),
    )


@router.get("/api/me/slots/{key_id}")
async def get_slot(vault: VaultDep, principal: SessionDep, key_id: KeyIdPath) -> SlotOut:
    return await vault.db.read(
        store.get_slot, user_id=principal.user_id, key_id=decode_id(key_id, "key id")
    )


@router.put("/api/me/slots/{key_id}")
async def put_slot(
    vault: VaultDep, principal: AccountDep, key_id: KeyIdPath, body: SlotIn
) -> SlotOut:
    """Add (or replace) the key slot of a token this session proved (logged in
    with, or proved with POST /api/session/tokens)."""
    kid = decode_id(key_id, "key id")
    if kid not in principal.proven_key_ids:
        raise Forbidden(
            "this session has not proved that token; log in with it in this session "
            "(POST /api/session/tokens) first",
            code="key_id_not_proven",
        )
    return await vault.db.write(
        store.put_slot,
        user_id=principal.user_id,
        key_id=kid,
        keypair_version=body.keypair_version,
        slot=body.slot,
        kind=body.kind,
        now_ms=vault.clock(),
    )


@router.delete("/api/me/slots/{key_id}", status_code=204)
async def delete_slot(vault: VaultDep, principal: AccountDep, key_id: KeyIdPath) -> None:
    """Remove a token's slot (a lost token). The last slot cannot go."""
    await vault.db.write(
        store.delete_slot, user_id=principal.user_id, key_id=decode_id(key_id, "key id")
    )


@router.get("/api/users/{handle}")
async def user_by_handle(vault: VaultDep, principal: UserDep, handle: HandlePath) -> PublicUserOut:
    """A user's public key, to share a safe with them. Compute its fingerprint
    on the client and compare it with the one the user sees."""
    return await vault.db.read(store.by_handle, handle)
