"""Folders and items (with history)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from vault_api.context import ID_PATTERN, UserDep, VaultDep, decode_id
from vault_api.models import (
    INT31,
    FolderIn,
    FolderOut,
    FolderUpdateIn,
    HistoryOut,
    ItemBatchIn,
    ItemIn,
    ItemList,
    ItemMoveIn,
    ItemMoveOut,
    ItemOut,
    ItemUpdateIn,
)
from vault_api.store import moves
from vault_api.store import records as store

router = APIRouter(tags=["items"])

SafePath = Annotated[str, Path(pattern=ID_PATTERN, description="a safe id, base64url")]
RecordPath = Annotated[str, Path(pattern=ID_PATTERN, description="a record id, base64url")]
ExpectedVersion = Annotated[
    int, Query(ge=1, le=INT31, description="the version being deleted (409 if stale)")
]


@router.post("/api/safes/{safe_id}/folders", status_code=201)
async def create_folder(
    vault: VaultDep, user: UserDep, safe_id: SafePath, body: FolderIn
) -> FolderOut:
    return await vault.db.write(
        store.create_folder,
        user_id=user.user_id,
        safe_id=decode_id(safe_id, "safe id"),
        folder_id=body.id,
        parent_id=body.parent_id,
        generation=body.generation,
        name_ct=body.name_ct,
        now_ms=vault.clock(),
    )


@router.put("/api/safes/{safe_id}/folders/{folder_id}")
async def update_folder(
    vault: VaultDep, user: UserDep, safe_id: SafePath, folder_id: RecordPath, body: FolderUpdateIn
) -> FolderOut:
    """Rename or move a folder: the name encrypted for version expected_version + 1."""
    return await vault.db.write(
        store.update_folder,
        user_id=user.user_id,
        safe_id=decode_id(safe_id, "safe id"),
        folder_id=decode_id(folder_id, "folder id"),
        expected_version=body.expected_version,
        parent_id=body.parent_id,
        generation=body.generation,
        name_ct=body.name_ct,
        now_ms=vault.clock(),
    )


@router.delete("/api/safes/{safe_id}/folders/{folder_id}", status_code=204)
async def delete_folder(
    vault: VaultDep,
    user: UserDep,
    safe_id: SafePath,
    folder_id: RecordPath,
    expected_version: ExpectedVersion,
) -> None:
    """Delete an empty folder."""
    await vault.db.write(
        store.delete_folder,
        user_id=user.user_id,
        safe_id=decode_id(safe_id, "safe id"),
        folder_id=decode_id(folder_id, "folder id"),
        expected_version=expected_version,
        now_ms=vault.clock(),
    )


@router.post("/api/safes/{safe_id}/items", status_code=201)
async def create_item(vault: VaultDep, user: UserDep, safe_id: SafePath, body: ItemIn) -> ItemOut:
    """A new item at version 1 (its ciphertext made for version 1)."""
    created = await vault.db.write(
        store.create_items,
        user_id=user.user_id,
        safe_id=decode_id(safe_id, "safe id"),
        new=[body],
        now_ms=vault.clock(),
    )
    return created.items[0]


@router.post("/api/safes/{safe_id}/items/batch", status_code=201)
async def create_items(
    vault: VaultDep, user: UserDep, safe_id: SafePath, body: ItemBatchIn
) -> ItemList:
    """Up to 1000 new items in one transaction (imports): all or none."""
    return await vault.db.write(
        store.create_items,
        user_id=user.user_id,
        safe_id=decode_id(safe_id, "safe id"),
        new=body.items,
        now_ms=vault.clock(),
    )


@router.get("/api/safes/{safe_id}/items/{item_id}")
async def get_item(
    vault: VaultDep, user: UserDep, safe_id: SafePath, item_id: RecordPath
) -> ItemOut:
    return await vault.db.read(
        store.get_item,
        user_id=user.user_id,
        safe_id=decode_id(safe_id, "safe id"),
        item_id=decode_id(item_id, "item id"),
    )


@router.put("/api/safes/{safe_id}/items/{item_id}")
async def update_item(
    vault: VaultDep, user: UserDep, safe_id: SafePath, item_id: RecordPath, body: ItemUpdateIn
) -> ItemOut:
    """Replace an item: its ciphertext made for version expected_version + 1.
    A stale expected_version is a 409 (`current_version` says the new one)."""
    return await vault.db.write(
        store.update_item,
        user_id=user.user_id,
        safe_id=decode_id(safe_id, "safe id"),
        item_id=decode_id(item_id, "item id"),
        expected_version=body.expected_version,
        folder_id=body.folder_id,
        generation=body.generation,
        schema=body.schema_version,
        ct=body.ct,
        history_versions=vault.settings.history_versions,
        now_ms=vault.clock(),
    )


@router.delete("/api/safes/{safe_id}/items/{item_id}", status_code=204)
async def delete_item(
    vault: VaultDep,
    user: UserDep,
    safe_id: SafePath,
    item_id: RecordPath,
    expected_version: ExpectedVersion,
) -> None:
    await vault.db.write(
        store.delete_item,
        user_id=user.user_id,
        safe_id=decode_id(safe_id, "safe id"),
        item_id=decode_id(item_id, "item id"),
        expected_version=expected_version,
        now_ms=vault.clock(),
    )


@router.get("/api/safes/{safe_id}/items/{item_id}/history")
async def item_history(
    vault: VaultDep, user: UserDep, safe_id: SafePath, item_id: RecordPath
) -> HistoryOut:
    """The item's previous versions, newest first."""
    return await vault.db.read(
        store.history,
        user_id=user.user_id,
        safe_id=decode_id(safe_id, "safe id"),
        item_id=decode_id(item_id, "item id"),
    )


@router.post("/api/safes/{safe_id}/items/{item_id}/move")
async def move_item(
    vault: VaultDep, user: UserDep, safe_id: SafePath, item_id: RecordPath, body: ItemMoveIn
) -> ItemMoveOut:
    """Move an item with its kept versions and its files to another safe, in one
    transaction: editor or admin of both safes; every ciphertext re-encrypted
    by the client for the target safe (same version); file bodies untouched."""
    return await vault.db.write(
        moves.move_item,
        user_id=user.user_id,
        safe_id=decode_id(safe_id, "safe id"),
        item_id=decode_id(item_id, "item id"),
        to_safe_id=body.to_safe_id,
        expected_version=body.expected_version,
        generation=body.generation,
        folder_id=body.folder_id,
        ct=body.ct,
        history=body.history,
        moved_files=body.files,
        now_ms=vault.clock(),
    )
