"""Every domain-separation label of the vault's client-side format, version 1.

docs/vault.md lists the same labels (a test checks the two agree). All but
SLOT_KEK are transcript labels: the associated data or HPKE info of a
ciphertext is `transcript(label, field, ...)` (authnet.protocol.encoding), so
no two contexts share bytes. SLOT_KEK is the raw HKDF `info`, because the
browser derives the key-encryption key with `ClientKey.deriveKey(label, ...)`
(authnet.js: HKDF-SHA256, salt empty, info = label).

Changing a label changes every ciphertext made under it: that is a new format
version, not an edit.
"""

from __future__ import annotations

from typing import Final

# HKDF info: the key-encryption key of a key slot, from Kc.
SLOT_KEK: Final = b"authnet-vault/v1 slot kek"

# Associated data (AES-256-GCM) and HPKE info.
SLOT: Final = b"authnet-vault/v1 slot"
SAFE_KEY: Final = b"authnet-vault/v1 safe key"
PREVIOUS_KEY: Final = b"authnet-vault/v1 previous key"
SAFE_NAME: Final = b"authnet-vault/v1 safe name"
FOLDER: Final = b"authnet-vault/v1 folder"
ITEM: Final = b"authnet-vault/v1 item"
FILE_KEY: Final = b"authnet-vault/v1 file key"
FILE_CHUNK: Final = b"authnet-vault/v1 file chunk"

# Hash input of the public-key fingerprint people compare when sharing.
FINGERPRINT: Final = b"authnet-vault/v1 public key fingerprint"

ALL: Final = (
    SLOT_KEK,
    SLOT,
    SAFE_KEY,
    PREVIOUS_KEY,
    SAFE_NAME,
    FOLDER,
    ITEM,
    FILE_KEY,
    FILE_CHUNK,
    FINGERPRINT,
)
