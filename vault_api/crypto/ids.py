"""Record ids: 128 random bits, made by the client (they are bound into the
ciphertexts, so they exist before the server sees the record)."""

from __future__ import annotations

import os
from typing import Final

from authnet.protocol.encoding import b64u_encode

ID_BYTES: Final = 16
KEY_ID_BYTES: Final = 16  # authnet's per-SP key id (docs/protocol.md section 10)


def new_id() -> bytes:
    return os.urandom(ID_BYTES)


def check_id(value: bytes, what: str, size: int = ID_BYTES) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise ValueError(f"{what} must be {size} bytes")


def short(value: bytes) -> str:
    """The first 8 base64url characters of an id, for messages."""
    return b64u_encode(value)[:8]


def u32(n: int, what: str) -> bytes:
    if not isinstance(n, int) or not 0 <= n <= 0xFFFFFFFF:
        raise ValueError(f"{what} must fit in 32 bits")
    return n.to_bytes(4, "big")
