"""Staged key rotation (docs/vault.md, "Rotation")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from vault_api.context import ID_PATTERN, UserDep, VaultDep, decode_id
from vault_api.models import RotationIn, RotationOut, SafeOut, StageIn
from vault_api.store import rotations as store

router = APIRouter(tags=["rotation"])

SafePath = Annotated[str, Path(pattern=ID_PATTERN, description="a safe id, base64url")]
RotationPath = Annotated[str, Path(pattern=ID_PATTERN, description="a rotation id, base64url")]


@router.post("/api/safes/{safe_id}/rotations", status_code=201)
async def begin(vault: VaultDep, user: UserDep, safe_id: SafePath, body: RotationIn) -> RotationOut:
    """Begin rotating the safe's key (admin); an open rotation is dropped.
    `previous_key` is the current key wrapped under the new one."""
    return await vault.db.write(
        store.begin,
        user_id=user.user_id,
        safe_id=decode_id(safe_id, "safe id"),
        from_generation=body.from_generation,
        previous_key=body.previous_key,
        now_ms=vault.clock(),
    )


@router.get("/api/safes/{safe_id}/rotations/{rotation_id}")
async def status(
    vault: VaultDep, user: UserDep, safe_id: SafePath, rotation_id: RotationPath
) -> RotationOut:
    """What is staged, and what is missing or stale."""
    return await vault.db.read(
        store.status,
        user_id=user.user_id,
        safe_id=decode_id(safe_id, "safe id"),
        rotation_id=decode_id(rotation_id, "rotation id"),
    )


@router.post("/api/safes/{safe_id}/rotations/{rotation_id}/stage")
async def stage(
    vault: VaultDep, user: UserDep, safe_id: SafePath, rotation_id: RotationPath, body: StageIn
) -> RotationOut:
    """Stage re-encrypted records (any number of batches; a record staged
    again replaces its earlier copy). The live safe does not change."""
    return await vault.db.write(
        store.stage,
        user_id=user.user_id,
        safe_id=decode_id(safe_id, "safe id"),
        rotation_id=decode_id(rotation_id, "rotation id"),
        body=body,
    )


@router.post("/api/safes/{safe_id}/rotations/{rotation_id}/commit")
async def commit(
    vault: VaultDep, user: UserDep, safe_id: SafePath, rotation_id: RotationPath
) -> SafeOut:
    """Swap everything staged in, in one transaction, or change nothing (409
    `rotation_incomplete`, listing what is missing or stale)."""
    return await vault.db.write(
        store.commit,
        user_id=user.user_id,
        safe_id=decode_id(safe_id, "safe id"),
        rotation_id=decode_id(rotation_id, "rotation id"),
        now_ms=vault.clock(),
    )


@router.delete("/api/safes/{safe_id}/rotations/{rotation_id}", status_code=204)
async def abort(
    vault: VaultDep, user: UserDep, safe_id: SafePath, rotation_id: RotationPath
) -> None:
    await vault.db.write(
        store.abort,
        user_id=user.user_id,
        safe_id=decode_id(safe_id, "safe id"),
        rotation_id=decode_id(rotation_id, "rotation id"),
        now_ms=vault.clock(),
    )
