"""Every domain-separation label of the vault's client-side format, version 1.

docs/vault.md lists the same labels (a test checks the two agree). All but
the three *_KEK labels are transcript labels: the associated data, HPKE info,
PBKDF2 salt or HKDF info is `transcript(label, field, ...)`
(authnet.protocol.encoding), so no two contexts share bytes. SLOT_KEK,
TOKEN_FACTOR_KEK and PASSPHRASE_KEK are the raw HKDF `info`, because the
browser derives the first two with `ClientKey.deriveKey(label, ...)`
(authnet.js: HKDF-SHA256, salt empty, info = label).

Changing a label changes every ciphertext made under it: that is a new format
version, not an edit.
"""

from __future__ import annotations

from typing import Final

# HKDF info: the key-encryption key of a key slot, from Kc.
SLOT_KEK: Final = b"authnet-vault/v1 slot kek"
# HKDF info: the key-encryption key of a token-factor slot ("kc+passphrase"), from Kc.
TOKEN_FACTOR_KEK: Final = b"authnet-vault/v1 token factor kek"
# HKDF info: the passphrase wrap's key, from the token factor T (IKM) and the
# hardened passphrase key F (salt).
PASSPHRASE_KEK: Final = b"authnet-vault/v1 passphrase kek"

# Associated data (AES-256-GCM) and HPKE info.
SLOT: Final = b"authnet-vault/v1 slot"
SAFE_KEY: Final = b"authnet-vault/v1 safe key"
PREVIOUS_KEY: Final = b"authnet-vault/v1 previous key"
SAFE_NAME: Final = b"authnet-vault/v1 safe name"
FOLDER: Final = b"authnet-vault/v1 folder"
ITEM: Final = b"authnet-vault/v1 item"
FILE_KEY: Final = b"authnet-vault/v1 file key"
FILE_CHUNK: Final = b"authnet-vault/v1 file chunk"
# File body format 2 (1 MiB chunks): its own chunk label, so no chunk opens as the other format's.
FILE_CHUNK_V2: Final = b"authnet-vault/v2 file chunk"

# Hardened factors (docs/vault.md 5.4-5.6): the PBKDF2 salt, the HKDF info
# of the key from the hardener's output, the token-factor slot, the passphrase
# wrap, the recovery slot (AAD), and a success key sealed to the user (HPKE info).
FACTOR_HASH: Final = b"authnet-vault/v1 factor hash"
HARDENED_KEY: Final = b"authnet-vault/v1 hardened key"
TOKEN_FACTOR: Final = b"authnet-vault/v1 token factor"
PASSPHRASE_WRAP: Final = b"authnet-vault/v1 passphrase wrap"
RECOVERY_SLOT: Final = b"authnet-vault/v1 recovery slot"
SUCCESS_KEY: Final = b"authnet-vault/v1 success key"

# Hash input of the public-key fingerprint people compare when sharing.
FINGERPRINT: Final = b"authnet-vault/v1 public key fingerprint"

# Registered devices and the passphrase bypass (docs/devices.md): the HKDF info
# of the bypass key KEK_b (raw, like the other *_KEK labels), the device wrap
# (AAD), the device's sealed key-encryption key (HPKE info), the device's
# registration and login proofs (Ed25519 messages), its fingerprint, and a
# one-time link's box (AAD).
DEVICE_BYPASS_KEK: Final = b"authnet-vault/v1 device bypass kek"
DEVICE_WRAP: Final = b"authnet-vault/v1 device wrap"
DEVICE_KEK: Final = b"authnet-vault/v1 device kek"
DEVICE_REGISTRATION: Final = b"authnet-vault/v1 device registration"
DEVICE_LOGIN: Final = b"authnet-vault/v1 device login"
DEVICE_FINGERPRINT: Final = b"authnet-vault/v1 device fingerprint"
ONE_TIME_LINK: Final = b"authnet-vault/v1 one-time link"
# A device kept in a platform authenticator (WebAuthn PRF, docs/devices.md 1):
# the hash input of the PRF salt (a transcript label), and the raw HKDF info of
# its two private keys from the PRF output.
DEVICE_PRF_SALT: Final = b"authnet-vault/v1 device prf salt"
DEVICE_PRF_X25519: Final = b"authnet-vault/v1 device prf x25519"
DEVICE_PRF_ED25519: Final = b"authnet-vault/v1 device prf ed25519"

ALL: Final = (
    SLOT_KEK,
    TOKEN_FACTOR_KEK,
    PASSPHRASE_KEK,
    SLOT,
    SAFE_KEY,
    PREVIOUS_KEY,
    SAFE_NAME,
    FOLDER,
    ITEM,
    FILE_KEY,
    FILE_CHUNK,
    FILE_CHUNK_V2,
    FACTOR_HASH,
    HARDENED_KEY,
    TOKEN_FACTOR,
    PASSPHRASE_WRAP,
    RECOVERY_SLOT,
    SUCCESS_KEY,
    FINGERPRINT,
    DEVICE_BYPASS_KEK,
    DEVICE_WRAP,
    DEVICE_KEK,
    DEVICE_REGISTRATION,
    DEVICE_LOGIN,
    DEVICE_FINGERPRINT,
    ONE_TIME_LINK,
    DEVICE_PRF_SALT,
    DEVICE_PRF_X25519,
    DEVICE_PRF_ED25519,
)

# The device labels (docs/devices.md); tests/vectors/vault-devices.json has
# their vectors.
DEVICES: Final = (
    DEVICE_BYPASS_KEK,
    DEVICE_WRAP,
    DEVICE_KEK,
    DEVICE_REGISTRATION,
    DEVICE_LOGIN,
    DEVICE_FINGERPRINT,
    ONE_TIME_LINK,
    DEVICE_PRF_SALT,
    DEVICE_PRF_X25519,
    DEVICE_PRF_ED25519,
)

# The hardened-factor labels (docs/vault.md 5.4-5.6). tests/vectors/vault-v1.json
# has no fixed vectors for them (their inputs include a hardener's output);
# tests/vault_browser/test_factors.py checks Python and the page against each other.
FACTORS: Final = (
    TOKEN_FACTOR_KEK,
    PASSPHRASE_KEK,
    FACTOR_HASH,
    HARDENED_KEY,
    TOKEN_FACTOR,
    PASSPHRASE_WRAP,
    RECOVERY_SLOT,
    SUCCESS_KEY,
)
