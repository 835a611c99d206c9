"""The byte strings a hardener's caller and the hardener must agree on.

Shared by the service and its callers (and mirrored byte for byte in the
browser, vault_api/static/js/crypto/oprf.js). docs/hardener.md is normative.

Every field is a UTF-8 string or bytes, framed as u16 big-endian length ||
bytes after a label naming the purpose and protocol version, so no two field
lists frame to the same bytes.
"""

from __future__ import annotations

POPRF_INFO_LABEL = b"hardener/v1 user"
SUCCESS_LABEL = b"hardener/v1 success"
ENROL_LABEL = b"hardener/v1 enrol"


def frame(label: bytes, *fields: bytes) -> bytes:
    """label || (u16be(len(f)) || f for each field)."""
    out = bytearray(label)
    for f in fields:
        if len(f) > 0xFFFF:
            raise ValueError("a label field is longer than 65535 bytes")
        out += len(f).to_bytes(2, "big")
        out += f
    return bytes(out)


def poprf_info(caller: str, user_id: str) -> bytes:
    """The POPRF public input: "hardener/v1 user" || u16be-framed caller, user_id.

    The caller is the name in the caller's certificate; `user_id` carries the
    purpose (`token:<hex>`, `<user>:passphrase`, `<user>:recovery`), so each
    secret has its own output and its own budget.
    """
    return frame(POPRF_INFO_LABEL, caller.encode(), user_id.encode())


def success_message(caller: str, user_id: str, attempt_id: bytes, nonce: bytes) -> bytes:
    """What the user's success key signs (Ed25519) to prove an attempt succeeded."""
    return frame(SUCCESS_LABEL, caller.encode(), user_id.encode(), attempt_id, nonce)


def enrol_message(
    caller: str, user_id: str, attempt_id: bytes, nonce: bytes, new_public_key: bytes
) -> bytes:
    """What the old success key signs to replace itself with `new_public_key`."""
    return frame(ENROL_LABEL, caller.encode(), user_id.encode(), attempt_id, nonce, new_public_key)
