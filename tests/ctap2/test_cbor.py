"""The strict canonical CBOR decoder."""

from __future__ import annotations

from typing import Any

import pytest
from fido2 import cbor as fido2_cbor
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.ctap2 import cbor
from simulators.ctap2.status import CtapFail, Status

keys = st.one_of(st.integers(-(2**63), 2**64 - 1), st.text(max_size=30), st.binary(max_size=30))
leaves = st.one_of(
    st.integers(-(2**63), 2**64 - 1), st.binary(max_size=80), st.text(max_size=40), st.booleans()
)


def nested(depth: int) -> st.SearchStrategy[Any]:
    if depth == 0:
        return leaves
    inner = nested(depth - 1)
    return st.one_of(
        leaves,
        st.lists(inner, max_size=4),
        st.dictionaries(keys, inner, max_size=4),
    )


@settings(max_examples=300, deadline=None)
@given(nested(4))
def test_decodes_what_fido2_encodes(value: Any) -> None:
    encoded = fido2_cbor.encode(value)
    assert cbor.decode(encoded) == fido2_cbor.decode(encoded)
    assert cbor.encode(cbor.decode(encoded)) == encoded


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(keys, leaves, min_size=2, max_size=6))
def test_any_other_key_order_is_refused(value: dict[Any, Any]) -> None:
    encoded_items = sorted(
        (fido2_cbor.encode(k) + fido2_cbor.encode(v) for k, v in value.items()), reverse=True
    )
    payload = bytes([0xA0 | len(value)]) + b"".join(encoded_items)
    with pytest.raises(CtapFail) as e:
        cbor.decode(payload)
    assert e.value.status == Status.INVALID_CBOR


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_fail_cleanly(data: bytes) -> None:
    failure: CtapFail | None = None
    try:
        value = cbor.decode(data)
    except CtapFail as e:
        failure = e
    if failure is not None:
        assert failure.status in (Status.INVALID_CBOR, Status.CBOR_UNEXPECTED_TYPE)
        return
    # Whatever is accepted is well-formed and minimal: the same bytes come back
    # when the value is one python-fido2 can encode.
    try:
        again = fido2_cbor.encode(value)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return  # null, undefined, floats, tags
    assert again == data


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"\x17", 23),
        (b"\x18\x18", 24),
        (b"\x38\x63", -100),
        (b"\x19\x01\x00", 256),
        (b"\xf6", None),
        (b"\xf9\x3c\x00", 1.0),
        (b"\xa2\x01\x02\x20\x03", {1: 2, -1: 3}),
        (b"\xa2\x61\x62\x01\x62\x61\x61\x02", {"b": 1, "aa": 2}),  # shorter first
        (b"\xa2\x18\x64\x01\x61\x61\x02", {100: 1, "a": 2}),  # integers first
        (b"\xc1\x01", cbor.Tagged(1, 1)),
    ],
)
def test_known_encodings(data: bytes, value: object) -> None:
    assert cbor.decode(data) == value


def test_undefined() -> None:
    assert cbor.decode(b"\xf7") is cbor.UNDEFINED
    assert repr(cbor.UNDEFINED) == "undefined"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x18\x17",  # 23 in two bytes
        b"\x1a\x00\x00\xff\xff",  # 65535 in five bytes
        b"\x1b\x00\x00\x00\x00\xff\xff\xff\xff",
        b"\x9f\xff",  # indefinite array
        b"\x7f\xff",
        b"\xff",  # lone break
        b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff",  # absurd length
        b"\x9a\xff\xff\xff\xff",  # array claiming 4 billion items
        b"\xa2\x61\x61\x01\x61\x62",  # truncated map
        b"\xa2\x61\x61\x01\x61\x61\x02",  # duplicate key
        b"\x81\x81\x81\x81\x81\x00",  # five levels
    ],
)
def test_refused(data: bytes) -> None:
    with pytest.raises(CtapFail) as e:
        cbor.decode(data)
    assert e.value.status == Status.INVALID_CBOR


def test_depth_limit_is_configurable() -> None:
    assert cbor.decode(b"\x81\x81\x81\x81\x81\x00", max_depth=5) == [[[[[0]]]]]
