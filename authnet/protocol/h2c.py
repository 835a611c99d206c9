"""Hashing to P-256: RFC 9380, suite P256_XMD:SHA-256_SSWU_RO_.

The PIV token derives Kc by ECDH between its 9D key and a point that depends
only on the SPID. That point must have an unknown discrete logarithm (with
`hash(SPID) * G` anyone could compute the card's output from its public key);
a hash to the curve gives exactly that. Inputs are public (SPIDs), so this
straightforward, non-constant-time implementation is appropriate.
tests/vectors/rfc9380-p256-sswu-ro.json holds the RFC's Appendix J.1.1 vectors.
"""

from __future__ import annotations

import hashlib
from typing import Final

from cryptography.hazmat.primitives.asymmetric import ec

# P-256 (SEC 2 / FIPS 186-4).
P: Final = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
A: Final = P - 3
B: Final = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
Z: Final = P - 10  # RFC 9380 section 8.2: Z = -10
L: Final = 48  # ceil((ceil(log2(p)) + k) / 8), k = 128
SUITE: Final = "P256_XMD:SHA-256_SSWU_RO_"

Point = tuple[int, int]


def expand_message_xmd(msg: bytes, dst: bytes, length: int) -> bytes:
    """RFC 9380 section 5.3.1 with SHA-256 (b_in_bytes 32, s_in_bytes 64)."""
    if len(dst) > 255:
        raise ValueError("DST longer than 255 bytes")
    ell = -(-length // 32)
    if ell > 255 or length > 65535:
        raise ValueError("requested output too long")
    dst_prime = dst + bytes([len(dst)])
    msg_prime = bytes(64) + msg + length.to_bytes(2, "big") + b"\x00" + dst_prime
    b0 = hashlib.sha256(msg_prime).digest()
    b = [hashlib.sha256(b0 + b"\x01" + dst_prime).digest()]
    for i in range(2, ell + 1):
        prev = bytes(x ^ y for x, y in zip(b0, b[-1], strict=True))
        b.append(hashlib.sha256(prev + bytes([i]) + dst_prime).digest())
    return b"".join(b)[:length]


def hash_to_field(msg: bytes, dst: bytes, count: int = 2) -> list[int]:
    data = expand_message_xmd(msg, dst, count * L)
    return [int.from_bytes(data[i * L : (i + 1) * L], "big") % P for i in range(count)]


def _inv0(x: int) -> int:
    return pow(x, P - 2, P)


def _is_square(x: int) -> bool:
    return x == 0 or pow(x, (P - 1) // 2, P) == 1


def _sqrt(x: int) -> int:
    return pow(x, (P + 1) // 4, P)  # P = 3 mod 4


def _sgn0(x: int) -> int:
    return x % 2


def map_to_curve_simple_swu(u: int) -> Point:
    """RFC 9380 section 6.6.2 (the straightforward form)."""
    tv1 = _inv0((Z * Z % P) * pow(u, 4, P) + Z * u * u % P)
    x1 = B * _inv0(Z * A % P) % P if tv1 == 0 else (P - B) * _inv0(A) % P * (1 + tv1) % P
    gx1 = (pow(x1, 3, P) + A * x1 + B) % P
    x2 = Z * u * u % P * x1 % P
    gx2 = (pow(x2, 3, P) + A * x2 + B) % P
    x, y = (x1, _sqrt(gx1)) if _is_square(gx1) else (x2, _sqrt(gx2))
    if _sgn0(u) != _sgn0(y):
        y = (P - y) % P
    return x, y


def _add(p1: Point, p2: Point) -> Point:
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2:
        if (y1 + y2) % P == 0:
            raise ValueError("the sum is the point at infinity")
        slope = (3 * x1 * x1 + A) * _inv0(2 * y1) % P
    else:
        slope = (y2 - y1) * _inv0(x2 - x1) % P
    x3 = (slope * slope - x1 - x2) % P
    return x3, (slope * (x1 - x3) - y1) % P


def hash_to_curve_point(msg: bytes, dst: bytes) -> Point:
    """RFC 9380 section 3, random-oracle encoding (P-256 has cofactor 1)."""
    u0, u1 = hash_to_field(msg, dst)
    return _add(map_to_curve_simple_swu(u0), map_to_curve_simple_swu(u1))


def hash_to_curve(msg: bytes, dst: bytes) -> ec.EllipticCurvePublicKey:
    """The point as a key object (loading it checks that it is on the curve)."""
    x, y = hash_to_curve_point(msg, dst)
    encoded = b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), encoded)
