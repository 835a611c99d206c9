"""Safe keys: Ks per safe and key generation, sealed to each member.

    Ks     = 32 random bytes (AES-256-GCM), new for every key generation
    info   = transcript("authnet-vault/v1 safe key", safe_id, user_id, u32(generation))
    sealed = enc (32) || ct (48) = HPKE SealBase(pkR = member's public key, info, aad = "", pt = Ks)

HPKE is RFC 9180 base mode with the suite authnet already uses for Kc
(DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM; authnet/protocol/sealing.py,
authnet/gateway/static/hpke.js): X25519 gives about 128-bit security, which
AES-128 matches. The info binds the safe, the member and the generation, so a
server cannot hand one member's sealed key to another, or an old generation's
key as the current one.

When a safe's key rotates, the new generation carries the previous key, so
members can still read history written under it:

    aad      = transcript("authnet-vault/v1 previous key", safe_id, u32(old), u32(new))
    previous = box(Ks_new, Ks_old, aad)                                  (60 bytes)
"""

from __future__ import annotations

import os
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from authnet.protocol.encoding import transcript
from vault_api.crypto import aead, labels
from vault_api.crypto.errors import MalformedCiphertext, PreviousKeyInvalid, SafeKeyInvalid
from vault_api.crypto.ids import check_id, short, u32
from vault_api.crypto.userkeys import PUBLIC_KEY_BYTES

SUITE: Final = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_128_GCM)
SAFE_KEY_BYTES: Final = 32
ENC_BYTES: Final = 32
SEALED_BYTES: Final = ENC_BYTES + SAFE_KEY_BYTES + 16
PREVIOUS_KEY_BYTES: Final = aead.OVERHEAD + SAFE_KEY_BYTES


def new_safe_key() -> bytes:
    return os.urandom(SAFE_KEY_BYTES)


def safe_key_info(*, safe_id: bytes, user_id: bytes, generation: int) -> bytes:
    check_id(safe_id, "safe id")
    check_id(user_id, "user id")
    return transcript(labels.SAFE_KEY, safe_id, user_id, u32(generation, "key generation"))


def seal_safe_key(
    safe_key: bytes, public_key: bytes, *, safe_id: bytes, user_id: bytes, generation: int
) -> bytes:
    """Ks sealed to a member's raw X25519 public key."""
    aead.check_key(safe_key, "safe key")
    check_id(public_key, "public key", PUBLIC_KEY_BYTES)
    info = safe_key_info(safe_id=safe_id, user_id=user_id, generation=generation)
    try:
        pk = x25519.X25519PublicKey.from_public_bytes(public_key)
        return SUITE.encrypt(safe_key, pk, info)
    except ValueError:
        # A low-order point gives no shared secret: not a usable public key.
        raise MalformedCiphertext("the member's public key is not a usable X25519 key") from None


def open_safe_key(
    sealed: bytes,
    private_key: x25519.X25519PrivateKey,
    *,
    safe_id: bytes,
    user_id: bytes,
    generation: int,
) -> bytes:
    """Ks from a member's sealed key; SafeKeyInvalid if it does not open."""
    info = safe_key_info(safe_id=safe_id, user_id=user_id, generation=generation)
    if len(sealed) != SEALED_BYTES:
        raise MalformedCiphertext(f"a sealed safe key is {SEALED_BYTES} bytes, got {len(sealed)}")
    try:
        key = SUITE.decrypt(sealed, private_key, info)
    except (InvalidTag, ValueError):
        key = b""
    if len(key) != SAFE_KEY_BYTES:
        raise SafeKeyInvalid(
            f"the safe key of safe {short(safe_id)} (key generation {generation}) sealed to "
            f"user {short(user_id)} does not open with this user's private key: it was "
            "modified, or sealed for another safe, member or generation"
        )
    return key


def previous_key_aad(*, safe_id: bytes, old_generation: int, new_generation: int) -> bytes:
    check_id(safe_id, "safe id")
    if new_generation != old_generation + 1:
        raise ValueError("the previous key links consecutive generations")
    return transcript(
        labels.PREVIOUS_KEY,
        safe_id,
        u32(old_generation, "old generation"),
        u32(new_generation, "new generation"),
    )


def wrap_previous_key(
    new_key: bytes, old_key: bytes, *, safe_id: bytes, old_generation: int
) -> bytes:
    aead.check_key(old_key, "previous safe key")
    aad = previous_key_aad(
        safe_id=safe_id, old_generation=old_generation, new_generation=old_generation + 1
    )
    return aead.seal(new_key, old_key, aad)


def unwrap_previous_key(
    new_key: bytes, previous: bytes, *, safe_id: bytes, new_generation: int
) -> bytes:
    """Ks of generation new_generation - 1, from the link stored with new_generation."""
    aad = previous_key_aad(
        safe_id=safe_id, old_generation=new_generation - 1, new_generation=new_generation
    )
    if len(previous) != PREVIOUS_KEY_BYTES:
        raise MalformedCiphertext(
            f"a previous-key link is {PREVIOUS_KEY_BYTES} bytes, got {len(previous)}"
        )
    try:
        return aead.open_box(new_key, previous, aad, what="previous key")
    except aead.Unopened:
        raise PreviousKeyInvalid(
            f"the key of generation {new_generation - 1} of safe {short(safe_id)} does not "
            f"open under generation {new_generation}: the link was modified or belongs to "
            "another safe or generation"
        ) from None


def key_chain(
    current_key: bytes,
    *,
    safe_id: bytes,
    current_generation: int,
    links: dict[int, bytes],
) -> dict[int, bytes]:
    """Every generation's key reachable from the current one. `links[g]` is the
    previous-key box stored with generation g (docs/vault.md, key chain)."""
    keys = {current_generation: current_key}
    key, generation = current_key, current_generation
    while generation > 1 and generation in links:
        key = unwrap_previous_key(
            key, links[generation], safe_id=safe_id, new_generation=generation
        )
        generation -= 1
        keys[generation] = key
    return keys
