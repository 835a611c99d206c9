"""`vault import` and `vault export`: each format's fixture (tests/vault/
fixtures/) read into a safe with the right folders and fields, a preview
that changes nothing, every skipped entry named with its reason, re-imports
that add nothing, and exports that are plaintext only for their owner (0600,
warned) and read back to the same items."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from simulators.phone.app import PhoneApp
from tests.vault.clirunner import VaultCli, logged_in
from tests.vault.conftest import VaultServer
from vault_api.client import importers
from vault_api.client.errors import Exit, Usage

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'vault.db'}"


@pytest_asyncio.fixture
async def cli(vault: VaultServer, alice_phone: PhoneApp, tmp_path: Path) -> VaultCli:
    cli = await logged_in(vault.url, tmp_path, tmp_path / "alice-phone.json", "alice")
    await cli.ok("create-safe", "Home")
    return cli


async def contents(cli: VaultCli, safe: str = "Home") -> dict[str, dict[str, Any]]:
    """Every item of the safe as `show --reveal` gives it, by path."""
    listing = await cli.json("items", safe)
    out = {}
    for i in listing["items"]:
        shown = await cli.json("show", "--reveal", safe, "--", i["id"])  # ids may start with -
        out[i["path"]] = shown["content"]
    return out


async def test_bitwarden_json(cli: VaultCli) -> None:
    preview = await cli.json("import", "Home", FIXTURES / "bitwarden.json", "--dry-run")
    assert preview["format"] == "bitwarden"
    assert preview["imported"] == 0
    assert preview["would_import"] == 5
    assert preview["by_type"] == {"login": 2, "note": 2, "card": 1}
    assert preview["folders"] == ["Personal", "Work/Servers"]
    assert (await cli.json("items", "Home"))["items"] == []  # the preview changed nothing
    text = (await cli.ok("import", "Home", FIXTURES / "bitwarden.json", "--dry-run")).out
    assert "would import 5 items (1 card, 2 login, 2 note), skipped 3" in text
    assert "correct horse" not in text  # a preview shows no secrets

    done = await cli.json("import", "Home", FIXTURES / "bitwarden.json")
    assert done["imported"] == 5
    assert {(s["source"], s["reason"]) for s in done["skipped"]} == {
        ("item 6 'Old forum'", "it is in Bitwarden's trash"),
        ("item 7 'From the future'", "Bitwarden item type 9 has no vault equivalent"),
        ("item 8 'db1'", "the same as item 2 'db1'"),
    }
    assert "not imported: 2 old passwords (password history)" in done["notes"]
    assert "not imported: 1 linked custom fields" in done["notes"]
    items = await contents(cli)
    assert sorted(items) == [
        "Home wifi",
        "Me",
        "Personal/Mail",
        "Personal/Visa",
        "Work/Servers/db1",
    ]
    mail = items["Personal/Mail"]
    assert mail["password"] == "correct horse battery staple"
    assert mail["urls"] == ["https://mail.example.org", "https://webmail.example.org/login"]
    assert mail["totp"].startswith("otpauth://totp/Mail:alice?secret=JBSWY3DPEHPK3PXP")
    assert mail["fields"][0] == {"name": "Security question", "value": "Blue", "hidden": True}
    assert items["Personal/Visa"]["expiry"] == "07/2031"
    assert items["Personal/Visa"]["number"] == "4111111111111111"
    assert items["Home wifi"]["type"] == "note"
    assert {"name": "Passport number", "value": "P1234567", "hidden": True} in items["Me"]["fields"]
    # The TOTP secret imported gives codes.
    assert len((await cli.ok("totp", "Home", "Mail")).out.strip()) == 6

    again = await cli.json("import", "Home", FIXTURES / "bitwarden.json")
    assert again["imported"] == 0
    assert sum(s["reason"] == "already in the safe" for s in again["skipped"]) == 5
    assert len((await cli.json("items", "Home"))["items"]) == 5


async def test_keepass_xml(cli: VaultCli) -> None:
    done = await cli.json("import", "Home", FIXTURES / "keepass.xml")
    assert done["format"] == "keepass"
    assert done["imported"] == 4
    assert {(s["source"], s["reason"]) for s in done["skipped"]} == {
        ("entry 3", "the entry is empty"),
        ("entry 6 'Old shop' in group 'Recycle Bin'", "it is in KeePass's recycle bin"),
    }
    assert "not imported: 1 attachments (add them with `vault upload`)" in done["notes"]
    items = await contents(cli)
    assert sorted(items) == ["Bank", "Email/Lists/Mailing list", "Email/Mail", "Recovery codes"]
    bank = items["Bank"]
    assert bank["password"] == "bank-Secret-42"
    assert bank["tags"] == ["money", "bank"]
    assert {"name": "PIN", "value": "9876", "hidden": True} in bank["fields"]
    assert {"name": "Customer number", "value": "C-0042", "hidden": False} in bank["fields"]
    assert items["Email/Mail"]["password"] == "mail & more <3"  # XML entities decoded
    assert items["Recovery codes"] == {
        "type": "note",
        "title": "Recovery codes",
        "notes": "1. 8842-1123\n2. 9921-0034",
    }
    # KeePass 2.47's TimeOtp-* fields became an otpauth URI (8 digits): RFC 6238 at T=59.
    assert (await cli.ok("totp", "Home", "Mailing list", "--time", "59")).out == "94287082\n"


@pytest.mark.parametrize(
    ("fixture", "fmt", "titles", "skipped"),
    [
        (
            "chrome.csv",
            "chrome",
            ["example.com", "git.example", "shop.example"],
            {
                ("row 4 'news.example'", "it has neither a username nor a password"),
                ("row 5 'example.com'", "the same as row 2 'example.com'"),
                ("row 6 'broken.example'", "it has 3 fields where the header has 5"),
            },
        ),
        (
            "firefox.csv",
            "firefox",
            ["intranet.example", "www.wiki.example"],
            {
                ("row 4 (firefoxaccounts)", "Firefox's own account login, not a site's"),
                ("row 5 (empty.example)", "it has neither a username nor a password"),
            },
        ),
    ],
)
async def test_browser_csv(
    cli: VaultCli, fixture: str, fmt: str, titles: list[str], skipped: set[tuple[str, str]]
) -> None:
    done = await cli.json("import", "Home", FIXTURES / fixture, "--folder", "Browser")
    assert done["format"] == fmt
    assert done["imported"] == len(titles)
    assert {(s["source"], s["reason"]) for s in done["skipped"]} == skipped
    items = await contents(cli)
    assert sorted(items) == [f"Browser/{t}" for t in titles]
    if fmt == "chrome":
        git = items["Browser/git.example"]
        assert git["username"] == 'alice "the dev"'
        assert git["notes"] == "two\nlines"
        assert items["Browser/shop.example"]["password"] == "chrome, with a comma"
    else:
        assert items["Browser/intranet.example"]["password"] == "ff-pass-2"
        assert items["Browser/intranet.example"]["urls"] == ["https://intranet.example"]


async def test_export_round_trips_and_is_for_the_owner_only(cli: VaultCli, tmp_path: Path) -> None:
    await cli.ok("import", "Home", FIXTURES / "bitwarden.json")
    await cli.ok(
        "add", "Home", "login", "Extra", "--password", "stdin", "--field", "k=v", stdin="p\n"
    )
    before = await contents(cli)

    out = tmp_path / "export.json"
    r = await cli.run("--json", "export", "Home", "--format", "bitwarden", "-o", out)
    assert r.code == 0, r.err
    assert "PLAINTEXT" in r.err
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert r.json()["items"] == 6
    doc = json.loads(out.read_text())
    assert doc["encrypted"] is False
    assert {f["name"] for f in doc["folders"]} == {"Personal", "Work", "Work/Servers"}

    await cli.ok("create-safe", "Copy")
    back = await cli.json("import", "Copy", out)
    assert back["imported"] == 6
    assert back["skipped"] == []
    assert await contents(cli, "Copy") == before

    # An existing file is never overwritten by accident.
    out.write_text("keep me")
    r = await cli.run("export", "Home", "-o", out)
    assert r.code == Exit.USAGE
    assert "--force" in r.err
    assert out.read_text() == "keep me"
    await cli.ok("export", "Home", "-o", out, "--force")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert json.loads(out.read_text())["items"]

    csv_out = tmp_path / "export.csv"
    r = await cli.run("export", "Home", "--format", "csv", "-o", csv_out)
    assert r.code == 0, r.err
    assert stat.S_IMODE(csv_out.stat().st_mode) == 0o600
    assert "not in the export: 1 card items (CSV holds logins)" in r.err
    assert "not in the export: 1 TOTP secrets" in r.err
    assert csv_out.read_text().splitlines()[0] == "name,url,username,password,note"
    await cli.ok("create-safe", "FromCsv")
    back = await cli.json("import", "FromCsv", csv_out)
    assert back["format"] == "chrome"
    copied = await contents(cli, "FromCsv")
    assert copied["db1"]["password"] == before["Work/Servers/db1"]["password"]
    assert copied["Mail"]["urls"] == ["https://mail.example.org"]  # the first URL only
    assert sorted(copied) == ["Extra", "Mail", "db1"]


async def test_bad_import_files_are_refused_whole(cli: VaultCli, tmp_path: Path) -> None:
    cases: dict[str, tuple[str | bytes, str]] = {
        "encrypted.json": ('{"encrypted": true, "items": []}', "encrypted Bitwarden export"),
        "broken.json": ('{"items": [', "not JSON"),
        "other.json": ('{"passwords": []}', "not a Bitwarden export"),
        "dtd.xml": (
            '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><KeePassFile>&a;</KeePassFile>',
            "document type",
        ),
        "other.xml": ("<html><body/></html>", "not a KeePass 2 XML file"),
        "bad.xml": ("<KeePassFile><Root>", "not well-formed"),
        "other.csv": ("title,login,secret\na,b,c\n", "cannot tell the file's format"),
        "latin1.csv": (b"name,url,username,password\nx,y,z,\xe9\n", "not UTF-8"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        r = await cli.run("import", "Home", path)
        assert r.code == Exit.USAGE, (name, r.err)
        assert message in r.err, (name, r.err)
        assert "Traceback" not in r.err
    r = await cli.run("import", "Home", tmp_path / "nope.json")
    assert r.code == Exit.USAGE
    r = await cli.run("import", "Home", FIXTURES / "chrome.csv", "--format", "keepass")
    assert r.code == Exit.USAGE
    assert (await cli.json("items", "Home"))["items"] == []


def test_the_xml_reader_expands_no_entity() -> None:
    """A billion-laughs file is refused at its DTD, before any expansion."""
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
        + "]><KeePassFile><Root>&lol9;</Root></KeePassFile>"
    ).replace("&lol0;", "&lol;")
    with pytest.raises(Usage, match="document type"):
        importers.parse(laughs, "keepass")


def test_a_protected_keepass_value_is_skipped_not_imported_as_ciphertext() -> None:
    xml = (
        "<KeePassFile><Root><Group><Name>Root</Name><Entry>"
        "<String><Key>Title</Key><Value>Inner</Value></String>"
        '<String><Key>Password</Key><Value Protected="True">c2FsdGVk</Value></String>'
        "</Entry></Group></Root></KeePassFile>"
    )
    parsed = importers.parse(xml, "keepass")
    assert parsed.items == []
    assert "encrypted in this XML" in parsed.skipped[0].reason


def test_a_bitwarden_item_without_a_name_is_kept_and_junk_is_named() -> None:
    doc = {"items": [{"type": 1, "login": {"password": "x"}}, "junk"]}
    parsed = importers.parse(json.dumps(doc), "bitwarden")
    assert [(c.title, c.content["password"]) for c in parsed.items] == [("Untitled", "x")]
    assert parsed.skipped == [importers.Skipped("item 2", "not a JSON object")]
