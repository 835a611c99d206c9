"""RFC 9180 SealBase with a chosen ephemeral key, for deterministic test vectors.

`cryptography` seals with a fresh ephemeral key every time (as it should), so
a test vector made with it could not be reproduced by another implementation.
This is the RFC's algorithm written out (DHKEM(X25519, HKDF-SHA256),
HKDF-SHA256, AES-128-GCM, mode_base, sequence number 0), used only to make
and check vectors; tests check it against RFC 9180 Appendix A.1.1 and check
that `cryptography` opens what it seals.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEM_SUITE = b"KEM" + (0x0020).to_bytes(2, "big")
SUITE = b"HPKE" + (0x0020).to_bytes(2, "big") + (1).to_bytes(2, "big") + (1).to_bytes(2, "big")


def _extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt or b"\x00" * 32, ikm, hashlib.sha256).digest()


def _expand(prk: bytes, info: bytes, length: int) -> bytes:
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:length]


def _labeled_extract(suite: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return _extract(salt, b"HPKE-v1" + suite + label + ikm)


def _labeled_expand(suite: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    return _expand(prk, length.to_bytes(2, "big") + b"HPKE-v1" + suite + label + info, length)


def derive_key_pair(ikm: bytes) -> x25519.X25519PrivateKey:
    """DeriveKeyPair(ikm) of DHKEM(X25519, HKDF-SHA256) (RFC 9180 section 7.1.3)."""
    prk = _labeled_extract(KEM_SUITE, b"", b"dkp_prk", ikm)
    return x25519.X25519PrivateKey.from_private_bytes(
        _labeled_expand(KEM_SUITE, prk, b"sk", b"", 32)
    )


def seal_base(
    pk_r: bytes, info: bytes, aad: bytes, pt: bytes, sk_e: x25519.X25519PrivateKey
) -> tuple[bytes, bytes]:
    """(enc, ct) of SealBase with the ephemeral key sk_e."""
    enc = sk_e.public_key().public_bytes_raw()
    dh = sk_e.exchange(x25519.X25519PublicKey.from_public_bytes(pk_r))
    eae_prk = _labeled_extract(KEM_SUITE, b"", b"eae_prk", dh)
    shared = _labeled_expand(KEM_SUITE, eae_prk, b"shared_secret", enc + pk_r, 32)
    psk_id_hash = _labeled_extract(SUITE, b"", b"psk_id_hash", b"")
    info_hash = _labeled_extract(SUITE, b"", b"info_hash", info)
    context = b"\x00" + psk_id_hash + info_hash
    secret = _labeled_extract(SUITE, shared, b"secret", b"")
    key = _labeled_expand(SUITE, secret, b"key", context, 16)
    nonce = _labeled_expand(SUITE, secret, b"base_nonce", context, 12)
    return enc, AESGCM(key).encrypt(nonce, pt, aad)
