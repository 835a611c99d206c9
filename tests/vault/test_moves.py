"""Moving an item (with its kept versions and files), or a lone file, to
another safe (docs/vault.md 8.4, 13.8), over the API on SQLite and
PostgreSQL: the client re-encrypts for the target safe, the server swaps it
in in one transaction and never touches the file body; the caller must be an
editor or admin of both safes; a stale generation or version, a history that
does not match, or a rotation that is open or due in either safe is refused
and nothing changes; both safes' audit logs say what moved."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.vault.conftest import VaultServer
from tests.vault.driver import VaultClient, dec, enc, opt
from vault_api import crypto as vc
from vault_api.blobs import blob_name
from vault_api.db import make_engine
from vault_api.schema import files, item_versions, items

LOGIN = {"type": "login", "title": "Router", "username": "admin", "password": "hunter2-xyzzy"}


def state(vault: VaultServer) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the move touches, as the database holds it."""
    engine = make_engine(vault.db_url)
    try:
        with engine.connect() as c:
            return {
                t.name: sorted(tuple(r) for r in c.execute(sa.select(t)))
                for t in (items, item_versions, files)
            }
    finally:
        engine.dispose()


async def snapshot(vault: VaultServer) -> dict[str, list[tuple[Any, ...]]]:
    return await asyncio.to_thread(state, vault)


def blob(vault: VaultServer, fid: bytes) -> Path:
    name = blob_name(fid)
    return vault.settings.blob_path / name[:2] / name[2:4] / name


def on_disk(vault: VaultServer, fid: bytes) -> tuple[str, int, int]:
    """The body's SHA-256, inode and modification time: any rewrite changes one."""
    path = blob(vault, fid)
    st = path.stat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), st.st_ino, st.st_mtime_ns


async def read_file(client: VaultClient, sid: bytes, fid: bytes) -> bytes:
    out = bytearray()
    async for piece in client.download(sid, fid):
        out += piece
    return bytes(out)


async def item_with_file(
    client: VaultClient, sid: bytes, data: bytes, *, edits: int = 2
) -> tuple[bytes, bytes, dict[str, Any]]:
    """An item listing one uploaded file, updated `edits` times (so it has history)."""
    fid = await client.upload(sid, [data], len(data))
    ref = {"id": enc(fid), "name": "plan.pdf", "size": len(data), "type": "application/pdf"}
    content = {**LOGIN, "files": [ref]}
    iid = await client.add_item(sid, {**content, "notes": "v1"})
    for n in range(edits):
        await client.update_item(
            sid, iid, {**content, "notes": f"v{n + 2}"}, expected_version=n + 1
        )
    return iid, fid, {**content, "notes": f"v{edits + 1}"}


async def audit(client: VaultClient, sid: bytes) -> list[tuple[str, str, dict[str, Any]]]:
    log = await client.json("GET", f"/api/safes/{enc(sid)}/audit")
    return [(e["action"], e["target"], e["detail"]) for e in log["events"]]


async def test_an_item_moves_with_its_history_and_files_and_the_body_stays(
    vault: VaultServer, alice: VaultClient
) -> None:
    a = await alice.create_safe("Home")
    b = await alice.create_safe("Work")
    folder = await alice.add_folder(b, "Network")
    data = os.urandom(2 * vc.CHUNK_BYTES + 999)
    iid, fid, content = await item_with_file(alice, a, data)
    # Another file of A that the item does not list stays in A.
    other = await alice.upload(a, [b"not moved"], 9)
    before_disk = on_disk(vault, fid)

    plan = await alice.plan_move(a, iid, b, folder_id=folder)
    assert plan.content == content
    assert [h.version for h in plan.history] == [2, 1]  # newest first, as the server lists
    assert [f.file_id for f in plan.files] == [fid]
    assert plan.missing_files == []
    r = (await alice.send_move(plan)).json()

    # The item is in B at the same version, under B's key, in B's folder.
    assert dec(r["item"]["id"]) == iid
    assert (r["item"]["version"], r["item"]["generation"], r["item"]["folder_id"]) == (
        3,
        1,
        enc(folder),
    )
    assert r["history"] == 2
    assert [dec(f["id"]) for f in r["files"]] == [fid]
    assert (await alice.items(b)) == {iid: content}
    ca, cb = await alice.contents(a), await alice.contents(b)
    assert ca["items"] == []
    assert [dec(f["id"]) for f in ca["files"]] == [other]
    assert [dec(f["id"]) for f in cb["files"]] == [fid]
    await alice.call("GET", f"/api/safes/{enc(a)}/items/{enc(iid)}", expect=404)
    await alice.call("GET", f"/api/safes/{enc(a)}/files/{enc(fid)}", expect=404)

    # Its kept versions open in B's context (B's safe id and folder).
    kb, gb = await alice.key(b)
    versions = (await alice.json("GET", f"/api/safes/{enc(b)}/items/{enc(iid)}/history"))[
        "versions"
    ]
    assert [
        vc.decrypt_item(
            kb,
            dec(v["ct"]),
            safe_id=b,
            item_id=iid,
            folder_id=opt(v["folder_id"]),
            version=v["version"],
            generation=v["generation"],
        )["notes"]
        for v in versions
    ] == ["v2", "v1"]
    assert {(v["folder_id"], v["generation"]) for v in versions} == {(enc(folder), gb)}
    # The moved ciphertext names B: it does not open as A's.
    ka, _ = await alice.key(a)
    with pytest.raises(vc.ItemInvalid):
        vc.decrypt_item(
            kb,
            dec(r["item"]["ct"]),
            safe_id=a,
            item_id=iid,
            folder_id=folder,
            version=3,
            generation=1,
        )

    # The body: the same bytes on disk (not rewritten), and it opens from B.
    assert on_disk(vault, fid) == before_disk
    assert await read_file(alice, b, fid) == data
    meta = await alice.json("GET", f"/api/safes/{enc(b)}/files/{enc(fid)}")
    assert meta["generation"] == gb
    with pytest.raises(vc.FileKeyInvalid):  # the new wrap is B's, not A's
        vc.unwrap_file_key(ka, dec(meta["key_wrap"]), safe_id=a, file_id=fid, generation=1)

    # Both audit logs say what moved, and where to.
    facts = {"version": 3, "files": 1, "history": 2}
    log_a, log_b = await audit(alice, a), await audit(alice, b)
    assert log_a[:2] == [
        ("item.move_out", enc(iid), {**facts, "to_safe": enc(b)}),
        ("file.move_out", enc(fid), {"size": len(data), "to_safe": enc(b)}),
    ]
    assert log_b[:2] == [
        ("item.move_in", enc(iid), {**facts, "from_safe": enc(a)}),
        ("file.move_in", enc(fid), {"size": len(data), "from_safe": enc(a)}),
    ]

    # Editing it in B goes on from its version; history keeps growing there.
    await alice.update_item(
        b, iid, {**content, "notes": "v4"}, expected_version=3, folder_id=folder
    )
    assert (await alice.items(b))[iid]["notes"] == "v4"
    # And it can move back.
    await alice.move_item(b, iid, a)
    assert (await alice.items(a))[iid]["notes"] == "v4"
    assert await read_file(alice, a, fid) == data
    assert on_disk(vault, fid) == before_disk


async def test_editor_or_admin_of_both_safes_only(
    vault: VaultServer, alice: VaultClient, bob: VaultClient
) -> None:
    src = await alice.create_safe("Source")
    viewing = await alice.create_safe("Bob views")
    editing = await alice.create_safe("Bob edits")
    mine = await alice.create_safe("Alice only")
    iid, fid, _ = await item_with_file(alice, src, b"report " * 100, edits=1)
    await alice.share(src, "bob", "editor")
    await alice.share(viewing, "bob", "viewer")
    await alice.share(editing, "bob", "editor")
    before = await snapshot(vault)

    # A viewer of the target: 403, nothing changed.
    r = await bob.move_item(src, iid, viewing, expect=403)
    assert (r.json()["error"], r.json()["role"]) == ("role_forbidden", "viewer")
    # Not a member of the target: it does not exist for him.
    plan = await alice.plan_move(src, iid, mine)
    r = await bob.send_move(plan, expect=404)
    assert r.json()["error"] == "safe_not_found"
    assert await snapshot(vault) == before

    # A viewer of the source cannot move out of it either.
    await alice.call(
        "PATCH", f"/api/safes/{enc(src)}/members/{enc(bob.user_id or b'')}", json={"role": "viewer"}
    )
    r = await bob.move_item(src, iid, editing, expect=403)
    assert r.json()["error"] == "role_forbidden"
    assert await snapshot(vault) == before

    # An editor of both moves it.
    await alice.call(
        "PATCH", f"/api/safes/{enc(src)}/members/{enc(bob.user_id or b'')}", json={"role": "editor"}
    )
    await bob.move_item(src, iid, editing)
    assert list(await alice.items(editing)) == [iid]
    assert (await alice.contents(src))["items"] == []
    assert await read_file(alice, editing, fid) == b"report " * 100


async def test_stale_or_incomplete_moves_are_refused_and_change_nothing(
    vault: VaultServer, alice: VaultClient, bob: VaultClient
) -> None:
    a = await alice.create_safe("A")
    b = await alice.create_safe("B")
    iid, fid, content = await item_with_file(alice, a, b"x" * 5000)
    await alice.share(b, "bob", "editor")
    before = await snapshot(vault)

    async def refused(plan: vc.MovePlan, status: int, error: str, **change: Any) -> dict[str, Any]:
        body = {**alice.move_body(plan), **change}
        r = await alice.send_move(plan, body=body, expect=status)
        assert r.json()["error"] == error, r.json()
        assert await snapshot(vault) == before  # nothing changed
        return dict(r.json())

    plan = await alice.plan_move(a, iid, b)
    # The same safe: that is an update, not a move.
    await refused(plan, 422, "same_safe", to_safe_id=enc(a))
    # A folder the target does not have (this one is A's own).
    folder_a = await alice.add_folder(a, "In A")
    before = await snapshot(vault)
    await refused(plan, 422, "unknown_folder", folder_id=enc(folder_a))
    # A kept version left out, or one that does not exist.
    got = await refused(plan, 422, "history_mismatch", history=alice.move_body(plan)["history"][1:])
    assert got["versions"] == [1, 2]
    extra = [*alice.move_body(plan)["history"], {"version": 7, "ct": enc(plan.ct)}]
    await refused(plan, 422, "history_mismatch", history=extra)
    # A file that is not in the source safe, or named twice.
    stray = {"id": enc(vc.new_id()), "key_wrap": enc(os.urandom(60))}
    got = await refused(plan, 422, "unknown_ids", files=[stray])
    assert got["kind"] == "files"
    twice = alice.move_body(plan)["files"] * 2
    await refused(plan, 422, "duplicate_id", files=twice)

    # B's key rotated after the move was made: generation_stale.
    await alice.rotate(b)
    before = await snapshot(vault)
    got = await refused(plan, 409, "generation_stale")
    assert got["current_generation"] == 2
    # The item changed after the move was made: version_conflict.
    plan = await alice.plan_move(a, iid, b)
    await alice.update_item(a, iid, {**content, "notes": "newer"}, expected_version=3)
    before = await snapshot(vault)
    got = await refused(plan, 409, "version_conflict")
    assert got["current_version"] == 4

    # Made again from what is there now, the move goes through.
    await alice.move_item(a, iid, b)
    assert (await bob.items(b))[iid]["notes"] == "newer"
    assert await read_file(bob, b, fid) == b"x" * 5000


async def test_a_move_waits_for_an_unfinished_rotation_of_either_safe(
    vault: VaultServer, alice: VaultClient, bob: VaultClient
) -> None:
    a = await alice.create_safe("A")
    b = await alice.create_safe("B")
    iid, fid, content = await item_with_file(alice, a, b"y" * 100, edits=0)

    # A rotation of B begun and not committed.
    plan_b, _ = await alice.plan_rotation(b)
    rot = await alice.begin_rotation(b, plan_b)
    before = await snapshot(vault)
    r = await alice.move_item(a, iid, b, expect=409)
    body = r.json()
    assert (body["error"], body["safe_id"]) == ("rotation_pending", enc(b))
    assert "begun and not committed" in body["message"]
    assert "Nothing was moved" in body["message"]
    assert await snapshot(vault) == before
    await alice.call("DELETE", f"/api/safes/{enc(b)}/rotations/{rot['id']}", expect=204)

    # A rotation of A that is due (a member left) and not done yet.
    await alice.share(a, "bob", "viewer")
    await bob.call("DELETE", f"/api/safes/{enc(a)}/members/{enc(bob.user_id or b'')}", expect=204)
    assert (await alice.safe(a))["rotation_needed"] is True
    r = await alice.move_item(a, iid, b, expect=409)
    body = r.json()
    assert (body["error"], body["safe_id"]) == ("rotation_pending", enc(a))
    assert "waiting for its key to be rotated" in body["message"]
    assert await snapshot(vault) == before

    # Rotated: the item (now under A's generation 2, its file key too) moves.
    assert await alice.rotate(a) == 2
    await alice.move_item(a, iid, b)
    assert (await alice.items(b)) == {iid: content}
    assert await read_file(alice, b, fid) == b"y" * 100


async def test_history_under_an_older_key_generation_moves_too(
    vault: VaultServer, alice: VaultClient
) -> None:
    a = await alice.create_safe("A")
    b = await alice.create_safe("B")
    iid = await alice.add_item(a, {**LOGIN, "notes": "generation 1"})
    await alice.update_item(a, iid, {**LOGIN, "notes": "version 2"}, expected_version=1)
    assert await alice.rotate(a) == 2
    [old] = (await alice.json("GET", f"/api/safes/{enc(a)}/items/{enc(iid)}/history"))["versions"]
    assert old["generation"] == 1  # kept as it was, under A's first key

    await alice.move_item(a, iid, b)
    kb, gb = await alice.key(b)
    [moved] = (await alice.json("GET", f"/api/safes/{enc(b)}/items/{enc(iid)}/history"))["versions"]
    assert (moved["version"], moved["generation"]) == (1, gb)
    assert vc.decrypt_item(
        kb, dec(moved["ct"]), safe_id=b, item_id=iid, folder_id=None, version=1, generation=gb
    ) == {**LOGIN, "notes": "generation 1"}
    assert (await alice.items(b)) == {iid: {**LOGIN, "notes": "version 2"}}


async def test_a_move_and_an_edit_at_once_one_wins_and_nothing_is_lost(
    vault: VaultServer, alice: VaultClient, bob: VaultClient
) -> None:
    a = await alice.create_safe("A")
    b = await alice.create_safe("B")
    await alice.share(a, "bob", "editor")
    iid = await alice.add_item(a, {**LOGIN, "notes": "original"})
    plan = await alice.plan_move(a, iid, b)
    moved, edited = await asyncio.gather(
        alice.send_move(plan, expect=None),
        bob.update_item(a, iid, {**LOGIN, "notes": "bob's edit"}, expected_version=1, expect=None),
    )
    statuses = sorted([moved.status_code, edited.status_code])
    if moved.status_code == 200:
        # The edit came second: the item had left A (404); the move kept version 1.
        assert statuses == [200, 404]
        assert (await alice.items(b)) == {iid: {**LOGIN, "notes": "original"}}
        assert (await alice.contents(a))["items"] == []
    else:
        # The edit came first: the move was made to version 1 (409), nothing moved.
        assert (moved.status_code, moved.json()["error"]) == (409, "version_conflict")
        assert edited.status_code == 200
        assert (await alice.items(a)) == {iid: {**LOGIN, "notes": "bob's edit"}}
        assert (await alice.contents(b))["items"] == []


async def test_a_lone_file_moves_with_its_key_rewrapped_and_its_body_untouched(
    vault: VaultServer, alice: VaultClient, bob: VaultClient
) -> None:
    a = await alice.create_safe("A")
    b = await alice.create_safe("B")
    data = os.urandom(vc.CHUNK_BYTES + 1)
    fid = await alice.upload(a, [data], len(data))
    before_disk = on_disk(vault, fid)
    (ka, ga), (kb, gb) = await alice.key(a), await alice.key(b)
    meta = await alice.json("GET", f"/api/safes/{enc(a)}/files/{enc(fid)}")
    wrap = vc.rewrap_file_key(
        ka,
        kb,
        dec(meta["key_wrap"]),
        file_id=fid,
        from_safe_id=a,
        from_generation=ga,
        to_safe_id=b,
        to_generation=gb,
    )
    path = f"/api/safes/{enc(a)}/files/{enc(fid)}/move"
    body = {"to_safe_id": enc(b), "generation": gb, "key_wrap": enc(wrap)}

    # Bob, a viewer of B, may not move A's file into it.
    await alice.share(a, "bob", "editor")
    await alice.share(b, "bob", "viewer")
    before = await snapshot(vault)
    r = await bob.call("POST", path, json=body, expect=403)
    assert r.json()["error"] == "role_forbidden"
    r = await alice.call("POST", path, json={**body, "to_safe_id": enc(a)}, expect=422)
    assert r.json()["error"] == "same_safe"
    r = await alice.call(
        "POST", f"/api/safes/{enc(a)}/files/{enc(vc.new_id())}/move", json=body, expect=404
    )
    assert r.json()["error"] == "file_not_found"
    assert await snapshot(vault) == before

    out = await alice.json("POST", path, json=body)
    assert (dec(out["id"]), out["generation"], out["state"]) == (fid, gb, "complete")
    assert await read_file(alice, b, fid) == data
    assert await read_file(bob, b, fid) == data
    assert on_disk(vault, fid) == before_disk
    assert (await alice.contents(a))["files"] == []
    assert (await audit(alice, a))[0] == (
        "file.move_out",
        enc(fid),
        {"size": len(data), "to_safe": enc(b)},
    )
    assert (await audit(alice, b))[0] == (
        "file.move_in",
        enc(fid),
        {"size": len(data), "from_safe": enc(a)},
    )


async def test_a_file_being_uploaded_does_not_move(vault: VaultServer, alice: VaultClient) -> None:
    a = await alice.create_safe("A")
    b = await alice.create_safe("B")
    ka, ga = await alice.key(a)
    kb, gb = await alice.key(b)
    fid, fk = vc.new_id(), vc.new_file_key()
    wrapped = vc.wrap_file_key(ka, fk, safe_id=a, file_id=fid, generation=ga)
    await alice.json(
        "POST",
        f"/api/safes/{enc(a)}/files",
        json={"id": enc(fid), "generation": ga, "key_wrap": enc(wrapped), "size": 10},
        expect=201,
    )
    # The server marks the file uploading while a body streams in; here, by hand.
    engine = make_engine(vault.db_url)
    try:
        with engine.begin() as c:
            c.execute(
                files.update()
                .where(files.c.file_id == fid)
                .values(state="uploading", upload_started_ms=vault.clock())
            )
    finally:
        engine.dispose()
    wrap = vc.rewrap_file_key(
        ka,
        kb,
        wrapped,
        file_id=fid,
        from_safe_id=a,
        from_generation=ga,
        to_safe_id=b,
        to_generation=gb,
    )
    body = {"to_safe_id": enc(b), "generation": gb, "key_wrap": enc(wrap)}
    path = f"/api/safes/{enc(a)}/files/{enc(fid)}/move"
    r = await alice.call("POST", path, json=body, expect=409)
    assert (r.json()["error"], r.json()["state"]) == ("file_state", "uploading")
    # An upload that stalled (its server died) is dead: the file moves, pending.
    vault.clock.advance(11 * 60)
    out = await alice.json("POST", path, json=body)
    assert (out["state"], out["generation"]) == ("pending", gb)
