"""Moving an item to another safe in the page (docs/vault.md 8.4, 19.1):
"Move to safe…" with the keyboard, progress in the status line, a clear
result; the item's file downloads from the target safe byte for byte, while
its body on the server's disk was never rewritten; its earlier version moved
with it. A safe the person only views is offered disabled, and a move into
it forced past the page is refused (403) with nothing changed."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from simulators.phone.app import PhoneApp
from tests.vault.driver import enc
from tests.vault_browser import ui
from tests.vault_browser.conftest import Browsers, VaultSite
from vault_api.blobs import blob_name

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

ROUTER = {"type": "login", "title": "Home router", "username": "admin", "password": "r0uter-Pa55"}

STATUS_LOG = """
window.__statusLog = [];
document.addEventListener("DOMContentLoaded", () => {
  const el = document.getElementById("status");
  if (el) new MutationObserver(() => window.__statusLog.push(el.textContent))
    .observe(el, { childList: true, characterData: true, subtree: true });
});
"""


def rows(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    with sqlite3.connect(db) as c:
        return {
            t: sorted(c.execute(f"SELECT * FROM {t}")) for t in ("items", "item_versions", "files")
        }


def body_on_disk(vault: VaultSite, fid: bytes) -> tuple[str, int, int]:
    name = blob_name(fid)
    path = vault.settings.blob_path / name[:2] / name[2:4] / name
    st = path.stat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), st.st_ino, st.st_mtime_ns


async def forced_move(page: Page, path: str, body: dict[str, Any]) -> dict[str, Any]:
    token = await ui.csrf_token(page)
    got = await page.evaluate(
        """async ([path, token, body]) => {
             const headers = { "Content-Type": "application/json", "X-CSRF-Token": token };
             const r = await fetch(path, { method: "POST", headers, body: JSON.stringify(body) });
             return { status: r.status, body: await r.json().catch(() => null) };
           }""",
        [path, token, body],
    )
    assert isinstance(got, dict)
    return got


async def test_move_an_item_with_its_file_and_download_it_from_the_other_safe(
    browsers: Browsers,
    vault: VaultSite,
    alice_phone: PhoneApp,
    bob_phone: PhoneApp,
    tmp_path: Path,
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        await story(stack, browsers, vault, alice_phone, bob_phone, tmp_path)


async def story(
    stack: contextlib.AsyncExitStack,
    browsers: Browsers,
    vault: VaultSite,
    alice_phone: PhoneApp,
    bob_phone: PhoneApp,
    tmp_path: Path,
) -> None:
    page = await browsers.page()
    await page.add_init_script(STATUS_LOG)
    await ui.sign_up(page, vault, alice_phone, "alice")
    # Alice's other safe, with a folder, made by her Python client (same account).
    py = await stack.enter_async_context(vault.client())
    await py.login(alice_phone)
    work = await py.create_safe("Work")
    await py.add_folder(work, "Network")
    # Bob's safe, shared with Alice as viewer only.
    bob = await stack.enter_async_context(vault.client())
    await bob.login(bob_phone)
    await bob.register("bob")
    team = await bob.create_safe("Team")
    await bob.share(team, "alice", "viewer")

    # In the page: a safe with an item, a file attached to it, and one edit (history).
    await ui.create_safe(page, "Home")
    await ui.add_item(page, ROUTER)
    await ui.select_item(page, ROUTER["title"])
    document = os.urandom(300_000)
    doc_path = tmp_path / "router-backup.cfg"
    doc_path.write_bytes(document)
    await page.locator("#attach-input").set_input_files(str(doc_path))
    await ui.wait_status(page, r"Uploaded router-backup\.cfg", wait_ms=30_000)
    [file_row] = rows(vault.db_path)["files"]
    fid, home = file_row[0], file_row[1]
    before_disk = body_on_disk(vault, fid)

    # "Move to safe…", from the keyboard. Team is listed but cannot be chosen.
    await page.locator("#move-button").focus()
    await page.keyboard.press("Enter")
    dialog = page.locator("#move-dialog")
    await expect(dialog).to_be_visible()
    await expect(page.locator("#move-safe")).to_be_focused()
    team_option = page.locator("#move-safe option", has_text="Team")
    await expect(team_option).to_have_text("Team (viewer: cannot move into it)")
    await expect(team_option).to_be_disabled()
    move = dialog.get_by_role("button", name="Move", exact=True)
    await expect(move).to_be_disabled()  # until a safe is chosen
    await page.keyboard.press("Escape")
    await expect(dialog).to_have_count(0)
    await expect(page.locator("#move-button")).to_be_focused()  # focus came back

    # Forced past the page, a move into Team is refused, and nothing changes.
    before = rows(vault.db_path)
    iid = before["items"][0][0]
    refused = await forced_move(
        page,
        f"/api/safes/{enc(home)}/items/{enc(iid)}/move",
        {
            "to_safe_id": enc(team),
            "expected_version": 2,  # the attachment made version 2
            "generation": 1,
            "folder_id": None,
            "ct": enc(os.urandom(100)),
            "history": [],
            "files": [{"id": enc(fid), "key_wrap": enc(os.urandom(60))}],
        },
    )
    assert refused["status"] == 403
    assert (refused["body"]["error"], refused["body"]["role"]) == ("role_forbidden", "viewer")
    assert rows(vault.db_path) == before

    # An edit, so the item has earlier versions (1, and 2 from the attachment) to take along.
    await page.locator("#item-body").get_by_role("button", name="Edit", exact=True).click()
    await page.locator("#edit-notes").fill("firmware 2.1")
    await page.get_by_role("button", name="Save", exact=True).click()
    await ui.wait_status(page, r"Saved Home router \(version 3\)")

    await page.locator("#move-button").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#move-safe")).to_be_focused()
    await page.locator("#move-safe").select_option(label="Work")
    folder = page.locator("#move-folder")
    await expect(folder).to_be_enabled()
    await folder.select_option(label="Network")
    await move.focus()
    await page.keyboard.press("Enter")
    result = "Moved Home router to Work / Network with its file and its 2 earlier versions."
    await ui.wait_status(page, re.escape(result), wait_ms=30_000)
    await expect(page.locator("#item-heading")).to_have_text("Moved Home router")
    await expect(page.locator("#item-heading")).to_be_focused()
    await expect(page.locator("#list-count")).to_have_text("0 items")
    log = await page.evaluate("window.__statusLog")
    steps = [s for s in log if s.startswith("Moving Home router: ")]
    # Progress (at most every 250 ms): 1 item, 2 versions and 1 file key re-encrypted
    # here, then the request.
    assert steps[-1] == "Moving Home router: saving it in Work…", log
    assert all(
        re.fullmatch(r"Moving Home router: re-[a-z ]+ \([0-4] of 4\)", s) for s in steps[:-1]
    )

    # On the server: the item and its file are Work's now; the body was not rewritten.
    after = rows(vault.db_path)
    assert [r[1] for r in after["items"]] == [work]
    assert [r[1] for r in after["files"]] == [work]
    assert body_on_disk(vault, fid) == before_disk

    # In Work: the item, in its folder; the file downloads byte for byte; history is there.
    await page.get_by_role("button", name="Open Work").click()
    await ui.wait_status(page, "^Opened Work")
    await ui.select_item(page, ROUTER["title"])
    await expect(page.locator("#item-body")).to_contain_text("Network")
    await expect(page.locator("#item-body")).to_contain_text("firmware 2.1")
    async with page.expect_download() as dl:
        await page.get_by_role("button", name="Download router-backup.cfg").click()
    assert await ui.downloaded(await dl.value) == document
    await page.locator("#item-body").get_by_role("button", name="History").click()
    history = page.locator("#history-dialog")
    await expect(history.locator("li")).to_have_count(2)
    await expect(history).to_contain_text("Version 2")
    await expect(history).to_contain_text("Version 1")
    await expect(history).not_to_contain_text("does not open")
    await page.keyboard.press("Escape")

    # Alice's Python client reads the same, and Bob's safe got nothing.
    assert (await py.items(work))[iid]["notes"] == "firmware 2.1"
    assert (await bob.contents(team))["items"] == []


async def test_a_refused_move_says_why_and_changes_nothing(
    browsers: Browsers, vault: VaultSite, alice_phone: PhoneApp
) -> None:
    page = await browsers.page()
    await ui.sign_up(page, vault, alice_phone, "alice")
    async with vault.client() as py:
        await py.login(alice_phone)
        home = await py.create_safe("Home")
        work = await py.create_safe("Work")
        await py.add_item(home, ROUTER)
        # Work's key rotation begun elsewhere and not committed.
        plan, _ = await py.plan_rotation(work)
        rotation = await py.begin_rotation(work, plan)
        await ui.reload_and_open(page, "Home")
        await ui.select_item(page, ROUTER["title"])
        before = rows(vault.db_path)

        async def move_to_work() -> None:
            await page.get_by_role("button", name="Move to safe…").click()
            await page.locator("#move-safe").select_option(label="Work")
            await expect(page.locator("#move-folder")).to_be_enabled()
            await (
                page.locator("#move-dialog").get_by_role("button", name="Move", exact=True).click()
            )

        await move_to_work()
        alert = page.locator("#alert")
        await expect(alert).to_contain_text("Home router was not moved: safe ")
        await expect(alert).to_contain_text("key rotation that was begun and not committed")
        await expect(alert).to_contain_text("Nothing was changed.")
        assert rows(vault.db_path) == before
        await expect(page.locator("#list-count")).to_have_text("1 item")
        await expect(page.get_by_role("button", name="Move to safe…")).to_be_enabled()

        # Once the rotation is out of the way, the same move goes through.
        await py.call("DELETE", f"/api/safes/{enc(work)}/rotations/{rotation['id']}", expect=204)
        await move_to_work()
        await ui.wait_status(page, r"^Moved Home router to Work\.$")
        assert [r[1] for r in rows(vault.db_path)["items"]] == [work]
        assert (await py.items(work)) == {before["items"][0][0]: ROUTER}
