"""The ristretto255 group (RFC 9496) as RFC 9497's ristretto255-SHA512 suite uses it.

A typed wrapper over libsodium's ristretto255 through pysodium: every point
and scalar operation is libsodium's, none is written here. Elements and
scalars are their 32-byte canonical encodings (`Element`, `Scalar`): what
goes over the wire is what is computed on, so there is no second
representation to get out of step.

Everything that comes from outside goes through `deserialize_element` (which
refuses the identity, non-canonical encodings and anything that is not a
group element) or `deserialize_scalar` (which refuses values >= L). A
libsodium error on the way (a product that is the identity, the inverse of
zero) is turned into one of the RFC 9497 errors below, which `hardener.oprf`
re-exports; no libsodium `ValueError` leaves this module.

`hash_to_group` and `hash_to_scalar` are RFC 9497 section 4.1's:
expand_message_xmd with SHA-512 (RFC 9380 section 5.3.1) to 64 bytes, then
libsodium's element derivation (RFC 9496 section 4.3.4) or reduction mod L.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TypeAlias

import pysodium

Element: TypeAlias = bytes
Scalar: TypeAlias = bytes

ELEMENT_BYTES = 32
SCALAR_BYTES = 32
IDENTITY: Element = bytes(ELEMENT_BYTES)
ZERO: Scalar = bytes(SCALAR_BYTES)
ONE: Scalar = b"\x01" + bytes(SCALAR_BYTES - 1)
# The order of the group, 2^252 + 27742317777372353535851937790883648493.
ORDER = 2**252 + 27742317777372353535851937790883648493


class OprfError(Exception):
    """Base of the RFC 9497 errors. Messages never carry inputs, keys or outputs."""


class InvalidInput(OprfError):
    """An input hashes to the identity or is over 65535 bytes (RFC 9497 InvalidInputError)."""


class DeserializeError(OprfError):
    """Bytes that are not a canonical encoding of a non-identity element or of a scalar < L."""


class ProofInvalid(OprfError):
    """The DLEQ proof does not verify against the expected key (RFC 9497 VerifyError).

    In practice: the evaluation came from another key than the one pinned, was
    tampered with, or was made for another `info`.
    """


class InverseError(OprfError):
    """A scalar that must be inverted is zero (RFC 9497 InverseError)."""


class DeriveKeyPairError(OprfError):
    """DeriveKeyPair found no non-zero scalar in 256 tries (RFC 9497; never in practice)."""


# -- encodings ---------------------------------------------------------------


def deserialize_element(data: bytes) -> Element:
    """The element `data` encodes; DeserializeError unless canonical, valid and not the identity."""
    if len(data) != ELEMENT_BYTES:
        raise DeserializeError(f"a ristretto255 element is {ELEMENT_BYTES} bytes, not {len(data)}")
    if data == IDENTITY:
        raise DeserializeError("the ristretto255 identity element is not allowed here")
    if not pysodium.crypto_core_ristretto255_is_valid_point(data):
        raise DeserializeError("not a canonical encoding of a ristretto255 element")
    return bytes(data)


def deserialize_scalar(data: bytes) -> Scalar:
    """The scalar `data` encodes (little-endian); DeserializeError unless 32 bytes and < L."""
    if len(data) != SCALAR_BYTES:
        raise DeserializeError(f"a ristretto255 scalar is {SCALAR_BYTES} bytes, not {len(data)}")
    # Canonical iff reducing it mod L changes nothing (compared in constant time:
    # the scalar may be a secret key).
    reduced = pysodium.crypto_core_ristretto255_scalar_reduce(bytes(data) + bytes(SCALAR_BYTES))
    if not hmac.compare_digest(reduced, data):
        raise DeserializeError("not a canonical ristretto255 scalar (it is not below the order L)")
    return bytes(data)


def is_zero(s: Scalar) -> bool:
    """Whether `s` is zero, in constant time."""
    return hmac.compare_digest(s, ZERO)


def is_identity(e: Element) -> bool:
    """Whether `e` encodes the identity, in constant time."""
    return hmac.compare_digest(e, IDENTITY)


def scalar_equal(a: Scalar, b: Scalar) -> bool:
    """Constant-time equality of two scalars."""
    return hmac.compare_digest(a, b)


# -- elements ----------------------------------------------------------------


def scalar_mult(s: Scalar, e: Element) -> Element:
    """s * e. InvalidInput if the product is the identity (libsodium refuses to return it)."""
    try:
        out: bytes = pysodium.crypto_scalarmult_ristretto255(s, e)
    except ValueError:
        raise InvalidInput("a scalar multiplication gave the identity element") from None
    return out


def scalar_mult_base(s: Scalar) -> Element:
    """s * G. InvalidInput if s is zero (the product would be the identity)."""
    try:
        out: bytes = pysodium.crypto_scalarmult_ristretto255_base(s)
    except ValueError:
        raise InvalidInput("a scalar multiplication gave the identity element") from None
    return out


def add(a: Element, b: Element) -> Element:
    """a + b (either may be the identity; the sum may be the identity)."""
    out: bytes = pysodium.crypto_core_ristretto255_add(a, b)
    return out


def sub(a: Element, b: Element) -> Element:
    """a - b."""
    out: bytes = pysodium.crypto_core_ristretto255_sub(a, b)
    return out


# -- scalars -----------------------------------------------------------------


def random_scalar() -> Scalar:
    """A uniformly random scalar in [1, L) from libsodium's CSPRNG."""
    out: bytes = pysodium.crypto_core_ristretto255_scalar_random()
    return out


def scalar_reduce(wide: bytes) -> Scalar:
    """A 64-byte little-endian integer reduced mod L."""
    out: bytes = pysodium.crypto_core_ristretto255_scalar_reduce(wide)
    return out


def scalar_invert(s: Scalar) -> Scalar:
    """1 / s mod L. InverseError if s is zero."""
    try:
        out: bytes = pysodium.crypto_core_ristretto255_scalar_invert(s)
    except ValueError:
        raise InverseError("cannot invert the zero scalar") from None
    return out


def scalar_add(a: Scalar, b: Scalar) -> Scalar:
    out: bytes = pysodium.crypto_core_ristretto255_scalar_add(a, b)
    return out


def scalar_sub(a: Scalar, b: Scalar) -> Scalar:
    out: bytes = pysodium.crypto_core_ristretto255_scalar_sub(a, b)
    return out


def scalar_mul(a: Scalar, b: Scalar) -> Scalar:
    out: bytes = pysodium.crypto_core_ristretto255_scalar_mul(a, b)
    return out


# -- hashing -----------------------------------------------------------------


def expand_message_xmd_sha512(msg: bytes, dst: bytes, length: int) -> bytes:
    """RFC 9380 section 5.3.1 expand_message_xmd with H = SHA-512 (b = 64, s = 128 bytes)."""
    ell = -(-length // 64)
    if ell > 255 or length > 0xFFFF or length <= 0:
        raise ValueError("expand_message_xmd: requested length out of range")
    if len(dst) > 255:
        raise ValueError("expand_message_xmd: DST longer than 255 bytes")
    dst_prime = dst + bytes([len(dst)])
    msg_prime = bytes(128) + msg + length.to_bytes(2, "big") + b"\x00" + dst_prime
    b0 = hashlib.sha512(msg_prime).digest()
    b = hashlib.sha512(b0 + b"\x01" + dst_prime).digest()
    out = bytearray(b)
    for i in range(2, ell + 1):
        mixed = bytes(x ^ y for x, y in zip(b0, b, strict=True))
        b = hashlib.sha512(mixed + bytes([i]) + dst_prime).digest()
        out += b
    return bytes(out[:length])


def hash_to_group(msg: bytes, dst: bytes) -> Element:
    """RFC 9497 HashToGroup for ristretto255: expand to 64 bytes, libsodium's from_hash."""
    out: bytes = pysodium.crypto_core_ristretto255_from_hash(
        expand_message_xmd_sha512(msg, dst, 64)
    )
    return out


def hash_to_scalar(msg: bytes, dst: bytes) -> Scalar:
    """RFC 9497 HashToScalar for ristretto255: expand to 64 bytes, reduce mod L."""
    return scalar_reduce(expand_message_xmd_sha512(msg, dst, 64))
