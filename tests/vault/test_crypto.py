"""The client-side crypto (vault_api.crypto): round trips, and refusals that
name what failed. Every tampered, swapped or replayed ciphertext raises a
typed error (never cryptography's bare InvalidTag) whose message names the
record and its context and holds no key or plaintext."""

from __future__ import annotations

import os

import pytest
from cryptography.exceptions import InvalidTag
from hypothesis import given, settings
from hypothesis import strategies as st

from authnet.protocol.encoding import b64u_encode
from vault_api import crypto as vc

SID, IID, FID, UID, KID = (os.urandom(16) for _ in range(5))
KS = vc.new_safe_key()
LOGIN = {"type": "login", "title": "Bank", "username": "alice", "password": "s3cret-Pa55!"}


def item(content: dict[str, object] = LOGIN, **ctx: object) -> bytes:
    base: dict[str, object] = {
        "safe_id": SID,
        "item_id": IID,
        "folder_id": None,
        "version": 3,
        "generation": 2,
    }
    base.update(ctx)
    return vc.encrypt_item(KS, content, **base)  # type: ignore[arg-type]


def open_item(ct: bytes, key: bytes = KS, **ctx: object) -> dict[str, object]:
    base: dict[str, object] = {
        "safe_id": SID,
        "item_id": IID,
        "folder_id": None,
        "version": 3,
        "generation": 2,
    }
    base.update(ctx)
    return vc.decrypt_item(key, ct, **base)  # type: ignore[arg-type]


def test_item_round_trip_and_fresh_nonces() -> None:
    a, b = item(), item()
    assert a != b  # a fresh random nonce each time
    assert a[:12] != b[:12]
    assert open_item(a) == LOGIN
    # Padded: the password's length is hidden within 32 bytes.
    short = item({**LOGIN, "password": "x"})
    longer = item({**LOGIN, "password": "x" * 20})
    assert len(short) == len(longer)


@pytest.mark.parametrize(
    ("ctx", "names"),
    [
        ({"item_id": os.urandom(16)}, "item"),
        ({"safe_id": os.urandom(16)}, "safe"),
        ({"folder_id": os.urandom(16)}, "folder"),
        ({"version": 4}, "version 4"),
        ({"generation": 3}, "key generation 3"),
    ],
)
def test_a_swapped_or_replayed_item_is_refused_by_name(ctx: dict[str, object], names: str) -> None:
    ct = item()
    with pytest.raises(vc.ItemInvalid) as err:
        open_item(ct, **ctx)
    message = err.value.message
    # The message names the item and safe the client expected, and says why.
    expected_item = ctx.get("item_id", IID)
    expected_safe = ctx.get("safe_id", SID)
    assert isinstance(expected_item, bytes)
    assert isinstance(expected_safe, bytes)
    assert b64u_encode(expected_item)[:8] in message
    assert b64u_encode(expected_safe)[:8] in message
    assert "modified" in message
    assert names.split()[0] in message
    assert KS.hex() not in message
    assert "s3cret" not in message


def test_a_modified_item_is_refused() -> None:
    ct = bytearray(item())
    ct[20] ^= 0x40
    with pytest.raises(vc.ItemInvalid, match="does not open"):
        open_item(bytes(ct))


def test_an_item_under_another_key_is_refused() -> None:
    with pytest.raises(vc.ItemInvalid):
        open_item(item(), key=vc.new_safe_key())


def test_a_too_short_ciphertext_is_malformed_not_a_crash() -> None:
    with pytest.raises(vc.MalformedCiphertext, match="shorter"):
        open_item(b"short")


@settings(max_examples=60, deadline=None)
@given(position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_any_bit_flip_raises_a_typed_error(position: int, bit: int) -> None:
    ct = bytearray(item())
    ct[position % len(ct)] ^= 1 << bit
    try:
        open_item(bytes(ct))
    except InvalidTag:  # pragma: no cover - the failure this test guards against
        pytest.fail("a bare InvalidTag escaped")
    except vc.CiphertextInvalid:
        pass
    else:
        pytest.fail("a modified ciphertext opened")


def test_item_content_is_checked() -> None:
    with pytest.raises(vc.ContentInvalid, match="type"):
        item({"type": "spaceship", "title": "x"})
    with pytest.raises(vc.ContentInvalid, match="title"):
        item({"type": "note"})


def test_unknown_item_fields_survive_a_round_trip() -> None:
    content = {**LOGIN, "x-custom": {"kept": [1, 2]}}
    assert open_item(item(content)) == content


def test_folder_and_safe_names() -> None:
    parent = os.urandom(16)
    ct = vc.encrypt_folder_name(
        KS, "Taxes", safe_id=SID, folder_id=FID, parent_id=parent, version=1, generation=2
    )
    ctx = {"safe_id": SID, "folder_id": FID, "version": 1, "generation": 2}
    assert vc.decrypt_folder_name(KS, ct, parent_id=parent, **ctx) == "Taxes"  # type: ignore[arg-type]
    with pytest.raises(vc.FolderInvalid, match="parent"):
        vc.decrypt_folder_name(KS, ct, parent_id=None, **ctx)  # type: ignore[arg-type]
    name = vc.encrypt_safe_name(KS, "Home", safe_id=SID, version=1, generation=2)
    assert vc.decrypt_safe_name(KS, name, safe_id=SID, version=1, generation=2) == "Home"
    with pytest.raises(vc.SafeNameInvalid):
        vc.decrypt_safe_name(KS, name, safe_id=os.urandom(16), version=1, generation=2)


def test_two_slots_open_to_the_same_private_key_and_not_with_each_others_kc() -> None:
    sk = vc.generate_key_pair()
    pk = vc.public_key_bytes(sk)
    kc_phone, kc_backup = os.urandom(32), os.urandom(32)
    kid_phone, kid_backup = os.urandom(16), os.urandom(16)
    slot_phone = vc.make_slot(kc_phone, sk, user_id=UID, key_id=kid_phone)
    slot_backup = vc.make_slot(kc_backup, sk, user_id=UID, key_id=kid_backup)
    for kc, slot, kid in ((kc_phone, slot_phone, kid_phone), (kc_backup, slot_backup, kid_backup)):
        opened = vc.open_slot(kc, slot, user_id=UID, key_id=kid, keypair_version=1, public_key=pk)
        assert vc.public_key_bytes(opened) == pk
    with pytest.raises(vc.SlotInvalid) as err:
        vc.open_slot(
            kc_backup, slot_phone, user_id=UID, key_id=kid_phone, keypair_version=1, public_key=pk
        )
    assert "do not make a new key" in err.value.message
    assert kc_backup.hex() not in err.value.message
    # A slot moved to the other token's key id does not open either.
    with pytest.raises(vc.SlotInvalid):
        vc.open_slot(
            kc_phone, slot_phone, user_id=UID, key_id=kid_backup, keypair_version=1, public_key=pk
        )


def test_a_slot_for_another_public_key_is_refused() -> None:
    sk, other = vc.generate_key_pair(), vc.generate_key_pair()
    kc = os.urandom(32)
    # The slot binds the public key, so presenting another one fails the tag...
    slot = vc.make_slot(kc, sk, user_id=UID, key_id=KID)
    with pytest.raises(vc.SlotInvalid):
        vc.open_slot(
            kc,
            slot,
            user_id=UID,
            key_id=KID,
            keypair_version=1,
            public_key=vc.public_key_bytes(other),
        )


def test_safe_key_seal_binds_safe_member_and_generation() -> None:
    sk = vc.generate_key_pair()
    pk = vc.public_key_bytes(sk)
    sealed = vc.seal_safe_key(KS, pk, safe_id=SID, user_id=UID, generation=2)
    assert len(sealed) == 80
    assert vc.open_safe_key(sealed, sk, safe_id=SID, user_id=UID, generation=2) == KS
    for ctx in (
        {"safe_id": os.urandom(16), "user_id": UID, "generation": 2},
        {"safe_id": SID, "user_id": os.urandom(16), "generation": 2},
        {"safe_id": SID, "user_id": UID, "generation": 1},
    ):
        with pytest.raises(vc.SafeKeyInvalid, match="does not open"):
            vc.open_safe_key(sealed, sk, **ctx)  # type: ignore[arg-type]
    with pytest.raises(vc.SafeKeyInvalid):
        vc.open_safe_key(sealed, vc.generate_key_pair(), safe_id=SID, user_id=UID, generation=2)
    with pytest.raises(vc.MalformedCiphertext, match="not a usable X25519 key"):
        vc.seal_safe_key(KS, bytes(32), safe_id=SID, user_id=UID, generation=2)


def test_key_chain_walks_back_to_generation_one() -> None:
    keys = {g: vc.new_safe_key() for g in (1, 2, 3)}
    links = {
        g: vc.wrap_previous_key(keys[g], keys[g - 1], safe_id=SID, old_generation=g - 1)
        for g in (2, 3)
    }
    assert vc.key_chain(keys[3], safe_id=SID, current_generation=3, links=links) == keys
    links[3], links[2] = links[2], links[3]
    with pytest.raises(vc.PreviousKeyInvalid):
        vc.key_chain(keys[3], safe_id=SID, current_generation=3, links=links)


@pytest.mark.parametrize("size", [0, 1, vc.CHUNK_BYTES - 1, vc.CHUNK_BYTES, 3 * vc.CHUNK_BYTES + 5])
def test_file_streams_in_any_piece_size(size: int) -> None:
    data = os.urandom(size)
    fk = vc.new_file_key()
    pieces = [data[i : i + 1000] for i in range(0, len(data), 1000)] or [b""]
    boxes = list(vc.encrypt_file(fk, FID, iter(pieces)))
    assert len(boxes) == vc.chunk_count(size)
    body = b"".join(boxes)
    assert len(body) == vc.ciphertext_size(size)
    odd = [body[i : i + 777] for i in range(0, len(body), 777)]
    assert b"".join(vc.decrypt_file(fk, FID, odd)) == data


def test_file_tampering_is_named() -> None:
    fk = vc.new_file_key()
    data = os.urandom(2 * vc.CHUNK_BYTES + 10)
    boxes = list(vc.encrypt_file(fk, FID, [data]))
    with pytest.raises(vc.FileChunkInvalid, match="chunk 0"):
        list(vc.decrypt_file(fk, FID, [boxes[1], boxes[0], boxes[2]]))
    with pytest.raises(vc.FileTruncated, match="truncated"):
        list(vc.decrypt_file(fk, FID, boxes[:2]))
    with pytest.raises(vc.FileChunkInvalid, match="another file"):
        list(vc.decrypt_file(fk, os.urandom(16), boxes))
    with pytest.raises(vc.FileChunkInvalid, match="chunk 2"):
        list(vc.decrypt_file(fk, FID, [b"".join(boxes)[:-5]]))
    with pytest.raises(vc.FileTruncated, match="truncated"):
        list(vc.decrypt_file(fk, FID, []))


def test_file_key_wrap_binds_safe_file_and_generation() -> None:
    fk = vc.new_file_key()
    w = vc.wrap_file_key(KS, fk, safe_id=SID, file_id=FID, generation=2)
    assert vc.unwrap_file_key(KS, w, safe_id=SID, file_id=FID, generation=2) == fk
    with pytest.raises(vc.FileKeyInvalid, match="does not open"):
        vc.unwrap_file_key(KS, w, safe_id=SID, file_id=FID, generation=3)
    # Moving a file to another safe re-wraps only its key; the body is untouched.
    other_safe, other_key = os.urandom(16), vc.new_safe_key()
    moved = vc.wrap_file_key(other_key, fk, safe_id=other_safe, file_id=FID, generation=1)
    assert vc.unwrap_file_key(other_key, moved, safe_id=other_safe, file_id=FID, generation=1) == fk


def test_rotation_plan_re_encrypts_everything_under_a_new_key() -> None:
    members = [vc.generate_key_pair() for _ in range(2)]
    member_ids = [os.urandom(16) for _ in members]
    g = 2
    folder = vc.FolderRecord(
        folder_id=FID,
        parent_id=None,
        version=2,
        generation=g,
        name_ct=vc.encrypt_folder_name(
            KS, "F", safe_id=SID, folder_id=FID, parent_id=None, version=2, generation=g
        ),
    )
    it = vc.ItemRecord(
        item_id=IID,
        folder_id=FID,
        version=5,
        generation=g,
        schema=1,
        ct=vc.encrypt_item(
            KS, LOGIN, safe_id=SID, item_id=IID, folder_id=FID, version=5, generation=g
        ),
    )
    fk = vc.new_file_key()
    file_id = os.urandom(16)
    f = vc.FileRecord(
        file_id=file_id,
        generation=g,
        key_wrap=vc.wrap_file_key(KS, fk, safe_id=SID, file_id=file_id, generation=g),
    )
    state = vc.SafeState(
        safe_id=SID,
        generation=g,
        name_version=1,
        name_ct=vc.encrypt_safe_name(KS, "S", safe_id=SID, version=1, generation=g),
        items=[it],
        folders=[folder],
        files=[f],
    )
    plan = vc.plan_rotation(
        state,
        KS,
        [
            vc.Member(user_id=u, public_key=vc.public_key_bytes(k))
            for u, k in zip(member_ids, members, strict=True)
        ],
    )
    new = plan.new_key
    assert new != KS
    assert plan.to_generation == 3
    assert "new_key" not in repr(plan)
    assert vc.unwrap_previous_key(new, plan.previous_key, safe_id=SID, new_generation=3) == KS
    assert (
        vc.decrypt_item(
            new, plan.items[0].ct, safe_id=SID, item_id=IID, folder_id=FID, version=5, generation=3
        )
        == LOGIN
    )
    assert plan.items[0].base_version == 5
    assert (
        vc.unwrap_file_key(new, plan.files[0].key_wrap, safe_id=SID, file_id=file_id, generation=3)
        == fk
    )
    for uid, sk, staged in zip(member_ids, members, plan.members, strict=True):
        assert staged.user_id == uid
        assert (
            vc.open_safe_key(staged.sealed_key, sk, safe_id=SID, user_id=uid, generation=3) == new
        )
    # The old key no longer opens the re-encrypted records.
    with pytest.raises(vc.ItemInvalid):
        vc.decrypt_item(
            KS, plan.items[0].ct, safe_id=SID, item_id=IID, folder_id=FID, version=5, generation=3
        )


def test_rotation_refuses_a_record_that_does_not_open() -> None:
    bad = vc.ItemRecord(
        item_id=IID, folder_id=None, version=1, generation=1, schema=1, ct=os.urandom(80)
    )
    state = vc.SafeState(
        safe_id=SID,
        generation=1,
        name_version=1,
        name_ct=vc.encrypt_safe_name(KS, "S", safe_id=SID, version=1, generation=1),
        items=[bad],
    )
    with pytest.raises(vc.ItemInvalid):
        vc.plan_rotation(state, KS, [])


def test_fingerprint_format() -> None:
    fp = vc.fingerprint(user_id=UID, public_key=vc.public_key_bytes(vc.generate_key_pair()))
    groups = fp.split("-")
    assert [len(g) for g in groups] == [8, 8, 8, 8]
    assert all(c in "0123456789abcdef" for c in fp.replace("-", ""))


def test_the_public_api_is_complete() -> None:
    exported = set(vc.__all__)
    public = {n for n in dir(vc) if not n.startswith("_")} - {
        "aead",
        "codes",
        "content",
        "errors",
        "devices",
        "factors",
        "files",
        "ids",
        "labels",
        "moves",
        "records",
        "rotation",
        "safekeys",
        "success",
        "userkeys",
        "annotations",
    }
    assert public == exported
