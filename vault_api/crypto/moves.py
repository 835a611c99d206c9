"""Moving an item (with its files and history) to another safe, client side.

A move changes which safe key a record is under and which safe its
associated data names; nothing else. The client opens every record in the
source safe's context, re-encrypts it for the target's (docs/vault.md 8.4):

    item      opened as (A, item, folder_A, version, schema, g_A) under Ks_A,
              sealed as (B, item, folder_B, version, schema, g_B) under Ks_B
    history   each kept version likewise, at its own version and schema (an older
              generation of A opens through A's key chain); in B it names folder_B
    file key  K_f unwrapped as (A, file, g_A), wrapped as (B, file, g_B)
    file body untouched: its chunks name the file id only (8.2)

Versions stay, as in a key rotation (11.4): the plaintext does not change,
only the context. Every record is opened first, so a move never launders a
ciphertext that does not open: it raises that record's error instead. The
server swaps the new ciphertexts in, in one transaction (13.8).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from authnet.errors import MalformedInput
from authnet.protocol.encoding import b64u_decode
from vault_api.crypto import files, records
from vault_api.crypto.errors import PreviousKeyInvalid
from vault_api.crypto.ids import ID_BYTES, short
from vault_api.crypto.rotation import FileRecord, ItemRecord


@dataclass(frozen=True, kw_only=True)
class MovedVersion:
    """A history entry re-encrypted for the target safe."""

    version: int
    schema: int
    ct: bytes


@dataclass(frozen=True, kw_only=True)
class MovedFile:
    file_id: bytes
    key_wrap: bytes


@dataclass(frozen=True, kw_only=True)
class MovePlan:
    """What the server needs to move one item (POST .../items/{id}/move)."""

    item_id: bytes
    from_safe_id: bytes
    to_safe_id: bytes
    to_generation: int
    folder_id: bytes | None
    expected_version: int
    schema: int
    ct: bytes
    history: list[MovedVersion]
    files: list[MovedFile]
    # The item's files (by id) that are not files of the source safe: the
    # item still lists them, but there is nothing to re-wrap.
    missing_files: list[bytes]
    content: dict[str, Any] = field(repr=False)


def rewrap_file_key(
    from_key: bytes,
    to_key: bytes,
    wrapped: bytes,
    *,
    file_id: bytes,
    from_safe_id: bytes,
    from_generation: int,
    to_safe_id: bytes,
    to_generation: int,
) -> bytes:
    """K_f wrapped for safe A (`from_key`, generation `from_generation`)
    re-wrapped for safe B: the body stays as it is. Raises FileKeyInvalid if
    the wrap does not open in A's context."""
    file_key = files.unwrap_file_key(
        from_key, wrapped, safe_id=from_safe_id, file_id=file_id, generation=from_generation
    )
    return files.wrap_file_key(
        to_key, file_key, safe_id=to_safe_id, file_id=file_id, generation=to_generation
    )


def reencrypt_item(
    from_key: bytes,
    to_key: bytes,
    *,
    item: ItemRecord,
    from_safe_id: bytes,
    to_safe_id: bytes,
    to_folder_id: bytes | None,
    to_generation: int,
) -> tuple[dict[str, Any], bytes]:
    """An item (or history entry) of safe A opened and sealed for safe B at the
    same version and schema: (its content, the new ciphertext)."""
    content = records.decrypt_item(
        from_key,
        item.ct,
        safe_id=from_safe_id,
        item_id=item.item_id,
        folder_id=item.folder_id,
        version=item.version,
        generation=item.generation,
        schema=item.schema,
    )
    ct = records.encrypt_item(
        to_key,
        content,
        safe_id=to_safe_id,
        item_id=item.item_id,
        folder_id=to_folder_id,
        version=item.version,
        generation=to_generation,
        schema=item.schema,
    )
    return content, ct


def listed_file_ids(content: Mapping[str, Any]) -> list[bytes]:
    """The file ids an item's `files` list names (entries without a valid id
    are skipped: they name nothing the server holds)."""
    out: list[bytes] = []
    listed = content.get("files")
    for entry in listed if isinstance(listed, list) else []:
        ref = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(ref, str):
            continue
        try:
            fid = b64u_decode(ref, field="file id", length=ID_BYTES)
        except MalformedInput:
            continue
        if fid not in out:
            out.append(fid)
    return out


def plan_move(
    item: ItemRecord,
    *,
    history: Sequence[ItemRecord],
    safe_files: Sequence[FileRecord],
    from_safe_id: bytes,
    from_keys: Mapping[int, bytes],
    to_safe_id: bytes,
    to_key: bytes,
    to_generation: int,
    to_folder_id: bytes | None,
) -> MovePlan:
    """Re-encrypt an item, its kept versions and its files' keys for another safe.

    `from_keys` maps each key generation of the source safe to its key (the
    current one, and older ones through the key chain, for history);
    `safe_files` are the source safe's files (the item's own are picked by
    the ids its `files` list names)."""
    if from_safe_id == to_safe_id:
        raise ValueError("an item moves to another safe; to change its folder, update it")

    def key(generation: int, what: str) -> bytes:
        found = from_keys.get(generation)
        if found is None:
            raise PreviousKeyInvalid(
                f"{what} of safe {short(from_safe_id)} is under key generation {generation}, "
                "which the safe's key chain does not reach: a link of the chain does not open, "
                "or the record claims a generation that never existed"
            )
        return found

    def move(record: ItemRecord, what: str) -> tuple[dict[str, Any], bytes]:
        return reencrypt_item(
            key(record.generation, what),
            to_key,
            item=record,
            from_safe_id=from_safe_id,
            to_safe_id=to_safe_id,
            to_folder_id=to_folder_id,
            to_generation=to_generation,
        )

    content, ct = move(item, f"item {short(item.item_id)}")
    moved_history = []
    for old in history:
        if old.item_id != item.item_id:
            raise ValueError("a history entry of another item")
        _, old_ct = move(old, f"version {old.version} of item {short(item.item_id)}")
        moved_history.append(MovedVersion(version=old.version, schema=old.schema, ct=old_ct))
    by_id = {f.file_id: f for f in safe_files}
    moved_files, missing = [], []
    for fid in listed_file_ids(content):
        record = by_id.get(fid)
        if record is None:
            missing.append(fid)
            continue
        wrap = rewrap_file_key(
            key(record.generation, f"the key of file {short(fid)}"),
            to_key,
            record.key_wrap,
            file_id=fid,
            from_safe_id=from_safe_id,
            from_generation=record.generation,
            to_safe_id=to_safe_id,
            to_generation=to_generation,
        )
        moved_files.append(MovedFile(file_id=fid, key_wrap=wrap))
    return MovePlan(
        item_id=item.item_id,
        from_safe_id=from_safe_id,
        to_safe_id=to_safe_id,
        to_generation=to_generation,
        folder_id=to_folder_id,
        expected_version=item.version,
        schema=item.schema,
        ct=ct,
        history=moved_history,
        files=moved_files,
        missing_files=missing,
        content=content,
    )
