"""Bad input in the page, with clear messages and nothing lost: ciphertexts
tampered with or swapped in the database (the page refuses those items and
says so; the rest open), a stale version (409: the conflict panel keeps the
person's edits), a file over the limit (413: nothing uploaded), and a key
rotation interrupted by the page closing (the live safe is unchanged; the
next admin page rotates it from the start)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, Route, expect

from simulators.phone.app import PhoneApp
from tests.vault.driver import VaultClient, enc
from tests.vault_browser import ui
from tests.vault_browser.conftest import MAX_FILE_BYTES, Browsers, VaultSite

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

NOTE = {"type": "note", "title": "note", "notes": "the body"}


async def setup(
    browsers: Browsers, vault: VaultSite, phone: PhoneApp, titles: list[str]
) -> tuple[Page, VaultClient, bytes, list[bytes]]:
    """Alice signed up in the page; her Python client makes a safe of notes."""
    page = await browsers.page()
    await ui.sign_up(page, vault, phone, "alice")
    py = vault.client()
    await py.login(phone)
    sid = await py.create_safe("Team")
    ids = await ui.bulk_items(py, sid, [{**NOTE, "title": t} for t in titles])
    return page, py, sid, ids


def db(vault: VaultSite) -> sqlite3.Connection:
    return sqlite3.connect(vault.db_path)


async def test_a_tampered_or_swapped_ciphertext_is_refused_and_the_rest_opens(
    browsers: Browsers, vault: VaultSite, alice_phone: PhoneApp
) -> None:
    page, py, sid, ids = await setup(
        browsers, vault, alice_phone, ["alpha", "bravo", "charlie", "delta", "echo"]
    )
    folder = await py.add_folder(sid, "Tampered folder")
    await py.http.aclose()
    with db(vault) as c:
        ct = {iid: ctv for iid, ctv in c.execute("SELECT item_id, ct FROM items")}
        flipped = bytearray(ct[ids[1]])
        flipped[40] ^= 0x01
        c.execute(
            "UPDATE items SET ct = ? WHERE item_id = ?", (bytes(flipped), ids[1])
        )  # bravo: modified
        c.execute(
            "UPDATE items SET ct = ? WHERE item_id = ?", (ct[ids[0]], ids[3])
        )  # delta: alpha's ct
        name = bytearray(
            c.execute("SELECT name_ct FROM folders WHERE folder_id = ?", (folder,)).fetchone()[0]
        )
        name[-1] ^= 0x80
        c.execute("UPDATE folders SET name_ct = ? WHERE folder_id = ?", (bytes(name), folder))

    await ui.reload_and_open(page, "Team", r"^Opened Team: 5 items in .*; 2 could not be opened$")
    await expect(page.locator("#alert")).to_contain_text("2 items of this safe did not open")
    await expect(page.locator(".vlist-row.row-bad")).to_have_count(2)
    for title in ("alpha", "charlie", "echo"):
        await expect(page.locator(".vlist-row:not(.row-bad)", has_text=title)).to_have_count(1)
    await expect(page.locator("#folder-tree .bad")).to_have_text("(folder does not open)")
    bad = page.locator(".vlist-row.row-bad").first
    await expect(bad).to_contain_text("Does not open: item_invalid")
    await bad.click()
    await expect(page.locator("#item-body")).to_contain_text(
        "This item does not open (item_invalid)"
    )
    await expect(page.locator("#item-body")).to_contain_text(
        "was modified, or it was made for another item"
    )
    # The good ones still work normally.
    await ui.select_item(page, "echo")
    await expect(page.locator("#item-body .notes")).to_have_text("the body")


async def test_a_stale_version_shows_the_conflict_and_keeps_the_edits(
    browsers: Browsers, vault: VaultSite, alice_phone: PhoneApp
) -> None:
    page, py, sid, [iid] = await setup(browsers, vault, alice_phone, ["shared note"])
    await ui.reload_and_open(page, "Team")
    await ui.select_item(page, "shared note")
    await page.get_by_role("button", name="Edit").click()
    await page.locator("#edit-notes").fill("my careful edit")

    # Meanwhile someone else saves version 2.
    await py.update_item(
        sid, iid, {**NOTE, "title": "shared note", "notes": "their edit"}, expected_version=1
    )

    await page.get_by_role("button", name="Save", exact=True).click()
    panel = page.locator(".conflict")
    await expect(panel).to_contain_text("Someone else saved this item while you were editing")
    await expect(panel).to_contain_text("now at version 2")
    await expect(page.locator("#edit-notes")).to_have_value("my careful edit")  # nothing lost
    await expect(
        panel.get_by_role("button", name="Keep my changes (save over theirs)")
    ).to_be_focused()
    assert (await py.items(sid))[iid]["notes"] == "their edit"  # nothing overwritten

    await panel.get_by_role("button", name="Keep my changes (save over theirs)").click()
    await expect(page.locator("#edit-notes")).to_have_value("my careful edit")
    await page.get_by_role("button", name="Save", exact=True).click()
    await ui.wait_status(page, r"Saved shared note \(version 3\)")
    assert (await py.items(sid))[iid]["notes"] == "my careful edit"
    hist = (await py.json("GET", f"/api/safes/{enc(sid)}/items/{enc(iid)}/history"))["versions"]
    assert [v["version"] for v in hist] == [2, 1]  # their version is kept in the history

    # The other choice: discard mine, show theirs.
    await page.get_by_role("button", name="Edit").click()
    await page.locator("#edit-notes").fill("second edit, to be discarded")
    await py.update_item(
        sid, iid, {**NOTE, "title": "shared note", "notes": "theirs again"}, expected_version=3
    )
    await page.get_by_role("button", name="Save", exact=True).click()
    await page.get_by_role("button", name="Discard mine and reload theirs").click()
    await expect(page.locator("#item-body .notes")).to_have_text("theirs again")
    await expect(page.locator("#item-body")).to_contain_text("version 4")
    await py.http.aclose()


async def test_a_file_over_the_limit_gets_the_413_message(
    browsers: Browsers, vault: VaultSite, alice_phone: PhoneApp, tmp_path: Path
) -> None:
    page, py, _, _ = await setup(browsers, vault, alice_phone, ["holder"])
    await py.http.aclose()
    await ui.reload_and_open(page, "Team")
    await ui.select_item(page, "holder")
    big = tmp_path / "too-big.iso"
    big.write_bytes(b"\0" * (MAX_FILE_BYTES + 1))
    await page.locator("#attach-input").set_input_files(str(big))
    await expect(page.locator("#alert")).to_have_text(
        re.compile(
            r"too-big\.iso is too large \(4\.0 MB\): this vault takes files up to 4\.0 MB\. "
            r"Nothing was uploaded\."
        )
    )
    with db(vault) as c:
        assert c.execute("SELECT count(*) FROM files").fetchone()[0] == 0
    assert not any(p.is_file() for p in vault.settings.blob_path.rglob("*"))
    await expect(page.locator("#item-body")).to_contain_text("version 1")  # the item is unchanged


def live_state(vault: VaultSite) -> dict[str, Any]:
    with db(vault) as c:
        return {
            "safe": c.execute("SELECT generation, name_ct, rotation_needed FROM safes").fetchall(),
            "items": sorted(
                c.execute("SELECT item_id, version, generation, ct FROM items").fetchall()
            ),
            "members": sorted(
                c.execute("SELECT user_id, generation, sealed_key FROM memberships").fetchall()
            ),
            "keys": c.execute("SELECT generation FROM safe_keys").fetchall(),
        }


async def test_an_interrupted_rotation_leaves_the_safe_intact_and_starts_again(
    browsers: Browsers, vault: VaultSite, alice_phone: PhoneApp, bob_phone: PhoneApp
) -> None:
    page, py, sid, _ = await setup(
        browsers, vault, alice_phone, [f"item {n:04}" for n in range(1200)]
    )
    async with vault.client() as bob:
        await bob.login(bob_phone)
        await bob.register("bob")
    await py.share(sid, "bob", "editor")
    await ui.reload_and_open(page, "Team", r"^Opened Team: 1,200 items")

    # The page dies during the third staging request (name and members, then 500 items, then...).
    stages = 0
    died = asyncio.get_running_loop().create_future()

    async def stage(route: Route) -> None:
        nonlocal stages
        stages += 1
        if stages < 3:
            await route.continue_()
            return
        await route.abort()
        if not died.done():
            died.set_result(None)

    await page.route("**/rotations/*/stage", stage)
    await page.get_by_role("button", name="Members").click()
    await page.get_by_role("button", name="Remove bob").click()
    await page.locator("#confirm-dialog").get_by_role("button", name="Remove").click()
    await asyncio.wait_for(died, 30)
    await page.close()
    before = live_state(vault)

    # The live safe is exactly as it was, still marked for rotation; half a staging area waits.
    assert before["safe"][0][0] == 1
    assert before["safe"][0][2] == 1
    assert {g for _, _, g, _ in before["items"]} == {1}
    assert before["keys"] == [(1,)]
    with db(vault) as c:
        assert c.execute("SELECT count(*) FROM rotations").fetchone()[0] == 1
        assert c.execute("SELECT count(*) FROM staged_items").fetchone()[0] == 500
    items = await py.items(sid)  # every item still opens with the old key
    assert len(items) == 1200
    # Writes go on meanwhile, under the old key.
    some = next(iter(items))
    await py.update_item(
        sid, some, {**NOTE, "title": "edited during the outage"}, expected_version=1
    )
    assert live_state(vault)["safe"] == before["safe"]

    # Alice comes back: her page sees the safe needs rotating and does it from the start.
    page2 = await browsers.page()
    await ui.open_vault(page2, vault)
    await ui.login(page2, alice_phone)
    await ui.wait_status(page2, r"The safe key was rotated \(key generation 2\)", wait_ms=60_000)
    after = live_state(vault)
    assert after["safe"][0][0] == 2
    assert after["safe"][0][2] == 0
    assert {g for _, _, g, _ in after["items"]} == {2}
    assert len(after["members"]) == 1  # bob is gone
    with db(vault) as c:
        assert c.execute("SELECT count(*) FROM rotations").fetchone()[0] == 0
        assert c.execute("SELECT count(*) FROM staged_items").fetchone()[0] == 0
    items = await py.items(sid)
    assert len(items) == 1200
    assert items[some]["title"] == "edited during the outage"
    await expect(page2.locator("#list-count")).to_have_text("1,200 items")
    await py.http.aclose()
