"""A tiny DER writer (ITU-T X.690 §10) for the few ASN.1 structures the card's
issuer signs: CMS SignedData (RFC 5652) and the ICAO LDS Security Object.

`cryptography` signs CMS only around id-data content and cannot encode an
LDSSecurityObject; the one ASN.1 library in uv.lock (asn1crypto) is there only
as python-pkcs11's dependency and is untyped. So the handful of types needed is
written by hand: each function returns one complete DER element. Lengths are
definite and minimal (`tlv.encode_length`), INTEGERs minimal two's complement,
SET OF sorted by encoding.
"""

from __future__ import annotations

from .tlv import tlv

__all__ = ["context", "integer", "null", "octet_string", "oid", "sequence", "set_of"]


def _base128(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def oid(dotted: str) -> bytes:
    """OBJECT IDENTIFIER from its dotted form ("1.2.840.113549.1.7.2")."""
    try:
        arcs = [int(a) for a in dotted.split(".")]
    except ValueError:
        raise ValueError(f"not a dotted object identifier: {dotted!r}") from None
    if len(arcs) < 2 or arcs[0] > 2 or min(arcs) < 0 or (arcs[0] < 2 and arcs[1] > 39):
        raise ValueError(f"not a valid object identifier: {dotted!r}")
    body = _base128(40 * arcs[0] + arcs[1]) + b"".join(_base128(a) for a in arcs[2:])
    return tlv(0x06, body)


def integer(n: int) -> bytes:
    """A non-negative INTEGER, in the fewest bytes (a leading 00 keeps it positive)."""
    if n < 0:
        raise ValueError("only non-negative integers are needed")
    return tlv(0x02, n.to_bytes(n.bit_length() // 8 + 1, "big"))


def octet_string(value: bytes) -> bytes:
    return tlv(0x04, value)


def null() -> bytes:
    return b"\x05\x00"


def sequence(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


def set_of(*parts: bytes) -> bytes:
    """SET OF: DER orders the elements by their encodings (X.690 §11.6)."""
    return tlv(0x31, b"".join(sorted(parts)))


def context(number: int, content: bytes) -> bytes:
    """A constructed context-specific tag [number] around `content` (EXPLICIT
    tagging, or IMPLICIT tagging of a constructed type's contents)."""
    if not 0 <= number <= 30:
        raise ValueError("context tag numbers 0..30 only")
    return tlv(0xA0 | number, content)
