"""The vault's client-side cryptography: the Python reference implementation.

Everything here runs on the client (the browser does the same in WebCrypto;
docs/vault.md is the normative description and tests/vectors/vault-v1.json
the shared test vectors). No I/O: functions over bytes and dataclasses. The
server never imports this package except to describe sizes.

    kp   = generate_key_pair()
    slot = make_slot(kc, kp, user_id=uid, key_id=kid)           # one per token
    ks   = new_safe_key()
    box  = seal_safe_key(ks, public_key_bytes(kp), safe_id=sid, user_id=uid, generation=1)
    ct   = encrypt_item(ks, {"type": "login", "title": "mail", ...}, safe_id=sid,
                        item_id=iid, folder_id=None, version=1, generation=1)

Every failure to open raises a subclass of `CiphertextInvalid` that names the
record and its context; nothing raises a bare `InvalidTag`.
"""

from __future__ import annotations

from vault_api.crypto.aead import NONCE_BYTES, OVERHEAD, TAG_BYTES
from vault_api.crypto.content import ITEM_TYPES, PAD_BLOCK, SCHEMA_VERSION, pad
from vault_api.crypto.errors import (
    CiphertextInvalid,
    ContentInvalid,
    FileChunkInvalid,
    FileKeyInvalid,
    FileTruncated,
    FolderInvalid,
    ItemInvalid,
    KeyMismatch,
    MalformedCiphertext,
    PreviousKeyInvalid,
    SafeKeyInvalid,
    SafeNameInvalid,
    SlotInvalid,
    VaultCryptoError,
)
from vault_api.crypto.files import (
    CHUNK_BOX_BYTES,
    CHUNK_BYTES,
    FileDecryptor,
    chunk_aad,
    chunk_count,
    ciphertext_size,
    decrypt_chunk,
    decrypt_file,
    encrypt_chunk,
    encrypt_file,
    file_key_aad,
    new_file_key,
    plaintext_size,
    unwrap_file_key,
    wrap_file_key,
)
from vault_api.crypto.ids import ID_BYTES, KEY_ID_BYTES, new_id
from vault_api.crypto.records import (
    decrypt_folder_name,
    decrypt_item,
    decrypt_safe_name,
    encrypt_folder_name,
    encrypt_item,
    encrypt_safe_name,
    folder_aad,
    item_aad,
    safe_name_aad,
)
from vault_api.crypto.rotation import (
    FileRecord,
    FolderRecord,
    ItemRecord,
    Member,
    RotationPlan,
    SafeState,
    StagedFile,
    StagedFolder,
    StagedItem,
    StagedMember,
    plan_rotation,
    restage_file,
    restage_folder,
    restage_item,
)
from vault_api.crypto.safekeys import (
    key_chain,
    new_safe_key,
    open_safe_key,
    previous_key_aad,
    safe_key_info,
    seal_safe_key,
    unwrap_previous_key,
    wrap_previous_key,
)
from vault_api.crypto.userkeys import (
    fingerprint,
    generate_key_pair,
    make_slot,
    open_slot,
    private_key_from_pkcs8,
    private_key_pkcs8,
    public_key_bytes,
    slot_aad,
    slot_kek,
)

__all__ = [
    "CHUNK_BOX_BYTES",
    "CHUNK_BYTES",
    "ID_BYTES",
    "ITEM_TYPES",
    "KEY_ID_BYTES",
    "NONCE_BYTES",
    "OVERHEAD",
    "PAD_BLOCK",
    "SCHEMA_VERSION",
    "TAG_BYTES",
    "CiphertextInvalid",
    "ContentInvalid",
    "FileChunkInvalid",
    "FileDecryptor",
    "FileKeyInvalid",
    "FileRecord",
    "FileTruncated",
    "FolderInvalid",
    "FolderRecord",
    "ItemInvalid",
    "ItemRecord",
    "KeyMismatch",
    "MalformedCiphertext",
    "Member",
    "PreviousKeyInvalid",
    "RotationPlan",
    "SafeKeyInvalid",
    "SafeNameInvalid",
    "SafeState",
    "SlotInvalid",
    "StagedFile",
    "StagedFolder",
    "StagedItem",
    "StagedMember",
    "VaultCryptoError",
    "chunk_aad",
    "chunk_count",
    "ciphertext_size",
    "decrypt_chunk",
    "decrypt_file",
    "decrypt_folder_name",
    "decrypt_item",
    "decrypt_safe_name",
    "encrypt_chunk",
    "encrypt_file",
    "encrypt_folder_name",
    "encrypt_item",
    "encrypt_safe_name",
    "file_key_aad",
    "fingerprint",
    "folder_aad",
    "generate_key_pair",
    "item_aad",
    "key_chain",
    "make_slot",
    "new_file_key",
    "new_id",
    "new_safe_key",
    "open_safe_key",
    "open_slot",
    "pad",
    "plaintext_size",
    "plan_rotation",
    "previous_key_aad",
    "private_key_from_pkcs8",
    "private_key_pkcs8",
    "public_key_bytes",
    "restage_file",
    "restage_folder",
    "restage_item",
    "safe_key_info",
    "safe_name_aad",
    "seal_safe_key",
    "slot_aad",
    "slot_kek",
    "unwrap_file_key",
    "unwrap_previous_key",
    "wrap_file_key",
    "wrap_previous_key",
]
