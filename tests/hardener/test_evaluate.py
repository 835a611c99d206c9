"""Oblivious evaluation through the service: the caller's finalize verifies
the proof against the pinned key, a hardener with another key is refused,
and malformed points are refused clearly without counting."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardener import labels, oprf
from hardener.client import HardenerClient, finalize
from hardener.errors import InvalidArgument
from hardener.testing import TestHardener
from tests.hardener.conftest import element

USER = "alice:passphrase"
SECRET = b"argon2id output of the passphrase"


async def test_harden_is_deterministic_per_user_and_caller(
    hardener: TestHardener, network: HardenerClient, vault: HardenerClient
) -> None:
    pk = (await network.get_keys()).public_key()
    one = await network.harden(USER, SECRET, pk)
    two = await network.harden(USER, SECRET, pk)
    assert len(one.output) == 64
    assert one.output == two.output
    assert one.evaluation.evaluated_element != two.evaluation.evaluated_element  # blinded
    assert (await network.harden("bob:passphrase", SECRET, pk)).output != one.output
    assert (await vault.harden(USER, SECRET, pk)).output != one.output  # info binds the caller
    assert (await network.harden(USER, SECRET + b"!", pk)).output != one.output
    # The output is the RFC 9497 POPRF of the input under the hardener's key.
    sk = hardener.server.service.keys.get(1).oprf_secret
    assert oprf.poprf_evaluate(sk, SECRET, labels.poprf_info("network", USER)) == one.output


async def test_a_hardener_with_another_key_is_refused(
    network: HardenerClient, tmp_path: Path
) -> None:
    pinned = (await network.get_keys()).public_key()
    with TestHardener(tmp_path / "impostor") as impostor:
        async with impostor.client("network") as other:
            info = labels.poprf_info("network", USER)
            blinded = oprf.poprf_blind(SECRET, info, pinned)
            ev = await other.evaluate(USER, blinded.blinded_element)
            with pytest.raises(oprf.ProofInvalid):
                finalize(SECRET, USER, "network", blinded, ev)
            with pytest.raises(oprf.ProofInvalid):
                await other.harden(USER, SECRET, pinned)


async def test_a_tampered_evaluation_is_refused(network: HardenerClient) -> None:
    from dataclasses import replace

    pk = (await network.get_keys()).public_key()
    info = labels.poprf_info("network", USER)
    blinded = oprf.poprf_blind(SECRET, info, pk)
    ev = await network.evaluate(USER, blinded.blinded_element)
    wrong_element = replace(ev, evaluated_element=element(b"not it"))
    with pytest.raises(oprf.ProofInvalid):
        finalize(SECRET, USER, "network", blinded, wrong_element)
    bad_proof = replace(ev, proof=bytes(64))
    with pytest.raises(oprf.OprfError):
        finalize(SECRET, USER, "network", blinded, bad_proof)
    # Evaluated for another user (another info): refused too.
    other = await network.evaluate("mallory", blinded.blinded_element)
    with pytest.raises(oprf.ProofInvalid):
        finalize(SECRET, USER, "network", blinded, other)


# ristretto255 encodings that must not decode (RFC 9496 section 4.3.1 and the
# identity, which RFC 9497 forbids as an input).
IDENTITY = bytes(32)
NON_CANONICAL = [
    bytes.fromhex("00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
    bytes.fromhex("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes.fromhex("f3ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes.fromhex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes.fromhex("0100000000000000000000000000000000000000000000000000000000000000"),
    bytes.fromhex("01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
]
NOT_ON_GROUP = [
    bytes.fromhex("26948d35ca62e643e26a83177332e6b6afeb9d08e4268b650f1f5bbd8d81d371"),
    bytes.fromhex("4eac077a713c57b4f4397629a4145982c661f48044dd3f96427d40b147d9742f"),
]


@pytest.mark.parametrize(
    "point", [IDENTITY, *NON_CANONICAL, *NOT_ON_GROUP], ids=lambda p: p.hex()[:8]
)
async def test_malformed_points_are_invalid_argument(network: HardenerClient, point: bytes) -> None:
    with pytest.raises(InvalidArgument, match="ristretto255"):
        await network.evaluate(USER, point)
    ev = await network.evaluate(USER, element(b"fine"))
    assert ev.attempts_left == 9  # the refused point was not an evaluation


async def test_wrong_lengths_and_ids(network: HardenerClient) -> None:
    with pytest.raises(InvalidArgument, match="32 bytes"):
        await network.evaluate(USER, b"\x01" * 31)
    with pytest.raises(InvalidArgument, match="user_id"):
        await network.evaluate("", element(b"x"))
    with pytest.raises(InvalidArgument, match="user_id"):
        await network.evaluate("x" * 257, element(b"x"))
    with pytest.raises(InvalidArgument, match="digest"):
        await network.hash(USER, b"\x00" * 31)


async def test_batch_evaluation(network: HardenerClient) -> None:
    pk = (await network.get_keys()).public_key()
    users = [f"token:{i:02x}" for i in range(5)]
    blinded = [oprf.poprf_blind(SECRET, labels.poprf_info("network", u), pk) for u in users]
    items = [(u, b.blinded_element, 0) for u, b in zip(users, blinded, strict=True)]
    items.append(("token:bad", IDENTITY, 0))
    results = await network.evaluate_batch(items)
    assert isinstance(results[-1], InvalidArgument)
    outs = []
    for u, b, r in zip(users, blinded, results, strict=False):
        assert not isinstance(r, Exception)
        outs.append(finalize(SECRET, u, "network", b, r).output)
    assert len(set(outs)) == 5
    one = await network.harden("token:03", SECRET, pk)
    assert one.output == outs[3]
    assert one.evaluation.attempts_left == 8  # the batch counted


async def test_keyed_hash(network: HardenerClient, vault: HardenerClient) -> None:
    d = b"\x07" * 32
    a, b = await network.hash(USER, d), await network.hash(USER, d)
    assert a.mac == b.mac
    assert len(a.mac) == 32
    assert (a.attempts_left, b.attempts_left) == (9, 8)
    assert (await network.hash("other", d)).mac != a.mac
    assert (await vault.hash(USER, d)).mac != a.mac
    assert (await network.hash(USER, b"\x08" * 32)).mac != a.mac


async def test_batch_hash(network: HardenerClient) -> None:
    d = b"\x07" * 32
    results = await network.hash_batch([(USER, d, 0), ("other", d, 0), (USER, b"short", 0)])
    assert isinstance(results[2], InvalidArgument)
    one, two = results[0], results[1]
    assert not isinstance(one, Exception)
    assert not isinstance(two, Exception)
    assert one.mac == (await network.hash(USER, d)).mac
    assert one.mac != two.mac
    assert (one.attempts_left, two.attempts_left) == (9, 9)
    with pytest.raises(InvalidArgument, match="at most 1024"):
        await network.hash_batch([(USER, d, 0)] * 1025)
