"""BER-TLV as smart cards use it (ISO 7816-4 annex D, SP 800-73-4 part 2 §3).

Tags are one to three bytes (a first byte whose low five bits are all set
announces more tag bytes; each further byte with bit 8 set announces another);
lengths are definite: one byte below 0x80, else 0x81..0x83 followed by one to
three length bytes. The parser is strict (no indefinite lengths, no trailing
garbage) because its input is hostile: a card must answer 6A80, never crash.
"""

from __future__ import annotations

__all__ = ["TlvError", "encode_length", "find", "parse", "parse_one", "tlv"]


class TlvError(ValueError):
    """Malformed BER-TLV."""


def encode_length(n: int) -> bytes:
    if n < 0:
        raise ValueError("negative length")
    if n < 0x80:
        return bytes([n])
    if n <= 0xFF:
        return b"\x81" + bytes([n])
    if n <= 0xFFFF:
        return b"\x82" + n.to_bytes(2, "big")
    if n <= 0xFFFFFF:
        return b"\x83" + n.to_bytes(3, "big")
    raise ValueError("length too large for BER-TLV")


def encode_tag(tag: int) -> bytes:
    if tag < 0:
        raise ValueError("negative tag")
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def tlv(tag: int, value: bytes = b"") -> bytes:
    """One TLV; `tag` is the tag's bytes read as a big-endian integer (0x5FC102)."""
    return encode_tag(tag) + encode_length(len(value)) + value


def _read_tag(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise TlvError("truncated tag")
    first = data[pos]
    tag = first
    pos += 1
    if first & 0x1F == 0x1F:
        for _ in range(2):
            if pos >= len(data):
                raise TlvError("truncated tag")
            b = data[pos]
            tag = (tag << 8) | b
            pos += 1
            if not b & 0x80:
                break
        else:
            raise TlvError("tag longer than three bytes")
    return tag, pos


def _read_length(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise TlvError("truncated length")
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    count = first & 0x7F
    if count == 0 or count > 3:
        raise TlvError("unsupported length encoding")
    if pos + count > len(data):
        raise TlvError("truncated length")
    return int.from_bytes(data[pos : pos + count], "big"), pos + count


def parse_one(data: bytes, pos: int = 0) -> tuple[int, bytes, int]:
    """(tag, value, next position) of the TLV at `pos`."""
    tag, pos = _read_tag(data, pos)
    length, pos = _read_length(data, pos)
    end = pos + length
    if end > len(data):
        raise TlvError("value runs past the end of the data")
    return tag, data[pos:end], end


def parse(data: bytes) -> list[tuple[int, bytes]]:
    """All TLVs in `data`, in order; the data must be exactly a sequence of TLVs."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        tag, value, pos = parse_one(data, pos)
        out.append((tag, value))
    return out


def find(items: list[tuple[int, bytes]], tag: int) -> bytes | None:
    """The value of the first TLV with `tag`, or None."""
    for t, v in items:
        if t == tag:
            return v
    return None
