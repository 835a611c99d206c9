"""The page and the Python reference client (tests/vault/driver.py, the
crypto of vault_api.crypto over the same API) read each other's writes: the
same account logged in from both, the same safe, nothing translated between."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from playwright.async_api import expect

from simulators.phone.app import PhoneApp
from tests.vault.driver import VaultClient, dec, enc
from tests.vault_browser import ui
from tests.vault_browser.conftest import Browsers, VaultSite
from vault_api import crypto as vc

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

FROM_PAGE = {
    "type": "login",
    "title": "Wiki — ünïcode ✓",
    "username": "alice",
    "password": 'p"a\\ss word',
    "urls": ["https://wiki.example", "https://wiki2.example"],
    "totp": "JBSWY3DPEHPK3PXP",
    "notes": "line one\nline two",
}


async def find_safe(py: VaultClient, name: str) -> bytes:
    for s in (await py.json("GET", "/api/safes"))["safes"]:
        if await py.safe_name(dec(s["id"])) == name:
            return dec(s["id"])
    raise AssertionError(f"no safe {name}")


async def read_all(py: VaultClient, sid: bytes, fid: bytes) -> bytes:
    out = bytearray()
    async for piece in py.download(sid, fid):
        out += piece
    return bytes(out)


async def test_the_page_and_the_python_client_read_each_others_writes(
    browsers: Browsers, vault: VaultSite, alice_phone: PhoneApp, tmp_path: Path
) -> None:
    page = await browsers.page()
    await ui.sign_up(page, vault, alice_phone, "alice")
    await ui.create_safe(page, "Shared")
    await ui.add_item(page, FROM_PAGE)
    page_file = os.urandom(vc.CHUNK_BYTES * 2 + 1234)
    (tmp_path / "from-page.bin").write_bytes(page_file)
    await ui.select_item(page, FROM_PAGE["title"])
    await page.locator("#attach-input").set_input_files(str(tmp_path / "from-page.bin"))
    await ui.wait_status(page, "Uploaded from-page.bin")

    # The Python client, logged in as the same person with the same phone.
    async with vault.client() as py:
        await py.login(alice_phone)
        assert py.private_key is not None  # the slot the page made opens in Python
        sid = await find_safe(py, "Shared")
        [(iid, content)] = (await py.items(sid)).items()
        [ref] = content.pop("files")
        assert content == FROM_PAGE  # every field, byte for byte through JSON
        assert ref["name"] == "from-page.bin"
        assert ref["size"] == len(page_file)
        assert await read_all(py, sid, dec(ref["id"])) == page_file

        # Python writes: a folder, a card in it, an edit of the page's item, a file.
        folder = await py.add_folder(sid, "From Python ✓")
        card = {"type": "card", "title": "Python card", "number": "4000123412341234", "code": "999"}
        await py.add_item(sid, card, folder_id=folder)
        py_file = os.urandom(vc.CHUNK_BYTES + 7)
        fid = await py.upload(sid, [py_file[:1000], py_file[1000:]], len(py_file))
        edited = {
            **FROM_PAGE,
            "password": "changed in python",
            "files": [
                ref,
                {
                    "id": enc(fid),
                    "name": "from-python.bin",
                    "size": len(py_file),
                    "type": "application/octet-stream",
                },
            ],
        }
        await py.update_item(sid, iid, edited, expected_version=2)

    # The page reads what Python wrote.
    await page.get_by_role("button", name="Reload safes").click()
    await ui.wait_status(page, r"^Opened Shared")
    await expect(page.locator("#list-count")).to_have_text("2 items")
    await expect(page.locator("#folder-tree")).to_contain_text("From Python ✓")
    await ui.select_item(page, "Python card")
    await page.get_by_role("button", name="Show the card number").click()
    await expect(page.locator("#item-body")).to_contain_text("4000123412341234")
    await expect(page.locator("#item-body")).to_contain_text("From Python ✓")
    await ui.select_item(page, FROM_PAGE["title"])
    await expect(page.locator("#item-body")).to_contain_text("version 3")
    await page.get_by_role("button", name="Show the password").click()
    await expect(page.locator("#item-body")).to_contain_text("changed in python")
    async with page.expect_download() as dl:
        await page.get_by_role("button", name="Download from-python.bin").click()
    assert await ui.downloaded(await dl.value) == py_file
    # The history holds the page's versions, opened in the page.
    await page.get_by_role("button", name="History").click()
    history = page.locator("#history-dialog")
    await expect(history).to_contain_text("Version 2")
    await expect(history).to_contain_text("Version 1")
    await expect(history.locator(".bad")).to_have_count(0)
    await page.keyboard.press("Escape")

    # And the page's edits of Python's records open in Python again.
    await ui.select_item(page, "Python card")
    await page.get_by_role("button", name="Edit").click()
    await page.locator("#edit-code").fill("123")
    await page.get_by_role("button", name="Save", exact=True).click()
    await ui.wait_status(page, r"Saved Python card \(version 2\)")
    async with vault.client() as py:
        await py.login(alice_phone)
        items = {c["title"]: c for c in (await py.items(sid)).values()}
        assert items["Python card"] == {**card, "code": "123"}
        c = await py.contents(sid)
        assert [await py_folder_name(py, sid, f) for f in c["folders"]] == ["From Python ✓"]


async def py_folder_name(py: VaultClient, sid: bytes, f: dict[str, object]) -> str:
    ks, g = await py.key(sid)
    return vc.decrypt_folder_name(
        ks,
        dec(str(f["name_ct"])),
        safe_id=sid,
        folder_id=dec(str(f["id"])),
        parent_id=None,
        version=int(str(f["version"])),
        generation=g,
    )


async def test_the_page_and_the_vault_cli_read_each_others_writes(
    browsers: Browsers, vault: VaultSite, alice_phone: PhoneApp, tmp_path: Path
) -> None:
    """The `vault` command (vault_api/client) and the page, one account."""
    from tests.vault.clirunner import logged_in

    page = await browsers.page()
    await ui.sign_up(page, vault, alice_phone, "alice")
    await ui.create_safe(page, "Both")
    await ui.add_item(
        page, {"type": "login", "title": "db1", "username": "postgres", "password": "from-the-page"}
    )
    body = os.urandom(vc.CHUNK_BYTES + 99)
    await asyncio.to_thread((tmp_path / "page.bin").write_bytes, body)
    await ui.select_item(page, "db1")
    await page.locator("#attach-input").set_input_files(str(tmp_path / "page.bin"))
    await ui.wait_status(page, "Uploaded page.bin")

    cli = await logged_in(vault.url, tmp_path, tmp_path / "alice-phone.json", "alice")
    assert (await cli.json("safes"))["safes"][0]["name"] == "Both"
    assert (await cli.ok("get", "Both", "db1")).out == "from-the-page"
    await cli.ok("download", "Both", "db1", "-o", tmp_path / "got.bin")
    assert await asyncio.to_thread((tmp_path / "got.bin").read_bytes) == body
    card = await cli.json(
        "add", "Both", "card", "CLI card", "--number", "stdin", "--expiry", "01/2030",
        stdin="4000123412341234\n",
    )  # fmt: skip
    assert card["id"]
    cli_body = os.urandom(2 * vc.CHUNK_BYTES + 5)
    await asyncio.to_thread((tmp_path / "cli.bin").write_bytes, cli_body)
    await cli.json("upload", "Both", tmp_path / "cli.bin")

    await ui.reload_and_open(page, "Both")
    await expect(page.locator("#list-count")).to_have_text("3 items")
    await ui.select_item(page, "CLI card")
    await page.get_by_role("button", name="Show the card number").click()
    await expect(page.locator("#item-body")).to_contain_text("4000123412341234")
    await expect(page.locator("#item-body")).to_contain_text("01/2030")
    doc = page.locator(".vlist-row", has_text="cli.bin")
    await doc.first.click()
    async with page.expect_download() as dl:
        await page.get_by_role("button", name="Download cli.bin").click()
    assert await ui.downloaded(await dl.value) == cli_body
