"""The client key Kc: derivation on the token, and its public fingerprint.

Every token kind turns a device secret into Kc the same way, differing only in
the input keying material and the HKDF salt that names the token kind:

    PRK = HKDF-Extract(salt = <kind label>, IKM = <device secret or output>)
    Kc  = HKDF-Expand(PRK, info = "authnet/v1 kc" || 0x00 || SPID, L = 32)

What each kind feeds in (the device computes it; the secret never leaves it):

| kind   | IKM                                                                 |
|--------|---------------------------------------------------------------------|
| phone  | the key store's 256-bit Kc secret                                   |
| FIDO2  | hmac-secret output for salt SHA-256("WebAuthn PRF" 0x00 prf_input)  |
|        | (= the WebAuthn PRF output for prf_input; UV required)              |
| PIV    | x-coordinate of ECDH(9D key, hash_to_curve(SPID)) (RFC 9380)        |
| PKCS#11| HMAC-SHA256(token secret key, pkcs11_input)                         |
| OTP    | HMAC-SHA1(slot-2 secret, otp_challenge): 160 bits                   |

The fingerprint is what people compare on screens; it reveals nothing usable
about Kc and is computable from a non-extractable WebCrypto key:

    fp = HKDF-SHA256(IKM = Kc, salt = "", info = "authnet/v1 kc fingerprint", L = 16)
"""

from __future__ import annotations

import hashlib
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from authnet.protocol import labels
from authnet.protocol.encoding import transcript
from authnet.protocol.h2c import hash_to_curve

KC_BYTES: Final = 32
FINGERPRINT_BYTES: Final = 16


MIN_IKM_BYTES: Final = 20  # HMAC-SHA1 (the OTP applet) is the shortest source


def derive_kc(ikm: bytes, spid: bytes, *, salt: bytes) -> bytes:
    """Kc for one SP from a token's secret material. `salt` is the token kind's label."""
    if len(ikm) < MIN_IKM_BYTES:
        raise ValueError("Kc input keying material must be at least 160 bits")
    if len(spid) != 16:
        raise ValueError("SPID must be 16 bytes")
    return HKDF(
        algorithm=hashes.SHA256(),
        length=KC_BYTES,
        salt=salt,
        info=labels.KC_INFO + b"\x00" + spid,
    ).derive(ikm)


def kc_fingerprint(kc: bytes) -> str:
    """Public fingerprint of Kc, grouped hex (e.g. 'a1b2c3d4-...')."""
    raw = HKDF(
        algorithm=hashes.SHA256(),
        length=FINGERPRINT_BYTES,
        salt=None,
        info=labels.KC_FINGERPRINT,
    ).derive(kc)
    h = raw.hex()
    return "-".join(h[i : i + 8] for i in range(0, len(h), 8))


def fido2_prf_input(spid: bytes) -> bytes:
    """The WebAuthn PRF input for an SP; the browser-native login evaluates it."""
    return transcript(labels.FIDO2_PRF_INPUT, spid)


def fido2_hmac_secret_salt(spid: bytes) -> bytes:
    """The CTAP2 hmac-secret salt that makes a key's output equal its PRF output
    for `fido2_prf_input(spid)` (WebAuthn Level 3 PRF over hmac-secret)."""
    return hashlib.sha256(b"WebAuthn PRF\x00" + fido2_prf_input(spid)).digest()


def piv_peer_point(spid: bytes) -> ec.EllipticCurvePublicKey:
    """The point a PIV card's 9D key agrees with: a hash of the SPID onto P-256,
    whose discrete logarithm nobody knows."""
    return hash_to_curve(spid, labels.PIV_KC_POINT_DST)


def pkcs11_hmac_input(spid: bytes) -> bytes:
    return transcript(labels.PKCS11_HMAC_INPUT, spid)


def otp_challenge(spid: bytes) -> bytes:
    """The challenge for the YubiKey OTP applet's HMAC-SHA1 (at most 64 bytes)."""
    return transcript(labels.OTP_CHALLENGE, spid)
