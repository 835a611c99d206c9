"""Hardened factors: the vault passphrase and the recovery slot (docs/vault.md 5.4-5.6).

A secret a person types (a passphrase, a recovery passphrase or code) is
never used as a key directly. The client makes it slow, then hardens it
through the hardener (RFC 9497 POPRF; the vault server only relays the
blinded element), then derives a key from the hardener's output:

    x = PBKDF2-HMAC-SHA256(NFC(secret), salt = transcript("authnet-vault/v1 factor hash",
                           purpose, user_id, record salt), iterations, 32)
    y = POPRF(x, info = poprf_info(caller, "<user id>:<purpose>"))          (64 bytes)
    F = HKDF-SHA256(IKM = y, salt = record salt,
                    info = transcript("authnet-vault/v1 hardened key", purpose, user_id, record id))

The passphrase adds a factor to the tokens: with one set, each token's slot
holds the 32-byte **token factor** T (not the private key), and the private
key is in one **passphrase wrap** under a key that needs both:

    KEK_t = HKDF-SHA256(IKM = Kc, salt = "", info = "authnet-vault/v1 token factor kek")
    token slot ("kc+passphrase") = box(KEK_t, T, transcript("authnet-vault/v1 token factor",
                                   user_id, key_id, u32(keypair_version), pkU))     (60 bytes)
    KEK_p = HKDF-SHA256(IKM = T, salt = F, info = "authnet-vault/v1 passphrase kek")
    wrap  = box(KEK_p, PKCS#8(skU), transcript("authnet-vault/v1 passphrase wrap",
                user_id, u32(keypair_version), pkU, params...))                     (76 bytes)

A new passphrase is a new wrap under the same T (so no token's slot changes
and no token's Kc is needed); the old wrap stays as history. The recovery
slot opens the private key with the hardened recovery secret alone:

    recovery slot = box(F_recovery, PKCS#8(skU), transcript("authnet-vault/v1 recovery slot",
                        user_id, u32(keypair_version), pkU, kind, params...))       (76 bytes)

`params` (record id, salt, PBKDF2 iterations, hardener key version and public
key) are bound into every wrap, so a server that swaps any of them (a weaker
count, another hardener key) makes the wrap not open. No I/O here.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from dataclasses import dataclass
from typing import Final, Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from authnet.protocol.encoding import b64u_encode, transcript
from vault_api.crypto import aead, labels
from vault_api.crypto.errors import (
    MalformedCiphertext,
    PassphraseInvalid,
    RecoveryInvalid,
    SlotInvalid,
)
from vault_api.crypto.ids import ID_BYTES, KEY_ID_BYTES, check_id, short, u32
from vault_api.crypto.userkeys import (
    PKCS8_BYTES,
    PUBLIC_KEY_BYTES,
    private_key_from_pkcs8,
    private_key_pkcs8,
    public_key_bytes,
)

Purpose = Literal["passphrase", "recovery"]
RecoveryKind = Literal["passphrase", "code"]
PURPOSES: Final = ("passphrase", "recovery")

SALT_BYTES: Final = 16
FACTOR_BYTES: Final = 32
HARDENED_BYTES: Final = 64
HARDENER_KEY_BYTES: Final = 32
TOKEN_SLOT_BYTES: Final = aead.OVERHEAD + FACTOR_BYTES
WRAP_BYTES: Final = aead.OVERHEAD + PKCS8_BYTES
# OWASP's 2023 figure for PBKDF2-HMAC-SHA256; the server may ask for more (or,
# in tests, less) with the setting passphrase_kdf_iterations.
DEFAULT_ITERATIONS: Final = 600_000
MIN_ITERATIONS: Final = 1_000
MAX_ITERATIONS: Final = 10_000_000
MIN_SECRET_CHARS: Final = 8
MAX_SECRET_BYTES: Final = 1024


@dataclass(frozen=True, kw_only=True)
class FactorParams:
    """The public parameters of one hardened record (a wrap or a recovery slot)."""

    record_id: bytes
    salt: bytes
    iterations: int
    key_version: int
    hardener_public_key: bytes

    def __post_init__(self) -> None:
        check_id(self.record_id, "record id")
        check_id(self.salt, "salt", SALT_BYTES)
        check_id(self.hardener_public_key, "hardener public key", HARDENER_KEY_BYTES)
        if not MIN_ITERATIONS <= self.iterations <= MAX_ITERATIONS:
            raise ValueError(f"iterations must be {MIN_ITERATIONS}..{MAX_ITERATIONS}")
        u32(self.key_version, "hardener key version")

    @classmethod
    def new(cls, *, iterations: int, key_version: int, hardener_public_key: bytes) -> FactorParams:
        return cls(
            record_id=os.urandom(ID_BYTES),
            salt=os.urandom(SALT_BYTES),
            iterations=iterations,
            key_version=key_version,
            hardener_public_key=hardener_public_key,
        )

    def fields(self) -> tuple[bytes, ...]:
        return (
            self.record_id,
            self.salt,
            u32(self.iterations, "iterations"),
            u32(self.key_version, "hardener key version"),
            self.hardener_public_key,
        )


def hardener_user_id(user_id: bytes, purpose: Purpose) -> str:
    """The hardener's user id for this secret: its own budget per purpose."""
    check_id(user_id, "user id")
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}")
    return f"{b64u_encode(user_id)}:{purpose}"


def normalize_secret(secret: str) -> bytes:
    """NFC-normalised UTF-8, so the same passphrase typed on two systems hashes alike."""
    text = unicodedata.normalize("NFC", secret)
    if not text:
        raise ValueError("the passphrase is empty")
    raw = text.encode("utf-8")
    if len(raw) > MAX_SECRET_BYTES:
        raise ValueError(f"a passphrase has at most {MAX_SECRET_BYTES} bytes")
    return raw


def check_new_secret(secret: str) -> None:
    """What a new passphrase (or recovery passphrase) must be, beyond hashing."""
    if len(unicodedata.normalize("NFC", secret)) < MIN_SECRET_CHARS:
        raise ValueError(f"a passphrase has at least {MIN_SECRET_CHARS} characters")
    normalize_secret(secret)


def slow_hash(secret: str, *, purpose: Purpose, user_id: bytes, params: FactorParams) -> bytes:
    """x: PBKDF2-HMAC-SHA256 of the secret (the part a stolen hardener still costs)."""
    salt = transcript(labels.FACTOR_HASH, purpose.encode(), user_id, params.salt)
    return hashlib.pbkdf2_hmac(
        "sha256", normalize_secret(secret), salt, params.iterations, FACTOR_BYTES
    )


def hardened_key(y: bytes, *, purpose: Purpose, user_id: bytes, params: FactorParams) -> bytes:
    """F: the 32-byte key from the hardener's POPRF output y for this record."""
    if len(y) != HARDENED_BYTES:
        raise ValueError(f"the hardened value is {HARDENED_BYTES} bytes")
    check_id(user_id, "user id")
    info = transcript(labels.HARDENED_KEY, purpose.encode(), user_id, params.record_id)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=params.salt, info=info).derive(y)


# --- the token factor (one slot per token when a passphrase is set) -------------------


def new_token_factor() -> bytes:
    return os.urandom(FACTOR_BYTES)


def token_factor_aad(
    *, user_id: bytes, key_id: bytes, keypair_version: int, public_key: bytes
) -> bytes:
    check_id(user_id, "user id")
    check_id(key_id, "key id", KEY_ID_BYTES)
    check_id(public_key, "public key", PUBLIC_KEY_BYTES)
    return transcript(
        labels.TOKEN_FACTOR, user_id, key_id, u32(keypair_version, "key pair version"), public_key
    )


def _token_kek(kc: bytes) -> bytes:
    aead.check_key(kc, "Kc")
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"", info=labels.TOKEN_FACTOR_KEK
    ).derive(kc)


def make_token_slot(
    kc: bytes,
    token_factor: bytes,
    *,
    user_id: bytes,
    key_id: bytes,
    keypair_version: int,
    public_key: bytes,
) -> bytes:
    aead.check_key(token_factor, "token factor")
    aad = token_factor_aad(
        user_id=user_id, key_id=key_id, keypair_version=keypair_version, public_key=public_key
    )
    return aead.seal(_token_kek(kc), token_factor, aad)


def open_token_slot(
    kc: bytes,
    slot: bytes,
    *,
    user_id: bytes,
    key_id: bytes,
    keypair_version: int,
    public_key: bytes,
) -> bytes:
    """T from a "kc+passphrase" slot; SlotInvalid if this Kc does not open it."""
    aad = token_factor_aad(
        user_id=user_id, key_id=key_id, keypair_version=keypair_version, public_key=public_key
    )
    if len(slot) != TOKEN_SLOT_BYTES:
        raise MalformedCiphertext(
            f"a token-factor slot is {TOKEN_SLOT_BYTES} bytes, got {len(slot)}"
        )
    try:
        return aead.open_box(_token_kek(kc), slot, aad, what="token-factor slot")
    except aead.Unopened:
        raise SlotInvalid(
            f"the token-factor slot of key id {short(key_id)} for user {short(user_id)} does not "
            "open with this token's client key: it belongs to another token or account, or it "
            "was modified"
        ) from None


# --- the passphrase wrap ---------------------------------------------------------------


def passphrase_kek(token_factor: bytes, factor_key: bytes) -> bytes:
    """KEK_p = HKDF(IKM = T, salt = F): needs the token (T) and the passphrase (F)."""
    aead.check_key(token_factor, "token factor")
    aead.check_key(factor_key, "hardened key")
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=factor_key, info=labels.PASSPHRASE_KEK
    ).derive(token_factor)


def passphrase_wrap_aad(
    *, user_id: bytes, keypair_version: int, public_key: bytes, params: FactorParams
) -> bytes:
    check_id(user_id, "user id")
    check_id(public_key, "public key", PUBLIC_KEY_BYTES)
    return transcript(
        labels.PASSPHRASE_WRAP,
        user_id,
        u32(keypair_version, "key pair version"),
        public_key,
        *params.fields(),
    )


def make_passphrase_wrap(
    kek: bytes,
    private_key: x25519.X25519PrivateKey,
    *,
    user_id: bytes,
    keypair_version: int,
    params: FactorParams,
) -> bytes:
    aad = passphrase_wrap_aad(
        user_id=user_id,
        keypair_version=keypair_version,
        public_key=public_key_bytes(private_key),
        params=params,
    )
    return aead.seal(kek, private_key_pkcs8(private_key), aad)


def open_passphrase_wrap(
    kek: bytes,
    wrap: bytes,
    *,
    user_id: bytes,
    keypair_version: int,
    public_key: bytes,
    params: FactorParams,
) -> x25519.X25519PrivateKey:
    """The private key; PassphraseInvalid when the passphrase (or the wrap) is wrong."""
    aad = passphrase_wrap_aad(
        user_id=user_id, keypair_version=keypair_version, public_key=public_key, params=params
    )
    if len(wrap) != WRAP_BYTES:
        raise MalformedCiphertext(f"a passphrase wrap is {WRAP_BYTES} bytes, got {len(wrap)}")
    try:
        der = aead.open_box(kek, wrap, aad, what="passphrase wrap")
    except aead.Unopened:
        raise PassphraseInvalid(
            f"the passphrase wrap {short(params.record_id)} of user {short(user_id)} does not "
            "open: the passphrase is wrong (or the wrap was modified or its parameters changed)"
        ) from None
    return _checked(der, public_key, "passphrase wrap", PassphraseInvalid)


# --- the recovery slot -------------------------------------------------------------------


def recovery_slot_aad(
    *,
    user_id: bytes,
    keypair_version: int,
    public_key: bytes,
    kind: RecoveryKind,
    params: FactorParams,
) -> bytes:
    check_id(user_id, "user id")
    check_id(public_key, "public key", PUBLIC_KEY_BYTES)
    if kind not in ("passphrase", "code"):
        raise ValueError("a recovery slot's kind is passphrase or code")
    return transcript(
        labels.RECOVERY_SLOT,
        user_id,
        u32(keypair_version, "key pair version"),
        public_key,
        kind.encode(),
        *params.fields(),
    )


def make_recovery_slot(
    factor_key: bytes,
    private_key: x25519.X25519PrivateKey,
    *,
    user_id: bytes,
    keypair_version: int,
    kind: RecoveryKind,
    params: FactorParams,
) -> bytes:
    aad = recovery_slot_aad(
        user_id=user_id,
        keypair_version=keypair_version,
        public_key=public_key_bytes(private_key),
        kind=kind,
        params=params,
    )
    return aead.seal(factor_key, private_key_pkcs8(private_key), aad)


def open_recovery_slot(
    factor_key: bytes,
    slot: bytes,
    *,
    user_id: bytes,
    keypair_version: int,
    public_key: bytes,
    kind: RecoveryKind,
    params: FactorParams,
) -> x25519.X25519PrivateKey:
    """The private key; RecoveryInvalid when the recovery secret (or the slot) is wrong."""
    aad = recovery_slot_aad(
        user_id=user_id,
        keypair_version=keypair_version,
        public_key=public_key,
        kind=kind,
        params=params,
    )
    if len(slot) != WRAP_BYTES:
        raise MalformedCiphertext(f"a recovery slot is {WRAP_BYTES} bytes, got {len(slot)}")
    try:
        der = aead.open_box(factor_key, slot, aad, what="recovery slot")
    except aead.Unopened:
        raise RecoveryInvalid(
            f"the recovery slot of user {short(user_id)} does not open: the recovery "
            f"{'code' if kind == 'code' else 'passphrase'} is wrong (or the slot was modified)"
        ) from None
    return _checked(der, public_key, "recovery slot", RecoveryInvalid)


def _checked(
    der: bytes, public_key: bytes, what: str, error: type[PassphraseInvalid | RecoveryInvalid]
) -> x25519.X25519PrivateKey:
    private_key = private_key_from_pkcs8(der)
    if public_key_bytes(private_key) != public_key:
        raise error(f"the {what} holds a private key that is not the account's")
    return private_key
