"""Byte encodings used at the protocol's edges (QR, JSON, URLs) and in transcripts.

Inside the code bytes stay bytes; base64url (RFC 4648 section 5, no padding)
appears only where a value crosses into text.
"""

from __future__ import annotations

import base64
import binascii
import re

from authnet.errors import MalformedInput

_B64U = re.compile(r"^[A-Za-z0-9_-]*$")


def b64u_encode(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str, *, field: str, length: int | None = None) -> bytes:
    """Decode unpadded base64url, naming `field` in the error if it is not valid.

    `length`, when given, is the exact number of bytes the field must hold.
    """
    if not isinstance(text, str) or not _B64U.fullmatch(text) or len(text) % 4 == 1:
        raise MalformedInput(f"{field} is not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise MalformedInput(f"{field} is not base64url") from None
    if b64u_encode(data) != text:
        # Non-canonical (stray low bits in the last character): two spellings of
        # one value would let a replay slip past a string comparison.
        raise MalformedInput(f"{field} is not canonical base64url")
    if length is not None and len(data) != length:
        raise MalformedInput(f"{field} must be {length} bytes, got {len(data)}")
    return data


def transcript(label: bytes, *fields: bytes) -> bytes:
    """The exact bytes a signature or MAC covers: label || 0x00 || (u16 len || field)*.

    Length prefixes make the encoding injective, so no two different field
    lists (or labels, which never contain 0x00) produce the same transcript.
    """
    if b"\x00" in label:
        raise ValueError("labels must not contain NUL")
    out = bytearray(label)
    out.append(0)
    for f in fields:
        if len(f) > 0xFFFF:
            raise ValueError("transcript field longer than 65535 bytes")
        out += len(f).to_bytes(2, "big")
        out += f
    return bytes(out)
