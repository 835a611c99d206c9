"""Nested folders in the page: made inside the selected folder, names
encrypted (the Python client reads them and their nesting), items filed and
moved, a folder renamed, and deleted only when empty."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from simulators.phone.app import PhoneApp
from tests.vault.driver import dec, opt
from tests.vault_browser import ui
from tests.vault_browser.conftest import Browsers, VaultSite
from vault_api import crypto as vc

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def folder_button(page: Page, name: str) -> None:
    await page.locator("#folder-tree button", has_text=name).first.click()


async def new_folder(page: Page, label: str, name: str) -> None:
    await page.get_by_role("button", name="New folder").click()
    await page.get_by_label(label).fill(name)
    await page.locator("dialog").get_by_role("button", name="OK", exact=True).click()
    await ui.wait_status(page, f"Folder {name} created")


async def tree(vault: VaultSite, phone: PhoneApp) -> tuple[dict[str, str | None], list[str | None]]:
    """Folder name -> parent name, and each item's folder name, as Python decrypts them."""
    async with vault.client() as py:
        await py.login(phone)
        sid = dec((await py.json("GET", "/api/safes"))["safes"][0]["id"])
        c = await py.contents(sid)
        ks, g = await py.key(sid)
        names = {
            f["id"]: vc.decrypt_folder_name(
                ks,
                dec(f["name_ct"]),
                safe_id=sid,
                folder_id=dec(f["id"]),
                parent_id=opt(f["parent_id"]),
                version=f["version"],
                generation=g,
            )
            for f in c["folders"]
        }
        parents = {names[f["id"]]: names.get(f["parent_id"]) for f in c["folders"]}
        return parents, [names.get(i["folder_id"]) for i in c["items"]]


async def test_nested_folders_rename_move_and_delete(
    browsers: Browsers, vault: VaultSite, alice_phone: PhoneApp
) -> None:
    page = await browsers.page()
    await ui.sign_up(page, vault, alice_phone, "alice")
    await ui.create_safe(page, "Tree")
    await new_folder(page, "Name of the folder", "Work")
    await folder_button(page, "Work")
    await new_folder(page, "Name of the folder inside Work", "Servers")
    # Servers is drawn inside Work.
    await expect(page.locator("#folder-tree li li li button", has_text="Servers")).to_have_count(1)
    await ui.add_item(
        page, {"type": "login", "title": "db1", "password": "pw"}, folder="Work / Servers"
    )
    assert await tree(vault, alice_phone) == ({"Work": None, "Servers": "Work"}, ["Servers"])

    # A folder shows the items in it and in the folders inside it.
    await folder_button(page, "Work")
    await expect(page.locator("#list-count")).to_have_text("1 item")
    await folder_button(page, "All items")
    await expect(page.locator("#rename-folder")).to_be_hidden()

    await folder_button(page, "Servers")
    await page.get_by_role("button", name="Rename folder").click()
    await page.get_by_label("New name of the folder").fill("Hosts")
    await page.locator("dialog").get_by_role("button", name="OK", exact=True).click()
    await ui.wait_status(page, "Folder renamed to Hosts")
    assert await tree(vault, alice_phone) == ({"Work": None, "Hosts": "Work"}, ["Hosts"])

    # Not empty: refused, nothing deleted.
    await folder_button(page, "Work")
    await page.get_by_role("button", name="Delete folder").click()
    await page.locator("#confirm-dialog").get_by_role("button", name="Delete").click()
    await expect(page.locator("#alert")).to_contain_text("The folder is not empty")

    # Move the item out, then both folders go.
    await ui.select_item(page, "db1")
    await page.get_by_role("button", name="Edit").click()
    await page.locator("#edit-folder").select_option(label="(no folder)")
    await page.get_by_role("button", name="Save", exact=True).click()
    await ui.wait_status(page, r"Saved db1 \(version 2\)")
    assert await tree(vault, alice_phone) == ({"Work": None, "Hosts": "Work"}, [None])
    for name in ("Hosts", "Work"):
        await folder_button(page, name)
        await page.get_by_role("button", name="Delete folder").click()
        await page.locator("#confirm-dialog").get_by_role("button", name="Delete").click()
        await ui.wait_status(page, f"Folder {name} deleted")
    assert await tree(vault, alice_phone) == ({}, [None])
