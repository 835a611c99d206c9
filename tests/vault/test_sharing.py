"""Sharing, revocation and staged key rotation, over the API with two users:
a revoked member loses access at once and the safe key rotates; a rotation
interrupted half-way leaves the old state intact; edits made during a
rotation are neither lost nor half-rotated. Then the host-proof check: the
server's database and file store hold none of the secrets used."""

from __future__ import annotations

import asyncio
import os

import pytest

from tests.vault.conftest import VaultServer
from tests.vault.driver import VaultClient, dec, enc
from tests.vault.hostproof import haystacks, scan
from vault_api import crypto as vc

SECRET = {
    "type": "login",
    "title": "Bank of Narnia",
    "username": "alice",
    "password": "Tr0ub4dor&3-xyzzy",
}
NOTE = {"type": "note", "title": "Alarm code", "notes": "the alarm code is 7319-0042-8865"}


async def read_file(client: VaultClient, sid: bytes, fid: bytes) -> bytes:
    out = bytearray()
    async for piece in client.download(sid, fid):
        out += piece
    return bytes(out)


async def test_share_revoke_rotate(
    vault: VaultServer, alice: VaultClient, bob: VaultClient
) -> None:
    sid = await alice.create_safe("Household")
    folder = await alice.add_folder(sid, "Money matters")
    bank = await alice.add_item(sid, SECRET, folder_id=folder)
    note = await alice.add_item(sid, NOTE)
    await alice.update_item(
        sid, note, {**NOTE, "notes": "old code 1111-2222-3333"}, expected_version=1
    )
    document = os.urandom(70_000)
    fid = await alice.upload(sid, [document], len(document))

    fp = await alice.share(sid, "bob", "viewer")
    assert fp == bob.fingerprint()
    assert (await bob.items(sid))[bank] == SECRET
    assert await read_file(bob, sid, fid) == document
    old_key, _ = await bob.key(sid)  # what a revoked member may have kept

    await alice.call(
        "DELETE", f"/api/safes/{enc(sid)}/members/{enc(bob.user_id or b'')}", expect=204
    )
    # Access ends at once, server-side.
    r = await bob.call("GET", f"/api/safes/{enc(sid)}/contents", expect=404)
    assert r.json()["error"] == "safe_not_found"
    assert (await bob.json("GET", "/api/safes"))["safes"] == []
    safe = await alice.safe(sid)
    assert safe["rotation_needed"] is True

    assert await alice.rotate(sid) == 2
    safe = await alice.safe(sid)
    assert safe["rotation_needed"] is False
    assert safe["generation"] == 2
    new_key, _ = await alice.key(sid)
    assert new_key != old_key
    items = await alice.items(sid)
    assert items == {bank: SECRET, note: {**NOTE, "notes": "old code 1111-2222-3333"}}
    assert await alice.safe_name(sid) == "Household"
    assert await read_file(alice, sid, fid) == document
    c = await alice.contents(sid)
    assert {i["generation"] for i in c["items"]} == {2}
    assert {i["version"] for i in c["items"] if dec(i["id"]) == note} == {2}  # versions kept
    # The old key opens nothing that is live now.
    for i in c["items"]:
        with pytest.raises(vc.ItemInvalid):
            vc.decrypt_item(
                old_key,
                dec(i["ct"]),
                safe_id=sid,
                item_id=dec(i["id"]),
                folder_id=i["folder_id"] and dec(i["folder_id"]),
                version=i["version"],
                generation=1,
            )
    with pytest.raises(vc.FileKeyInvalid):
        vc.unwrap_file_key(
            old_key, dec(c["files"][0]["key_wrap"]), safe_id=sid, file_id=fid, generation=1
        )

    # History from generation 1 opens through the key chain.
    chain = (await alice.json("GET", f"/api/safes/{enc(sid)}/keys"))["keys"]
    assert [k["generation"] for k in chain] == [2, 1]
    keys = vc.key_chain(
        new_key,
        safe_id=sid,
        current_generation=2,
        links={k["generation"]: dec(k["previous_key"]) for k in chain if k["previous_key"]},
    )
    assert keys[1] == old_key
    [old] = (await alice.json("GET", f"/api/safes/{enc(sid)}/items/{enc(note)}/history"))[
        "versions"
    ]
    assert (
        vc.decrypt_item(
            keys[old["generation"]],
            dec(old["ct"]),
            safe_id=sid,
            item_id=note,
            folder_id=None,
            version=old["version"],
            generation=old["generation"],
        )
        == NOTE
    )

    log = await alice.json("GET", f"/api/safes/{enc(sid)}/audit")
    actions = [e["action"] for e in log["events"]][:3]
    assert actions == ["rotation.commit", "rotation.begin", "member.remove"]
    assert log["events"][0]["detail"] == {
        "generation": 2,
        "items": 2,
        "folders": 1,
        "files": 1,
        "members": 1,
    }

    # Re-shared, bob gets the new generation's key only.
    await alice.share(sid, "bob", "editor")
    assert (await bob.items(sid))[bank] == SECRET


async def test_an_interrupted_rotation_leaves_the_old_state_intact(
    vault: VaultServer, alice: VaultClient, bob: VaultClient
) -> None:
    sid = await alice.create_safe("Team")
    ids = [await alice.add_item(sid, {**NOTE, "title": f"note {n}"}) for n in range(6)]
    await alice.share(sid, "bob", "editor")
    before = await alice.contents(sid)

    plan, _ = await alice.plan_rotation(sid)
    rot = await alice.begin_rotation(sid, plan)
    assert rot["missing"]["items"]
    assert rot["complete"] is False
    # Half the items staged, then the browser dies.
    status = await alice.stage(sid, rot["id"], plan, items=plan.items[:3])
    assert status["staged"]["items"] == 3
    assert len(status["missing"]["items"]) == 3
    assert await alice.contents(sid) == before  # nothing live changed
    # A commit now is refused and changes nothing.
    r = await alice.call("POST", f"/api/safes/{enc(sid)}/rotations/{rot['id']}/commit", expect=409)
    body = r.json()
    assert body["error"] == "rotation_incomplete"
    assert sorted(body["missing"]["items"]) == sorted(enc(i.item_id) for i in plan.items[3:])
    assert await alice.contents(sid) == before
    # Members go on reading and writing under the old key.
    assert (await bob.items(sid))[ids[0]]["title"] == "note 0"
    await bob.update_item(sid, ids[5], {**NOTE, "title": "edited meanwhile"}, expected_version=1)

    # A new attempt supersedes the dead one, and completes.
    plan2, _ = await alice.plan_rotation(sid)
    rot2 = await alice.begin_rotation(sid, plan2)
    r = await alice.call(
        "POST", f"/api/safes/{enc(sid)}/rotations/{rot['id']}/stage", json={}, expect=404
    )
    assert r.json()["error"] == "rotation_not_found"
    await alice.stage(sid, rot2["id"], plan2)
    await alice.commit(sid, rot2["id"])
    items = await bob.items(sid)
    assert items[ids[5]]["title"] == "edited meanwhile"
    assert len(items) == 6
    assert (await bob.safe(sid))["generation"] == 2


async def test_edits_during_a_rotation_are_kept(
    vault: VaultServer, alice: VaultClient, bob: VaultClient
) -> None:
    sid = await alice.create_safe("Team")
    a = await alice.add_item(sid, {**NOTE, "title": "a"})
    b = await alice.add_item(sid, {**NOTE, "title": "b"})
    await alice.share(sid, "bob", "editor")
    plan, _ = await alice.plan_rotation(sid)
    rot = await alice.begin_rotation(sid, plan)
    assert (await alice.stage(sid, rot["id"], plan))["complete"]

    # Bob edits one item and adds another after alice staged.
    await bob.update_item(sid, a, {**NOTE, "title": "a by bob"}, expected_version=1)
    c = await bob.add_item(sid, {**NOTE, "title": "c by bob"})
    r = await alice.call("POST", f"/api/safes/{enc(sid)}/rotations/{rot['id']}/commit", expect=409)
    body = r.json()
    assert body["stale"]["items"] == [enc(a)]
    assert body["missing"]["items"] == [enc(c)]
    assert (await alice.safe(sid))["generation"] == 1

    # Alice re-stages just those two, from their current versions, and commits.
    current = {dec(i["id"]): i for i in (await alice.contents(sid))["items"]}
    redo = [
        vc.restage_item(
            (await alice.key(sid))[0],
            plan.new_key,
            safe_id=sid,
            item=vc.ItemRecord(
                item_id=iid,
                folder_id=None,
                version=current[iid]["version"],
                generation=1,
                schema=1,
                ct=dec(current[iid]["ct"]),
            ),
            new_generation=2,
        )
        for iid in (a, c)
    ]
    status = await alice.stage(sid, rot["id"], plan, items=redo, name=False, members=False)
    assert status["complete"], status
    await alice.commit(sid, rot["id"])

    # Bob's next write under the old generation is refused; after a refetch it works.
    r = await bob.update_item(
        sid, b, {**NOTE, "title": "b by bob"}, expected_version=1, generation=1, expect=409
    )
    assert r.json()["error"] == "generation_stale"
    assert r.json()["current_generation"] == 2
    await bob.update_item(sid, b, {**NOTE, "title": "b by bob"}, expected_version=1)
    titles = {k: v["title"] for k, v in (await alice.items(sid)).items()}
    assert titles == {a: "a by bob", b: "b by bob", c: "c by bob"}


async def test_concurrent_writers_of_one_version_one_wins(
    vault: VaultServer, alice: VaultClient, bob: VaultClient
) -> None:
    sid = await alice.create_safe("Team")
    iid = await alice.add_item(sid, NOTE)
    await alice.share(sid, "bob", "editor")

    async def write(client: VaultClient, n: int) -> int:
        r = await client.update_item(
            sid, iid, {**NOTE, "title": f"w{n}"}, expected_version=1, expect=None
        )
        return r.status_code

    statuses = await asyncio.gather(*(write(alice if n % 2 else bob, n) for n in range(10)))
    assert sorted(statuses) == [200] + [409] * 9
    hist = (await alice.json("GET", f"/api/safes/{enc(sid)}/items/{enc(iid)}/history"))["versions"]
    assert [v["version"] for v in hist] == [1]
    assert (await alice.json("GET", f"/api/safes/{enc(sid)}/items/{enc(iid)}"))["version"] == 2


async def test_a_commit_racing_writes_never_half_rotates(
    vault: VaultServer, alice: VaultClient, bob: VaultClient
) -> None:
    sid = await alice.create_safe("Team")
    ids = [await alice.add_item(sid, {**NOTE, "title": f"n{n}"}) for n in range(8)]
    await alice.share(sid, "bob", "editor")
    plan, _ = await alice.plan_rotation(sid)
    rot = await alice.begin_rotation(sid, plan)
    await alice.stage(sid, rot["id"], plan)

    async def edit(n: int) -> int:
        r = await bob.update_item(
            sid,
            ids[n],
            {**NOTE, "title": f"bob {n}"},
            expected_version=1,
            generation=1,
            expect=None,
        )
        return r.status_code

    results = await asyncio.gather(
        alice.call("POST", f"/api/safes/{enc(sid)}/rotations/{rot['id']}/commit", expect=None),
        *(edit(n) for n in range(8)),
    )
    commit, edits = results[0], results[1:]
    assert commit.status_code in (200, 409)
    assert all(s in (200, 409) for s in edits)
    # Whatever interleaving happened, the safe is at one generation throughout.
    c = await alice.contents(sid)
    generations = {i["generation"] for i in c["items"]}
    assert generations == {c["safe"]["generation"]}
    items = await alice.items(sid)  # every item opens
    assert len(items) == 8
    if commit.status_code == 200:
        assert all(s == 409 for s in edits)  # ... or they landed before it and made it stale


async def test_only_admins_rotate(vault: VaultServer, alice: VaultClient, bob: VaultClient) -> None:
    sid = await alice.create_safe("Team")
    await alice.share(sid, "bob", "editor")
    plan, _ = await alice.plan_rotation(sid)
    r = await bob.call(
        "POST",
        f"/api/safes/{enc(sid)}/rotations",
        json={"from_generation": 1, "previous_key": enc(plan.previous_key)},
        expect=403,
    )
    assert r.json()["error"] == "role_forbidden"
    r = await alice.call(
        "POST",
        f"/api/safes/{enc(sid)}/rotations",
        json={"from_generation": 2, "previous_key": enc(plan.previous_key)},
        expect=409,
    )
    assert r.json()["error"] == "generation_stale"


async def test_the_server_holds_no_secret(
    vault: VaultServer, alice: VaultClient, bob: VaultClient
) -> None:
    """The host-proof check after a whole scenario: share, revoke, rotate."""
    sid = await alice.create_safe("Household secrets")
    folder = await alice.add_folder(sid, "Bank folder name")
    await alice.add_item(sid, SECRET, folder_id=folder)
    iid = await alice.add_item(sid, NOTE)
    await alice.update_item(
        sid, iid, {**NOTE, "notes": "new alarm code 5550-1234-9876"}, expected_version=1
    )
    document = b"CONFIDENTIAL MERGER PLAN. " * 4000
    fid = await alice.upload(sid, [document], len(document))
    await alice.share(sid, "bob", "editor")
    await bob.add_item(sid, {"type": "card", "title": "Bob's card", "number": "4000123412341234"})
    await alice.call(
        "DELETE", f"/api/safes/{enc(sid)}/members/{enc(bob.user_id or b'')}", expect=204
    )
    await alice.rotate(sid)

    meta = await alice.json("GET", f"/api/safes/{enc(sid)}/files/{enc(fid)}")
    ks, _ = await alice.key(sid)
    file_key = vc.unwrap_file_key(ks, dec(meta["key_wrap"]), safe_id=sid, file_id=fid, generation=2)
    needles: dict[str, bytes] = {
        "a password": SECRET["password"].encode(),
        "an item title": SECRET["title"].encode(),
        "a note": NOTE["notes"].encode(),
        "an updated note": b"new alarm code 5550-1234-9876",
        "a card number": b"4000123412341234",
        "a folder name": b"Bank folder name",
        "a safe name": b"Household secrets",
        "a file's plaintext": document[:64],
        "the file key": file_key,
    }
    for client, who in ((alice, "alice"), (bob, "bob")):
        assert client.private_key is not None
        for kid, kc in client.kc.items():
            needles[f"{who}'s Kc {kid.hex()[:6]}"] = kc
            needles[f"{who}'s slot key {kid.hex()[:6]}"] = vc.slot_kek(kc)
        needles[f"{who}'s private key"] = client.private_key.private_bytes_raw()
        needles[f"{who}'s private key (PKCS#8)"] = vc.private_key_pkcs8(client.private_key)
    for (safe, generation), key in {**alice.safe_keys, **bob.safe_keys}.items():
        needles[f"safe key {safe.hex()[:6]} generation {generation}"] = key
    stacks = haystacks(vault.db_url, vault.settings.blob_path)
    assert scan(stacks, needles) == []
    # The scan does see what is there: public keys and ciphertexts are found.
    assert alice.public_key is not None
    ct = dec((await alice.contents(sid))["items"][0]["ct"])
    found = scan(stacks, {"a public key": alice.public_key, "a ciphertext": ct})
    assert "a public key in database dump" in found
    assert "a ciphertext in database dump" in found
