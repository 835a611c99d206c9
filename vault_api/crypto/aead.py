"""The one place the vault calls AES-256-GCM: the sealed-box format.

    box = nonce (12 random bytes) || ciphertext || tag (16 bytes)

Every symmetric ciphertext of the vault (key slots, items, folder and safe
names, wrapped file keys, the previous-key chain, file chunks) is such a box
under a 256-bit key, with associated data that names its context. WebCrypto's
AES-GCM produces `ciphertext || tag` for `{iv: nonce, additionalData: aad}`,
so a box is `nonce || encrypt(...)` there too.

Nonces are fresh random 96-bit values (os.urandom). A key used for at most
2^32 boxes keeps the nonce-collision chance below 2^-32 (NIST SP 800-38D 8.3);
a safe key encrypts one box per record version, far below that.
"""

from __future__ import annotations

import os
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault_api.crypto.errors import MalformedCiphertext

KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
OVERHEAD: Final = NONCE_BYTES + TAG_BYTES


class Unopened(Exception):
    """The tag did not verify; callers translate this into a named error."""


def check_key(key: bytes, what: str) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise ValueError(f"{what} must be {KEY_BYTES} bytes")


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """A box under `key` with a fresh random nonce."""
    return seal_with_nonce(key, os.urandom(NONCE_BYTES), plaintext, aad)


def seal_with_nonce(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """A box with a given nonce: for test vectors only. Reusing a nonce under
    one key breaks AES-GCM; every caller in the vault uses `seal`."""
    check_key(key, "key")
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"nonce must be {NONCE_BYTES} bytes")
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_box(key: bytes, box: bytes, aad: bytes, *, what: str) -> bytes:
    """The plaintext of a box; Unopened when the tag does not verify."""
    check_key(key, "key")
    if not isinstance(box, bytes) or len(box) < OVERHEAD:
        raise MalformedCiphertext(f"{what} is {len(box)} bytes, shorter than any ciphertext")
    try:
        return AESGCM(key).decrypt(box[:NONCE_BYTES], box[NONCE_BYTES:], aad)
    except InvalidTag:
        raise Unopened() from None


class Cipher:
    """One key's AES-256-GCM for many boxes of the same shape (file chunks),
    written into and read from the caller's buffers so that a large body is
    not copied once more per box. Same box format as `seal` / `open_box`."""

    __slots__ = ("_aes",)

    def __init__(self, key: bytes) -> None:
        check_key(key, "key")
        self._aes = AESGCM(key)

    def __repr__(self) -> str:
        return "Cipher(<key>)"

    def seal_parts(self, plaintext: memoryview | bytes, aad: bytes) -> tuple[bytes, bytes]:
        """A box as its two parts, nonce and ciphertext || tag, so that a sender
        can pass them on without joining them into one more copy."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce, self._aes.encrypt(nonce, plaintext, aad)

    def seal_into(self, plaintext: memoryview | bytes, aad: bytes, out: memoryview) -> None:
        """Write the box of `plaintext` (len + OVERHEAD bytes) into `out`."""
        if len(out) != len(plaintext) + OVERHEAD:
            raise ValueError("the box buffer must be the plaintext's length + OVERHEAD")
        nonce = os.urandom(NONCE_BYTES)
        out[:NONCE_BYTES] = nonce
        self._aes.encrypt_into(nonce, plaintext, aad, out[NONCE_BYTES:])

    def open_into(self, box: memoryview, aad: bytes, out: memoryview) -> bool:
        """Write the plaintext of `box` (len - OVERHEAD bytes) into `out`;
        False (and `out` zeroed) when the tag does not verify."""
        if len(box) < OVERHEAD or len(out) != len(box) - OVERHEAD:
            raise MalformedCiphertext("a box is OVERHEAD bytes or more; out must fit its plaintext")
        try:
            self._aes.decrypt_into(bytes(box[:NONCE_BYTES]), box[NONCE_BYTES:], aad, out)
        except InvalidTag:
            out[:] = bytes(len(out))
            return False
        return True
