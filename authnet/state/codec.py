"""Compact binary records for what a shared state store keeps: tickets and
ticket events.

A record is built from the dataclass's own fields (`dataclasses.fields`, in
declaration order, typed by their annotations), so a field added to `Ticket`
later is carried without touching this module; a field of a type the codec
cannot encode fails when the codec is built (at import), not on the login path.
No field names go on the wire: each value is encoded by its declared type
(varints for ints, length-prefixed bytes and UTF-8, enum values, frozensets
sorted so equal values encode equally, a presence byte for optionals, nested
dataclasses inline). A ticket takes about 200 bytes.

Every record starts with a format byte and four bytes of a fingerprint of the
schema (field names and types, nested dataclasses included). Nodes of two
versions may share one Redis during a rolling upgrade: a node that meets a
record written for another schema raises `StateRecordUnreadable` (retryable:
a node of the other version reads it) instead of misreading bytes that happen
to parse. Decoding never runs code from the store (unlike pickle), so a
compromised Redis can at worst make a node refuse a record.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import types
import typing
from collections.abc import Callable
from typing import Any, Final, Generic, TypeVar

from authnet.errors import StateRecordUnreadable
from authnet.state import TicketEvent
from authnet.tickets import Ticket

FORMAT: Final = 1
FINGERPRINT_BYTES: Final = 4

T = TypeVar("T")

# An encoder appends one value to `out`; a decoder reads one value at `pos`
# and returns it with the position after it.
_Enc = Callable[[Any, bytearray], None]
_Dec = Callable[[bytes, int], tuple[Any, int]]


# --- primitives -----------------------------------------------------------------


def _enc_uvarint(n: int, out: bytearray) -> None:
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _dec_uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    b = buf[pos]
    if b < 0x80:  # the common case: one byte
        return b, pos + 1
    n = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return n, pos
        shift += 7
        if shift > 70:  # 10 bytes cover every 64-bit value; more is damage
            raise ValueError("varint too long")


INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**63 - 1


def _enc_int(n: int, out: bytearray) -> None:
    # Zigzag, so small negative numbers stay short too. Python ints are
    # unbounded, a record's are 64-bit: what a reader accepts, a writer keeps to.
    if not INT_MIN <= n <= INT_MAX:
        raise ValueError("an integer field is outside the 64-bit range")
    _enc_uvarint(n << 1 if n >= 0 else ((-n) << 1) - 1, out)


def _dec_int(buf: bytes, pos: int) -> tuple[int, int]:
    z, pos = _dec_uvarint(buf, pos)
    return (z >> 1) if not z & 1 else -((z + 1) >> 1), pos


def _enc_bool(v: bool, out: bytearray) -> None:
    out.append(1 if v else 0)


def _dec_bool(buf: bytes, pos: int) -> tuple[bool, int]:
    b = buf[pos]
    if b > 1:
        raise ValueError("bad bool")
    return b == 1, pos + 1


def _enc_bytes(v: bytes, out: bytearray) -> None:
    _enc_uvarint(len(v), out)
    out += v


def _dec_bytes(buf: bytes, pos: int) -> tuple[bytes, int]:
    n = buf[pos]
    if n < 0x80:
        pos += 1
    else:
        n, pos = _dec_uvarint(buf, pos)
    end = pos + n
    if end > len(buf):
        raise ValueError("truncated")
    return buf[pos:end], end


def _enc_str(v: str, out: bytearray) -> None:
    _enc_bytes(v.encode("utf-8"), out)


def _dec_str(buf: bytes, pos: int) -> tuple[str, int]:
    raw, pos = _dec_bytes(buf, pos)
    return raw.decode("utf-8"), pos


_PRIMITIVES: dict[type, tuple[_Enc, _Dec]] = {
    # bool before int: bool is a subclass of int.
    bool: (_enc_bool, _dec_bool),
    int: (_enc_int, _dec_int),
    bytes: (_enc_bytes, _dec_bytes),
    str: (_enc_str, _dec_str),
}


# --- composite types ------------------------------------------------------------


def _optional(inner: tuple[_Enc, _Dec]) -> tuple[_Enc, _Dec]:
    enc_inner, dec_inner = inner

    def enc(v: Any, out: bytearray) -> None:
        if v is None:
            out.append(0)
        else:
            out.append(1)
            enc_inner(v, out)

    def dec(buf: bytes, pos: int) -> tuple[Any, int]:
        flag = buf[pos]
        if flag == 0:
            return None, pos + 1
        if flag != 1:
            raise ValueError("bad presence byte")
        return dec_inner(buf, pos + 1)

    return enc, dec


def _enum(cls: type[enum.Enum]) -> tuple[_Enc, _Dec]:
    kinds = {type(m.value) for m in cls}
    if len(kinds) != 1 or next(iter(kinds)) not in (int, str):
        raise TypeError(f"enum {cls.__name__}: values must be all str or all int")
    enc_value, dec_value = _PRIMITIVES[next(iter(kinds))]
    members = {m.value: m for m in cls}

    def enc(v: enum.Enum, out: bytearray) -> None:
        enc_value(v.value, out)

    def dec(buf: bytes, pos: int) -> tuple[enum.Enum, int]:
        value, pos = dec_value(buf, pos)
        member = members.get(value)
        if member is None:
            raise ValueError(f"not a {cls.__name__}")
        return member, pos

    return enc, dec


def _frozenset(inner: tuple[_Enc, _Dec]) -> tuple[_Enc, _Dec]:
    enc_inner, dec_inner = inner

    def enc(v: frozenset[Any], out: bytearray) -> None:
        _enc_uvarint(len(v), out)
        parts = []
        for item in v:
            one = bytearray()
            enc_inner(item, one)
            parts.append(bytes(one))
        for part in sorted(parts):  # equal sets encode equally
            out += part

    def dec(buf: bytes, pos: int) -> tuple[frozenset[Any], int]:
        n, pos = _dec_uvarint(buf, pos)
        items = []
        for _ in range(n):
            item, pos = dec_inner(buf, pos)
            items.append(item)
        return frozenset(items), pos

    return enc, dec


def _describe(tp: Any) -> str:
    """A canonical spelling of a field type, for the schema fingerprint."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return "|".join(sorted(_describe(a) for a in typing.get_args(tp)))
    if origin is frozenset:
        return f"frozenset[{_describe(typing.get_args(tp)[0])}]"
    if tp is type(None):
        return "None"
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        inner = ",".join(f"{f.name}:{_describe(hints[f.name])}" for f in dataclasses.fields(tp))
        return f"{tp.__name__}{{{inner}}}"
    if isinstance(tp, type):
        return tp.__name__
    raise TypeError(f"cannot describe type {tp!r}")


def _codec_for(tp: Any, where: str) -> tuple[_Enc, _Dec]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return _optional(_codec_for(args[0], where))
        raise TypeError(f"{where}: only `X | None` unions can be encoded, not {tp!r}")
    if origin is frozenset:
        return _frozenset(_codec_for(typing.get_args(tp)[0], where))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum(tp)
    if isinstance(tp, type) and tp in _PRIMITIVES:
        return _PRIMITIVES[tp]
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass(tp)
    raise TypeError(f"{where}: the state codec cannot encode values of type {tp!r}")


def _dataclass(cls: type[Any]) -> tuple[_Enc, _Dec]:
    hints = typing.get_type_hints(cls)
    fields = [
        (f.name, *_codec_for(hints[f.name], f"{cls.__name__}.{f.name}"))
        for f in dataclasses.fields(cls)
    ]

    def enc(v: Any, out: bytearray) -> None:
        for name, enc_field, _ in fields:
            enc_field(getattr(v, name), out)

    def dec(buf: bytes, pos: int) -> tuple[Any, int]:
        values: dict[str, Any] = {}
        for name, _, dec_field in fields:
            values[name], pos = dec_field(buf, pos)
        return cls(**values), pos

    return enc, dec


# --- records --------------------------------------------------------------------


class RecordCodec(Generic[T]):
    """Encodes and decodes one dataclass as a self-checking record."""

    def __init__(self, cls: type[T]) -> None:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls!r} is not a dataclass")
        self.name = cls.__name__
        self._enc, self._dec = _dataclass(cls)  # first: it names an unsupported field
        fingerprint = hashlib.sha256(_describe(cls).encode()).digest()[:FINGERPRINT_BYTES]
        self.header: Final = bytes([FORMAT]) + fingerprint

    def encode(self, value: T) -> bytes:
        out = bytearray(self.header)
        self._enc(value, out)
        return bytes(out)

    def decode(self, data: bytes) -> T:
        """The value `encode` was given; `StateRecordUnreadable` for a record of
        another format or schema, or one that is truncated or damaged."""
        if not data or data[0] != FORMAT:
            got = data[0] if data else "nothing"
            raise StateRecordUnreadable(
                f"a {self.name} record in the state store has format {got}, "
                f"this node reads format {FORMAT} (a node of another version wrote it?); "
                "try again"
            )
        if data[: len(self.header)] != self.header:
            raise StateRecordUnreadable(
                f"a {self.name} record in the state store was written for another "
                f"{self.name} schema (by a node of another version?); try again"
            )
        try:
            value, pos = self._dec(data, len(self.header))
        except (IndexError, ValueError, TypeError) as exc:
            # The message names no bytes of the record: it may hold hashes and
            # ciphertexts that have no business in a log.
            raise StateRecordUnreadable(
                f"a {self.name} record in the state store is damaged ({type(exc).__name__})"
            ) from None
        if pos != len(data):
            raise StateRecordUnreadable(
                f"a {self.name} record in the state store has {len(data) - pos} stray bytes"
            )
        typed: T = value
        return typed


TICKETS: Final = RecordCodec(Ticket)
EVENTS: Final = RecordCodec(TicketEvent)
