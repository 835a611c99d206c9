"""Records under a safe key: safe names, folder names and items.

Each is a box (aead.py) under the safe key Ks of one key generation, over a
padded JSON plaintext (content.py), with associated data that binds it to its
place, so a server cannot swap ciphertexts between records, safes, folders,
versions or key generations, nor replay an old version as a new one:

    safe name  aad = transcript("authnet-vault/v1 safe name", safe_id, u32(version),
                                u32(generation))
    folder     aad = transcript("authnet-vault/v1 folder", safe_id, folder_id, parent_id | "",
                                u32(version), u32(generation))
    item       aad = transcript("authnet-vault/v1 item", safe_id, item_id, folder_id | "",
                                u32(version), u32(schema), u32(generation))

`version` is the record's version once the server stores it: 1 when created,
the expected version + 1 when updated. A record at the root has an empty
folder (or parent) field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authnet.protocol.encoding import transcript
from vault_api.crypto import aead, labels
from vault_api.crypto.content import (
    SCHEMA_VERSION,
    check_item,
    decode_json,
    decode_name,
    encode_json,
    encode_name,
)
from vault_api.crypto.errors import FolderInvalid, ItemInvalid, SafeNameInvalid
from vault_api.crypto.ids import check_id, short, u32


def _optional_id(value: bytes | None, what: str) -> bytes:
    if value is None:
        return b""
    check_id(value, what)
    return value


# --- safe names -------------------------------------------------------------------


def safe_name_aad(*, safe_id: bytes, version: int, generation: int) -> bytes:
    check_id(safe_id, "safe id")
    return transcript(
        labels.SAFE_NAME, safe_id, u32(version, "version"), u32(generation, "key generation")
    )


def encrypt_safe_name(
    safe_key: bytes, name: str, *, safe_id: bytes, version: int, generation: int
) -> bytes:
    aad = safe_name_aad(safe_id=safe_id, version=version, generation=generation)
    return aead.seal(safe_key, encode_name(name), aad)


def decrypt_safe_name(
    safe_key: bytes, box: bytes, *, safe_id: bytes, version: int, generation: int
) -> str:
    aad = safe_name_aad(safe_id=safe_id, version=version, generation=generation)
    try:
        data = aead.open_box(safe_key, box, aad, what="safe name")
    except aead.Unopened:
        raise SafeNameInvalid(
            f"the name of safe {short(safe_id)} (version {version}, key generation "
            f"{generation}) does not open: its ciphertext was modified, or it was made for "
            "another safe, version or key generation"
        ) from None
    return decode_name(data, f"the name of safe {short(safe_id)}")


# --- folders ----------------------------------------------------------------------


def folder_aad(
    *, safe_id: bytes, folder_id: bytes, parent_id: bytes | None, version: int, generation: int
) -> bytes:
    check_id(safe_id, "safe id")
    check_id(folder_id, "folder id")
    return transcript(
        labels.FOLDER,
        safe_id,
        folder_id,
        _optional_id(parent_id, "parent folder id"),
        u32(version, "version"),
        u32(generation, "key generation"),
    )


def encrypt_folder_name(
    safe_key: bytes,
    name: str,
    *,
    safe_id: bytes,
    folder_id: bytes,
    parent_id: bytes | None,
    version: int,
    generation: int,
) -> bytes:
    aad = folder_aad(
        safe_id=safe_id,
        folder_id=folder_id,
        parent_id=parent_id,
        version=version,
        generation=generation,
    )
    return aead.seal(safe_key, encode_name(name), aad)


def decrypt_folder_name(
    safe_key: bytes,
    box: bytes,
    *,
    safe_id: bytes,
    folder_id: bytes,
    parent_id: bytes | None,
    version: int,
    generation: int,
) -> str:
    aad = folder_aad(
        safe_id=safe_id,
        folder_id=folder_id,
        parent_id=parent_id,
        version=version,
        generation=generation,
    )
    try:
        data = aead.open_box(safe_key, box, aad, what="folder name")
    except aead.Unopened:
        raise FolderInvalid(
            f"folder {short(folder_id)} of safe {short(safe_id)} (version {version}, key "
            f"generation {generation}) does not open: its ciphertext was modified, or it was "
            "made for another folder, safe, parent, version or key generation"
        ) from None
    return decode_name(data, f"folder {short(folder_id)}")


# --- items ------------------------------------------------------------------------


def item_aad(
    *,
    safe_id: bytes,
    item_id: bytes,
    folder_id: bytes | None,
    version: int,
    generation: int,
    schema: int = SCHEMA_VERSION,
) -> bytes:
    check_id(safe_id, "safe id")
    check_id(item_id, "item id")
    return transcript(
        labels.ITEM,
        safe_id,
        item_id,
        _optional_id(folder_id, "folder id"),
        u32(version, "version"),
        u32(schema, "schema version"),
        u32(generation, "key generation"),
    )


def encrypt_item(
    safe_key: bytes,
    content: Mapping[str, Any],
    *,
    safe_id: bytes,
    item_id: bytes,
    folder_id: bytes | None,
    version: int,
    generation: int,
    schema: int = SCHEMA_VERSION,
) -> bytes:
    """An item's ciphertext; `content` is its JSON object (docs/vault.md, items)."""
    check_item(content)
    aad = item_aad(
        safe_id=safe_id,
        item_id=item_id,
        folder_id=folder_id,
        version=version,
        generation=generation,
        schema=schema,
    )
    return aead.seal(safe_key, encode_json(content), aad)


def decrypt_item(
    safe_key: bytes,
    box: bytes,
    *,
    safe_id: bytes,
    item_id: bytes,
    folder_id: bytes | None,
    version: int,
    generation: int,
    schema: int = SCHEMA_VERSION,
) -> dict[str, Any]:
    aad = item_aad(
        safe_id=safe_id,
        item_id=item_id,
        folder_id=folder_id,
        version=version,
        generation=generation,
        schema=schema,
    )
    try:
        data = aead.open_box(safe_key, box, aad, what="item")
    except aead.Unopened:
        raise ItemInvalid(
            f"item {short(item_id)} of safe {short(safe_id)} (version {version}, key "
            f"generation {generation}) does not open: its ciphertext was modified, or it was "
            "made for another item, safe, folder, version or key generation"
        ) from None
    content = decode_json(data, f"item {short(item_id)}")
    check_item(content)
    return content
