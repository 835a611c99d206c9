"""A strict decoder for CTAP2 canonical CBOR (CTAP 2.1 §8 "Message Encoding").

Requests are rejected the way a careful authenticator rejects them:

* malformed input (truncation, reserved or indefinite-length encodings,
  non-minimal integer or length encodings, invalid UTF-8, trailing bytes,
  map keys that are out of canonical order or repeated, nesting deeper than
  the four levels CTAP allows) → `CTAP2_ERR_INVALID_CBOR`;
* well-formed CBOR whose map keys are not integers, text or byte strings →
  `CTAP2_ERR_CBOR_UNEXPECTED_TYPE`.

Responses are encoded with python-fido2's canonical encoder, which is also
what python-fido2 checks responses against (`Ctap2(strict_cbor=True)`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from fido2 import cbor as _fido2_cbor

from simulators.ctap2.status import CtapFail, Status

MAX_DEPTH = 4
"""CTAP 2.1 §8: "the depth of nested CBOR structures ... is limited to at most
four (4) levels of any combination of CBOR maps and/or CBOR arrays"."""

CborValue = object


@dataclass(frozen=True)
class Tagged:
    """A tagged item (valid CBOR, never meaningful in CTAP2)."""

    tag: int
    value: object


class Undefined:
    """The CBOR `undefined` simple value."""

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED = Undefined()


def encode(value: object) -> bytes:
    """CTAP2 canonical CBOR, via python-fido2's encoder."""
    return _fido2_cbor.encode(value)  # type: ignore[arg-type]


def decode(data: bytes, *, max_depth: int = MAX_DEPTH) -> object:
    """Decode exactly one canonical CBOR item filling `data`, or raise CtapFail."""
    decoder = _Decoder(bytes(data), max_depth)
    value = decoder.item(0)
    if decoder.pos != len(decoder.data):
        raise CtapFail(Status.INVALID_CBOR, "trailing bytes")
    return value


def _invalid(reason: str) -> CtapFail:
    return CtapFail(Status.INVALID_CBOR, reason)


def _key_order(encoded: bytes) -> tuple[int, int, bytes]:
    # CTAP2 canonical ordering: major type, then encoded length, then bytes.
    return encoded[0] >> 5, len(encoded), encoded


class _Decoder:
    def __init__(self, data: bytes, max_depth: int) -> None:
        self.data = data
        self.pos = 0
        self.max_depth = max_depth

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise _invalid("truncated")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def argument(self, ai: int) -> int:
        if ai < 24:
            return ai
        if ai == 24:
            value = self.take(1)[0]
            if value < 24:
                raise _invalid("non-minimal encoding")
            return value
        if ai == 25:
            value = int(struct.unpack(">H", self.take(2))[0])
            minimum = 0x100
        elif ai == 26:
            value = int(struct.unpack(">I", self.take(4))[0])
            minimum = 0x10000
        elif ai == 27:
            value = int(struct.unpack(">Q", self.take(8))[0])
            minimum = 0x100000000
        elif ai == 31:
            raise _invalid("indefinite length")
        else:
            raise _invalid("reserved additional information")
        if value < minimum:
            raise _invalid("non-minimal encoding")
        return value

    def item(self, depth: int) -> object:
        initial = self.take(1)[0]
        major, ai = initial >> 5, initial & 0x1F
        if major == 7:
            return self.simple(ai)
        arg = self.argument(ai)
        if major == 0:
            return arg
        if major == 1:
            return -1 - arg
        if major == 2:
            return self.take(arg)
        if major == 3:
            try:
                return self.take(arg).decode("utf-8")
            except UnicodeDecodeError as e:
                raise _invalid("invalid UTF-8") from e
        if major == 6:
            return Tagged(arg, self.item(depth))
        if depth + 1 > self.max_depth:
            raise _invalid("nesting too deep")
        if major == 4:
            return [self.item(depth + 1) for _ in _bounded(arg, self)]
        return self.map(arg, depth + 1)

    def map(self, count: int, depth: int) -> dict[object, object]:
        result: dict[object, object] = {}
        previous: tuple[int, int, bytes] | None = None
        for _ in _bounded(count, self):
            start = self.pos
            key = self.item(depth)
            order = _key_order(self.data[start : self.pos])
            if previous is not None and order <= previous:
                raise _invalid("map keys not in canonical order or repeated")
            previous = order
            if isinstance(key, bool) or not isinstance(key, int | str | bytes):
                raise CtapFail(Status.CBOR_UNEXPECTED_TYPE, "unsupported map key type")
            result[key] = self.item(depth)
        return result

    def simple(self, ai: int) -> object:
        if ai == 20:
            return False
        if ai == 21:
            return True
        if ai == 22:
            return None
        if ai == 23:
            return UNDEFINED
        if ai == 25:
            return float(struct.unpack(">e", self.take(2))[0])
        if ai == 26:
            return float(struct.unpack(">f", self.take(4))[0])
        if ai == 27:
            return float(struct.unpack(">d", self.take(8))[0])
        if ai == 31:
            raise _invalid("unexpected break")
        raise _invalid("unsupported simple value")


def _bounded(count: int, decoder: _Decoder) -> range:
    # Every item needs at least one byte: a count larger than what is left is
    # truncated input, refused before looping over it.
    if count > len(decoder.data) - decoder.pos:
        raise _invalid("truncated")
    return range(count)
