"""The client key Kc: derivation on the token, and its public fingerprint.

Every token kind turns a device secret into Kc the same way, differing only in
the input keying material and the HKDF salt that names the token kind:

    PRK = HKDF-Extract(salt = <kind label>, IKM = <device secret or output>)
    Kc  = HKDF-Expand(PRK, info = "authnet/v1 kc" || 0x00 || SPID, L = 32)

The fingerprint is what people compare on screens; it reveals nothing usable
about Kc and is computable from a non-extractable WebCrypto key:

    fp = HKDF-SHA256(IKM = Kc, salt = "", info = "authnet/v1 kc fingerprint", L = 16)
"""

from __future__ import annotations

from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from authnet.protocol import labels

KC_BYTES: Final = 32
FINGERPRINT_BYTES: Final = 16


def derive_kc(ikm: bytes, spid: bytes, *, salt: bytes) -> bytes:
    """Kc for one SP from a token's secret material. `salt` is the token kind's label."""
    if len(ikm) < 32:
        raise ValueError("Kc input keying material must be at least 256 bits")
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
