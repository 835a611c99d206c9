"""The vault's client-side format as test vectors: tests/vectors/vault-v1.json.

Every input is fixed (derived from its name by SHA-256, so the values look
random but never change), every output is what the Python reference
(vault_api.crypto) makes from them. The JavaScript implementation is tested
against the same file. Regenerate after a deliberate format change (a new
format version, never an edit of v1):

    .venv/bin/python -m tests.vault.vault_vectors > tests/vectors/vault-v1.json

Bytes are lowercase hex. File bodies are long, so file vectors give the
plaintext as a rule (byte i is i mod 251) and each chunk box's SHA-256 (and
the whole box when it is short).
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

from cryptography.hazmat.primitives.asymmetric import x25519

from authnet.protocol.encoding import transcript
from tests.vault import hpke_reference
from vault_api import crypto as vc
from vault_api.crypto import aead, content, labels
from vault_api.crypto.files import CHUNK_BYTES

SOURCE = (
    "authnet vault client-side format v1 (docs/vault.md), made by the Python reference "
    "vault_api/crypto from the fixed inputs listed; tests/vault/vault_vectors.py regenerates it"
)


def fixed(name: str, n: int = 32) -> bytes:
    """A reproducible pseudo-random value named `name`."""
    out = b""
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"vault-v1 vectors {name} {counter}".encode()).digest()
        counter += 1
    return out[:n]


def h(b: bytes | None) -> str | None:
    return None if b is None else b.hex()


def private_key(name: str) -> x25519.X25519PrivateKey:
    return x25519.X25519PrivateKey.from_private_bytes(fixed(name))


def file_plaintext(size: int) -> bytes:
    return bytes(i % 251 for i in range(size))


def _slot() -> list[dict[str, Any]]:
    out = []
    for n, version in ((1, 1), (2, 3)):
        kc = fixed(f"kc {n}")
        sk = private_key("user private key")
        pk = vc.public_key_bytes(sk)
        uid, kid, nonce = (
            fixed("user id", 16),
            fixed(f"key id {n}", 16),
            fixed(f"slot nonce {n}", 12),
        )
        aad = vc.slot_aad(user_id=uid, key_id=kid, keypair_version=version, public_key=pk)
        slot = aead.seal_with_nonce(vc.slot_kek(kc), nonce, vc.private_key_pkcs8(sk), aad)
        out.append(
            {
                "kc": h(kc),
                "kek": h(vc.slot_kek(kc)),
                "user_id": h(uid),
                "key_id": h(kid),
                "keypair_version": version,
                "private_key": h(fixed("user private key")),
                "private_key_pkcs8": h(vc.private_key_pkcs8(sk)),
                "public_key": h(pk),
                "aad": h(aad),
                "nonce": h(nonce),
                "slot": h(slot),
            }
        )
    return out


def _safe_key() -> list[dict[str, Any]]:
    out = []
    for n, generation in ((1, 1), (2, 7)):
        sk_r = private_key(f"member private key {n}")
        pk_r = vc.public_key_bytes(sk_r)
        ikm_e = fixed(f"ephemeral ikm {n}")
        sk_e = hpke_reference.derive_key_pair(ikm_e)
        sid, uid, ks = fixed("safe id", 16), fixed(f"member id {n}", 16), fixed(f"safe key {n}")
        info = vc.safe_key_info(safe_id=sid, user_id=uid, generation=generation)
        enc, ct = hpke_reference.seal_base(pk_r, info, b"", ks, sk_e)
        out.append(
            {
                "recipient_private_key": h(fixed(f"member private key {n}")),
                "recipient_public_key": h(pk_r),
                "safe_id": h(sid),
                "user_id": h(uid),
                "generation": generation,
                "info": h(info),
                "safe_key": h(ks),
                "ikmE": h(ikm_e),
                "skE": h(sk_e.private_bytes_raw()),
                "pkE": h(enc),
                "sealed": h(enc + ct),
            }
        )
    return out


def _previous_key() -> list[dict[str, Any]]:
    sid, old_g = fixed("safe id", 16), 4
    new_key, old_key, nonce = fixed("safe key 5"), fixed("safe key 4"), fixed("prev nonce", 12)
    aad = vc.previous_key_aad(safe_id=sid, old_generation=old_g, new_generation=old_g + 1)
    return [
        {
            "safe_id": h(sid),
            "old_generation": old_g,
            "new_generation": old_g + 1,
            "new_key": h(new_key),
            "old_key": h(old_key),
            "aad": h(aad),
            "nonce": h(nonce),
            "box": h(aead.seal_with_nonce(new_key, nonce, old_key, aad)),
        }
    ]


def _safe_name() -> list[dict[str, Any]]:
    sid, key, nonce = fixed("safe id", 16), fixed("safe key 1"), fixed("safe name nonce", 12)
    name = "Family — shared"
    pt = content.encode_name(name)
    aad = vc.safe_name_aad(safe_id=sid, version=2, generation=1)
    return [
        {
            "key": h(key),
            "safe_id": h(sid),
            "version": 2,
            "generation": 1,
            "name": name,
            "plaintext": h(pt),
            "aad": h(aad),
            "nonce": h(nonce),
            "ciphertext": h(aead.seal_with_nonce(key, nonce, pt, aad)),
        }
    ]


def _folders() -> list[dict[str, Any]]:
    out = []
    sid, key = fixed("safe id", 16), fixed("safe key 1")
    for n, parent, name in ((1, None, "Banking"), (2, fixed("folder id 1", 16), "Cards ✓")):
        fid, nonce = fixed(f"folder id {n}", 16), fixed(f"folder nonce {n}", 12)
        pt = content.encode_name(name)
        aad = vc.folder_aad(safe_id=sid, folder_id=fid, parent_id=parent, version=n, generation=1)
        out.append(
            {
                "key": h(key),
                "safe_id": h(sid),
                "folder_id": h(fid),
                "parent_id": h(parent),
                "version": n,
                "generation": 1,
                "name": name,
                "plaintext": h(pt),
                "aad": h(aad),
                "nonce": h(nonce),
                "ciphertext": h(aead.seal_with_nonce(key, nonce, pt, aad)),
            }
        )
    return out


ITEMS: list[tuple[dict[str, Any], bytes | None, int, int]] = [
    (
        {
            "type": "login",
            "title": "Mail",
            "username": "alice@example.com",
            "password": "correct horse battery staple",
            "urls": ["https://mail.example.com"],
            "notes": "",
            "totp": "otpauth://totp/Mail:alice?secret=JBSWY3DPEHPK3PXP&issuer=Mail",
        },
        None,
        1,
        1,
    ),
    (
        {
            "type": "card",
            "title": "Visa — Ünïcode",
            "cardholder": "Alice Example",
            "number": "4111111111111111",
            "expiry": "12/2030",
            "code": "123",
        },
        fixed("folder id 2", 16),
        3,
        2,
    ),
    ({"type": "note", "title": "Wi-Fi", "notes": "SSID home\npassword: h0me-w1f1"}, None, 12, 7),
]


def _items() -> list[dict[str, Any]]:
    out = []
    sid = fixed("safe id", 16)
    for n, (obj, folder, version, generation) in enumerate(ITEMS, 1):
        key, iid, nonce = (
            fixed(f"safe key {generation}"),
            fixed(f"item id {n}", 16),
            fixed(f"item nonce {n}", 12),
        )
        pt = content.encode_json(obj)
        aad = vc.item_aad(
            safe_id=sid, item_id=iid, folder_id=folder, version=version, generation=generation
        )
        out.append(
            {
                "key": h(key),
                "safe_id": h(sid),
                "item_id": h(iid),
                "folder_id": h(folder),
                "version": version,
                "schema": 1,
                "generation": generation,
                "content": obj,
                "plaintext": h(pt),
                "aad": h(aad),
                "nonce": h(nonce),
                "ciphertext": h(aead.seal_with_nonce(key, nonce, pt, aad)),
            }
        )
    return out


def _file_keys() -> list[dict[str, Any]]:
    sid, fid, key = fixed("safe id", 16), fixed("file id 1", 16), fixed("safe key 2")
    file_key, nonce = fixed("file key 1"), fixed("file key nonce", 12)
    aad = vc.file_key_aad(safe_id=sid, file_id=fid, generation=2)
    return [
        {
            "safe_key": h(key),
            "safe_id": h(sid),
            "file_id": h(fid),
            "generation": 2,
            "file_key": h(file_key),
            "aad": h(aad),
            "nonce": h(nonce),
            "wrapped": h(aead.seal_with_nonce(key, nonce, file_key, aad)),
        }
    ]


def _file_key_moves() -> list[dict[str, Any]]:
    """A file key wrapped for one safe, re-wrapped for another (moving a file,
    docs/vault.md 8.4): only the wrap changes; the body is the same."""
    fid, file_key = fixed("file id 1", 16), fixed("file key 1")
    from_sid, to_sid = fixed("safe id", 16), fixed("target safe id", 16)
    from_key, to_key = fixed("safe key 2"), fixed("target safe key 3")
    from_aad = vc.file_key_aad(safe_id=from_sid, file_id=fid, generation=2)
    to_aad = vc.file_key_aad(safe_id=to_sid, file_id=fid, generation=3)
    nonce = fixed("moved file key nonce", 12)
    return [
        {
            "file_id": h(fid),
            "file_key": h(file_key),
            "from_safe_id": h(from_sid),
            "from_generation": 2,
            "from_safe_key": h(from_key),
            "from_wrapped": h(
                aead.seal_with_nonce(from_key, fixed("file key nonce", 12), file_key, from_aad)
            ),
            "to_safe_id": h(to_sid),
            "to_generation": 3,
            "to_safe_key": h(to_key),
            "to_aad": h(to_aad),
            "nonce": h(nonce),
            "to_wrapped": h(aead.seal_with_nonce(to_key, nonce, file_key, to_aad)),
        }
    ]


def _item_moves() -> list[dict[str, Any]]:
    """An item moved to another safe: the same version and schema, the target
    safe, folder and generation in its associated data (docs/vault.md 8.4)."""
    obj, _, version, _ = ITEMS[0]
    iid = fixed("item id 1", 16)
    from_sid, to_sid = fixed("safe id", 16), fixed("target safe id", 16)
    from_key, to_key = fixed("safe key 1"), fixed("target safe key 3")
    to_folder = fixed("target folder id", 16)
    pt = content.encode_json(obj)
    from_aad = vc.item_aad(
        safe_id=from_sid, item_id=iid, folder_id=None, version=version, generation=1
    )
    to_aad = vc.item_aad(
        safe_id=to_sid, item_id=iid, folder_id=to_folder, version=version, generation=3
    )
    nonce = fixed("moved item nonce", 12)
    return [
        {
            "item_id": h(iid),
            "version": version,
            "schema": 1,
            "content": obj,
            "from_safe_id": h(from_sid),
            "from_folder_id": None,
            "from_generation": 1,
            "from_safe_key": h(from_key),
            "from_ciphertext": h(
                aead.seal_with_nonce(from_key, fixed("item nonce 1", 12), pt, from_aad)
            ),
            "to_safe_id": h(to_sid),
            "to_folder_id": h(to_folder),
            "to_generation": 3,
            "to_safe_key": h(to_key),
            "to_aad": h(to_aad),
            "nonce": h(nonce),
            "to_ciphertext": h(aead.seal_with_nonce(to_key, nonce, pt, to_aad)),
        }
    ]


FILE_SIZES = (0, 13, CHUNK_BYTES, CHUNK_BYTES + 1)


def _files() -> list[dict[str, Any]]:
    out = []
    for n, size in enumerate(FILE_SIZES, 1):
        fid, key = fixed(f"file id {n}", 16), fixed(f"file key {n}")
        data = file_plaintext(size)
        count = vc.chunk_count(size)
        chunks = []
        for i in range(count):
            last = i == count - 1
            piece = data[i * CHUNK_BYTES : (i + 1) * CHUNK_BYTES]
            nonce = fixed(f"file {n} chunk {i} nonce", 12)
            aad = vc.chunk_aad(file_id=fid, index=i, last=last)
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
                "body_size": vc.ciphertext_size(size),
                "chunks": chunks,
            }
        )
    return out


def _fingerprints() -> list[dict[str, Any]]:
    uid = fixed("user id", 16)
    pk = vc.public_key_bytes(private_key("user private key"))
    return [
        {
            "user_id": h(uid),
            "public_key": h(pk),
            "fingerprint": vc.fingerprint(user_id=uid, public_key=pk),
        }
    ]


def _transcripts() -> list[dict[str, Any]]:
    fields = [b"", bytes.fromhex("00ff"), fixed("t", 16)]
    return [
        {
            "label": labels.ITEM.decode(),
            "fields": [f.hex() for f in fields],
            "out": transcript(labels.ITEM, *fields).hex(),
        }
    ]


def _padding() -> list[dict[str, Any]]:
    return [
        {"text": t.hex(), "padded": content.pad(t).hex()}
        for t in (b"", b"{}", b"x" * 31, b"x" * 32, b"x" * 33)
    ]


def _negative(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Changes to a vector's inputs that must make opening it fail, with the
    error code each must raise (vault_api.crypto.errors: `code`)."""
    flipped = bytearray(bytes.fromhex(items[0]["ciphertext"]))
    flipped[-1] ^= 0x01
    return [
        {
            "vector": "item/0",
            "change": {"item_id": h(fixed("item id 2", 16))},
            "error": "item_invalid",
        },
        {
            "vector": "item/0",
            "change": {"safe_id": h(fixed("other safe", 16))},
            "error": "item_invalid",
        },
        {
            "vector": "item/0",
            "change": {"folder_id": h(fixed("folder id 1", 16))},
            "error": "item_invalid",
        },
        {"vector": "item/0", "change": {"version": 2}, "error": "item_invalid"},
        {"vector": "item/0", "change": {"generation": 2}, "error": "item_invalid"},
        {"vector": "item/0", "change": {"ciphertext": flipped.hex()}, "error": "item_invalid"},
        {
            "vector": "item/1",
            "change": {"ciphertext": items[0]["ciphertext"]},
            "error": "item_invalid",
        },
        {"vector": "slot/0", "change": {"kc": h(fixed("kc 2"))}, "error": "slot_invalid"},
        {
            "vector": "slot/0",
            "change": {"key_id": h(fixed("key id 2", 16))},
            "error": "slot_invalid",
        },
        {"vector": "slot/0", "change": {"keypair_version": 2}, "error": "slot_invalid"},
        {"vector": "safe_key/0", "change": {"generation": 2}, "error": "safe_key_invalid"},
        {
            "vector": "safe_key/0",
            "change": {"user_id": h(fixed("member id 2", 16))},
            "error": "safe_key_invalid",
        },
        {
            "vector": "previous_key/0",
            "change": {"safe_id": h(fixed("other safe", 16))},
            "error": "previous_key_invalid",
        },
        {"vector": "safe_name/0", "change": {"version": 1}, "error": "safe_name_invalid"},
        {"vector": "folder/1", "change": {"parent_id": None}, "error": "folder_invalid"},
        {
            "vector": "file_key/0",
            "change": {"file_id": h(fixed("file id 2", 16))},
            "error": "file_key_invalid",
        },
        {
            "vector": "file/3",
            "change": {"operation": "swap chunks 0 and 1"},
            "error": "file_chunk_invalid",
        },
        {
            "vector": "file/3",
            "change": {"operation": "drop the last chunk"},
            "error": "file_truncated",
        },
        {
            "vector": "file/2",
            "change": {"operation": "append a copy of the last chunk"},
            "error": "file_truncated",
        },
        {
            "vector": "file/1",
            "change": {"operation": "append a copy of the last chunk"},
            "error": "file_chunk_invalid",
        },
        # A move opens the record in the source's context first: a wrap or an
        # item made for another safe is refused, never re-encrypted.
        {
            "vector": "file_key_move/0",
            "change": {"from_safe_id": h(fixed("target safe id", 16))},
            "error": "file_key_invalid",
        },
        {
            "vector": "item_move/0",
            "change": {"from_folder_id": h(fixed("target folder id", 16))},
            "error": "item_invalid",
        },
    ]


def build() -> dict[str, Any]:
    items = _items()
    return {
        "source": SOURCE,
        "encoding": "bytes are lowercase hex",
        "constants": {
            "id_bytes": vc.ID_BYTES,
            "nonce_bytes": vc.NONCE_BYTES,
            "tag_bytes": vc.TAG_BYTES,
            "pad_block": vc.PAD_BLOCK,
            "chunk_bytes": vc.CHUNK_BYTES,
            "schema_version": vc.SCHEMA_VERSION,
            "hpke_suite": {"kem_id": 32, "kdf_id": 1, "aead_id": 1},
        },
        "labels": {
            name.lower(): getattr(labels, name).decode()
            for name in (
                "SLOT_KEK",
                "SLOT",
                "SAFE_KEY",
                "PREVIOUS_KEY",
                "SAFE_NAME",
                "FOLDER",
                "ITEM",
                "FILE_KEY",
                "FILE_CHUNK",
                "FINGERPRINT",
            )
        },
        "transcript": _transcripts(),
        "padding": _padding(),
        "slot": _slot(),
        "safe_key": _safe_key(),
        "previous_key": _previous_key(),
        "safe_name": _safe_name(),
        "folder": _folders(),
        "item": items,
        "file_key": _file_keys(),
        "file": _files(),
        "fingerprint": _fingerprints(),
        "file_key_move": _file_key_moves(),
        "item_move": _item_moves(),
        "negative": _negative(items),
    }


def main() -> None:
    json.dump(build(), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
