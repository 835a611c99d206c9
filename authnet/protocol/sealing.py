"""Sealing Kc to the browser: HPKE (RFC 9180) base mode, single-shot.

Two suites (`authnet.protocol.suites`): DHKEM(X25519, HKDF-SHA256),
HKDF-SHA256, AES-128-GCM (RFC 9180 A.1), and X-Wing (MLKEM768-X25519, KEM
0x647a of the hpke-pq draft), HKDF-SHA256, AES-256-GCM. The context is bound
in HPKE `info`. A legacy offer (X25519 only) keeps the v1 info:

    info = transcript("authnet/v1 sealed kc", ticket_hash, SPID)

A dual offer binds the offer and the chosen suite as well:

    info = transcript("authnet/v1 sealed kc", ticket_hash, SPID, offer_hash, suite_id)

so a sealed Kc opens only for the ticket, SP, offer and suite it was made for:
a token that saw a stripped offer, or a relay that relabels the suite, makes a
seal the browser cannot open, and the browser refuses any suite but the best
it offered (`SuiteDowngraded`). `aad` is empty and the sequence number 0 (one
message per context).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from authnet.errors import MalformedInput, SealedKeyInvalid, SuiteDowngraded
from authnet.protocol import labels
from authnet.protocol.encoding import transcript
from authnet.protocol.kc import KC_BYTES
from authnet.protocol.suites import (
    BrowserOffer,
    SealSuite,
    XWingKeyPair,
    check_pq_key,
    pq_key_hash,
    suite_for_enc,
    xwing_public_key,
)

SUITE: Final = SealSuite.X25519.hpke
ENC_BYTES: Final = 32
TAG_BYTES: Final = 16
CIPHERTEXT_BYTES: Final = KC_BYTES + TAG_BYTES


@dataclass(frozen=True, kw_only=True)
class SealedKey:
    enc: bytes
    ciphertext: bytes

    def __post_init__(self) -> None:
        suite_for_enc(len(self.enc))  # MalformedInput for a length no suite has
        if len(self.ciphertext) != CIPHERTEXT_BYTES:
            raise MalformedInput(f"sealed key ciphertext must be {CIPHERTEXT_BYTES} bytes")

    @property
    def suite(self) -> SealSuite:
        return suite_for_enc(len(self.enc))

    def digest(self) -> bytes:
        """What the token's signature covers, so the relay cannot swap it."""
        return hashlib.sha256(transcript(labels.SEALED_KC_HASH, self.enc, self.ciphertext)).digest()

    def to_bytes(self) -> bytes:
        """enc || ciphertext: how the mailbox keeps it (the length tells the suite)."""
        return self.enc + self.ciphertext

    @classmethod
    def from_bytes(cls, raw: bytes) -> SealedKey:
        enc_length = len(raw) - CIPHERTEXT_BYTES
        return cls(enc=raw[:enc_length], ciphertext=raw[enc_length:])


def seal_info(
    ticket_hash: bytes,
    spid: bytes,
    *,
    offer: BrowserOffer | None = None,
    suite: SealSuite = SealSuite.X25519,
) -> bytes:
    if offer is None or offer.legacy:
        if suite is not SealSuite.X25519:
            raise ValueError("a legacy offer is sealed with X25519 only")
        return transcript(labels.SEAL_INFO, ticket_hash, spid)
    return transcript(labels.SEAL_INFO, ticket_hash, spid, offer.digest(), suite.suite_id)


def seal_kc(kc: bytes, browser_key: bytes, *, ticket_hash: bytes, spid: bytes) -> SealedKey:
    """Seal Kc to the browser's raw X25519 public key (a legacy offer)."""
    return seal_kc_to(
        kc,
        BrowserOffer(x25519_key=browser_key),
        suite=SealSuite.X25519,
        ticket_hash=ticket_hash,
        spid=spid,
    )


def seal_kc_to(
    kc: bytes,
    offer: BrowserOffer,
    *,
    suite: SealSuite,
    ticket_hash: bytes,
    spid: bytes,
    pq_key: bytes | None = None,
) -> SealedKey:
    """Seal Kc to the browser's offer with `suite` (one the offer contains).

    For X-Wing, `pq_key` is the key the network relayed; it must hash to the
    offer's (the QR code's) `pq_key_hash` (BrowserKeyMismatch otherwise)."""
    if len(kc) != KC_BYTES:
        raise ValueError("Kc must be 32 bytes")
    if suite not in offer.suites:
        raise ValueError(f"the browser did not offer {suite.value}")
    info = seal_info(ticket_hash, spid, offer=offer, suite=suite)
    pk: x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey
    if suite is SealSuite.XWING:
        pk = xwing_public_key(check_pq_key(offer, pq_key))
    else:
        try:
            pk = x25519.X25519PublicKey.from_public_bytes(offer.x25519_key)
        except ValueError:
            raise MalformedInput("browser key is not an X25519 public key") from None
    try:
        # Encapsulation fails (ValueError) for a low-order X25519 point.
        out = suite.hpke.encrypt(kc, pk, info)
    except ValueError:
        raise MalformedInput(f"browser key is not a {suite.value} public key") from None
    return SealedKey(enc=out[: suite.enc_bytes], ciphertext=out[suite.enc_bytes :])


def open_kc(
    sealed: SealedKey, browser_private: x25519.X25519PrivateKey, *, ticket_hash: bytes, spid: bytes
) -> bytes:
    """Open a sealed Kc (legacy offer); SealedKeyInvalid if it was tampered
    with or is for another context."""
    return BrowserKeys(x25519_private=browser_private).open(
        sealed, ticket_hash=ticket_hash, spid=spid
    )


@dataclass(frozen=True, kw_only=True)
class BrowserKeys:
    """The browser's side: its private keys and the offer they make."""

    x25519_private: x25519.X25519PrivateKey
    xwing: XWingKeyPair | None = None

    def __repr__(self) -> str:
        return f"BrowserKeys(x-wing={self.xwing is not None})"

    @property
    def x25519_public(self) -> bytes:
        return self.x25519_private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def offer(self) -> BrowserOffer:
        return BrowserOffer(
            x25519_key=self.x25519_public,
            pq_key_hash=None if self.xwing is None else pq_key_hash(self.xwing.public_bytes),
        )

    def open(self, sealed: SealedKey, *, ticket_hash: bytes, spid: bytes) -> bytes:
        """Kc; SuiteDowngraded for a suite weaker than the best offered,
        SealedKeyInvalid for a seal that does not open in this context."""
        offer = self.offer
        suite = sealed.suite
        if suite is not offer.suites[0]:
            raise SuiteDowngraded()
        info = seal_info(ticket_hash, spid, offer=offer, suite=suite)
        sk: x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey
        sk = self.x25519_private if self.xwing is None else self.xwing.private_key
        try:
            kc = suite.hpke.decrypt(sealed.to_bytes(), sk, info)
        except (InvalidTag, ValueError):
            raise SealedKeyInvalid() from None
        if len(kc) != KC_BYTES:
            raise SealedKeyInvalid()
        return kc
