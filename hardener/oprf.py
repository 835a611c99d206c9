"""RFC 9497 oblivious pseudorandom functions, suite ristretto255-SHA512.

All three modes: OPRF (0x00), VOPRF (0x01) and POPRF (0x02), each with the
client's Blind / Finalize, the server's BlindEvaluate (VOPRF and POPRF also
in batch: one DLEQ proof over many elements, ComputeCompositesFast on the
server, ComputeComposites on the client) and the server's direct Evaluate.
Names follow the RFC in snake_case, prefixed by mode. Pure functions over
bytes, no I/O; group arithmetic is libsodium's (`hardener.group`), the DLEQ
proof is `hardener.dleq`.

The hardener uses POPRF: `info` is `hardener.labels.poprf_info(caller,
user_id)`, public, so a limit per user cannot be dodged by blinding; the proof
is checked against the key the caller pinned, so a hardener answering with
another key is refused (`ProofInvalid`).

`blind=` and `r=` exist to reproduce the RFC's vectors (tests/vectors/
rfc9497-oprf-ristretto255.json); production calls leave them out and get
libsodium's random scalars. Every element or scalar received is deserialized
(canonical, in the group, not the identity, scalars < L) before use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from hardener import dleq, group
from hardener.group import (
    DeriveKeyPairError,
    DeserializeError,
    InvalidInput,
    InverseError,
    OprfError,
    ProofInvalid,
)

__all__ = [
    "BatchEvaluation",
    "Blinded",
    "DeriveKeyPairError",
    "DeserializeError",
    "Evaluation",
    "InvalidInput",
    "InverseError",
    "KeyPair",
    "Mode",
    "OprfBlinded",
    "OprfError",
    "ProofInvalid",
    "derive_key_pair",
    "generate_key_pair",
    "oprf_blind",
    "oprf_blind_evaluate",
    "oprf_evaluate",
    "oprf_finalize",
    "poprf_blind",
    "poprf_blind_evaluate",
    "poprf_blind_evaluate_batch",
    "poprf_evaluate",
    "poprf_finalize",
    "poprf_finalize_batch",
    "public_key",
    "voprf_blind",
    "voprf_blind_evaluate",
    "voprf_blind_evaluate_batch",
    "voprf_evaluate",
    "voprf_finalize",
    "voprf_finalize_batch",
]

SUITE_ID = b"ristretto255-SHA512"
OUTPUT_BYTES = 64
PROOF_BYTES = dleq.PROOF_BYTES
MAX_INPUT = 0xFFFF


class Mode(IntEnum):
    OPRF = 0x00
    VOPRF = 0x01
    POPRF = 0x02


def context_string(mode: Mode) -> bytes:
    """RFC 9497 section 3.1: "OPRFV1-" || I2OSP(mode, 1) || "-" || identifier."""
    return b"OPRFV1-" + bytes([mode]) + b"-" + SUITE_ID


@dataclass(frozen=True, kw_only=True)
class KeyPair:
    secret: bytes = field(repr=False)
    public: bytes


@dataclass(frozen=True, kw_only=True)
class OprfBlinded:
    """The OPRF / VOPRF client's state: keep `blind` (secret), send `blinded_element`."""

    blind: bytes = field(repr=False)
    blinded_element: bytes


@dataclass(frozen=True, kw_only=True)
class Blinded:
    """The POPRF client's state: keep `blind` (secret) and `tweaked_key`, send `blinded_element`."""

    blind: bytes = field(repr=False)
    blinded_element: bytes
    tweaked_key: bytes


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    evaluated_element: bytes
    proof: bytes


@dataclass(frozen=True, kw_only=True)
class BatchEvaluation:
    evaluated_elements: tuple[bytes, ...]
    proof: bytes


def _u16(n: int) -> bytes:
    return n.to_bytes(2, "big")


def _lp(data: bytes) -> bytes:
    return _u16(len(data)) + data


def _check_length(data: bytes, what: str) -> None:
    if len(data) > MAX_INPUT:
        raise InvalidInput(f"the {what} is longer than {MAX_INPUT} bytes")


def _secret_scalar(secret_key: bytes) -> group.Scalar:
    try:
        sk = group.deserialize_scalar(secret_key)
    except DeserializeError:
        raise DeserializeError("the secret key is not a canonical ristretto255 scalar") from None
    if group.is_zero(sk):
        raise DeserializeError("the secret key is zero")
    return sk


def _blind_scalar(blind: bytes | None) -> group.Scalar:
    if blind is None:
        return group.random_scalar()
    b = group.deserialize_scalar(blind)
    if group.is_zero(b):
        raise InverseError("the blind is zero")
    return b


def _hash_to_group(mode: Mode, data: bytes) -> group.Element:
    _check_length(data, "input")
    element = group.hash_to_group(data, b"HashToGroup-" + context_string(mode))
    if group.is_identity(element):  # the input may be a secret: constant time
        raise InvalidInput("the input hashes to the identity element")
    return element


def _hash_to_scalar(mode: Mode, data: bytes) -> group.Scalar:
    return group.hash_to_scalar(data, b"HashToScalar-" + context_string(mode))


# -- keys --------------------------------------------------------------------


def derive_key_pair(seed: bytes, info: bytes, mode: Mode) -> KeyPair:
    """RFC 9497 section 3.2.1 DeriveKeyPair (seed of 32 bytes, info public)."""
    _check_length(info, "key info")
    derive_input = seed + _lp(info)
    dst = b"DeriveKeyPair" + context_string(mode)
    for counter in range(256):
        sk = group.hash_to_scalar(derive_input + bytes([counter]), dst)
        if not group.is_zero(sk):
            return KeyPair(secret=sk, public=group.scalar_mult_base(sk))
    raise DeriveKeyPairError("DeriveKeyPair found no non-zero scalar")


def generate_key_pair() -> KeyPair:
    """A random key pair (RFC 9497 section 3.2: GenerateKeyPair)."""
    sk = group.random_scalar()
    return KeyPair(secret=sk, public=group.scalar_mult_base(sk))


def public_key(secret_key: bytes) -> bytes:
    """pkS = skS * G."""
    return group.scalar_mult_base(_secret_scalar(secret_key))


# -- finalize hashes (RFC 9497 sections 3.3.1-3.3.3) -------------------------


def _unblind(blind: group.Scalar, evaluated: group.Element) -> group.Element:
    return group.scalar_mult(group.scalar_invert(blind), evaluated)


def _output(input: bytes, info: bytes | None, unblinded: group.Element) -> bytes:
    framed_info = b"" if info is None else _lp(info)
    return hashlib.sha512(_lp(input) + framed_info + _lp(unblinded) + b"Finalize").digest()


def _elements(values: Sequence[bytes]) -> list[group.Element]:
    return [group.deserialize_element(v) for v in values]


# -- OPRF (mode 0x00) --------------------------------------------------------


def _blind(mode: Mode, input: bytes, blind: bytes | None) -> OprfBlinded:
    element = _hash_to_group(mode, input)
    b = _blind_scalar(blind)
    return OprfBlinded(blind=b, blinded_element=group.scalar_mult(b, element))


def oprf_blind(input: bytes, *, blind: bytes | None = None) -> OprfBlinded:
    return _blind(Mode.OPRF, input, blind)


def oprf_blind_evaluate(secret_key: bytes, blinded_element: bytes) -> bytes:
    return group.scalar_mult(_secret_scalar(secret_key), group.deserialize_element(blinded_element))


def oprf_finalize(input: bytes, blind: bytes, evaluated_element: bytes) -> bytes:
    _check_length(input, "input")
    n = _unblind(group.deserialize_scalar(blind), group.deserialize_element(evaluated_element))
    return _output(input, None, n)


def oprf_evaluate(secret_key: bytes, input: bytes) -> bytes:
    sk = _secret_scalar(secret_key)
    return _output(input, None, group.scalar_mult(sk, _hash_to_group(Mode.OPRF, input)))


# -- VOPRF (mode 0x01) -------------------------------------------------------


def voprf_blind(input: bytes, *, blind: bytes | None = None) -> OprfBlinded:
    return _blind(Mode.VOPRF, input, blind)


def voprf_blind_evaluate_batch(
    secret_key: bytes,
    public_key: bytes,
    blinded_elements: Sequence[bytes],
    *,
    r: bytes | None = None,
) -> BatchEvaluation:
    sk = _secret_scalar(secret_key)
    pk = group.deserialize_element(public_key)
    ds = _elements(blinded_elements)
    evaluated = [group.scalar_mult(sk, d) for d in ds]
    proof = dleq.generate_proof(context_string(Mode.VOPRF), sk, pk, ds, evaluated, r)
    return BatchEvaluation(evaluated_elements=tuple(evaluated), proof=proof)


def voprf_blind_evaluate(
    secret_key: bytes, public_key: bytes, blinded_element: bytes, *, r: bytes | None = None
) -> Evaluation:
    batch = voprf_blind_evaluate_batch(secret_key, public_key, [blinded_element], r=r)
    return Evaluation(evaluated_element=batch.evaluated_elements[0], proof=batch.proof)


def voprf_finalize_batch(
    inputs: Sequence[bytes],
    blinds: Sequence[bytes],
    evaluated_elements: Sequence[bytes],
    blinded_elements: Sequence[bytes],
    public_key: bytes,
    proof: bytes,
) -> list[bytes]:
    if not len(inputs) == len(blinds) == len(evaluated_elements) == len(blinded_elements):
        raise InvalidInput("a batch needs one blind, evaluated and blinded element per input")
    for x in inputs:
        _check_length(x, "input")
    pk = group.deserialize_element(public_key)
    cs = _elements(blinded_elements)
    ds = _elements(evaluated_elements)
    dleq.verify_proof(context_string(Mode.VOPRF), pk, cs, ds, proof)
    return [
        _output(x, None, _unblind(group.deserialize_scalar(b), e))
        for x, b, e in zip(inputs, blinds, ds, strict=True)
    ]


def voprf_finalize(
    input: bytes,
    blind: bytes,
    evaluated_element: bytes,
    blinded_element: bytes,
    public_key: bytes,
    proof: bytes,
) -> bytes:
    return voprf_finalize_batch(
        [input], [blind], [evaluated_element], [blinded_element], public_key, proof
    )[0]


def voprf_evaluate(secret_key: bytes, input: bytes) -> bytes:
    sk = _secret_scalar(secret_key)
    return _output(input, None, group.scalar_mult(sk, _hash_to_group(Mode.VOPRF, input)))


# -- POPRF (mode 0x02) -------------------------------------------------------


def _info_scalar(info: bytes) -> group.Scalar:
    _check_length(info, "info")
    return _hash_to_scalar(Mode.POPRF, b"Info" + _lp(info))


def _tweaked_secret(secret_key: bytes, info: bytes) -> group.Scalar:
    t = group.scalar_add(_secret_scalar(secret_key), _info_scalar(info))
    if group.is_zero(t):
        raise InverseError("the key tweaked by this info is zero")
    return t


def poprf_blind(
    input: bytes, info: bytes, public_key: bytes, *, blind: bytes | None = None
) -> Blinded:
    """The client's first step; `public_key` is the pinned pkS the proof will be checked against."""
    pk = group.deserialize_element(public_key)
    tweaked = group.add(group.scalar_mult_base(_info_scalar(info)), pk)
    if tweaked == group.IDENTITY:
        raise InvalidInput("the public key tweaked by this info is the identity")
    plain = _blind(Mode.POPRF, input, blind)
    return Blinded(blind=plain.blind, blinded_element=plain.blinded_element, tweaked_key=tweaked)


def poprf_blind_evaluate_batch(
    secret_key: bytes, blinded_elements: Sequence[bytes], info: bytes, *, r: bytes | None = None
) -> BatchEvaluation:
    """The server's step for elements sharing one `info`: evaluations and one proof over all."""
    t = _tweaked_secret(secret_key, info)
    ds = _elements(blinded_elements)
    inverse = group.scalar_invert(t)
    evaluated = [group.scalar_mult(inverse, d) for d in ds]
    proof = dleq.generate_proof(
        context_string(Mode.POPRF), t, group.scalar_mult_base(t), evaluated, ds, r
    )
    return BatchEvaluation(evaluated_elements=tuple(evaluated), proof=proof)


def poprf_blind_evaluate(
    secret_key: bytes, blinded_element: bytes, info: bytes, *, r: bytes | None = None
) -> Evaluation:
    """The server's step: (skS + H(info))^-1 * blinded, with a DLEQ proof (tweaked key)."""
    batch = poprf_blind_evaluate_batch(secret_key, [blinded_element], info, r=r)
    return Evaluation(evaluated_element=batch.evaluated_elements[0], proof=batch.proof)


def poprf_finalize_batch(
    inputs: Sequence[bytes],
    blinds: Sequence[bytes],
    evaluated_elements: Sequence[bytes],
    blinded_elements: Sequence[bytes],
    proof: bytes,
    info: bytes,
    tweaked_key: bytes,
) -> list[bytes]:
    if not len(inputs) == len(blinds) == len(evaluated_elements) == len(blinded_elements):
        raise InvalidInput("a batch needs one blind, evaluated and blinded element per input")
    for x in inputs:
        _check_length(x, "input")
    _check_length(info, "info")
    tweaked = group.deserialize_element(tweaked_key)
    cs = _elements(evaluated_elements)
    ds = _elements(blinded_elements)
    dleq.verify_proof(context_string(Mode.POPRF), tweaked, cs, ds, proof)
    return [
        _output(x, info, _unblind(group.deserialize_scalar(b), e))
        for x, b, e in zip(inputs, blinds, cs, strict=True)
    ]


def poprf_finalize(
    input: bytes,
    blind: bytes,
    evaluated_element: bytes,
    blinded_element: bytes,
    proof: bytes,
    info: bytes,
    tweaked_key: bytes,
) -> bytes:
    """The client's last step: verify the proof (ProofInvalid if not), unblind, hash (64 bytes)."""
    return poprf_finalize_batch(
        [input], [blind], [evaluated_element], [blinded_element], proof, info, tweaked_key
    )[0]


def poprf_evaluate(secret_key: bytes, input: bytes, info: bytes) -> bytes:
    """The same output computed directly from the secret key (the server's Evaluate)."""
    element = _hash_to_group(Mode.POPRF, input)
    n = group.scalar_mult(group.scalar_invert(_tweaked_secret(secret_key, info)), element)
    return _output(input, info, n)
