"""Safes, folders and items over the API: CRUD, history, optimistic
concurrency (a stale version is a 409 and nothing is overwritten), roles
enforced by the server (a 403 changes nothing), and the audit log."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from tests.vault.conftest import VaultServer
from tests.vault.driver import VaultClient, dec, enc
from vault_api import crypto as vc
from vault_api.db import make_engine
from vault_api.schema import item_versions, items

MAIL = {"type": "login", "title": "Mail", "username": "alice", "password": "hunter2-ü"}


async def test_safe_create_list_rename_delete(alice: VaultClient) -> None:
    sid = await alice.create_safe("Home")
    safes = (await alice.json("GET", "/api/safes"))["safes"]
    assert [dec(s["id"]) for s in safes] == [sid]
    assert safes[0]["role"] == "admin"
    assert safes[0]["generation"] == 1
    assert await alice.safe_name(sid) == "Home"

    ks, g = await alice.key(sid)
    new_name = vc.encrypt_safe_name(ks, "Family", safe_id=sid, version=2, generation=g)
    body = {"expected_name_version": 1, "generation": g, "name_ct": enc(new_name)}
    await alice.json("PATCH", f"/api/safes/{enc(sid)}", json=body)
    assert await alice.safe_name(sid) == "Family"
    r = await alice.call("PATCH", f"/api/safes/{enc(sid)}", json=body, expect=409)
    assert r.json() | {"message": ""} == {
        "error": "version_conflict",
        "message": "",
        "current_version": 2,
    }
    assert await alice.safe_name(sid) == "Family"

    # Safe ids are the client's; one already taken is refused.
    sealed = vc.seal_safe_key(
        ks, alice.public_key or b"", safe_id=sid, user_id=alice.user_id or b"", generation=1
    )
    r = await alice.call(
        "POST",
        "/api/safes",
        json={"id": enc(sid), "name_ct": enc(new_name), "sealed_key": enc(sealed)},
        expect=409,
    )
    assert r.json()["error"] == "id_taken"

    await alice.call("DELETE", f"/api/safes/{enc(sid)}", expect=204)
    assert (await alice.json("GET", "/api/safes"))["safes"] == []
    r = await alice.call("GET", f"/api/safes/{enc(sid)}", expect=404)
    assert r.json()["error"] == "safe_not_found"


async def test_items_crud_and_history(vault: VaultServer, alice: VaultClient) -> None:
    sid = await alice.create_safe("Home")
    iid = await alice.add_item(sid, MAIL)
    assert await alice.items(sid) == {iid: MAIL}
    for n in range(2, 7):
        r = await alice.update_item(
            sid, iid, {**MAIL, "password": f"pw-{n}"}, expected_version=n - 1
        )
        assert r.json()["version"] == n
    items = await alice.items(sid)
    assert items[iid]["password"] == "pw-6"

    # History: the previous versions, newest first, each opening at its own version.
    hist = (await alice.json("GET", f"/api/safes/{enc(sid)}/items/{enc(iid)}/history"))["versions"]
    assert [v["version"] for v in hist] == [5, 4, 3]  # history_versions = 3 in these tests
    ks, _ = await alice.key(sid)
    opened = [
        vc.decrypt_item(
            ks,
            dec(v["ct"]),
            safe_id=sid,
            item_id=iid,
            folder_id=None,
            version=v["version"],
            generation=v["generation"],
        )["password"]
        for v in hist
    ]
    assert opened == ["pw-5", "pw-4", "pw-3"]
    # A history entry served as the current item is caught by the client.
    with pytest.raises(vc.ItemInvalid, match="version 6"):
        vc.decrypt_item(
            ks,
            dec(hist[0]["ct"]),
            safe_id=sid,
            item_id=iid,
            folder_id=None,
            version=6,
            generation=1,
        )

    await alice.call(
        "DELETE",
        f"/api/safes/{enc(sid)}/items/{enc(iid)}",
        params={"expected_version": 5},
        expect=409,
    )
    await alice.call(
        "DELETE",
        f"/api/safes/{enc(sid)}/items/{enc(iid)}",
        params={"expected_version": 6},
        expect=204,
    )
    assert await alice.items(sid) == {}
    await alice.call("GET", f"/api/safes/{enc(sid)}/items/{enc(iid)}/history", expect=404)


async def test_a_stale_version_is_409_and_overwrites_nothing(
    vault: VaultServer, alice: VaultClient, alice_phone: Any
) -> None:
    sid = await alice.create_safe("Home")
    iid = await alice.add_item(sid, MAIL)
    # Two browsers of the same user both read version 1.
    async with vault.client() as laptop:
        await laptop.login(alice_phone)
        await alice.update_item(sid, iid, {**MAIL, "password": "from-phone"}, expected_version=1)
        r = await laptop.update_item(
            sid, iid, {**MAIL, "password": "from-laptop"}, expected_version=1, expect=409
        )
        body = r.json()
        assert body["error"] == "version_conflict"
        assert body["current_version"] == 2
        assert "nothing was changed" in body["message"]
        items = await laptop.items(sid)
        assert items[iid]["password"] == "from-phone"
        hist = (await laptop.json("GET", f"/api/safes/{enc(sid)}/items/{enc(iid)}/history"))[
            "versions"
        ]
        assert [v["version"] for v in hist] == [1]


async def test_an_item_id_is_used_once(alice: VaultClient) -> None:
    sid = await alice.create_safe("Home")
    iid = await alice.add_item(sid, MAIL)
    ks, g = await alice.key(sid)
    body = {"id": enc(iid), **alice.item_body(sid, iid, MAIL, ks=ks, generation=g, version=1)}
    r = await alice.call("POST", f"/api/safes/{enc(sid)}/items", json=body, expect=409)
    assert r.json()["error"] == "id_taken"


async def test_batch_create_is_all_or_nothing(alice: VaultClient) -> None:
    sid = await alice.create_safe("Import")
    ks, g = await alice.key(sid)
    ids = [vc.new_id() for _ in range(50)]
    batch = [
        {
            "id": enc(i),
            **alice.item_body(
                sid, i, {"type": "note", "title": f"n{n}"}, ks=ks, generation=g, version=1
            ),
        }
        for n, i in enumerate(ids)
    ]
    out = await alice.json(
        "POST", f"/api/safes/{enc(sid)}/items/batch", json={"items": batch}, expect=201
    )
    assert [dec(i["id"]) for i in out["items"]] == ids
    assert len(await alice.items(sid)) == 50
    # A batch with one taken id creates none of the others.
    fresh = [vc.new_id() for _ in range(3)]
    bad = [
        {
            "id": enc(i),
            **alice.item_body(
                sid, i, {"type": "note", "title": "x"}, ks=ks, generation=g, version=1
            ),
        }
        for i in fresh
    ] + [batch[0]]
    r = await alice.call(
        "POST", f"/api/safes/{enc(sid)}/items/batch", json={"items": bad}, expect=409
    )
    assert r.json()["error"] == "id_taken"
    assert len(await alice.items(sid)) == 50


async def test_nested_folders_with_encrypted_names(alice: VaultClient) -> None:
    sid = await alice.create_safe("Home")
    top = await alice.add_folder(sid, "Banking")
    sub = await alice.add_folder(sid, "Cards", parent=top)
    iid = await alice.add_item(sid, MAIL, folder_id=sub)
    c = await alice.contents(sid)
    ks, g = await alice.key(sid)
    names = {
        dec(f["id"]): vc.decrypt_folder_name(
            ks,
            dec(f["name_ct"]),
            safe_id=sid,
            folder_id=dec(f["id"]),
            parent_id=f["parent_id"] and dec(f["parent_id"]),
            version=f["version"],
            generation=f["generation"],
        )
        for f in c["folders"]
    }
    assert names == {top: "Banking", sub: "Cards"}
    assert dec(c["items"][0]["folder_id"]) == sub
    assert (await alice.items(sid))[iid] == MAIL

    # A folder cannot move under its own subfolder.
    ct = vc.encrypt_folder_name(
        ks, "Banking", safe_id=sid, folder_id=top, parent_id=sub, version=2, generation=g
    )
    r = await alice.call(
        "PUT",
        f"/api/safes/{enc(sid)}/folders/{enc(top)}",
        json={"expected_version": 1, "parent_id": enc(sub), "generation": g, "name_ct": enc(ct)},
        expect=422,
    )
    assert r.json()["error"] == "cycle"
    # A folder in use cannot be deleted; empty, it can.
    r = await alice.call(
        "DELETE",
        f"/api/safes/{enc(sid)}/folders/{enc(sub)}",
        params={"expected_version": 1},
        expect=409,
    )
    assert r.json()["error"] == "folder_not_empty"
    await alice.update_item(sid, iid, MAIL, expected_version=1, folder_id=None)
    await alice.call(
        "DELETE",
        f"/api/safes/{enc(sid)}/folders/{enc(sub)}",
        params={"expected_version": 1},
        expect=204,
    )
    # An item cannot name a folder of another safe.
    other = await alice.create_safe("Other")
    foreign = await alice.add_folder(other, "Elsewhere")
    ks, g = await alice.key(sid)
    iid2 = vc.new_id()
    body = {
        "id": enc(iid2),
        **alice.item_body(sid, iid2, MAIL, ks=ks, generation=g, version=1, folder_id=foreign),
    }
    r = await alice.call("POST", f"/api/safes/{enc(sid)}/items", json=body, expect=422)
    assert r.json()["error"] == "unknown_folder"


async def test_roles_are_enforced_and_a_refusal_changes_nothing(
    alice: VaultClient, bob: VaultClient
) -> None:
    sid = await alice.create_safe("Team")
    iid = await alice.add_item(sid, MAIL)
    await alice.share(sid, "bob", "viewer")

    # The viewer reads...
    assert (await bob.items(sid))[iid] == MAIL
    members = (await bob.json("GET", f"/api/safes/{enc(sid)}/members"))["members"]
    assert {m["handle"]: m["role"] for m in members} == {"alice": "admin", "bob": "viewer"}
    # ... and every write is refused, with the state unchanged.
    before = await alice.contents(sid)
    r = await bob.update_item(
        sid, iid, {**MAIL, "password": "bob was here"}, expected_version=1, expect=403
    )
    assert r.json()["error"] == "role_forbidden"
    assert r.json()["role"] == "viewer"
    await bob.add_item(sid, MAIL, expect=403)
    await bob.call(
        "DELETE",
        f"/api/safes/{enc(sid)}/items/{enc(iid)}",
        params={"expected_version": 1},
        expect=403,
    )
    r = await bob.call("GET", f"/api/safes/{enc(sid)}/audit", expect=403)
    assert r.json()["error"] == "role_forbidden"
    await bob.call("DELETE", f"/api/safes/{enc(sid)}", expect=403)
    ks, g = await bob.key(sid)
    ct = vc.encrypt_safe_name(ks, "Mine now", safe_id=sid, version=2, generation=g)
    await bob.call(
        "PATCH",
        f"/api/safes/{enc(sid)}",
        json={"expected_name_version": 1, "generation": g, "name_ct": enc(ct)},
        expect=403,
    )
    await bob.call(
        "PATCH",
        f"/api/safes/{enc(sid)}/members/{enc(bob.user_id or b'')}",
        json={"role": "admin"},
        expect=403,
    )
    after = await alice.contents(sid)
    assert after == before
    assert (await alice.json("GET", f"/api/safes/{enc(sid)}/members"))["members"] == members

    # As editor, bob writes; still no admin powers.
    await alice.json(
        "PATCH", f"/api/safes/{enc(sid)}/members/{enc(bob.user_id or b'')}", json={"role": "editor"}
    )
    await bob.update_item(sid, iid, {**MAIL, "password": "rotated"}, expected_version=1)
    await bob.call("GET", f"/api/safes/{enc(sid)}/audit", expect=403)
    assert (await alice.items(sid))[iid]["password"] == "rotated"


async def test_non_members_see_nothing(alice: VaultClient, bob: VaultClient) -> None:
    sid = await alice.create_safe("Private")
    iid = await alice.add_item(sid, MAIL)
    for path in (
        f"/api/safes/{enc(sid)}",
        f"/api/safes/{enc(sid)}/contents",
        f"/api/safes/{enc(sid)}/items/{enc(iid)}",
        f"/api/safes/{enc(sid)}/members",
    ):
        r = await bob.call("GET", path, expect=404)
        assert r.json()["error"] == "safe_not_found"
    iid2 = vc.new_id()
    forged = {
        "id": enc(iid2),
        **bob.item_body(sid, iid2, MAIL, ks=vc.new_safe_key(), generation=1, version=1),
    }
    r = await bob.call("POST", f"/api/safes/{enc(sid)}/items", json=forged, expect=404)
    assert r.json()["error"] == "safe_not_found"
    assert list(await alice.items(sid)) == [iid]


async def test_the_last_admin_stays(alice: VaultClient, bob: VaultClient) -> None:
    sid = await alice.create_safe("Team")
    me = enc(alice.user_id or b"")
    r = await alice.call(
        "PATCH", f"/api/safes/{enc(sid)}/members/{me}", json={"role": "viewer"}, expect=409
    )
    assert r.json()["error"] == "last_admin"
    r = await alice.call("DELETE", f"/api/safes/{enc(sid)}/members/{me}", expect=409)
    assert r.json()["error"] == "last_admin"
    await alice.share(sid, "bob", "admin")
    await alice.call("DELETE", f"/api/safes/{enc(sid)}/members/{me}", expect=204)  # leaves
    assert (await alice.json("GET", "/api/safes"))["safes"] == []
    assert (await bob.safe(sid))["rotation_needed"] is True


async def test_sharing_twice_or_with_unknown_users(alice: VaultClient, bob: VaultClient) -> None:
    sid = await alice.create_safe("Team")
    fp = await alice.share(sid, "bob", "viewer")
    assert fp == bob.fingerprint()  # what bob sees on his own screen
    r = await alice.call("GET", "/api/users/nobody", expect=404)
    assert r.json()["error"] == "user_not_found"
    await alice.share(sid, "bob", "editor", expect=409)


async def test_audit_log(alice: VaultClient, bob: VaultClient) -> None:
    sid = await alice.create_safe("Team")
    iid = await alice.add_item(sid, MAIL)
    await alice.update_item(sid, iid, MAIL, expected_version=1)
    await alice.share(sid, "bob", "editor")
    await bob.update_item(sid, iid, MAIL, expected_version=2)
    log = await alice.json("GET", f"/api/safes/{enc(sid)}/audit")
    got = [(e["actor_handle"], e["action"], e["detail"]) for e in log["events"]]
    assert got == [
        ("bob", "item.update", {"version": 3}),
        ("alice", "member.add", {"role": "editor"}),
        ("alice", "item.update", {"version": 2}),
        ("alice", "item.create", {"version": 1}),
        ("alice", "safe.create", {}),
    ]
    assert dec(log["events"][1]["target"]) == bob.user_id
    assert log["next_before"] is None
    page = await alice.json("GET", f"/api/safes/{enc(sid)}/audit", params={"limit": 2})
    assert [e["action"] for e in page["events"]] == ["item.update", "member.add"]
    older = await alice.json(
        "GET", f"/api/safes/{enc(sid)}/audit", params={"limit": 2, "before": page["next_before"]}
    )
    assert [e["action"] for e in older["events"]] == ["item.update", "item.create"]
    # No ciphertext in the log.
    ct = (await alice.contents(sid))["items"][0]["ct"]
    assert ct not in str(log)


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ("not json", 400, "malformed"),
        ({"id": "short"}, 422, "invalid"),
        ({"id": "A" * 22, "generation": 1, "ct": "!!!"}, 422, "invalid"),
        ({"id": "A" * 22, "generation": 0, "ct": "A" * 40}, 422, "invalid"),
        ({"id": "A" * 22, "generation": 1, "ct": "A" * 40, "extra": 1}, 422, "invalid"),
    ],
)
async def test_bad_input_gets_a_clear_error(
    alice: VaultClient, body: Any, status: int, error: str
) -> None:
    sid = await alice.create_safe("Home")
    kw: dict[str, Any] = (
        {"content": body, "headers": {"Content-Type": "application/json"}}
        if isinstance(body, str)
        else {"json": body}
    )
    r = await alice.call("POST", f"/api/safes/{enc(sid)}/items", expect=status, **kw)
    assert r.json()["error"] == error
    assert r.json()["message"]
    assert await alice.items(sid) == {}


async def test_ciphertexts_swapped_or_replayed_in_the_database_are_refused(
    vault: VaultServer, alice: VaultClient
) -> None:
    """A malicious server (here: someone editing the database) swaps two
    items' ciphertexts, then serves an old version as the current one; the
    client refuses each, naming the item and the safe."""
    sid = await alice.create_safe("Home")
    a = await alice.add_item(sid, MAIL)
    b = await alice.add_item(sid, {"type": "note", "title": "other"})
    await alice.update_item(sid, a, {**MAIL, "password": "newer"}, expected_version=1)
    engine = make_engine(vault.db_url)
    try:
        with engine.begin() as c:
            cts = {r.item_id: r.ct for r in c.execute(sa.select(items.c.item_id, items.c.ct))}
            c.execute(items.update().where(items.c.item_id == a).values(ct=cts[b]))
            c.execute(items.update().where(items.c.item_id == b).values(ct=cts[a]))
        with pytest.raises(vc.ItemInvalid) as err:
            await alice.items(sid)
        assert enc(sid)[:8] in err.value.message
        assert enc(a)[:8] in err.value.message or enc(b)[:8] in err.value.message
        with engine.begin() as c:
            c.execute(items.update().where(items.c.item_id == b).values(ct=cts[b]))
            old = c.execute(
                sa.select(item_versions.c.ct).where(item_versions.c.item_id == a)
            ).scalar_one()
            c.execute(items.update().where(items.c.item_id == a).values(ct=old))  # replay v1 as v2
        with pytest.raises(vc.ItemInvalid, match="version 2"):
            await alice.items(sid)
    finally:
        engine.dispose()
