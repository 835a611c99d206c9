"""What `vault` refuses and how it says so: a stale edit (409), a role that
may not write (403), a tampered ciphertext (exit 7), names that match
nothing or too much, secrets on the command line, bad values; each with a
one-line message, the documented exit status, no traceback, and nothing lost."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import sqlalchemy as sa

from authnet.protocol.encoding import b64u_decode
from simulators.phone.app import PhoneApp
from tests.helpers import make_phone
from tests.vault.clirunner import VaultCli, logged_in
from tests.vault.conftest import VaultServer
from tests.vault.driver import VaultClient
from vault_api.client.errors import Exit
from vault_api.db import make_engine
from vault_api.schema import items as items_table


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'vault.db'}"


@pytest_asyncio.fixture
async def cli(vault: VaultServer, alice_phone: PhoneApp, tmp_path: Path) -> VaultCli:
    cli = await logged_in(vault.url, tmp_path, tmp_path / "alice-phone.json", "alice")
    await cli.ok("create-safe", "Home")
    await cli.ok(
        "add", "Home", "login", "Mail", "--username", "alice", "--password", "stdin",
        stdin="pw-one\n",
    )  # fmt: skip
    return cli


@pytest_asyncio.fixture
async def driver(vault: VaultServer, alice_phone: PhoneApp) -> AsyncIterator[VaultClient]:
    """Alice in the browser (the Python reference client), same account and token."""
    async with vault.client() as c:
        await c.login(alice_phone)
        yield c


def one_line(r_err: str) -> None:
    assert r_err.startswith("vault: "), r_err
    assert "Traceback" not in r_err
    assert len(r_err.strip().splitlines()) == 1, r_err


async def test_a_stale_edit_is_refused_with_what_changed_and_nothing_is_written(
    cli: VaultCli, driver: VaultClient
) -> None:
    safe = (await cli.json("safes"))["safes"][0]
    item = (await cli.json("items", "Home"))["items"][0]
    assert item["version"] == 1
    sid, iid = b64u_decode(safe["id"], field="id"), b64u_decode(item["id"], field="id")
    # Meanwhile, in the browser: the password changes (version 2).
    await driver.update_item(
        sid, iid, {"type": "login", "title": "Mail", "username": "alice", "password": "browser"},
        expected_version=1,
    )  # fmt: skip
    r = await cli.run("edit", "Home", "Mail", "--username", "bob", "--expected-version", "1")
    assert r.code == Exit.CONFLICT
    one_line(r.err)
    assert "version 2" in r.err
    assert "made to version 1" in r.err
    assert "Nothing was written" in r.err
    assert "Changed since: password" in r.err
    assert "browser" not in r.err  # names of fields, never values
    # The browser's edit stands, untouched.
    opened = await driver.items(sid)
    assert opened[iid]["password"] == "browser"
    assert opened[iid]["username"] == "alice"
    # Run again (to the current version): it applies.
    assert (await cli.json("edit", "Home", "Mail", "--username", "bob"))["version"] == 3
    assert (await cli.ok("get", "Home", "Mail", "--field", "password")).out == "browser"
    # A stale delete is refused the same way.
    r = await cli.run("delete", "Home", "Mail", "--yes", "--expected-version", "2")
    assert r.code == Exit.CONFLICT
    assert "nothing was deleted" in r.err
    assert len((await cli.json("items", "Home"))["items"]) == 1


async def test_a_viewer_reads_but_every_write_is_refused_by_the_server(
    vault: VaultServer, bob_phone: PhoneApp, tmp_path: Path
) -> None:
    async with vault.client() as alice:
        alice_phone = await make_phone(vault.net, tmp_path / "a.json", label="alice")
        await alice.login(alice_phone)
        await alice.register("alice")
        bob = await logged_in(vault.url, tmp_path, tmp_path / "bob-phone.json", "bob")
        sid = await alice.create_safe("Shared")
        await alice.add_item(sid, {"type": "login", "title": "Router", "password": "r0uter"})
        await alice.share(sid, "bob", "viewer")
    assert (await bob.json("safes"))["safes"][0]["role"] == "viewer"
    assert (await bob.ok("get", "Shared", "Router")).out == "r0uter"
    for args in (
        ("edit", "Shared", "Router", "--username", "bob"),
        ("add", "Shared", "note", "mine"),
        ("delete", "Shared", "Router", "--yes"),
        ("mkdir", "Shared", "Sub"),
    ):
        r = await bob.run(*args)
        assert r.code == Exit.FORBIDDEN, args
        one_line(r.err)
        assert "viewer" in r.err
    assert (await bob.ok("get", "Shared", "Router")).out == "r0uter"
    assert [i["title"] for i in (await bob.json("items", "Shared"))["items"]] == ["Router"]


async def test_a_tampered_ciphertext_is_refused_and_named(
    cli: VaultCli, vault: VaultServer
) -> None:
    engine = make_engine(vault.db_url)
    try:
        with engine.begin() as c:
            ct = c.execute(sa.select(items_table.c.ct)).scalar_one()
            flipped = ct[:-1] + bytes([ct[-1] ^ 1])
            c.execute(items_table.update().values(ct=flipped))
    finally:
        engine.dispose()
    for args in (("items", "Home"), ("get", "Home", "Mail"), ("export", "Home", "-o", "-")):
        r = await cli.run(*args)
        assert r.code == Exit.REFUSED, args
        assert "refused" in r.err
        assert "item_invalid" in r.err
        assert "modified" in r.err
        assert r.out == ""


async def test_names_that_match_nothing_or_too_much(cli: VaultCli) -> None:
    r = await cli.run("items", "Nowhere")
    assert r.code == Exit.NOT_FOUND
    assert "no safe 'Nowhere'; your safes: 'Home'" in r.err
    r = await cli.run("show", "Home", "Nope")
    assert r.code == Exit.NOT_FOUND
    one_line(r.err)
    r = await cli.run("get", "Home", "Mail", "--field", "pin")
    assert r.code == Exit.NOT_FOUND
    assert "it has: title, username, password" in r.err
    await cli.ok("add", "Home", "note", "Mail", "--folder", "Other")
    await cli.ok("add", "Home", "note", "Dup", "--folder", "A")
    await cli.ok("add", "Home", "note", "Dup", "--folder", "B")
    r = await cli.run("show", "Home", "Dup")
    assert r.code == Exit.USAGE
    one_line(r.err)
    assert "2 items of safe 'Home' match 'Dup'" in r.err
    assert "A/Dup" in r.err
    assert "B/Dup" in r.err
    # A path names one: the top's "Mail", or the other one's folder and title.
    assert (await cli.ok("get", "Home", "Mail", "--field", "type")).out == "login"
    assert (await cli.ok("get", "Home", "Other/Mail", "--field", "type")).out == "note"
    item = next(i for i in (await cli.json("items", "Home"))["items"] if i["path"] == "Mail")
    # An id prefix; one that starts with "-" (1 in 64 ids) goes after "--", as argparse needs.
    prefix = item["id"][:6]
    args = ("get", "Home", "--", prefix) if prefix.startswith("-") else ("get", "Home", prefix)
    assert (await cli.ok(*args)).out == "pw-one"
    assert (await cli.ok("get", "Home", "--", prefix)).out == "pw-one"


async def test_secrets_never_come_from_the_command_line(cli: VaultCli) -> None:
    r = await cli.run("add", "Home", "login", "Bank", "--password", "hunter2")
    assert r.code == Exit.USAGE
    assert "never the value itself" in r.err
    assert "hunter2" not in r.err
    r = await cli.run("add", "Home", "login", "Bank", "--password", "env:NOT_SET_ANYWHERE")
    assert r.code == Exit.USAGE
    assert "not set" in r.err
    r = await cli.run("add", "Home", "login", "Bank", "--password", "prompt")
    assert r.code == Exit.USAGE
    assert "needs a terminal" in r.err
    r = await cli.run("add", "Home", "login", "Bank", "--password", "stdin", stdin="")
    assert r.code == Exit.USAGE
    assert "standard input ended" in r.err
    generated = await cli.json("add", "Home", "login", "Bank", "--password", "generate:32")
    password = (await cli.ok("get", "Home", "Bank")).out
    assert len(password) == 32
    assert password not in str(generated)
    assert [i["title"] for i in (await cli.json("items", "Home"))["items"]] == ["Bank", "Mail"]


async def test_bad_values_are_refused_before_anything_is_sent(cli: VaultCli) -> None:
    cases = [
        (("add", "Home", "card", "C", "--expiry", "13/2030"), "MM/YYYY"),
        (("add", "Home", "card", "C", "--number", "stdin"), "8 to 19 digits"),
        (("add", "Home", "login", "T", "--totp", "stdin"), "base32"),
        (("add", "Home", "note", "N", "--url", "https://x"), "no URLs"),
        (("add", "Home", "login", " "), "needs a title"),
        (("add", "Home", "login", "F", "--field", "novalue"), "NAME=VALUE"),
        (("edit", "Home", "Mail"), "nothing to change"),
        (("edit", "Home", "Mail", "--remove-field", "ghost"), "no custom field 'ghost'"),
        (("delete", "Home", "Mail"), "--yes"),
        (("create-safe", " "), "needs a name"),
        (("login", "--handle", "Me!"), "a handle is 3 to 32"),
    ]
    for args, message in cases:
        r = await cli.run(*args, stdin="12ab\n")
        assert r.code in (Exit.USAGE, Exit.NOT_FOUND), (args, r.err)
        one_line(r.err)
        assert message in r.err, (args, r.err)
    listing = await cli.json("items", "Home")
    assert [(i["title"], i["version"]) for i in listing["items"]] == [("Mail", 1)]


async def test_argument_errors_and_help(cli: VaultCli) -> None:
    r = await cli.run("add", "Home", "spaceship", "X")
    assert r.code == Exit.USAGE
    assert "invalid choice" in r.err
    r = await cli.run("frobnicate")
    assert r.code == Exit.USAGE
    r = await cli.run("--help")
    assert r.code == 0
    for word in ("login", "import", "export", "shell", "exit status", "0600", "never"):
        assert word in r.out, word


def test_every_command_has_help_that_names_its_arguments(tmp_path: Path) -> None:
    from vault_api.client.commands import COMMANDS

    cli = VaultCli("http://127.0.0.1:9", tmp_path / "s.json")
    for name in [*COMMANDS, "shell"]:
        r = cli.run_sync(name, "--help")
        assert r.code == 0, name
        assert f"usage: vault {name}" in r.out
        assert "--server URL" in r.out  # the common options work after the command
        assert "--phone STORE" in r.out
    r = cli.run_sync("get", "--help")
    assert "custom field's name" in r.out
    assert "SAFE" in r.out
    assert "ITEM" in r.out
    # The installed entry point and `python -m vault_api.client` are the same program.
    done = subprocess.run(
        [sys.executable, "-m", "vault_api.client", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert "usage: vault" in done.stdout
    assert (Path(sys.executable).parent / "vault").exists()


async def test_a_server_that_is_not_there_is_one_clear_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cli = VaultCli(f"http://127.0.0.1:{port}", tmp_path / "s.json")
    r = await cli.run("login", "--phone", tmp_path / "none.json")
    assert r.code == Exit.ERROR
    one_line(r.err)
    assert f"cannot reach the vault at http://127.0.0.1:{port}" in r.err
