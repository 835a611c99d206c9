"""The reference crypto of moving an item to another safe (vault_api.crypto.moves):
everything re-encrypted for the target opens there and only there, at the
same version; nothing that does not open in the source is laundered."""

from __future__ import annotations

from typing import Any

import pytest

from authnet.protocol.encoding import b64u_encode
from vault_api import crypto as vc

A, B, ITEM, FOLDER_A, FOLDER_B = (vc.new_id() for _ in range(5))
CONTENT = {"type": "login", "title": "Mail", "password": "pw-1234-xyz"}


def record(key: bytes, content: dict[str, Any], *, version: int, generation: int) -> vc.ItemRecord:
    return vc.ItemRecord(
        item_id=ITEM,
        folder_id=FOLDER_A,
        version=version,
        generation=generation,
        schema=1,
        ct=vc.encrypt_item(
            key,
            content,
            safe_id=A,
            item_id=ITEM,
            folder_id=FOLDER_A,
            version=version,
            generation=generation,
        ),
    )


def setup() -> dict[str, Any]:
    ka1, ka2, kb = vc.new_safe_key(), vc.new_safe_key(), vc.new_safe_key()
    listed, unlisted, dangling = vc.new_id(), vc.new_id(), vc.new_id()
    fk = vc.new_file_key()
    files = [
        vc.FileRecord(
            file_id=listed,
            generation=2,
            key_wrap=vc.wrap_file_key(ka2, fk, safe_id=A, file_id=listed, generation=2),
        ),
        vc.FileRecord(
            file_id=unlisted,
            generation=2,
            key_wrap=vc.wrap_file_key(
                ka2, vc.new_file_key(), safe_id=A, file_id=unlisted, generation=2
            ),
        ),
    ]
    content = {
        **CONTENT,
        "files": [
            {"id": b64u_encode(listed), "name": "a.pdf"},
            {"id": b64u_encode(dangling), "name": "gone.pdf"},
            {"id": "not base64!", "name": "junk"},
            {"name": "no id"},
        ],
    }
    return {
        "keys": {1: ka1, 2: ka2},
        "kb": kb,
        "fk": fk,
        "listed": listed,
        "dangling": dangling,
        "files": files,
        "item": record(ka2, content, version=3, generation=2),
        "history": [
            record(ka2, {**CONTENT, "title": "v2"}, version=2, generation=2),
            record(ka1, {**CONTENT, "title": "v1"}, version=1, generation=1),
        ],
        "content": content,
    }


def plan(s: dict[str, Any], item: vc.ItemRecord | None = None, **change: Any) -> vc.MovePlan:
    args: dict[str, Any] = {
        "history": s["history"],
        "safe_files": s["files"],
        "from_safe_id": A,
        "from_keys": s["keys"],
        "to_safe_id": B,
        "to_key": s["kb"],
        "to_generation": 5,
        "to_folder_id": FOLDER_B,
        **change,
    }
    return vc.plan_move(item or s["item"], **args)


def test_everything_moves_to_the_target_context_at_the_same_versions() -> None:
    s = setup()
    p = plan(s)
    kb = s["kb"]
    assert (p.expected_version, p.to_generation, p.folder_id) == (3, 5, FOLDER_B)
    assert p.content == s["content"]
    ctx = {"safe_id": B, "item_id": ITEM, "folder_id": FOLDER_B, "generation": 5}
    assert vc.decrypt_item(kb, p.ct, version=3, **ctx) == s["content"]
    assert [
        (h.version, vc.decrypt_item(kb, h.ct, version=h.version, **ctx)["title"]) for h in p.history
    ] == [
        (2, "v2"),
        (1, "v1"),
    ]
    # Only the file the item lists moves; one it lists that A does not hold is reported.
    [moved] = p.files
    assert moved.file_id == s["listed"]
    assert p.missing_files == [s["dangling"]]
    fk = vc.unwrap_file_key(kb, moved.key_wrap, safe_id=B, file_id=moved.file_id, generation=5)
    assert fk == s["fk"]
    # In the old context, nothing of it opens.
    with pytest.raises(vc.ItemInvalid):
        vc.decrypt_item(
            kb, p.ct, safe_id=A, item_id=ITEM, folder_id=FOLDER_B, version=3, generation=5
        )
    with pytest.raises(vc.FileKeyInvalid):
        vc.unwrap_file_key(kb, moved.key_wrap, safe_id=A, file_id=moved.file_id, generation=5)


def test_nothing_that_does_not_open_is_laundered() -> None:
    s = setup()
    item = s["item"]
    # The item's ciphertext modified (or swapped in from another item).
    bad = vc.ItemRecord(**{**item.__dict__, "ct": item.ct[:-1] + bytes([item.ct[-1] ^ 1])})
    with pytest.raises(vc.ItemInvalid):
        plan(s, item=bad)
    # A history entry that does not open.
    history = s["history"]
    swapped = vc.ItemRecord(**{**history[0].__dict__, "ct": history[1].ct})
    with pytest.raises(vc.ItemInvalid, match="version 2"):
        plan(s, history=[swapped, history[1]])
    # A file key wrapped for another file.
    files = s["files"]
    wrong = vc.FileRecord(file_id=files[0].file_id, generation=2, key_wrap=files[1].key_wrap)
    with pytest.raises(vc.FileKeyInvalid):
        plan(s, safe_files=[wrong])
    # A generation the key chain does not reach.
    keys = s["keys"]
    with pytest.raises(vc.PreviousKeyInvalid, match="generation 1"):
        plan(s, from_keys={2: keys[2]})
    with pytest.raises(ValueError, match="another safe"):
        plan(s, to_safe_id=A)


def test_rewrap_file_key_refuses_a_wrap_made_for_another_safe() -> None:
    ka, kb, fk, fid = vc.new_safe_key(), vc.new_safe_key(), vc.new_file_key(), vc.new_id()
    wrapped = vc.wrap_file_key(ka, fk, safe_id=A, file_id=fid, generation=1)
    ctx = {"file_id": fid, "to_safe_id": B, "to_generation": 2}
    again = vc.rewrap_file_key(ka, kb, wrapped, from_safe_id=A, from_generation=1, **ctx)
    assert vc.unwrap_file_key(kb, again, safe_id=B, file_id=fid, generation=2) == fk
    assert again != wrapped
    with pytest.raises(vc.FileKeyInvalid):
        vc.rewrap_file_key(ka, kb, wrapped, from_safe_id=B, from_generation=1, **ctx)
    with pytest.raises(vc.FileKeyInvalid):
        vc.rewrap_file_key(ka, kb, wrapped, from_safe_id=A, from_generation=2, **ctx)
