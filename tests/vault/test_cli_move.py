"""`vault move SAFE ITEM TO_SAFE`: the item, its earlier versions and its files
re-encrypted here for the other safe and moved at once (the file bodies stay
on the server as they are); the refusals (same safe, no such safe or folder,
a safe only viewed, a stale version, a rotation in progress) say why in one
line, with the documented exit status, and move nothing."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from authnet.protocol.encoding import b64u_decode
from simulators.phone.app import PhoneApp
from tests.vault.clirunner import VaultCli, logged_in
from tests.vault.conftest import VaultServer
from tests.vault.driver import VaultClient
from tests.vault.test_moves import state as rows
from vault_api.client.errors import Exit
from vault_api.crypto import CHUNK_BYTES


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'vault.db'}"


@pytest_asyncio.fixture
async def cli(vault: VaultServer, alice_phone: PhoneApp, tmp_path: Path) -> VaultCli:
    cli = await logged_in(vault.url, tmp_path, tmp_path / "alice-phone.json", "alice")
    for name in ("Home", "Work"):
        await cli.ok("create-safe", name)
    await cli.ok("mkdir", "Work", "Network")
    await cli.ok("add", "Home", "login", "Router", "--username", "admin")
    return cli


@pytest_asyncio.fixture
async def driver(vault: VaultServer, alice_phone: PhoneApp) -> AsyncIterator[VaultClient]:
    """Alice in the browser (the Python reference client), same account and token."""
    async with vault.client() as c:
        await c.login(alice_phone)
        yield c


def one_line(err: str) -> None:
    assert err.startswith("vault: "), err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


async def test_move_takes_the_files_and_the_history_along(
    cli: VaultCli, vault: VaultServer, driver: VaultClient, tmp_path: Path
) -> None:
    data = os.urandom(CHUNK_BYTES + 77)
    (tmp_path / "backup.cfg").write_bytes(data)
    await cli.ok("upload", "Home", tmp_path / "backup.cfg", "--item", "Router")  # version 2
    await cli.ok("edit", "Home", "Router", "--notes", "firmware 2.1")  # version 3
    # Home's key rotated since: the earlier versions open through its key chain.
    home = next(s for s in (await cli.json("safes"))["safes"] if s["name"] == "Home")
    assert await driver.rotate(b64u_decode(home["id"], field="id")) == 2
    blob_rows = rows(vault)["files"]

    moved = await cli.json("move", "Home", "Router", "Work", "--folder", "Network")
    assert (moved["path"], moved["version"], moved["title"]) == ("Network/Router", 3, "Router")
    assert (moved["from_safe"]["name"], moved["to_safe"]["name"]) == ("Home", "Work")
    assert [(f["name"], f["size"]) for f in moved["moved_files"]] == [("backup.cfg", len(data))]
    assert moved["moved_versions"] == 2
    assert moved["missing_files"] == []
    # Home is empty; Work has it, with its notes, history and file.
    assert (await cli.json("items", "Home"))["items"] == []
    shown = await cli.json("show", "Work", "Router")
    assert (shown["path"], shown["version"]) == ("Network/Router", 3)
    history = await cli.json("history", "Work", "Router")
    assert [v["version"] for v in history["versions"]] == [3, 2, 1]
    assert (await cli.ok("get", "Work", "Router", "--field", "notes")).out == "firmware 2.1"
    await cli.ok("download", "Work", "Router", "-o", tmp_path / "copy.cfg")
    assert (tmp_path / "copy.cfg").read_bytes() == data
    # The file's row changed safe (and key wrap); its body size did not.
    [(_, safe_before, *_)] = blob_rows
    [(_, safe_after, *_)] = rows(vault)["files"]
    assert safe_after != safe_before

    # And back, in words.
    r = await cli.ok("move", "Work", "Network/Router", "Home")
    assert r.out == (
        "moved 'Network/Router' from safe 'Work' to 'Router' in safe 'Home' "
        "(with 1 file and 2 earlier versions)\n"
    )
    assert [i["path"] for i in (await cli.json("items", "Home"))["items"]] == ["Router"]


async def test_refusals_say_why_and_move_nothing(
    cli: VaultCli, vault: VaultServer, driver: VaultClient, bob_phone: PhoneApp
) -> None:
    before = rows(vault)

    async def refused(status: Exit, *args: str) -> str:
        r = await cli.run("move", *args)
        assert r.code == status, (args, r.code, r.err)
        one_line(r.err)
        assert rows(vault) == before
        return r.err

    err = await refused(Exit.USAGE, "Home", "Router", "Home")
    assert "already in safe 'Home'" in err
    assert "vault edit SAFE ITEM --folder PATH" in err
    err = await refused(Exit.NOT_FOUND, "Home", "Router", "Garage")
    assert "no safe 'Garage'" in err
    err = await refused(Exit.NOT_FOUND, "Home", "Router", "Work", "--folder", "Servers")
    assert "has no folder 'Servers'; its folders: Network" in err
    err = await refused(Exit.NOT_FOUND, "Home", "Printer", "Work")
    assert "no item 'Printer'" in err

    # A version the item is not at (as when someone changed it after it was read).
    err = await refused(Exit.CONFLICT, "Home", "Router", "Work", "--expected-version", "7")
    assert "it is at version 1, and this move was made to version 7" in err
    assert "Nothing was moved" in err

    # Work's key rotation begun in a browser and not committed.
    work = next(s for s in (await cli.json("safes"))["safes"] if s["name"] == "Work")
    wid = b64u_decode(work["id"], field="id")
    plan, _ = await driver.plan_rotation(wid)
    rotation = await driver.begin_rotation(wid, plan)
    err = await refused(Exit.CONFLICT, "Home", "Router", "Work")
    assert "key rotation that was begun and not committed" in err
    await driver.call("DELETE", f"/api/safes/{work['id']}/rotations/{rotation['id']}", expect=204)

    # A safe Alice only views: refused before anything is sent.
    async with VaultClient(vault.url) as bob:
        await bob.login(bob_phone)
        await bob.register("bob")
        team = await bob.create_safe("Team")
        await bob.share(team, "alice", "viewer")
        err = await refused(Exit.FORBIDDEN, "Home", "Router", "Team")
        assert "you are viewer of safe 'Team'" in err
        assert "Nothing was moved" in err
        # Out of it, either.
        await bob.add_item(team, {"type": "note", "title": "Rota"})
        before = rows(vault)
        err = await refused(Exit.FORBIDDEN, "Team", "Rota", "Home")
        assert "you are viewer of safe 'Team'" in err

    # After all that, the move itself still works.
    await cli.ok("move", "Home", "Router", "Work")
    assert [i["path"] for i in (await cli.json("items", "Work"))["items"]] == ["Router"]


async def test_move_is_in_the_help(cli: VaultCli) -> None:
    r = await cli.run("move", "--help")
    assert r.code == 0
    assert "TO_SAFE" in r.out
    assert "editor or admin of both safes" in r.out
    r = await cli.run("--help")
    assert "move" in r.out
