"""RFC 9380 hash-to-curve for P-256 against the RFC's Appendix J.1.1 vectors,
every intermediate value included."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from authnet.protocol import h2c
from tests.vectorfiles import load

VECTORS = load("rfc9380-p256-sswu-ro.json")
DST = VECTORS["dst"].encode()


def h(v: dict[str, Any], key: str) -> int:
    return int(v[key], 16)


@pytest.mark.parametrize("v", VECTORS["vectors"], ids=lambda v: v["msg"][:12] or "empty")
def test_rfc9380_j11(v: dict[str, Any]) -> None:
    msg = v["msg"].encode()
    u0, u1 = h2c.hash_to_field(msg, DST)
    assert (u0, u1) == (h(v, "u[0]"), h(v, "u[1]"))
    assert h2c.map_to_curve_simple_swu(u0) == (h(v, "Q0.x"), h(v, "Q0.y"))
    assert h2c.map_to_curve_simple_swu(u1) == (h(v, "Q1.x"), h(v, "Q1.y"))
    assert h2c.hash_to_curve_point(msg, DST) == (h(v, "P.x"), h(v, "P.y"))
    key = h2c.hash_to_curve(msg, DST)
    numbers = key.public_numbers()
    assert (numbers.x, numbers.y) == (h(v, "P.x"), h(v, "P.y"))
    assert isinstance(key.curve, ec.SECP256R1)


def test_suite_and_vector_file_agree() -> None:
    assert VECTORS["suite"] == h2c.SUITE
    assert len(VECTORS["vectors"]) == 5


def test_dst_is_part_of_the_input() -> None:
    assert h2c.hash_to_curve_point(b"abc", DST) != h2c.hash_to_curve_point(b"abc", DST + b"x")


def test_expand_message_rejects_bad_lengths() -> None:
    with pytest.raises(ValueError, match="DST"):
        h2c.expand_message_xmd(b"", b"d" * 256, 32)
    with pytest.raises(ValueError, match="too long"):
        h2c.expand_message_xmd(b"", DST, 256 * 32)
