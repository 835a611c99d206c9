"""Success keys (the hardener's proof of a success) and recovery codes.

The hardener resets a user's failure count only for a proven success: an
Ed25519 signature over `success_message(caller, user_id, attempt_id, nonce)`
by the key enrolled for that user id (docs/hardener.md). The vault makes one
random success key per account and purpose ("passphrase", "recovery"),
enrols its public half, and keeps the private half **sealed to the user's own
public key**:

    info   = transcript("authnet-vault/v1 success key", user_id, purpose)
    sealed = HPKE SealBase(pkU, info, aad = "", pt = Ed25519 seed (32))      (80 bytes)

So only a client that opened the private key (with the right passphrase and
a token, or the right recovery secret) can sign: the hardener alone cannot
test a guess, the database alone cannot either, and the key survives a new
passphrase or a new recovery code (no re-enrolment).

A recovery code is 25 symbols of Crockford's base32 (125 bits), printed in
five groups of five; `normalize_code` accepts lower case, spaces, hyphens and
the look-alikes O/o (0) and I/i/L/l (1).
"""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from authnet.protocol.encoding import transcript
from hardener import labels as hardener_labels
from vault_api.crypto import codes, labels
from vault_api.crypto.errors import MalformedCiphertext, SuccessKeyInvalid
from vault_api.crypto.factors import PURPOSES, Purpose
from vault_api.crypto.ids import check_id, short
from vault_api.crypto.safekeys import ENC_BYTES, SUITE
from vault_api.crypto.userkeys import PUBLIC_KEY_BYTES

SEED_BYTES: Final = 32
SEALED_SUCCESS_BYTES: Final = ENC_BYTES + SEED_BYTES + 16
SIGNATURE_BYTES: Final = 64
# PKCS#8 PrivateKeyInfo for Ed25519 (RFC 8410): this prefix, then the 32-byte seed
# (what WebCrypto's importKey("pkcs8", ..., "Ed25519") reads).
ED25519_PKCS8_PREFIX: Final = bytes.fromhex("302e020100300506032b657004220420")

CODE_SYMBOLS: Final = 25


def new_success_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def success_public_key(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def success_key_info(*, user_id: bytes, purpose: Purpose) -> bytes:
    check_id(user_id, "user id")
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}")
    return transcript(labels.SUCCESS_KEY, user_id, purpose.encode())


def seal_success_key(
    key: ed25519.Ed25519PrivateKey, public_key: bytes, *, user_id: bytes, purpose: Purpose
) -> bytes:
    check_id(public_key, "public key", PUBLIC_KEY_BYTES)
    seed = key.private_bytes_raw()
    pk = x25519.X25519PublicKey.from_public_bytes(public_key)
    return SUITE.encrypt(seed, pk, success_key_info(user_id=user_id, purpose=purpose))


def open_success_key(
    sealed: bytes, private_key: x25519.X25519PrivateKey, *, user_id: bytes, purpose: Purpose
) -> ed25519.Ed25519PrivateKey:
    if len(sealed) != SEALED_SUCCESS_BYTES:
        raise MalformedCiphertext(
            f"a sealed success key is {SEALED_SUCCESS_BYTES} bytes, got {len(sealed)}"
        )
    try:
        seed = SUITE.decrypt(
            sealed, private_key, success_key_info(user_id=user_id, purpose=purpose)
        )
    except (InvalidTag, ValueError):
        seed = b""
    if len(seed) != SEED_BYTES:
        raise SuccessKeyInvalid(
            f"the {purpose} success key of user {short(user_id)} does not open with this "
            "user's private key (it was modified, or sealed for another user or purpose)"
        )
    return ed25519.Ed25519PrivateKey.from_private_bytes(seed)


def sign_success(
    key: ed25519.Ed25519PrivateKey, *, caller: str, user_id: str, attempt_id: bytes, nonce: bytes
) -> bytes:
    """The ReportSuccess signature for one evaluation (attempt) of this user id."""
    return key.sign(hardener_labels.success_message(caller, user_id, attempt_id, nonce))


def verify_success(
    public_key: bytes,
    signature: bytes,
    *,
    caller: str,
    user_id: str,
    attempt_id: bytes,
    nonce: bytes,
) -> bool:
    """What the vault server checks before it lets a recovery change an account."""
    if len(public_key) != 32 or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(public_key).verify(
            signature, hardener_labels.success_message(caller, user_id, attempt_id, nonce)
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def new_recovery_code() -> str:
    """25 random Crockford base32 symbols (125 bits) as five groups of five."""
    return codes.grouped(codes.random_code(CODE_SYMBOLS))


def normalize_code(code: str) -> str:
    """The canonical form the slow hash takes (ValueError if it is not a code)."""
    text = codes.canonical(code, CODE_SYMBOLS)
    if text is None:
        raise ValueError(
            f"a recovery code is {CODE_SYMBOLS} symbols of 0-9 and A-Z without I, L, O, U "
            "(hyphens and spaces are ignored)"
        )
    return codes.grouped(text)
