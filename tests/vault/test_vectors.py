"""tests/vectors/vault-v1.json: the Python reference reproduces every output
from the fixed inputs, opens every ciphertext, and refuses every negative
case with the error code the file names (the JavaScript tests use the same
file). The deterministic HPKE sealer that made the vectors is checked against
RFC 9180's own vectors first."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import x25519

from authnet.protocol.encoding import transcript
from tests.vault import hpke_reference, vault_vectors
from tests.vectorfiles import load
from vault_api import crypto as vc
from vault_api.crypto import aead, content, labels

V = load("vault-v1.json")


def b(value: str | None) -> bytes | None:
    return None if value is None else bytes.fromhex(value)


def bb(value: str) -> bytes:
    return bytes.fromhex(value)


def test_the_file_is_what_the_generator_makes() -> None:
    assert vault_vectors.build() == V


def test_every_label_is_in_the_file() -> None:
    # The hardened factors' labels are checked Python <-> page by test_factors instead;
    # format 2's file chunk label has its own vectors (vault-files-v2.json, test_files_v2);
    # the devices' labels too (vault-devices.json, test_device_vectors).
    later = (*labels.FACTORS, labels.FILE_CHUNK_V2, *labels.DEVICES)
    expected = {label.decode() for label in labels.ALL if label not in later}
    assert set(V["labels"].values()) == expected


@pytest.mark.parametrize("vector", load("rfc9180-hpke.json")["vectors"], ids=lambda v: v["info"])
def test_reference_sealer_matches_rfc_9180(vector: dict[str, Any]) -> None:
    sk_e = hpke_reference.derive_key_pair(bb(vector["ikmE"]))
    assert sk_e.private_bytes_raw().hex() == vector["skEm"]
    first = vector["encryptions"][0]
    enc, ct = hpke_reference.seal_base(
        bb(vector["pkRm"]), bb(vector["info"]), bb(first["aad"]), bb(first["pt"]), sk_e
    )
    assert enc.hex() == vector["enc"]
    assert ct.hex() == first["ct"]


def test_transcripts_and_padding() -> None:
    for t in V["transcript"]:
        out = transcript(t["label"].encode(), *(bb(f) for f in t["fields"]))
        assert out.hex() == t["out"]
    for p in V["padding"]:
        assert content.pad(bb(p["text"])).hex() == p["padded"]


@pytest.mark.parametrize("v", V["slot"], ids=lambda v: v["key_id"][:8])
def test_slot(v: dict[str, Any]) -> None:
    kc, uid, kid, pk = bb(v["kc"]), bb(v["user_id"]), bb(v["key_id"]), bb(v["public_key"])
    assert vc.slot_kek(kc).hex() == v["kek"]
    sk = x25519.X25519PrivateKey.from_private_bytes(bb(v["private_key"]))
    assert vc.private_key_pkcs8(sk).hex() == v["private_key_pkcs8"]
    aad = vc.slot_aad(user_id=uid, key_id=kid, keypair_version=v["keypair_version"], public_key=pk)
    assert aad.hex() == v["aad"]
    box = aead.seal_with_nonce(vc.slot_kek(kc), bb(v["nonce"]), vc.private_key_pkcs8(sk), aad)
    assert box.hex() == v["slot"]
    opened = vc.open_slot(
        kc,
        bb(v["slot"]),
        user_id=uid,
        key_id=kid,
        keypair_version=v["keypair_version"],
        public_key=pk,
    )
    assert vc.public_key_bytes(opened) == pk


@pytest.mark.parametrize("v", V["safe_key"], ids=lambda v: str(v["generation"]))
def test_safe_key(v: dict[str, Any]) -> None:
    sk_r = x25519.X25519PrivateKey.from_private_bytes(bb(v["recipient_private_key"]))
    assert vc.public_key_bytes(sk_r).hex() == v["recipient_public_key"]
    ctx = {"safe_id": bb(v["safe_id"]), "user_id": bb(v["user_id"]), "generation": v["generation"]}
    assert vc.safe_key_info(**ctx).hex() == v["info"]
    sk_e = hpke_reference.derive_key_pair(bb(v["ikmE"]))
    assert sk_e.private_bytes_raw().hex() == v["skE"]
    enc, ct = hpke_reference.seal_base(
        sk_r.public_key().public_bytes_raw(), bb(v["info"]), b"", bb(v["safe_key"]), sk_e
    )
    assert (enc + ct).hex() == v["sealed"]
    assert vc.open_safe_key(bb(v["sealed"]), sk_r, **ctx).hex() == v["safe_key"]
    # And what cryptography seals (random ephemeral) opens the same way.
    sealed = vc.seal_safe_key(bb(v["safe_key"]), bb(v["recipient_public_key"]), **ctx)
    assert vc.open_safe_key(sealed, sk_r, **ctx).hex() == v["safe_key"]


def test_previous_key() -> None:
    for v in V["previous_key"]:
        aad = vc.previous_key_aad(
            safe_id=bb(v["safe_id"]),
            old_generation=v["old_generation"],
            new_generation=v["new_generation"],
        )
        assert aad.hex() == v["aad"]
        assert (
            aead.seal_with_nonce(bb(v["new_key"]), bb(v["nonce"]), bb(v["old_key"]), aad).hex()
            == v["box"]
        )
        old = vc.unwrap_previous_key(
            bb(v["new_key"]),
            bb(v["box"]),
            safe_id=bb(v["safe_id"]),
            new_generation=v["new_generation"],
        )
        assert old.hex() == v["old_key"]


def test_safe_names_and_folders() -> None:
    for v in V["safe_name"]:
        ctx = {"safe_id": bb(v["safe_id"]), "version": v["version"], "generation": v["generation"]}
        assert content.encode_name(v["name"]).hex() == v["plaintext"]
        assert vc.safe_name_aad(**ctx).hex() == v["aad"]
        assert (
            aead.seal_with_nonce(
                bb(v["key"]), bb(v["nonce"]), bb(v["plaintext"]), bb(v["aad"])
            ).hex()
            == v["ciphertext"]
        )
        assert vc.decrypt_safe_name(bb(v["key"]), bb(v["ciphertext"]), **ctx) == v["name"]
    for v in V["folder"]:
        fctx = {
            "safe_id": bb(v["safe_id"]),
            "folder_id": bb(v["folder_id"]),
            "parent_id": b(v["parent_id"]),
            "version": v["version"],
            "generation": v["generation"],
        }
        assert vc.folder_aad(**fctx).hex() == v["aad"]
        assert (
            aead.seal_with_nonce(
                bb(v["key"]), bb(v["nonce"]), bb(v["plaintext"]), bb(v["aad"])
            ).hex()
            == v["ciphertext"]
        )
        assert vc.decrypt_folder_name(bb(v["key"]), bb(v["ciphertext"]), **fctx) == v["name"]


def _item_ctx(v: dict[str, Any]) -> dict[str, Any]:
    return {
        "safe_id": bb(v["safe_id"]),
        "item_id": bb(v["item_id"]),
        "folder_id": b(v["folder_id"]),
        "version": v["version"],
        "generation": v["generation"],
        "schema": v["schema"],
    }


@pytest.mark.parametrize("v", V["item"], ids=lambda v: v["content"]["type"])
def test_item(v: dict[str, Any]) -> None:
    assert content.encode_json(v["content"]).hex() == v["plaintext"]
    assert len(bb(v["plaintext"])) % vc.PAD_BLOCK == 0
    assert vc.item_aad(**_item_ctx(v)).hex() == v["aad"]
    box = aead.seal_with_nonce(bb(v["key"]), bb(v["nonce"]), bb(v["plaintext"]), bb(v["aad"]))
    assert box.hex() == v["ciphertext"]
    assert vc.decrypt_item(bb(v["key"]), bb(v["ciphertext"]), **_item_ctx(v)) == v["content"]


def test_file_key() -> None:
    for v in V["file_key"]:
        ctx = {
            "safe_id": bb(v["safe_id"]),
            "file_id": bb(v["file_id"]),
            "generation": v["generation"],
        }
        assert vc.file_key_aad(**ctx).hex() == v["aad"]
        assert (
            aead.seal_with_nonce(
                bb(v["safe_key"]), bb(v["nonce"]), bb(v["file_key"]), bb(v["aad"])
            ).hex()
            == v["wrapped"]
        )
        assert vc.unwrap_file_key(bb(v["safe_key"]), bb(v["wrapped"]), **ctx).hex() == v["file_key"]


def _file_boxes(v: dict[str, Any]) -> list[bytes]:
    data = vault_vectors.file_plaintext(v["size"])
    boxes = []
    for c in v["chunks"]:
        piece = data[c["index"] * vc.CHUNK_BYTES :][: c["plaintext_size"]]
        aad = vc.chunk_aad(file_id=bb(v["file_id"]), index=c["index"], last=c["last"])
        assert aad.hex() == c["aad"]
        box = aead.seal_with_nonce(bb(v["file_key"]), bb(c["nonce"]), piece, aad)
        assert len(box) == c["box_size"]
        assert hashlib.sha256(box).hexdigest() == c["box_sha256"]
        if c["box"] is not None:
            assert box.hex() == c["box"]
        boxes.append(box)
    return boxes


@pytest.mark.parametrize("v", V["file"], ids=lambda v: str(v["size"]))
def test_file(v: dict[str, Any]) -> None:
    boxes = _file_boxes(v)
    assert sum(map(len, boxes)) == v["body_size"] == vc.ciphertext_size(v["size"])
    assert vc.plaintext_size(v["body_size"]) == v["size"]
    # Decrypt fed in awkward pieces (7 bytes at a time for the small ones).
    body = b"".join(boxes)
    step = 7 if len(body) < 1000 else 4099
    pieces = [body[i : i + step] for i in range(0, len(body), step)]
    plain = b"".join(vc.decrypt_file(bb(v["file_key"]), bb(v["file_id"]), pieces))
    assert hashlib.sha256(plain).hexdigest() == v["plaintext_sha256"]


def test_fingerprint() -> None:
    for v in V["fingerprint"]:
        got = vc.fingerprint(user_id=bb(v["user_id"]), public_key=bb(v["public_key"]))
        assert got == v["fingerprint"]


def test_file_key_move() -> None:
    for v in V["file_key_move"]:
        to_ctx = {
            "safe_id": bb(v["to_safe_id"]),
            "file_id": bb(v["file_id"]),
            "generation": v["to_generation"],
        }
        assert vc.file_key_aad(**to_ctx).hex() == v["to_aad"]
        assert (
            aead.seal_with_nonce(
                bb(v["to_safe_key"]), bb(v["nonce"]), bb(v["file_key"]), bb(v["to_aad"])
            ).hex()
            == v["to_wrapped"]
        )
        rewrapped = _rewrap(v)
        assert rewrapped != bb(v["to_wrapped"])  # a fresh nonce
        for wrapped in (rewrapped, bb(v["to_wrapped"])):
            assert (
                vc.unwrap_file_key(bb(v["to_safe_key"]), wrapped, **to_ctx).hex() == v["file_key"]
            )


def _rewrap(v: dict[str, Any]) -> bytes:
    return vc.rewrap_file_key(
        bb(v["from_safe_key"]),
        bb(v["to_safe_key"]),
        bb(v["from_wrapped"]),
        file_id=bb(v["file_id"]),
        from_safe_id=bb(v["from_safe_id"]),
        from_generation=v["from_generation"],
        to_safe_id=bb(v["to_safe_id"]),
        to_generation=v["to_generation"],
    )


def _reencrypt(v: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    return vc.reencrypt_item(
        bb(v["from_safe_key"]),
        bb(v["to_safe_key"]),
        item=vc.ItemRecord(
            item_id=bb(v["item_id"]),
            folder_id=b(v["from_folder_id"]),
            version=v["version"],
            generation=v["from_generation"],
            schema=v["schema"],
            ct=bb(v["from_ciphertext"]),
        ),
        from_safe_id=bb(v["from_safe_id"]),
        to_safe_id=bb(v["to_safe_id"]),
        to_folder_id=b(v["to_folder_id"]),
        to_generation=v["to_generation"],
    )


def test_item_move() -> None:
    for v in V["item_move"]:
        to_ctx = {
            "safe_id": bb(v["to_safe_id"]),
            "item_id": bb(v["item_id"]),
            "folder_id": b(v["to_folder_id"]),
            "version": v["version"],
            "generation": v["to_generation"],
            "schema": v["schema"],
        }
        assert vc.item_aad(**to_ctx).hex() == v["to_aad"]
        pt = content.encode_json(v["content"])
        assert (
            aead.seal_with_nonce(bb(v["to_safe_key"]), bb(v["nonce"]), pt, bb(v["to_aad"])).hex()
            == v["to_ciphertext"]
        )
        got, ct = _reencrypt(v)
        assert got == v["content"]
        for box in (ct, bb(v["to_ciphertext"])):
            assert vc.decrypt_item(bb(v["to_safe_key"]), box, **to_ctx) == v["content"]


def _attempt(path: str, v: dict[str, Any], change: dict[str, Any]) -> None:
    kind = path.split("/")[0]
    if kind == "file":
        _open_file_changed(v, change["operation"])
    else:
        _open_changed(kind, v, change)


def _vector(path: str) -> dict[str, Any]:
    kind, index = path.split("/")
    return dict(V[kind][int(index)])


def _open_changed(kind: str, v: dict[str, Any], change: dict[str, Any]) -> None:
    v.update(change)
    if kind == "item":
        vc.decrypt_item(bb(v["key"]), bb(v["ciphertext"]), **_item_ctx(v))
    elif kind == "slot":
        vc.open_slot(
            bb(v["kc"]),
            bb(v["slot"]),
            user_id=bb(v["user_id"]),
            key_id=bb(v["key_id"]),
            keypair_version=v["keypair_version"],
            public_key=bb(v["public_key"]),
        )
    elif kind == "safe_key":
        vc.open_safe_key(
            bb(v["sealed"]),
            x25519.X25519PrivateKey.from_private_bytes(bb(v["recipient_private_key"])),
            safe_id=bb(v["safe_id"]),
            user_id=bb(v["user_id"]),
            generation=v["generation"],
        )
    elif kind == "previous_key":
        vc.unwrap_previous_key(
            bb(v["new_key"]),
            bb(v["box"]),
            safe_id=bb(v["safe_id"]),
            new_generation=v["new_generation"],
        )
    elif kind == "safe_name":
        vc.decrypt_safe_name(
            bb(v["key"]),
            bb(v["ciphertext"]),
            safe_id=bb(v["safe_id"]),
            version=v["version"],
            generation=v["generation"],
        )
    elif kind == "folder":
        vc.decrypt_folder_name(
            bb(v["key"]),
            bb(v["ciphertext"]),
            safe_id=bb(v["safe_id"]),
            folder_id=bb(v["folder_id"]),
            parent_id=b(v["parent_id"]),
            version=v["version"],
            generation=v["generation"],
        )
    elif kind == "file_key_move":
        _rewrap(v)
    elif kind == "item_move":
        _reencrypt(v)
    elif kind == "file_key":
        vc.unwrap_file_key(
            bb(v["safe_key"]),
            bb(v["wrapped"]),
            safe_id=bb(v["safe_id"]),
            file_id=bb(v["file_id"]),
            generation=v["generation"],
        )
    else:
        raise AssertionError(kind)


def _open_file_changed(v: dict[str, Any], operation: str) -> None:
    boxes = _file_boxes(v)
    if operation == "swap chunks 0 and 1":
        boxes[0], boxes[1] = boxes[1], boxes[0]
    elif operation == "drop the last chunk":
        boxes = boxes[:-1]
    elif operation == "append a copy of the last chunk":
        boxes = [*boxes, boxes[-1]]
    else:
        raise AssertionError(operation)
    for _ in vc.decrypt_file(bb(v["file_key"]), bb(v["file_id"]), boxes):
        pass


@pytest.mark.parametrize(
    "case", V["negative"], ids=lambda c: f"{c['vector']}:{','.join(c['change'])}"
)
def test_negative(case: dict[str, Any]) -> None:
    v = _vector(case["vector"])
    with pytest.raises(vc.CiphertextInvalid) as err:
        _attempt(case["vector"], v, case["change"])
    assert err.value.code == case["error"]
    assert (
        "does not open" in err.value.message
        or "truncated" in err.value.message
        or "extended" in err.value.message
    )
