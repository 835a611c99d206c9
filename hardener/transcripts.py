"""The byte strings the hardener's MACs, AEADs and signatures are bound to.

Every field is length-prefixed (u16 big-endian, so no two field lists frame
to the same bytes) after a label naming the purpose and protocol version.
The framing, the POPRF `info`, the success and the enrol messages live in
`hardener.labels` (shared with the clients); these are the service's own.
docs/hardener.md is normative.
"""

from __future__ import annotations

import struct

from hardener.labels import ENROL_LABEL, enrol_message, frame

__all__ = ["ENROL_LABEL", "enrol_message", "frame"]

HASH_LABEL = b"hardener/v1 hash"
WRAP_LABEL = b"hardener/v1 wrap"
KEY_AT_REST_LABEL = b"hardener/v1 key at rest"

# The wrapped form: magic, u32 version, 12-byte nonce, ciphertext || 16-byte tag.
WRAP_MAGIC = b"HW1"
WRAP_HEADER = struct.Struct(">3sI")
WRAP_NONCE = 12
WRAP_TAG = 16


def u32(n: int) -> bytes:
    return struct.pack(">I", n)


def hash_transcript(caller: str, user_id: str, digest: bytes) -> bytes:
    """What the keyed hash MACs: HMAC-SHA256(hash_key_v, this)."""
    return frame(HASH_LABEL, caller.encode(), user_id.encode(), digest)


def wrap_aad(caller: str, record_id: str, version: int) -> bytes:
    """Associated data of a wrapped blob: binds the caller, record id and key version."""
    return frame(WRAP_LABEL, caller.encode(), record_id.encode(), u32(version))


def key_at_rest_aad(version: int, purpose: str) -> bytes:
    """Associated data of one key version's secret sealed under the master key."""
    return frame(KEY_AT_REST_LABEL, u32(version), purpose.encode())
