"""The DLEQ proof of RFC 9497 section 2.2, over ristretto255 (`hardener.group`).

A proof that the same secret k relates every pair (C_i, D_i = k * C_i) and
the generator to B = k * G, folded into one proof by the composite weights:
`generate_proof` is GenerateProof with ComputeCompositesFast (the server knows
k), `verify_proof` is VerifyProof with ComputeComposites. VOPRF proves the
server's key (B = pkS, C = blinded, D = evaluated); POPRF the tweaked key
(B = (skS + H(info)) * G, C = evaluated, D = blinded). `context` is the mode's
context string ("OPRFV1-" || mode || "-ristretto255-SHA512").
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from hardener import group
from hardener.group import DeserializeError, InvalidInput, ProofInvalid

PROOF_BYTES = 2 * group.SCALAR_BYTES


def _lp(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def _hash_to_scalar(context: bytes, data: bytes) -> group.Scalar:
    return group.hash_to_scalar(data, b"HashToScalar-" + context)


def _composite_scalars(
    context: bytes, b: group.Element, cs: Sequence[group.Element], ds: Sequence[group.Element]
) -> list[group.Scalar]:
    seed_dst = b"Seed-" + context
    seed = hashlib.sha512(_lp(b) + _lp(seed_dst)).digest()
    return [
        _hash_to_scalar(context, _lp(seed) + i.to_bytes(2, "big") + _lp(c) + _lp(d) + b"Composite")
        for i, (c, d) in enumerate(zip(cs, ds, strict=True))
    ]


def _weighted_sum(
    scalars: Sequence[group.Scalar], elements: Sequence[group.Element]
) -> group.Element:
    """sum(s_i * e_i); the RFC starts from the identity, this from the first term (one add less)."""
    products = [group.scalar_mult(s, e) for s, e in zip(scalars, elements, strict=True)]
    total = products[0]
    for p in products[1:]:
        total = group.add(p, total)
    return total


def _challenge(context: bytes, *elements: group.Element) -> group.Scalar:
    transcript = b"".join(_lp(e) for e in elements) + b"Challenge"
    return _hash_to_scalar(context, transcript)


def generate_proof(
    context: bytes,
    k: group.Scalar,
    b: group.Element,
    cs: Sequence[group.Element],
    ds: Sequence[group.Element],
    r: bytes | None,
) -> bytes:
    """GenerateProof(k, G, B, C, D) with ComputeCompositesFast (the server knows k)."""
    if len(cs) == 0 or len(cs) != len(ds):
        raise InvalidInput("a proof needs as many evaluated as blinded elements, at least one")
    m = _weighted_sum(_composite_scalars(context, b, cs, ds), cs)
    z = group.scalar_mult(k, m)
    nonce = group.random_scalar() if r is None else group.deserialize_scalar(r)
    t2 = group.scalar_mult_base(nonce)
    t3 = group.scalar_mult(nonce, m)
    c = _challenge(context, b, m, z, t2, t3)
    s = group.scalar_sub(nonce, group.scalar_mul(c, k))
    return c + s


def verify_proof(
    context: bytes,
    b: group.Element,
    cs: Sequence[group.Element],
    ds: Sequence[group.Element],
    proof: bytes,
) -> None:
    """VerifyProof(G, B, C, D, proof) with ComputeComposites; ProofInvalid if it fails."""
    if len(proof) != PROOF_BYTES:
        raise DeserializeError(f"a proof is {PROOF_BYTES} bytes, not {len(proof)}")
    if len(cs) == 0 or len(cs) != len(ds):
        raise InvalidInput("a proof covers as many evaluated as blinded elements, at least one")
    c = group.deserialize_scalar(proof[: group.SCALAR_BYTES])
    s = group.deserialize_scalar(proof[group.SCALAR_BYTES :])
    weights = _composite_scalars(context, b, cs, ds)
    try:
        m = _weighted_sum(weights, cs)
        z = _weighted_sum(weights, ds)
        t2 = group.add(group.scalar_mult_base(s), group.scalar_mult(c, b))
        t3 = group.add(group.scalar_mult(s, m), group.scalar_mult(c, z))
    except InvalidInput:
        # A zero c or s (never in an honest proof) makes a product the identity.
        raise ProofInvalid("the evaluation's proof does not verify") from None
    if not group.scalar_equal(_challenge(context, b, m, z, t2, t3), c):
        raise ProofInvalid("the evaluation's proof does not verify against the expected key")
