"""vault_api/static/js/vaultcrypto.js in headless Chromium against every entry
of tests/vectors/vault-v1.json (outputs reproduced byte for byte from the
inputs, every ciphertext opened, every negative case refused with its code),
and round trips with the Python reference: Python encrypts -> the page
decrypts, the page encrypts -> Python decrypts."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page

from tests.vault_browser.conftest import Browsers, VaultSite, script
from tests.vectorfiles import load
from vault_api import crypto as vc

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

V = load("vault-v1.json")

# Loads the module from the vault's origin and HPKE from the gateway, as the UI
# does, plus helpers for the scripts below.
LOAD = script("load_vaultcrypto")


@pytest_asyncio.fixture(loop_scope="session")
async def crypto_page(browsers: Browsers, vault: VaultSite) -> AsyncIterator[Page]:
    page = await browsers.page()
    # Any document of the vault's origin will do; the health check is the smallest.
    await page.goto(f"{vault.url}/api/health")
    assert await page.evaluate(LOAD, vault.net.addresses.gateway_url) is True
    yield page


VECTORS = script("vectors")


def _file_plain_sha(size: int) -> str:
    return hashlib.sha256(bytes(i % 251 for i in range(size))).hexdigest()


async def test_every_vector(crypto_page: Page) -> None:
    got = await crypto_page.evaluate(VECTORS, V)

    assert got["transcript"] == [t["out"] for t in V["transcript"]]
    assert got["padding"] == [p["padded"] for p in V["padding"]]
    assert {k: v for k, v in got["labels"].items()} == {
        "slotKek": V["labels"]["slot_kek"],
        "slot": V["labels"]["slot"],
        "safeKey": V["labels"]["safe_key"],
        "previousKey": V["labels"]["previous_key"],
        "safeName": V["labels"]["safe_name"],
        "folder": V["labels"]["folder"],
        "item": V["labels"]["item"],
        "fileKey": V["labels"]["file_key"],
        "fileChunk": V["labels"]["file_chunk"],
        "fileChunkV2": load("vault-files-v2.json")["labels"]["file_chunk"],
        "fingerprint": V["labels"]["fingerprint"],
    }
    assert len(got["slot"]) == len(V["slot"]) == 2
    for g, v in zip(got["slot"], V["slot"], strict=True):
        assert g["kek"] == v["kek"]
        assert g["aad"] == v["aad"]
        assert g["slot"] == v["slot"]  # wrapKey("pkcs8") gives the reference's bytes
        assert g["slotWithKcKey"] == v["slot"]
        assert g["publicKey"] == g["publicKeyWithKek"] == v["public_key"]
        assert g["extractable"] is False
        assert g["usages"] == ["deriveBits"]
        assert g["exportError"] == "InvalidAccessError"
        assert g["pkcs8"] == v["private_key_pkcs8"]
    for g, v in zip(got["safeKey"], V["safe_key"], strict=True):
        assert g["info"] == v["info"]
        assert g["sealed"] == v["sealed"]  # HPKE with the vector's ephemeral key
        assert g["raw"] == v["safe_key"]
        assert g["extractable"] is False
        assert sorted(g["usages"]) == ["decrypt", "encrypt", "unwrapKey", "wrapKey"]
        assert g["probe"] == "010203"
        assert g["randomOpens"] == v["safe_key"]
        assert g["randomDiffers"] is True
    for g, v in zip(got["previousKey"], V["previous_key"], strict=True):
        assert g["aad"] == v["aad"]
        assert g["box"] == v["box"]
        assert g["old"] == v["old_key"]
        assert g["chainGenerations"] == [v["new_generation"], v["old_generation"]]
        assert g["chainOldExtractable"] is False
    for g, v in zip(got["safeName"], V["safe_name"], strict=True):
        assert (g["aad"], g["plaintext"], g["ciphertext"], g["name"]) == (
            v["aad"],
            v["plaintext"],
            v["ciphertext"],
            v["name"],
        )
    assert len(got["folder"]) == 2
    for g, v in zip(got["folder"], V["folder"], strict=True):
        assert (g["aad"], g["plaintext"], g["ciphertext"], g["name"]) == (
            v["aad"],
            v["plaintext"],
            v["ciphertext"],
            v["name"],
        )
    assert len(got["item"]) == 3
    for g, v in zip(got["item"], V["item"], strict=True):
        assert g["aad"] == v["aad"]
        assert g["plaintext"] == v["plaintext"]  # compact UTF-8 JSON, padded: byte for byte
        assert g["ciphertext"] == v["ciphertext"]
        assert g["content"] == v["content"]
    for g, v in zip(got["fileKey"], V["file_key"], strict=True):
        assert g["aad"] == v["aad"]
        assert g["wrapped"] == g["wrappedFromKey"] == v["wrapped"]
        assert g["fileKey"] == v["file_key"]
        assert g["extractable"] is False
    assert len(got["file"]) == 4
    for g, v in zip(got["file"], V["file"], strict=True):
        assert [c["aad"] for c in g["chunks"]] == [c["aad"] for c in v["chunks"]]
        assert [c["size"] for c in g["chunks"]] == [c["box_size"] for c in v["chunks"]]
        assert [c["sha256"] for c in g["chunks"]] == [c["box_sha256"] for c in v["chunks"]]
        assert all(c["box"] is True for c in g["chunks"] if c["box"] is not None)
        assert g["bodySize"] == g["ciphertextSize"] == v["body_size"]
        assert g["plaintextSize"] == v["size"]
        assert g["chunkCount"] == len(v["chunks"]) == g["decryptorChunks"]
        assert g["decrypted"] == g["streamed"] == g["reencrypted"] == v["plaintext_sha256"]
        assert v["plaintext_sha256"] == _file_plain_sha(v["size"])
        assert g["reencryptedSizes"] == [c["box_size"] for c in v["chunks"]]
    assert got["fingerprint"] == [f["fingerprint"] for f in V["fingerprint"]]
    # Moving a file and an item to another safe (docs/vault.md 8.4).
    assert len(got["fileKeyMove"]) == len(V["file_key_move"]) == 1
    for g, v in zip(got["fileKeyMove"], V["file_key_move"], strict=True):
        assert g["aad"] == v["to_aad"]
        assert g["wrapped"] == g["wrappedWithKeys"] == v["to_wrapped"]
        assert g["randomOpens"] == v["file_key"]
        assert g["randomDiffers"] is True
    assert len(got["itemMove"]) == len(V["item_move"]) == 1
    for g, v in zip(got["itemMove"], V["item_move"], strict=True):
        assert g["aad"] == v["to_aad"]
        assert g["ciphertext"] == v["to_ciphertext"]
        assert g["content"] == v["content"]
        assert g["listed"] == ["AAAAAAAAAAAAAAAAAAAAAA"]


NEGATIVE = script("negative")


async def test_every_negative_vector(crypto_page: Page) -> None:
    cases = V["negative"]
    assert len(cases) == 22
    got = await crypto_page.evaluate(NEGATIVE, [V, cases])
    for case, err in zip(cases, got, strict=True):
        assert err is not None, case
        assert err["isVault"] is True, (case, err)
        assert err["code"] == case["error"], (case, err)
        assert err["name"] != "OperationError"
        msg = err["message"]
        assert "does not open" in msg or "truncated" in msg or "extended" in msg, msg
    # Every kind of vector has a negative case.
    assert {c["vector"].split("/")[0] for c in cases} == {
        "item",
        "slot",
        "safe_key",
        "previous_key",
        "safe_name",
        "folder",
        "file_key",
        "file",
        "file_key_move",
        "item_move",
    }


def h(b: bytes | None) -> str | None:
    return None if b is None else b.hex()


ITEMS: list[dict[str, Any]] = [
    {
        "type": "login",
        "title": "Mail — ünïcode ✓ 🔑",
        "username": "alice@example.com",
        "password": 'p"a\\ss\nword\u2028',
        "urls": ["https://mail.example.com"],
        "totp": "JBSWY3DPEHPK3PXP",
        "x_unknown": {"kept": [1, 2, 3]},
    },
    {"type": "card", "title": "Visa", "number": "4111111111111111", "expiry": "12/2030"},
    {"type": "note", "title": "", "notes": "x" * 5000},
]

PY_TO_JS = script("python_to_page")

JS_TO_PY = script("page_to_python")


async def test_python_encrypts_the_page_decrypts(crypto_page: Page) -> None:
    kc, uid, kid, sid, fid, folder = (os.urandom(n) for n in (32, 16, 16, 16, 16, 16))
    sk = vc.generate_key_pair()
    pk = vc.public_key_bytes(sk)
    old, ks = vc.new_safe_key(), vc.new_safe_key()
    items = []
    for n, content in enumerate(ITEMS):
        iid = os.urandom(16)
        gen, key, fold = (1, old, None) if n == 0 else (2, ks, folder)
        ct = vc.encrypt_item(
            key, content, safe_id=sid, item_id=iid, folder_id=fold, version=n + 1, generation=gen
        )
        items.append(
            {"id": h(iid), "ct": h(ct), "folder_id": h(fold), "version": n + 1, "generation": gen}
        )
    fk = vc.new_file_key()
    data = os.urandom(3 * vc.CHUNK_BYTES + 5)
    body = b"".join(vc.encrypt_file(fk, fid, [data]))
    p = {
        "kc": h(kc),
        "user_id": h(uid),
        "key_id": h(kid),
        "safe_id": h(sid),
        "public_key": h(pk),
        "slot": h(vc.make_slot(kc, sk, user_id=uid, key_id=kid)),
        "sealed": h(vc.seal_safe_key(ks, pk, safe_id=sid, user_id=uid, generation=2)),
        "previous": h(vc.wrap_previous_key(ks, old, safe_id=sid, old_generation=1)),
        "name_ct": h(vc.encrypt_safe_name(ks, "Home ✓", safe_id=sid, version=1, generation=2)),
        "folder_id": h(folder),
        "folder_ct": h(
            vc.encrypt_folder_name(
                ks,
                "Banking",
                safe_id=sid,
                folder_id=folder,
                parent_id=None,
                version=1,
                generation=2,
            )
        ),
        "items": items,
        "file_id": h(fid),
        "file_wrap": h(vc.wrap_file_key(ks, fk, safe_id=sid, file_id=fid, generation=2)),
        "body": h(body),
    }
    got = await crypto_page.evaluate(PY_TO_JS, p)
    assert got["name"] == "Home ✓"
    assert got["folder"] == "Banking"
    assert got["items"] == ITEMS
    assert got["file"] == hashlib.sha256(data).hexdigest()
    assert got["skExtractable"] is False


async def test_the_page_encrypts_python_decrypts(crypto_page: Page) -> None:
    kc, uid, kid, sid = (os.urandom(n) for n in (32, 16, 16, 16))
    py_uid = os.urandom(16)
    py_sk = vc.generate_key_pair()
    p = {
        "kc": h(kc),
        "user_id": h(uid),
        "key_id": h(kid),
        "safe_id": h(sid),
        "py_user_id": h(py_uid),
        "py_public_key": h(vc.public_key_bytes(py_sk)),
        "items": ITEMS,
        "file_size": 2 * vc.CHUNK_BYTES + 17,
    }
    got = await crypto_page.evaluate(JS_TO_PY, p)
    b = bytes.fromhex

    # The page's key pair: its slot opens with Kc to the public key it reported.
    sk = vc.open_slot(
        kc,
        b(got["slot"]),
        user_id=uid,
        key_id=kid,
        keypair_version=1,
        public_key=b(got["public_key"]),
    )
    assert vc.public_key_bytes(sk) == b(got["public_key"])
    assert got["fingerprint"] == vc.fingerprint(user_id=uid, public_key=b(got["public_key"]))
    # Ks sealed by the page to Python's public key; the chain back to generation 1.
    ks = vc.open_safe_key(b(got["sealed"]), py_sk, safe_id=sid, user_id=py_uid, generation=2)
    old = vc.unwrap_previous_key(ks, b(got["previous"]), safe_id=sid, new_generation=2)
    folder = b(got["folder_id"])
    assert vc.decrypt_safe_name(ks, b(got["name_ct"]), safe_id=sid, version=3, generation=2) == (
        "Family ✓"
    )
    assert (
        vc.decrypt_folder_name(
            ks,
            b(got["folder_ct"]),
            safe_id=sid,
            folder_id=folder,
            parent_id=None,
            version=1,
            generation=2,
        )
        == "Banking"
    )
    opened = [
        vc.decrypt_item(
            ks,
            b(i["ct"]),
            safe_id=sid,
            item_id=b(i["id"]),
            folder_id=folder,
            version=4,
            generation=2,
        )
        for i in got["items"]
    ]
    assert opened == ITEMS
    o = got["old_item"]
    assert (
        vc.decrypt_item(
            old,
            b(o["ct"]),
            safe_id=sid,
            item_id=b(o["id"]),
            folder_id=None,
            version=1,
            generation=1,
        )
        == ITEMS[0]
    )
    # Moved to another place, the page's ciphertext is refused by Python too.
    with pytest.raises(vc.ItemInvalid):
        vc.decrypt_item(
            ks,
            b(got["items"][0]["ct"]),
            safe_id=sid,
            item_id=b(got["items"][1]["id"]),
            folder_id=folder,
            version=4,
            generation=2,
        )
    fid = b(got["file_id"])
    fk = vc.unwrap_file_key(ks, b(got["file_wrap"]), safe_id=sid, file_id=fid, generation=2)
    body = b(got["body"])
    assert len(body) == vc.ciphertext_size(p["file_size"])
    plain = b"".join(vc.decrypt_file(fk, fid, [body[:1000], body[1000:]]))
    assert hashlib.sha256(plain).hexdigest() == got["file_sha256"]


ROTATE = script("rotate")


async def test_a_rotation_planned_in_the_page_opens_in_python(crypto_page: Page) -> None:
    sid, fid, folder, member = (os.urandom(16) for _ in range(4))
    member_sk = vc.generate_key_pair()
    old = vc.new_safe_key()
    fk = vc.new_file_key()
    contents = ITEMS[:2]
    items = []
    for content in contents:
        iid = os.urandom(16)
        ct = vc.encrypt_item(
            old, content, safe_id=sid, item_id=iid, folder_id=None, version=3, generation=1
        )
        items.append({"id": h(iid), "version": 3, "ct": h(ct)})
    p = {
        "safe_id": h(sid),
        "old_key": h(old),
        "name_ct": h(vc.encrypt_safe_name(old, "Team", safe_id=sid, version=2, generation=1)),
        "items": items,
        "folder_id": h(folder),
        "folder_ct": h(
            vc.encrypt_folder_name(
                old, "Ops", safe_id=sid, folder_id=folder, parent_id=None, version=1, generation=1
            )
        ),
        "file_id": h(fid),
        "file_wrap": h(vc.wrap_file_key(old, fk, safe_id=sid, file_id=fid, generation=1)),
        "member_id": h(member),
        "member_public_key": h(vc.public_key_bytes(member_sk)),
    }
    got = await crypto_page.evaluate(ROTATE, p)
    b = bytes.fromhex
    assert (got["from"], got["to"], got["name_base"]) == (1, 2, 2)
    assert got["refused"] == "item_invalid"
    assert got["newKeyExtractable"] is False
    [m] = got["members"]
    assert m["user_id"] == h(member)
    new = vc.open_safe_key(b(m["sealed"]), member_sk, safe_id=sid, user_id=member, generation=2)
    assert new != old
    assert vc.unwrap_previous_key(new, b(got["previous"]), safe_id=sid, new_generation=2) == old
    assert (
        vc.decrypt_safe_name(new, b(got["name_ct"]), safe_id=sid, version=2, generation=2) == "Team"
    )
    assert [
        vc.decrypt_item(
            new,
            b(i["ct"]),
            safe_id=sid,
            item_id=b(i["id"]),
            folder_id=None,
            version=i["base"],
            generation=2,
        )
        for i in got["items"]
    ] == contents
    [f] = got["folders"]
    assert (
        vc.decrypt_folder_name(
            new, b(f["ct"]), safe_id=sid, folder_id=folder, parent_id=None, version=1, generation=2
        )
        == "Ops"
    )
    [fw] = got["files"]
    assert vc.unwrap_file_key(new, b(fw["wrap"]), safe_id=sid, file_id=fid, generation=2) == fk


MISUSE = script("misuse")


async def test_misuse_and_malformed_input_raise_named_errors(crypto_page: Page) -> None:
    got = await crypto_page.evaluate(MISUSE, {})
    assert got == {
        "mismatch": "key_mismatch",
        "notPkcs8": "malformed_ciphertext",
        "otherPublicKey": "slot_invalid",
        "shortSlot": "malformed_ciphertext",
        "wrongKc": "slot_invalid",
        "nonExtractableSlot": "TypeError",
        "badB64": "malformed_ciphertext",
        "strayBits": "malformed_ciphertext",
        "goodB64": "00",
        "roundTrip": True,
        "wrongLength": "malformed_ciphertext",
        "badType": "content_invalid",
        "lowOrder": "malformed_ciphertext",
        "nonces": 50,
        "kekExtractable": False,
        "notJson": "content_invalid",
    }
