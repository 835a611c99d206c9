"""Key rotation, client side: everything under Ks_g re-encrypted under Ks_g+1.

An admin's client runs `plan_rotation` over the safe's current state (what
GET /api/safes/{id}/contents returns) and the members it keeps, then stages
the plan's ciphertexts on the server and commits them in one call
(docs/vault.md, "Rotation"). Each record is opened under the old key first,
so a rotation never launders a record that does not open: it raises the
record's error instead. Records stay at their versions; only the generation
in their associated data changes. History is not re-encrypted: the new
generation carries the old key (`previous_key`), as safekeys.py describes.

When the commit reports records that changed after they were staged, the
client re-stages just those with `restage_item` / `restage_folder` /
`restage_file`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from vault_api.crypto import files, records, safekeys


@dataclass(frozen=True, kw_only=True)
class ItemRecord:
    item_id: bytes
    folder_id: bytes | None
    version: int
    generation: int
    schema: int
    ct: bytes


@dataclass(frozen=True, kw_only=True)
class FolderRecord:
    folder_id: bytes
    parent_id: bytes | None
    version: int
    generation: int
    name_ct: bytes


@dataclass(frozen=True, kw_only=True)
class FileRecord:
    file_id: bytes
    generation: int
    key_wrap: bytes


@dataclass(frozen=True, kw_only=True)
class Member:
    user_id: bytes
    public_key: bytes


@dataclass(frozen=True, kw_only=True)
class SafeState:
    safe_id: bytes
    generation: int
    name_version: int
    name_ct: bytes
    items: Sequence[ItemRecord] = ()
    folders: Sequence[FolderRecord] = ()
    files: Sequence[FileRecord] = ()


@dataclass(frozen=True, kw_only=True)
class StagedItem:
    item_id: bytes
    base_version: int
    ct: bytes


@dataclass(frozen=True, kw_only=True)
class StagedFolder:
    folder_id: bytes
    base_version: int
    name_ct: bytes


@dataclass(frozen=True, kw_only=True)
class StagedFile:
    file_id: bytes
    key_wrap: bytes


@dataclass(frozen=True, kw_only=True)
class StagedMember:
    user_id: bytes
    sealed_key: bytes


@dataclass(frozen=True, kw_only=True)
class RotationPlan:
    safe_id: bytes
    from_generation: int
    new_key: bytes = field(repr=False)
    previous_key: bytes
    name_base_version: int
    name_ct: bytes
    members: list[StagedMember]
    items: list[StagedItem]
    folders: list[StagedFolder]
    files: list[StagedFile]

    @property
    def to_generation(self) -> int:
        return self.from_generation + 1


def restage_item(
    old_key: bytes, new_key: bytes, *, safe_id: bytes, item: ItemRecord, new_generation: int
) -> StagedItem:
    content = records.decrypt_item(
        old_key,
        item.ct,
        safe_id=safe_id,
        item_id=item.item_id,
        folder_id=item.folder_id,
        version=item.version,
        generation=item.generation,
        schema=item.schema,
    )
    ct = records.encrypt_item(
        new_key,
        content,
        safe_id=safe_id,
        item_id=item.item_id,
        folder_id=item.folder_id,
        version=item.version,
        generation=new_generation,
        schema=item.schema,
    )
    return StagedItem(item_id=item.item_id, base_version=item.version, ct=ct)


def restage_folder(
    old_key: bytes, new_key: bytes, *, safe_id: bytes, folder: FolderRecord, new_generation: int
) -> StagedFolder:
    name = records.decrypt_folder_name(
        old_key,
        folder.name_ct,
        safe_id=safe_id,
        folder_id=folder.folder_id,
        parent_id=folder.parent_id,
        version=folder.version,
        generation=folder.generation,
    )
    ct = records.encrypt_folder_name(
        new_key,
        name,
        safe_id=safe_id,
        folder_id=folder.folder_id,
        parent_id=folder.parent_id,
        version=folder.version,
        generation=new_generation,
    )
    return StagedFolder(folder_id=folder.folder_id, base_version=folder.version, name_ct=ct)


def restage_file(
    old_key: bytes, new_key: bytes, *, safe_id: bytes, file: FileRecord, new_generation: int
) -> StagedFile:
    file_key = files.unwrap_file_key(
        old_key, file.key_wrap, safe_id=safe_id, file_id=file.file_id, generation=file.generation
    )
    wrapped = files.wrap_file_key(
        new_key, file_key, safe_id=safe_id, file_id=file.file_id, generation=new_generation
    )
    return StagedFile(file_id=file.file_id, key_wrap=wrapped)


def seal_for_members(
    new_key: bytes, *, safe_id: bytes, generation: int, members: Sequence[Member]
) -> list[StagedMember]:
    return [
        StagedMember(
            user_id=m.user_id,
            sealed_key=safekeys.seal_safe_key(
                new_key, m.public_key, safe_id=safe_id, user_id=m.user_id, generation=generation
            ),
        )
        for m in members
    ]


def plan_rotation(
    state: SafeState, old_key: bytes, members: Sequence[Member], *, new_key: bytes | None = None
) -> RotationPlan:
    """Everything the server needs to move the safe to generation + 1.
    `members` are the members that keep access (their public keys as verified
    by the admin); `new_key` defaults to a fresh random key."""
    sid, old, new = state.safe_id, state.generation, state.generation + 1
    key = new_key if new_key is not None else safekeys.new_safe_key()
    name = records.decrypt_safe_name(
        old_key, state.name_ct, safe_id=sid, version=state.name_version, generation=old
    )
    return RotationPlan(
        safe_id=sid,
        from_generation=old,
        new_key=key,
        previous_key=safekeys.wrap_previous_key(key, old_key, safe_id=sid, old_generation=old),
        name_base_version=state.name_version,
        name_ct=records.encrypt_safe_name(
            key, name, safe_id=sid, version=state.name_version, generation=new
        ),
        members=seal_for_members(key, safe_id=sid, generation=new, members=members),
        items=[
            restage_item(old_key, key, safe_id=sid, item=i, new_generation=new) for i in state.items
        ],
        folders=[
            restage_folder(old_key, key, safe_id=sid, folder=f, new_generation=new)
            for f in state.folders
        ],
        files=[
            restage_file(old_key, key, safe_id=sid, file=f, new_generation=new) for f in state.files
        ],
    )
