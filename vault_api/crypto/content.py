"""Plaintexts of records: UTF-8 JSON objects, padded with spaces.

Items, folder names and safe names are JSON objects (docs/vault.md,
"Plaintexts"). Before encryption the UTF-8 text is padded with ASCII spaces
(0x20) to the next multiple of PAD_BLOCK bytes, so a ciphertext's length shows
the size of a record only to within 32 bytes (a short password and a long one
look alike). JSON allows trailing white space, so `JSON.parse` and
`json.loads` read a padded plaintext as is.

Readers keep the fields they do not know: a client that edits an item writes
back every field it read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from vault_api.crypto.errors import ContentInvalid

PAD_BLOCK: Final = 32
SCHEMA_VERSION: Final = 1
ITEM_TYPES: Final = frozenset({"login", "note", "card", "document"})
MAX_PLAINTEXT_BYTES: Final = 192 * 1024


def pad(text: bytes) -> bytes:
    """`text` followed by spaces up to a multiple of PAD_BLOCK (at least one block)."""
    size = max(PAD_BLOCK, -(-len(text) // PAD_BLOCK) * PAD_BLOCK)
    return text + b" " * (size - len(text))


def encode_json(obj: Mapping[str, Any]) -> bytes:
    """Compact JSON (no spaces between tokens, non-ASCII as UTF-8), padded."""
    text = json.dumps(dict(obj), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    data = pad(text.encode("utf-8"))
    if len(data) > MAX_PLAINTEXT_BYTES:
        raise ContentInvalid(f"record is {len(data)} bytes; at most {MAX_PLAINTEXT_BYTES}")
    return data


def decode_json(data: bytes, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ContentInvalid(f"{what} opened but is not UTF-8 JSON") from None
    if not isinstance(obj, dict):
        raise ContentInvalid(f"{what} opened but is not a JSON object")
    return obj


def check_item(content: Mapping[str, Any]) -> None:
    """The fields every item has: a known `type` and a string `title`."""
    kind = content.get("type")
    if kind not in ITEM_TYPES:
        raise ContentInvalid(f"item type must be one of {sorted(ITEM_TYPES)}, got {kind!r}")
    if not isinstance(content.get("title"), str):
        raise ContentInvalid("item title must be a string")


def encode_name(name: str) -> bytes:
    """The plaintext of a folder or safe name: {"name": name}, padded."""
    if not isinstance(name, str) or not name.strip():
        raise ContentInvalid("a name must be a non-empty string")
    return encode_json({"name": name})


def decode_name(data: bytes, what: str) -> str:
    obj = decode_json(data, what)
    name = obj.get("name")
    if not isinstance(name, str):
        raise ContentInvalid(f"{what} opened but has no string 'name'")
    return name
