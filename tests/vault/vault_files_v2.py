"""File body format 2 as test vectors: tests/vectors/vault-files-v2.json.

Inputs are fixed the way tests/vault/vault_vectors.py fixes them (SHA-256 of
a name); outputs are what the Python reference (vault_api.crypto.files) makes.
Format 1's vectors stay in vault-v1.json, unchanged. Regenerate only for a new
format version:

    .venv/bin/python -m tests.vault.vault_files_v2 > tests/vectors/vault-files-v2.json

Plaintext byte i is i mod 251; each chunk gives its nonce, AAD, size and the
SHA-256 of its box (the whole box when it is short).
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

from tests.vault.vault_vectors import file_plaintext, fixed, h
from vault_api import crypto as vc
from vault_api.crypto import aead

V2 = vc.V2
FILE_SIZES = (0, 13, V2.chunk_bytes, V2.chunk_bytes + 1, 2 * V2.chunk_bytes + 77)
# (size, asked chunk_bytes): the format the server records, and the body size.
FORMAT_CASES = (
    (0, V2.chunk_bytes),
    (65536, V2.chunk_bytes),
    (65537, V2.chunk_bytes),
    (65537, vc.V1.chunk_bytes),
    (5 * V2.chunk_bytes, V2.chunk_bytes),
    (5 * V2.chunk_bytes, vc.V1.chunk_bytes),
)


def _files() -> list[dict[str, Any]]:
    out = []
    for n, size in enumerate(FILE_SIZES, 1):
        fid, key = fixed(f"v2 file id {n}", 16), fixed(f"v2 file key {n}")
        data = file_plaintext(size)
        count = vc.chunk_count(size, V2)
        chunks = []
        for i in range(count):
            last = i == count - 1
            piece = data[i * V2.chunk_bytes : (i + 1) * V2.chunk_bytes]
            nonce = fixed(f"v2 file {n} chunk {i} nonce", 12)
            aad = vc.chunk_aad(file_id=fid, index=i, last=last, fmt=V2)
            box = aead.seal_with_nonce(key, nonce, piece, aad)
            chunks.append(
                {
                    "index": i,
                    "last": last,
                    "plaintext_size": len(piece),
                    "nonce": h(nonce),
                    "aad": h(aad),
                    "box_size": len(box),
                    "box_sha256": hashlib.sha256(box).hexdigest(),
                    "box": h(box) if len(box) <= 256 else None,
                }
            )
        out.append(
            {
                "file_key": h(key),
                "file_id": h(fid),
                "size": size,
                "plaintext": "byte i is i mod 251",
                "plaintext_sha256": hashlib.sha256(data).hexdigest(),
                "body_size": vc.ciphertext_size(size, V2),
                "chunks": chunks,
            }
        )
    return out


def vectors() -> dict[str, Any]:
    return {
        "source": "vault_api.crypto.files (the Python reference), tests/vault/vault_files_v2.py; "
        "docs/vault.md 8.2, format 2",
        "format": {"version": V2.version, "chunk_bytes": V2.chunk_bytes},
        "labels": {"file_chunk": V2.label.decode()},
        "formats": [
            {
                "size": size,
                "asked_chunk_bytes": asked,
                "version": vc.format_for(size, asked).version,
                "body_size": vc.ciphertext_size(size, vc.format_for(size, asked)),
            }
            for size, asked in FORMAT_CASES
        ],
        "file": _files(),
    }


def main() -> None:
    json.dump(vectors(), sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
