"""Sealing Kc to the browser: HPKE (RFC 9180) base mode, single-shot.

Suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM (RFC 9180 A.1).
X25519 gives ~128-bit security, so AES-128 matches it; a larger AEAD key would
not raise the bar. The context is bound in HPKE `info`:

    info = "authnet/v1 sealed kc" || 0x00 || u16(32) || ticket_hash || u16(16) || SPID

so a sealed Kc opens only for the ticket and SP it was made for. `aad` is empty
and the sequence number 0 (one message per context).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from authnet.errors import MalformedInput, SealedKeyInvalid
from authnet.protocol import labels
from authnet.protocol.encoding import transcript
from authnet.protocol.kc import KC_BYTES

SUITE: Final = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_128_GCM)
ENC_BYTES: Final = 32
TAG_BYTES: Final = 16
CIPHERTEXT_BYTES: Final = KC_BYTES + TAG_BYTES


@dataclass(frozen=True, kw_only=True)
class SealedKey:
    enc: bytes
    ciphertext: bytes

    def __post_init__(self) -> None:
        if len(self.enc) != ENC_BYTES:
            raise MalformedInput(f"sealed key enc must be {ENC_BYTES} bytes")
        if len(self.ciphertext) != CIPHERTEXT_BYTES:
            raise MalformedInput(f"sealed key ciphertext must be {CIPHERTEXT_BYTES} bytes")

    def digest(self) -> bytes:
        """What the token's signature covers, so the relay cannot swap it."""
        return hashlib.sha256(transcript(labels.SEALED_KC_HASH, self.enc, self.ciphertext)).digest()


def seal_info(ticket_hash: bytes, spid: bytes) -> bytes:
    return transcript(labels.SEAL_INFO, ticket_hash, spid)


def seal_kc(kc: bytes, browser_key: bytes, *, ticket_hash: bytes, spid: bytes) -> SealedKey:
    """Seal Kc to the browser's raw X25519 public key."""
    if len(kc) != KC_BYTES:
        raise ValueError("Kc must be 32 bytes")
    try:
        pk = x25519.X25519PublicKey.from_public_bytes(browser_key)
        # Encapsulation fails (ValueError) for a low-order point: no shared secret.
        out = SUITE.encrypt(kc, pk, seal_info(ticket_hash, spid))
    except ValueError:
        raise MalformedInput("browser key is not an X25519 public key") from None
    return SealedKey(enc=out[:ENC_BYTES], ciphertext=out[ENC_BYTES:])


def open_kc(
    sealed: SealedKey, browser_private: x25519.X25519PrivateKey, *, ticket_hash: bytes, spid: bytes
) -> bytes:
    """Open a sealed Kc; SealedKeyInvalid if it was tampered with or is for another context."""
    try:
        kc = SUITE.decrypt(
            sealed.enc + sealed.ciphertext, browser_private, seal_info(ticket_hash, spid)
        )
    except (InvalidTag, ValueError):
        raise SealedKeyInvalid() from None
    if len(kc) != KC_BYTES:
        raise SealedKeyInvalid()
    return kc
