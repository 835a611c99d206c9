"""RFC 9497 ristretto255-SHA512 in all three modes, against the RFC's vectors
(every intermediate), and what it refuses: the identity, non-canonical
encodings, scalars >= L, proofs that are tampered with, from another key or
for another info."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardener import group, labels, oprf
from hardener.oprf import Mode
from tests.vectorfiles import load

DATA = load("rfc9497-oprf-ristretto255.json")
SUITES = {Mode(s["mode"]): s for s in DATA["suites"]}


def _split(value: str) -> list[bytes]:
    return [bytes.fromhex(v) for v in value.split(",")]


def _cases(mode: Mode) -> list[Any]:
    return [
        pytest.param(SUITES[mode], v, id=f"{mode.name}-{i}-batch{v['Batch']}")
        for i, v in enumerate(SUITES[mode]["vectors"])
    ]


def test_the_file_holds_all_three_modes_of_the_suite() -> None:
    assert set(SUITES) == {Mode.OPRF, Mode.VOPRF, Mode.POPRF}
    for mode, suite in SUITES.items():
        assert suite["identifier"] == "ristretto255-SHA512"
        assert bytes.fromhex(suite["groupDST"]) == b"HashToGroup-" + oprf.context_string(mode)
    assert sum(len(s["vectors"]) for s in SUITES.values()) == 8


@pytest.mark.parametrize("mode", list(Mode))
def test_derive_key_pair(mode: Mode) -> None:
    suite = SUITES[mode]
    pair = oprf.derive_key_pair(bytes.fromhex(suite["seed"]), bytes.fromhex(suite["keyInfo"]), mode)
    assert pair.secret.hex() == suite["skSm"]
    if "pkSm" in suite:
        assert pair.public.hex() == suite["pkSm"]
    assert oprf.public_key(pair.secret) == pair.public
    assert suite["skSm"] not in repr(pair)


@pytest.mark.parametrize(("suite", "v"), _cases(Mode.OPRF))
def test_oprf_vectors(suite: dict[str, Any], v: dict[str, Any]) -> None:
    sk = bytes.fromhex(suite["skSm"])
    for x, blind, blinded, evaluated, output in zip(
        _split(v["Input"]),
        _split(v["Blind"]),
        _split(v["BlindedElement"]),
        _split(v["EvaluationElement"]),
        _split(v["Output"]),
        strict=True,
    ):
        b = oprf.oprf_blind(x, blind=blind)
        assert b.blinded_element == blinded
        assert oprf.oprf_blind_evaluate(sk, blinded) == evaluated
        assert oprf.oprf_finalize(x, blind, evaluated) == output
        assert oprf.oprf_evaluate(sk, x) == output


@pytest.mark.parametrize(("suite", "v"), _cases(Mode.VOPRF))
def test_voprf_vectors(suite: dict[str, Any], v: dict[str, Any]) -> None:
    sk, pk = bytes.fromhex(suite["skSm"]), bytes.fromhex(suite["pkSm"])
    inputs, blinds = _split(v["Input"]), _split(v["Blind"])
    blinded, evaluated = _split(v["BlindedElement"]), _split(v["EvaluationElement"])
    outputs = _split(v["Output"])
    proof, r = bytes.fromhex(v["Proof"]["proof"]), bytes.fromhex(v["Proof"]["r"])
    assert len(inputs) == v["Batch"]
    states = [oprf.voprf_blind(x, blind=b) for x, b in zip(inputs, blinds, strict=True)]
    assert [s.blinded_element for s in states] == blinded
    ev = oprf.voprf_blind_evaluate_batch(sk, pk, blinded, r=r)
    assert list(ev.evaluated_elements) == evaluated
    assert ev.proof == proof
    assert oprf.voprf_finalize_batch(inputs, blinds, evaluated, blinded, pk, proof) == outputs
    assert [oprf.voprf_evaluate(sk, x) for x in inputs] == outputs
    if v["Batch"] == 1:
        one = oprf.voprf_blind_evaluate(sk, pk, blinded[0], r=r)
        assert (one.evaluated_element, one.proof) == (evaluated[0], proof)
        got = oprf.voprf_finalize(inputs[0], blinds[0], evaluated[0], blinded[0], pk, proof)
        assert got == outputs[0]


@pytest.mark.parametrize(("suite", "v"), _cases(Mode.POPRF))
def test_poprf_vectors(suite: dict[str, Any], v: dict[str, Any]) -> None:
    sk, pk = bytes.fromhex(suite["skSm"]), bytes.fromhex(suite["pkSm"])
    info = bytes.fromhex(v["Info"])
    inputs, blinds = _split(v["Input"]), _split(v["Blind"])
    blinded, evaluated = _split(v["BlindedElement"]), _split(v["EvaluationElement"])
    outputs = _split(v["Output"])
    proof, r = bytes.fromhex(v["Proof"]["proof"]), bytes.fromhex(v["Proof"]["r"])
    states = [oprf.poprf_blind(x, info, pk, blind=b) for x, b in zip(inputs, blinds, strict=True)]
    assert [s.blinded_element for s in states] == blinded
    tweaked = states[0].tweaked_key
    assert {s.tweaked_key for s in states} == {tweaked}
    ev = oprf.poprf_blind_evaluate_batch(sk, blinded, info, r=r)
    assert list(ev.evaluated_elements) == evaluated
    assert ev.proof == proof
    got = oprf.poprf_finalize_batch(inputs, blinds, evaluated, blinded, proof, info, tweaked)
    assert got == outputs
    assert [oprf.poprf_evaluate(sk, x, info) for x in inputs] == outputs
    if v["Batch"] == 1:
        one = oprf.poprf_blind_evaluate(sk, blinded[0], info, r=r)
        assert (one.evaluated_element, one.proof) == (evaluated[0], proof)
        out = oprf.poprf_finalize(
            inputs[0], blinds[0], evaluated[0], blinded[0], proof, info, tweaked
        )
        assert out == outputs[0]


def test_expand_message_xmd_sha512() -> None:
    xmd = load("rfc9380-expand-message-xmd-sha512.json")
    for v in xmd["vectors"]:
        msg, dst = v["msg"].encode(), xmd["dst"].encode()
        got = group.expand_message_xmd_sha512(msg, dst, v["len_in_bytes"])
        assert got.hex() == v["uniform_bytes"]
    with pytest.raises(ValueError, match="length"):
        group.expand_message_xmd_sha512(b"", b"dst", 255 * 64 + 1)
    with pytest.raises(ValueError, match="DST"):
        group.expand_message_xmd_sha512(b"", bytes(256), 64)


# -- bad input ---------------------------------------------------------------

IDENTITY = bytes(32)
# RFC 9496 Appendix A.2, all of it: non-canonical field encodings, negative
# field elements, non-square x^2, negative xy, and s = -1 (y = 0).
BAD_ENCODINGS = [
    # non-canonical field encodings
    "00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "f3ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    # negative field elements
    "0100000000000000000000000000000000000000000000000000000000000000",
    "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "ed57ffd8c914fb201471d1c3d245ce3c746fcbe63a3679d51b6a516ebebe0e20",
    "c34c4e1826e5d403b78e246e88aa051c36ccf0aafebffe137d148a2bf9104562",
    "c940e5a4404157cfb1628b108db051a8d439e1a421394ec4ebccb9ec92a8ac78",
    "47cfc5497c53dc8e61c91d17fd626ffb1c49e2bca94eed052281b510b1117a24",
    "f1c6165d33367351b0da8f6e4511010c68174a03b6581212c71c0e1d026c3c72",
    "87260f7a2f12495118360f02c26a470f450dadf34a413d21042b43b9d93e1309",
    # non-square x^2
    "26948d35ca62e643e26a83177332e6b6afeb9d08e4268b650f1f5bbd8d81d371",
    "4eac077a713c57b4f4397629a4145982c661f48044dd3f96427d40b147d9742f",
    "de6a7b00deadc788eb6b6c8d20c0ae96c2f2019078fa604fee5b87d6e989ad7b",
    "bcab477be20861e01e4a0e295284146a510150d9817763caf1a6f4b422d67042",
    "2a292df7e32cababbd9de088d1d1abec9fc0440f637ed2fba145094dc14bea08",
    "f4a9e534fc0d216c44b218fa0c42d99635a0127ee2e53c712f70609649fdff22",
    "8268436f8c4126196cf64b3c7ddbda90746a378625f9813dd9b8457077256731",
    "2810e5cbc2cc4d4eece54f61c6f69758e289aa7ab440b3cbeaa21995c2f4232b",
    # negative xy value
    "3eb858e78f5a7254d8c9731174a94f76755fd3941c0ac93735c07ba14579630e",
    "a45fdc55c76448c049a1ab33f17023edfb2be3581e9c7aade8a6125215e04220",
    "d483fe813c6ba647ebbfd3ec41adca1c6130c2beeee9d9bf065c8d151c5f396e",
    "8a2e1d30050198c65a54483123960ccc38aef6848e1ec8f5f780e8523769ba32",
    "32888462f8b486c68ad7dd9610be5192bbeaf3b443951ac1a8118419d9fa097b",
    "227142501b9d4355ccba290404bde41575b037693cef1f438c47f8fbf35d1165",
    "5c37cc491da847cfeb9281d407efc41e15144c876e0170b499a96a22ed31e01e",
    "445425117cb8c90edcbc7c1cc0e74f747f2c1efa5630a967c64f287792a48a4b",
    # s = -1, which causes y = 0
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
]
SUITE = SUITES[Mode.POPRF]
SK, PK = bytes.fromhex(SUITE["skSm"]), bytes.fromhex(SUITE["pkSm"])
INFO = labels.poprf_info("network", "token:00ff")
L = group.ORDER


BAD_POINTS = [IDENTITY, *(bytes.fromhex(h) for h in BAD_ENCODINGS)]


def test_every_rfc9496_bad_encoding_is_refused() -> None:
    assert len(BAD_ENCODINGS) == 29
    for h in BAD_ENCODINGS:
        with pytest.raises(oprf.DeserializeError):
            group.deserialize_element(bytes.fromhex(h))
    with pytest.raises(oprf.DeserializeError, match="identity"):
        group.deserialize_element(IDENTITY)
    with pytest.raises(oprf.DeserializeError, match="32 bytes"):
        group.deserialize_element(PK[:31])
    assert group.deserialize_element(PK) == PK


@pytest.mark.parametrize("point", BAD_POINTS, ids=lambda p: p.hex()[:8])
def test_bad_points_are_refused_everywhere(point: bytes) -> None:
    with pytest.raises(oprf.DeserializeError):
        oprf.poprf_blind_evaluate(SK, point, INFO)
    with pytest.raises(oprf.DeserializeError):
        oprf.voprf_blind_evaluate(SK, PK, point)
    with pytest.raises(oprf.DeserializeError):
        oprf.oprf_blind_evaluate(SK, point)
    with pytest.raises(oprf.DeserializeError):
        oprf.poprf_blind(b"x", INFO, point)  # as the pinned public key
    b = oprf.poprf_blind(b"x", INFO, PK)
    ev = oprf.poprf_blind_evaluate(SK, b.blinded_element, INFO)
    with pytest.raises(oprf.DeserializeError):  # as the evaluated element
        oprf.poprf_finalize(b"x", b.blind, point, b.blinded_element, ev.proof, INFO, b.tweaked_key)
    with pytest.raises(oprf.DeserializeError):  # as the tweaked key
        oprf.poprf_finalize(
            b"x", b.blind, ev.evaluated_element, b.blinded_element, ev.proof, INFO, point
        )


@pytest.mark.parametrize(
    "scalar",
    [L, L + 1, 2**256 - 1, 2**255, L + 2**252],
    ids=["L", "L+1", "2^256-1", "2^255", "L+2^252"],
)
def test_scalars_at_or_above_the_order_are_refused(scalar: int) -> None:
    s = scalar.to_bytes(32, "little")
    with pytest.raises(oprf.DeserializeError):
        group.deserialize_scalar(s)
    with pytest.raises(oprf.DeserializeError):
        oprf.poprf_blind_evaluate(s, PK, INFO)  # as a secret key
    with pytest.raises(oprf.DeserializeError):
        oprf.poprf_blind(b"x", INFO, PK, blind=s)
    b = oprf.poprf_blind(b"x", INFO, PK)
    ev = oprf.poprf_blind_evaluate(SK, b.blinded_element, INFO)
    for proof in (s + ev.proof[32:], ev.proof[:32] + s):
        with pytest.raises(oprf.DeserializeError):
            oprf.poprf_finalize(
                b"x", b.blind, ev.evaluated_element, b.blinded_element, proof, INFO, b.tweaked_key
            )
    assert group.deserialize_scalar((L - 1).to_bytes(32, "little")) == (L - 1).to_bytes(
        32, "little"
    )


def test_zero_scalars_are_refused() -> None:
    with pytest.raises(oprf.DeserializeError, match="zero"):
        oprf.poprf_blind_evaluate(bytes(32), PK, INFO)
    with pytest.raises(oprf.InverseError):
        oprf.poprf_blind(b"x", INFO, PK, blind=bytes(32))
    with pytest.raises(oprf.InverseError):
        group.scalar_invert(bytes(32))
    with pytest.raises(oprf.InvalidInput):
        group.scalar_mult(bytes(32), PK)


def test_a_key_tweaked_to_zero_is_an_inverse_error() -> None:
    # skS = -H(info) makes skS + H(info) = 0: the server must refuse, not divide by zero.
    m = group.hash_to_scalar(b"Info" + len(INFO).to_bytes(2, "big") + INFO,
                             b"HashToScalar-" + oprf.context_string(Mode.POPRF))  # fmt: skip
    sk = group.scalar_sub(bytes(32), m)
    with pytest.raises(oprf.InverseError):
        oprf.poprf_blind_evaluate(sk, PK, INFO)
    with pytest.raises(oprf.InverseError):
        oprf.poprf_evaluate(sk, b"x", INFO)
    # and the client refuses a public key whose tweak is the identity
    with pytest.raises(oprf.InvalidInput, match="identity"):
        oprf.poprf_blind(b"x", INFO, group.scalar_mult_base(sk))


def _round(input: bytes = b"secret") -> tuple[oprf.Blinded, oprf.Evaluation]:
    b = oprf.poprf_blind(input, INFO, PK)
    return b, oprf.poprf_blind_evaluate(SK, b.blinded_element, INFO)


def _finalize(b: oprf.Blinded, ev: oprf.Evaluation, *, input: bytes = b"secret",
              info: bytes = INFO) -> bytes:  # fmt: skip
    return oprf.poprf_finalize(
        input, b.blind, ev.evaluated_element, b.blinded_element, ev.proof, info, b.tweaked_key
    )


def test_a_tampered_proof_is_refused() -> None:
    b, ev = _round()
    assert _finalize(b, ev) == oprf.poprf_evaluate(SK, b"secret", INFO)
    for i in (0, 17, 32, 63):
        proof = bytearray(ev.proof)
        proof[i] ^= 0x01
        with pytest.raises((oprf.ProofInvalid, oprf.DeserializeError)):
            _finalize(
                b, oprf.Evaluation(evaluated_element=ev.evaluated_element, proof=bytes(proof))
            )
    with pytest.raises(oprf.ProofInvalid):
        _finalize(b, oprf.Evaluation(evaluated_element=ev.evaluated_element, proof=bytes(64)))
    with pytest.raises(oprf.DeserializeError, match="64 bytes"):
        _finalize(b, oprf.Evaluation(evaluated_element=ev.evaluated_element, proof=ev.proof[:63]))
    # a valid element that is not the evaluation
    other = group.hash_to_group(b"other", b"test")
    with pytest.raises(oprf.ProofInvalid):
        _finalize(b, oprf.Evaluation(evaluated_element=other, proof=ev.proof))


def test_a_proof_from_another_key_is_refused() -> None:
    b = oprf.poprf_blind(b"secret", INFO, PK)  # the client pinned PK
    impostor = oprf.generate_key_pair()
    ev = oprf.poprf_blind_evaluate(impostor.secret, b.blinded_element, INFO)
    with pytest.raises(oprf.ProofInvalid, match="expected key"):
        _finalize(b, ev)
    # the same in VOPRF
    vb = oprf.voprf_blind(b"secret")
    vev = oprf.voprf_blind_evaluate(impostor.secret, impostor.public, vb.blinded_element)
    vsuite = SUITES[Mode.VOPRF]
    with pytest.raises(oprf.ProofInvalid):
        oprf.voprf_finalize(b"secret", vb.blind, vev.evaluated_element, vb.blinded_element,
                            bytes.fromhex(vsuite["pkSm"]), vev.proof)  # fmt: skip


def test_wrong_info_is_refused() -> None:
    b, _ = _round()
    ev = oprf.poprf_blind_evaluate(SK, b.blinded_element, labels.poprf_info("network", "mallory"))
    with pytest.raises(oprf.ProofInvalid):
        _finalize(b, ev)
    # The proof is checked against the tweaked key fixed at blinding; a
    # finalize under another info gives another output (info is hashed in),
    # never the output for either info.
    b, ev = _round()
    other = labels.poprf_info("vault", "token:00ff")
    wrong = _finalize(b, ev, info=other)
    assert wrong != _finalize(b, ev)
    assert wrong != oprf.poprf_evaluate(SK, b"secret", INFO)
    assert wrong != oprf.poprf_evaluate(SK, b"secret", other)


def test_a_batch_proof_fails_if_any_element_is_swapped() -> None:
    states = [oprf.poprf_blind(x, INFO, PK) for x in (b"a", b"b", b"c")]
    blinded = [s.blinded_element for s in states]
    ev = oprf.poprf_blind_evaluate_batch(SK, blinded, INFO)
    args = ([b"a", b"b", b"c"], [s.blind for s in states])
    outs = oprf.poprf_finalize_batch(*args, ev.evaluated_elements, blinded, ev.proof, INFO,
                                     states[0].tweaked_key)  # fmt: skip
    assert outs == [oprf.poprf_evaluate(SK, x, INFO) for x in (b"a", b"b", b"c")]
    swapped = [ev.evaluated_elements[1], ev.evaluated_elements[0], ev.evaluated_elements[2]]
    with pytest.raises(oprf.ProofInvalid):
        oprf.poprf_finalize_batch(*args, swapped, blinded, ev.proof, INFO, states[0].tweaked_key)
    with pytest.raises(oprf.InvalidInput):
        oprf.poprf_finalize_batch(*args, ev.evaluated_elements[:2], blinded, ev.proof, INFO,
                                  states[0].tweaked_key)  # fmt: skip
    with pytest.raises(oprf.InvalidInput):
        oprf.poprf_blind_evaluate_batch(SK, [], INFO)


def test_inputs_longer_than_65535_bytes_are_invalid_input() -> None:
    with pytest.raises(oprf.InvalidInput, match="input"):
        oprf.poprf_blind(bytes(65536), INFO, PK)
    with pytest.raises(oprf.InvalidInput, match="info"):
        oprf.poprf_blind(b"x", bytes(65536), PK)
    oprf.poprf_blind(bytes(65535), INFO, PK)


def test_secrets_stay_out_of_reprs_and_errors() -> None:
    pair = oprf.generate_key_pair()
    b = oprf.poprf_blind(b"secret", INFO, pair.public)
    assert pair.secret.hex() not in repr(pair)
    assert str(pair.secret) not in repr(pair)
    assert b.blind.hex() not in repr(b)
    assert str(b.blind) not in repr(b)
    bad = (L + 5).to_bytes(32, "little")
    with pytest.raises(oprf.DeserializeError) as e:
        oprf.poprf_blind_evaluate(bad, b.blinded_element, INFO)
    assert bad.hex() not in str(e.value)
    assert str(bad) not in str(e.value)


# -- round trips -------------------------------------------------------------


@pytest.mark.parametrize("mode", list(Mode))
def test_round_trips_with_random_keys(mode: Mode) -> None:
    pair = oprf.generate_key_pair()
    x = os.urandom(32)
    if mode is Mode.OPRF:
        b = oprf.oprf_blind(x)
        out = oprf.oprf_finalize(
            x, b.blind, oprf.oprf_blind_evaluate(pair.secret, b.blinded_element)
        )
        assert out == oprf.oprf_evaluate(pair.secret, x)
    elif mode is Mode.VOPRF:
        b = oprf.voprf_blind(x)
        ev = oprf.voprf_blind_evaluate(pair.secret, pair.public, b.blinded_element)
        out = oprf.voprf_finalize(x, b.blind, ev.evaluated_element, b.blinded_element,
                                  pair.public, ev.proof)  # fmt: skip
        assert out == oprf.voprf_evaluate(pair.secret, x)
    else:
        pb = oprf.poprf_blind(x, INFO, pair.public)
        ev = oprf.poprf_blind_evaluate(pair.secret, pb.blinded_element, INFO)
        out = oprf.poprf_finalize(x, pb.blind, ev.evaluated_element, pb.blinded_element,
                                  ev.proof, INFO, pb.tweaked_key)  # fmt: skip
        assert out == oprf.poprf_evaluate(pair.secret, x, INFO)
    assert len(out) == 64
    # The three modes are different functions of the same key and input.
    assert len({oprf.oprf_evaluate(pair.secret, x), oprf.voprf_evaluate(pair.secret, x),
                oprf.poprf_evaluate(pair.secret, x, INFO)}) == 3  # fmt: skip


@settings(max_examples=25, deadline=None)
@given(x=st.binary(max_size=200), info=st.binary(max_size=100))
def test_poprf_blind_evaluate_finalize_equals_evaluate(x: bytes, info: bytes) -> None:
    b = oprf.poprf_blind(x, info, PK)
    ev = oprf.poprf_blind_evaluate(SK, b.blinded_element, info)
    out = oprf.poprf_finalize(x, b.blind, ev.evaluated_element, b.blinded_element, ev.proof,
                              info, b.tweaked_key)  # fmt: skip
    assert out == oprf.poprf_evaluate(SK, x, info)


# -- labels ------------------------------------------------------------------


def test_labels_are_framed() -> None:
    assert labels.poprf_info("network", "token:ab") == (
        b"hardener/v1 user\x00\x07network\x00\x08token:ab"
    )
    assert labels.poprf_info("a", "bc") != labels.poprf_info("ab", "c")
    assert labels.success_message("vault", "u:recovery", b"\x01\x02", b"\x03") == (
        b"hardener/v1 success\x00\x05vault\x00\x0au:recovery\x00\x02\x01\x02\x00\x01\x03"
    )
    assert labels.poprf_info("vault", "é") == b"hardener/v1 user\x00\x05vault\x00\x02\xc3\xa9"
