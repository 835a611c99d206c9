"""The CLI and the Python reference client (tests/vault/driver.py, which does
what the browser does) read each other's writes: the same account, the same
format (docs/vault.md), nothing translated in between."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from authnet.protocol.encoding import b64u_decode, b64u_encode
from simulators.phone.app import PhoneApp
from tests.vault.clirunner import logged_in
from tests.vault.conftest import VaultServer
from vault_api.crypto import CHUNK_BYTES


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'vault.db'}"


async def test_cli_writes_the_reference_client_reads(
    vault: VaultServer, alice_phone: PhoneApp, tmp_path: Path
) -> None:
    cli = await logged_in(vault.url, tmp_path, tmp_path / "alice-phone.json", "alice")
    safe = await cli.json("create-safe", "Home")
    mail = await cli.json(
        "add", "Home", "login", "Mail", "--username", "alice", "--password", "stdin",
        "--url", "https://mail.example", "--folder", "Web/Mail", "--hidden-field", "PIN=stdin",
        stdin="pw\n4321\n",
    )  # fmt: skip
    await cli.ok("edit", "Home", "Mail", "--notes", "edited once")
    card = await cli.json(
        "add", "Home", "card", "Visa", "--number", "stdin", "--expiry", "01/2030",
        stdin="4111111111111111\n",
    )  # fmt: skip
    body = os.urandom(CHUNK_BYTES + 77)
    (tmp_path / "doc.bin").write_bytes(body)
    up = await cli.json("upload", "Home", tmp_path / "doc.bin")

    async with vault.client() as browser:
        await browser.login(alice_phone)
        sid = b64u_decode(safe["id"], field="id")
        assert await browser.safe_name(sid) == "Home"
        items = await browser.items(sid)
        m = items[b64u_decode(mail["id"], field="id")]
        assert m == {
            "type": "login",
            "title": "Mail",
            "username": "alice",
            "password": "pw",
            "urls": ["https://mail.example"],
            "fields": [{"name": "PIN", "value": "4321", "hidden": True}],
            "notes": "edited once",
        }
        c = items[b64u_decode(card["id"], field="id")]
        assert (c["type"], c["number"], c["expiry"]) == ("card", "4111111111111111", "01/2030")
        contents = await browser.contents(sid)
        folder_of_mail = next(i["folder_id"] for i in contents["items"] if i["id"] == mail["id"])
        assert folder_of_mail is not None
        # The folder names open too, and nest as the CLI made them.
        from vault_api import crypto as vc

        ks, g = await browser.key(sid)
        names = {
            f["id"]: vc.decrypt_folder_name(
                ks,
                b64u_decode(f["name_ct"], field="ct"),
                safe_id=sid,
                folder_id=b64u_decode(f["id"], field="id"),
                parent_id=None
                if f["parent_id"] is None
                else b64u_decode(f["parent_id"], field="id"),
                version=f["version"],
                generation=g,
            )
            for f in contents["folders"]
        }
        assert names[folder_of_mail] == "Mail"
        fid = b64u_decode(up["file"]["id"], field="id")
        got = b"".join([piece async for piece in browser.download(sid, fid)])
        assert got == body
        doc = items[b64u_decode(up["item"]["id"], field="id")]
        assert doc["type"] == "document"
        assert doc["files"] == [up["file"]]


async def test_the_reference_client_writes_the_cli_reads(
    vault: VaultServer, alice_phone: PhoneApp, tmp_path: Path
) -> None:
    async with vault.client() as browser:
        await browser.login(alice_phone)
        await browser.register("alice")
        sid = await browser.create_safe("Shared stuff")
        folder = await browser.add_folder(sid, "Servers")
        iid = await browser.add_item(
            sid,
            {
                "type": "login",
                "title": "db1",
                "username": "postgres",
                "password": "from-the-browser",
                "future_field": {"kept": True},
            },
            folder_id=folder,
        )
        body = os.urandom(3 * CHUNK_BYTES)
        fid = await browser.upload(sid, [body[:1000], body[1000:]], len(body))
        await browser.add_item(
            sid,
            {
                "type": "document",
                "title": "backup",
                "files": [{"id": b64u_encode(fid), "name": "backup.tar", "size": len(body),
                           "type": "application/x-tar"}],
            },
        )  # fmt: skip

    cli = await logged_in(vault.url, tmp_path, tmp_path / "alice-phone.json", "alice")
    assert (await cli.json("safes"))["safes"][0]["name"] == "Shared stuff"
    assert (await cli.ok("get", "Shared stuff", "Servers/db1")).out == "from-the-browser"
    await cli.ok("download", "Shared stuff", "backup", "-o", tmp_path / "b.tar")
    assert (tmp_path / "b.tar").read_bytes() == body
    # An edit by the CLI keeps the field it does not know, for the browser to read.
    await cli.ok("edit", "Shared stuff", "db1", "--username", "admin")
    async with vault.client() as browser:
        await browser.login(alice_phone)
        item = (await browser.items(sid))[iid]
        assert item["username"] == "admin"
        assert item["future_field"] == {"kept": True}
