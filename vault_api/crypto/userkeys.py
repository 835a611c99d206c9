"""The user's key pair and its key slots (one per token).

Each user has one X25519 key pair, made on the client. The public key goes to
the server in the clear; members' safe keys are sealed to it (safekeys.py).
The private key is stored only inside key slots:

    KEK  = HKDF-SHA256(IKM = Kc, salt = "", info = "authnet-vault/v1 slot kek", L = 32)
    aad  = transcript("authnet-vault/v1 slot", user_id, key_id, u32(keypair_version), public_key)
    slot = box(KEK, PKCS#8 DER of the private key (48 bytes), aad)       (76 bytes)

Kc is per token and SP, so each token of an account has its own slot, named
by the key id authnet's GetPUID returns for that token. The browser derives
KEK with `ClientKey.deriveKey("authnet-vault/v1 slot kek", AES-GCM 256, ...)`
and can `unwrapKey("pkcs8", ...)` straight into a non-extractable X25519 key.

A slot is also the key-check value the threat model asks an SP to keep under
Kc: a Kc that does not open it is a wrong token or a substituted key, never a
reason to make a new key pair.
"""

from __future__ import annotations

import hashlib
from typing import Final

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from authnet.protocol.encoding import transcript
from vault_api.crypto import aead, labels
from vault_api.crypto.errors import KeyMismatch, MalformedCiphertext, SlotInvalid
from vault_api.crypto.ids import KEY_ID_BYTES, check_id, short, u32

PUBLIC_KEY_BYTES: Final = 32
PKCS8_BYTES: Final = 48
# PKCS#8 PrivateKeyInfo for X25519 (RFC 8410): this prefix, then the 32-byte key.
PKCS8_PREFIX: Final = bytes.fromhex("302e020100300506032b656e04220420")
SLOT_BYTES: Final = aead.OVERHEAD + PKCS8_BYTES
FINGERPRINT_BYTES: Final = 16


def generate_key_pair() -> x25519.X25519PrivateKey:
    return x25519.X25519PrivateKey.generate()


def public_key_bytes(private_key: x25519.X25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes_raw()


def private_key_pkcs8(private_key: x25519.X25519PrivateKey) -> bytes:
    der = private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    if len(der) != PKCS8_BYTES or not der.startswith(PKCS8_PREFIX):
        raise ValueError("unexpected PKCS#8 encoding of an X25519 key")
    return der


def private_key_from_pkcs8(der: bytes) -> x25519.X25519PrivateKey:
    """Strict: exactly the RFC 8410 encoding WebCrypto's exportKey("pkcs8") makes."""
    if len(der) != PKCS8_BYTES or not der.startswith(PKCS8_PREFIX):
        raise MalformedCiphertext("the slot's plaintext is not an X25519 PKCS#8 private key")
    return x25519.X25519PrivateKey.from_private_bytes(der[len(PKCS8_PREFIX) :])


def slot_kek(kc: bytes) -> bytes:
    """The key-encryption key of this token's slot, from its Kc."""
    aead.check_key(kc, "Kc")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"", info=labels.SLOT_KEK).derive(kc)


def slot_aad(*, user_id: bytes, key_id: bytes, keypair_version: int, public_key: bytes) -> bytes:
    check_id(user_id, "user id")
    check_id(key_id, "key id", KEY_ID_BYTES)
    check_id(public_key, "public key", PUBLIC_KEY_BYTES)
    return transcript(
        labels.SLOT, user_id, key_id, u32(keypair_version, "key pair version"), public_key
    )


def make_slot(
    kc: bytes,
    private_key: x25519.X25519PrivateKey,
    *,
    user_id: bytes,
    key_id: bytes,
    keypair_version: int = 1,
) -> bytes:
    """Wrap the private key under the KEK of the token whose Kc this is."""
    aad = slot_aad(
        user_id=user_id,
        key_id=key_id,
        keypair_version=keypair_version,
        public_key=public_key_bytes(private_key),
    )
    return aead.seal(slot_kek(kc), private_key_pkcs8(private_key), aad)


def open_slot(
    kc: bytes,
    slot: bytes,
    *,
    user_id: bytes,
    key_id: bytes,
    keypair_version: int,
    public_key: bytes,
) -> x25519.X25519PrivateKey:
    """The private key in a slot; SlotInvalid if this Kc does not open it,
    KeyMismatch if it opens to a key other than the account's public key."""
    aad = slot_aad(
        user_id=user_id, key_id=key_id, keypair_version=keypair_version, public_key=public_key
    )
    if len(slot) != SLOT_BYTES:
        raise MalformedCiphertext(f"a key slot is {SLOT_BYTES} bytes, got {len(slot)}")
    try:
        der = aead.open_box(slot_kek(kc), slot, aad, what="key slot")
    except aead.Unopened:
        raise SlotInvalid(
            f"the key slot of key id {short(key_id)} for user {short(user_id)} does not open "
            "with this token's client key: it belongs to another token or account, it was "
            "modified, or the client key was substituted (log in again; do not make a new key)"
        ) from None
    private_key = private_key_from_pkcs8(der)
    if public_key_bytes(private_key) != public_key:
        raise KeyMismatch(
            f"the key slot of key id {short(key_id)} holds a private key that does not match "
            f"user {short(user_id)}'s public key"
        )
    return private_key


def fingerprint(*, user_id: bytes, public_key: bytes) -> str:
    """What two people compare before sharing: 128 bits of
    SHA-256(transcript(label, user_id, public_key)) as 4 groups of 8 hex digits."""
    check_id(user_id, "user id")
    check_id(public_key, "public key", PUBLIC_KEY_BYTES)
    digest = hashlib.sha256(transcript(labels.FINGERPRINT, user_id, public_key)).digest()
    hex_ = digest[:FINGERPRINT_BYTES].hex()
    return "-".join(hex_[i : i + 8] for i in range(0, len(hex_), 8))
