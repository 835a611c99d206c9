"""Import in the page (Bitwarden JSON, KeePass 2 XML, Chrome and Firefox CSV)
with a preview that counts what is imported and what is skipped and why;
the imported items, read back by the Python reference client, are exactly the
source's. Export (Bitwarden JSON, CSV) and import of the export give the same
safe again. Nothing in plaintext reaches the server."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from simulators.phone.app import PhoneApp
from tests.vault.driver import VaultClient, dec, opt
from tests.vault.hostproof import haystacks, scan
from tests.vault_browser import ui
from tests.vault_browser.conftest import Browsers, VaultSite
from vault_api import crypto as vc

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

FIXTURES = Path(__file__).resolve().parent / "fixtures"


async def import_file(page: Page, name: str, summary: str, skipped: list[str], result: str) -> None:
    await page.get_by_role("button", name="Import").click()
    await page.get_by_label("Export file from").set_input_files(str(FIXTURES / name))
    await expect(page.locator("#import-summary")).to_have_text(summary)
    if skipped:
        await expect(page.locator("#import-skipped li")).to_have_text(skipped)
    else:
        await expect(page.locator("#import-skipped")).to_have_count(0)
    await page.locator("#import-go").click()
    await expect(page.locator("#import-result")).to_have_text(result, timeout=30_000)
    await page.keyboard.press("Escape")


async def safe_items(py: VaultClient, name: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The decrypted items of a safe by name, each with "_folder" (its folder path)."""
    for s in (await py.json("GET", "/api/safes"))["safes"]:
        sid = dec(s["id"])
        if await py.safe_name(sid) != name:
            continue
        c = await py.contents(sid)
        ks, g = await py.key(sid)
        folders: dict[str, tuple[str, str | None]] = {}
        for f in c["folders"]:
            folders[f["id"]] = (
                vc.decrypt_folder_name(
                    ks,
                    dec(f["name_ct"]),
                    safe_id=sid,
                    folder_id=dec(f["id"]),
                    parent_id=opt(f["parent_id"]),
                    version=f["version"],
                    generation=g,
                ),
                f["parent_id"],
            )

        def path(fid: str | None, folders: dict[str, tuple[str, str | None]] = folders) -> str:
            parts = []
            while fid:
                n, fid = folders[fid]
                parts.insert(0, n)
            return "/".join(parts)

        items = []
        for iid, content in (await py.items(sid)).items():
            raw = next(i for i in c["items"] if dec(i["id"]) == iid)
            items.append({**content, "_folder": path(raw["folder_id"])})
        return sorted(items, key=lambda x: x["title"]), {k: path(k) for k in folders}
    raise AssertionError(f"no safe {name}")


EXPECTED = json.loads((FIXTURES / "expected-imports.json").read_text())
BITWARDEN_ITEMS = EXPECTED["bitwarden"]


async def test_import_every_format_with_preview_counts_and_reasons(
    browsers: Browsers, vault: VaultSite, alice_phone: PhoneApp
) -> None:
    page = await browsers.page()
    await ui.sign_up(page, vault, alice_phone, "alice")

    await ui.create_safe(page, "Bitwarden")
    # An encrypted export is refused before anything happens, with what to do instead.
    await page.get_by_role("button", name="Import").click()
    await page.get_by_label("Export file from").set_input_files(
        str(FIXTURES / "bitwarden-encrypted.json")
    )
    await expect(page.locator("#import-preview")).to_contain_text(
        'export again as "JSON" (not "JSON (Encrypted)")'
    )
    await page.keyboard.press("Escape")
    # The Mail login's linked field has no value to import: the notes say so.
    await import_file(
        page,
        "bitwarden.json",
        "Bitwarden (unencrypted JSON): 5 to import, 2 skipped, 3 folders.",
        [
            "Passport details: identity items are not supported",
            "Deploy key: SSH keys are not supported",
        ],
        "Imported 5 items and 3 folders; skipped 2.",
    )
    await expect(page.locator("#list-count")).to_have_text("5 items")

    await ui.create_safe(page, "KeePass")
    await import_file(
        page,
        "keepass.xml",
        "KeePass 2 XML: 3 to import, 3 skipped, 2 folders.",
        [
            "(untitled): the entry is empty",
            "Old ISP: its protected values are encrypted (use File > Export > KeePass XML (2.x))",
            "Deleted thing: in the KeePass recycle bin",
        ],
        "Imported 3 items and 2 folders; skipped 3.",
    )
    await ui.create_safe(page, "Chrome")
    await import_file(
        page,
        "chrome.csv",
        "Chrome passwords (CSV): 3 to import, 2 skipped, 0 folders.",
        ["empty.example: no username or password", "broken.example: row 6 has 2 of 5 columns"],
        "Imported 3 items and 0 folders; skipped 2.",
    )
    await ui.create_safe(page, "Firefox")
    await import_file(
        page,
        "firefox.csv",
        "Firefox logins (CSV): 2 to import, 2 skipped, 0 folders.",
        [
            "firefoxaccounts: a Firefox-internal login (chrome://), not a web site",
            "nopass.example: no username or password",
        ],
        "Imported 2 items and 0 folders; skipped 2.",
    )

    async with vault.client() as py:
        await py.login(alice_phone)
        bw, bw_folders = await safe_items(py, "Bitwarden")
        assert bw[1]["notes"].endswith("(linked fields not imported: Username copy)")
        bw[1]["notes"] = bw[1]["notes"].split("\n")[0]
        assert bw == BITWARDEN_ITEMS
        assert sorted(bw_folders.values()) == ["Personal", "Work", "Work/Servers"]
        kp, kp_folders = await safe_items(py, "KeePass")
        assert kp == EXPECTED["keepass"]
        assert sorted(kp_folders.values()) == ["Email", "Email/Old accounts"]
        chrome, _ = await safe_items(py, "Chrome")
        assert chrome == EXPECTED["chrome"]
        firefox, _ = await safe_items(py, "Firefox")
        assert [(i["title"], i["username"], i["password"]) for i in firefox] == [
            ("git.example", "dev", "ff-pass-2"),
            ("news.example", "reader", "ff-pass-1"),
        ]

    # No plaintext of any import reached the server.
    stacks = haystacks(vault.db_url, vault.settings.blob_path)
    secrets = ("bw-pass-1", "kp-bank-pass", "chrome-pass-1", "ff-pass-2", "4111111111111111",
               "recovery codes in the drawer", "SSID home", "alice@mail.example")  # fmt: skip
    assert scan(stacks, {s: s.encode() for s in secrets}) == []


async def test_export_and_import_round_trip(
    browsers: Browsers, vault: VaultSite, alice_phone: PhoneApp, tmp_path: Path
) -> None:
    page = await browsers.page()
    await ui.sign_up(page, vault, alice_phone, "alice")
    await ui.create_safe(page, "Original")
    await import_file(
        page,
        "bitwarden.json",
        "Bitwarden (unencrypted JSON): 5 to import, 2 skipped, 3 folders.",
        [
            "Passport details: identity items are not supported",
            "Deploy key: SSH keys are not supported",
        ],
        "Imported 5 items and 3 folders; skipped 2.",
    )

    await page.get_by_role("button", name="Export").click()
    await expect(page.locator("#export-dialog")).to_contain_text("NOT encrypted")
    async with page.expect_download() as dl:
        await page.locator("#export-go").click()
    download = await dl.value
    assert download.suggested_filename == "Original-bitwarden.json"
    exported = tmp_path / "exported.json"
    await download.save_as(exported)
    await expect(page.locator("#export-result")).to_have_text("Exported 5 items.")
    data = json.loads(exported.read_text())
    assert data["encrypted"] is False
    assert sorted(f["name"] for f in data["folders"]) == ["Personal", "Work", "Work/Servers"]
    mail = next(i for i in data["items"] if i["name"] == "Mail")
    assert mail["login"]["password"] == "bw-pass-1"
    assert mail["fields"][0] == {"name": "PIN", "value": "4321", "type": 1, "linkedId": None}

    await page.locator("#export-format").select_option("csv")
    async with page.expect_download() as dl:
        await page.locator("#export-go").click()
    csv_path = tmp_path / "exported.csv"
    await (await dl.value).save_as(csv_path)
    await expect(page.locator("#export-result")).to_have_text(
        "Exported 3 logins; 2 other items are not in CSV."
    )
    rows = list(csv.reader(io.StringIO(csv_path.read_text(), newline="")))
    assert rows[0] == ["name", "url", "username", "password", "note"]
    assert sorted(r[0] for r in rows[1:]) == ["Mail", "db01 root", "Ünïcode ✓ intranet"]
    await page.keyboard.press("Escape")

    # The export, imported into a new safe, gives the same items in the same folders.
    await ui.create_safe(page, "Round trip")
    await page.get_by_role("button", name="Import").click()
    await page.get_by_label("Export file from").set_input_files(str(exported))
    await expect(page.locator("#import-summary")).to_have_text(
        "Bitwarden (unencrypted JSON): 5 to import, 0 skipped, 3 folders."
    )
    await page.locator("#import-go").click()
    await expect(page.locator("#import-result")).to_have_text(re.compile("Imported 5 items"))
    await page.keyboard.press("Escape")
    async with vault.client() as py:
        await py.login(alice_phone)
        original, _ = await safe_items(py, "Original")
        again, _ = await safe_items(py, "Round trip")
    assert again == original
