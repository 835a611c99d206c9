"""The HPKE suites Kc can be sealed with, the browser's offer, and negotiation.

Two suites (docs/protocol.md §7, §7.1):

* ``X25519``: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM (RFC 9180
  A.1); the suite every browser has offered since v1.
* ``XWING``: the hybrid KEM X-Wing, MLKEM768-X25519 (KEM 0x647a of the IETF
  hpke-pq draft), HKDF-SHA256, AES-256-GCM. A recorded sealed Kc then stays
  secret unless both ML-KEM-768 and X25519 fall; the 256-bit AEAD key keeps the
  symmetric part out of reach of a quantum search too.

The browser *offers* its X25519 key and, when it has one, an X-Wing key. An
X-Wing public key (1,216 bytes) does not fit in a QR code, so the code carries
only its hash; the page registers the key itself with the gateway and the
token gets it from the network (BeginAuth) and checks it against that hash.
The offer's hash (`BrowserOffer.digest`) is the ticket's browser key hash: a
legacy offer (X25519 only) hashes exactly as before, a dual offer covers both
keys. Pure: no I/O.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from authnet.errors import BrowserKeyMismatch, MalformedInput
from authnet.protocol import labels
from authnet.protocol.encoding import transcript
from authnet.protocol.ids import BROWSER_KEY_BYTES, browser_key_hash

XWING_PUBLIC_KEY_BYTES: Final = 1216  # ML-KEM-768 encapsulation key (1184) || X25519 (32)
XWING_ENC_BYTES: Final = 1120  # ML-KEM-768 ciphertext (1088) || X25519 ephemeral (32)
XWING_SEED_BYTES: Final = 32
PQ_KEY_HASH_BYTES: Final = 32
_MLKEM_PUBLIC_BYTES: Final = 1184


class SealSuite(enum.Enum):
    """A suite Kc may be sealed with; the value is its name on the wire."""

    X25519 = "x25519"
    XWING = "x-wing"

    @property
    def kem_id(self) -> int:
        return 0x0020 if self is SealSuite.X25519 else 0x647A

    @property
    def kdf_id(self) -> int:
        return 0x0001

    @property
    def aead_id(self) -> int:
        return 0x0001 if self is SealSuite.X25519 else 0x0002

    @property
    def suite_id(self) -> bytes:
        """kem_id || kdf_id || aead_id (u16 each), as HPKE names the suite."""
        return b"".join(i.to_bytes(2, "big") for i in (self.kem_id, self.kdf_id, self.aead_id))

    @property
    def enc_bytes(self) -> int:
        return 32 if self is SealSuite.X25519 else XWING_ENC_BYTES

    @property
    def hpke(self) -> hpke.Suite:
        return _HPKE[self]


_HPKE: Final = {
    SealSuite.X25519: hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_128_GCM),
    SealSuite.XWING: hpke.Suite(
        hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM
    ),
}

# Best first: what a token seals with when the browser offers it.
PREFERENCE: Final = (SealSuite.XWING, SealSuite.X25519)


def suite_for_enc(enc_length: int) -> SealSuite:
    """The suite whose encapsulated key has this length (they all differ)."""
    for suite in SealSuite:
        if suite.enc_bytes == enc_length:
            return suite
    sizes = " or ".join(str(s.enc_bytes) for s in SealSuite)
    raise MalformedInput(f"sealed key enc must be {sizes} bytes (one per suite)")


def pq_key_hash(public_key: bytes) -> bytes:
    """SHA-256 of the browser's X-Wing public key under its label: what the QR
    code carries in place of the key."""
    if len(public_key) != XWING_PUBLIC_KEY_BYTES:
        raise MalformedInput(f"X-Wing public key must be {XWING_PUBLIC_KEY_BYTES} bytes")
    return hashlib.sha256(labels.BROWSER_PQ_KEY_HASH + b"\x00" + public_key).digest()


@dataclass(frozen=True, kw_only=True)
class BrowserOffer:
    """What the browser offers to be sealed to, as the QR code states it."""

    x25519_key: bytes
    pq_key_hash: bytes | None = None

    def __post_init__(self) -> None:
        if len(self.x25519_key) != BROWSER_KEY_BYTES:
            raise MalformedInput(f"browser key must be {BROWSER_KEY_BYTES} bytes")
        if self.pq_key_hash is not None and len(self.pq_key_hash) != PQ_KEY_HASH_BYTES:
            raise MalformedInput(f"X-Wing key hash must be {PQ_KEY_HASH_BYTES} bytes")

    @property
    def suites(self) -> tuple[SealSuite, ...]:
        """The offered suites, best first."""
        if self.pq_key_hash is None:
            return (SealSuite.X25519,)
        return (SealSuite.XWING, SealSuite.X25519)

    @property
    def legacy(self) -> bool:
        """An X25519-only offer, sealed and hashed exactly as before suites existed."""
        return self.pq_key_hash is None

    def digest(self) -> bytes:
        """The ticket's browser key hash (BeginAuth, the auth response transcript)."""
        if self.pq_key_hash is None:
            return browser_key_hash(self.x25519_key)
        return hashlib.sha256(
            transcript(labels.BROWSER_OFFER, self.x25519_key, self.pq_key_hash)
        ).digest()


def choose_suite(offer: BrowserOffer, supported: tuple[SealSuite, ...] = PREFERENCE) -> SealSuite:
    """The best offered suite the token supports (the offer's order decides)."""
    for suite in offer.suites:
        if suite in supported:
            return suite
    raise MalformedInput("the browser offers no suite this token can seal with")


def check_pq_key(offer: BrowserOffer, public_key: bytes | None) -> bytes:
    """The X-Wing key the network relayed, checked against the QR code's hash.

    A network (or anyone between) that drops or swaps the key cannot make the
    token seal to another key, nor fall back to X25519: BrowserKeyMismatch."""
    if offer.pq_key_hash is None:
        raise MalformedInput("the browser offered no X-Wing key")
    if not public_key or len(public_key) != XWING_PUBLIC_KEY_BYTES:
        raise BrowserKeyMismatch(
            "the QR code offers an X-Wing key but the network did not relay it: "
            "refusing to seal with a weaker suite; scan the code again"
        )
    if not hmac.compare_digest(pq_key_hash(public_key), offer.pq_key_hash):
        raise BrowserKeyMismatch(
            "the X-Wing key the network relayed does not match the QR code: scan it again"
        )
    return public_key


def xwing_public_key(raw: bytes) -> hpke.MLKEM768X25519PublicKey:
    """Parse a 1,216-byte X-Wing public key (ML-KEM-768 key checked per FIPS 203)."""
    if len(raw) != XWING_PUBLIC_KEY_BYTES:
        raise MalformedInput(f"X-Wing public key must be {XWING_PUBLIC_KEY_BYTES} bytes")
    try:
        m = mlkem.MLKEM768PublicKey.from_public_bytes(raw[:_MLKEM_PUBLIC_BYTES])
        x = x25519.X25519PublicKey.from_public_bytes(raw[_MLKEM_PUBLIC_BYTES:])
    except ValueError:
        raise MalformedInput("not an X-Wing public key (ML-KEM-768 || X25519)") from None
    return hpke.MLKEM768X25519PublicKey(m, x)


@dataclass(frozen=True, kw_only=True)
class XWingKeyPair:
    """An X-Wing key pair from its 32-byte seed (the draft's private key)."""

    private_key: hpke.MLKEM768X25519PrivateKey
    public_bytes: bytes

    def __repr__(self) -> str:
        return "XWingKeyPair(<private>)"


def xwing_key_pair(seed: bytes) -> XWingKeyPair:
    """X-Wing key generation: SHAKE256(seed, 96) = ML-KEM-768 (d || z) || X25519 key."""
    if len(seed) != XWING_SEED_BYTES:
        raise ValueError("an X-Wing seed is 32 bytes")
    expanded = hashlib.shake_256(seed).digest(96)
    m = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64])
    x = x25519.X25519PrivateKey.from_private_bytes(expanded[64:])
    public = m.public_key().public_bytes_raw() + x.public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw
    )
    return XWingKeyPair(private_key=hpke.MLKEM768X25519PrivateKey(m, x), public_bytes=public)
