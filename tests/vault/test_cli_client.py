"""The `vault` command against a real authnet network and a real vault
server (SQLite and PostgreSQL), logging in with the phone simulator: every
everyday command, in the order a person would use them, with what each
prints checked (stdout carries results only, secrets only when asked)."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.phone.app import PhoneApp
from tests.vault.clirunner import VaultCli
from tests.vault.conftest import VaultServer
from vault_api.client.errors import Exit

# RFC 6238 appendix B: the SHA-1 seed "12345678901234567890" in base32; 8 digits.
RFC_TOTP = "otpauth://totp/Example:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&digits=8"


async def test_a_person_uses_every_everyday_command(
    vault: VaultServer, alice_phone: PhoneApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = VaultCli(vault.url, tmp_path / "state.json")
    store = tmp_path / "alice-phone.json"

    login = await cli.json("login", "--phone", store, "--handle", "alice")
    assert login["handle"] == "alice"
    assert login["registered_now"] is True
    assert len(login["fingerprint"]) == 35
    me = await cli.json("whoami")
    assert me["fingerprint"] == login["fingerprint"]  # the same key pair, opened again
    assert (await cli.json("status"))["session"] == "active"

    assert "no safes yet" in (await cli.ok("safes")).out
    created = await cli.json("create-safe", "Home")
    safes = (await cli.json("safes"))["safes"]
    assert [(s["name"], s["role"], s["id"]) for s in safes] == [("Home", "admin", created["id"])]

    monkeypatch.setenv("MAIL_TOTP", RFC_TOTP)
    added = await cli.json(
        "add", "Home", "login", "Mail",
        "--username", "alice",
        "--password", "stdin",
        "--url", "https://mail.example",
        "--url", "https://m.example",
        "--totp", "env:MAIL_TOTP",
        "--folder", "Personal/Email",
        "--field", "Account=42",
        "--hidden-field", "Recovery=stdin",
        "--notes", "first notes",
        "--tag", "mail",
        stdin="pw-one\nrec0very-code\n",
    )  # fmt: skip
    assert added["path"] == "Personal/Email/Mail"
    assert added["folders_made"] == ["Personal", "Personal/Email"]
    await cli.ok("add", "Home", "note", "Wifi", "--notes-file", "-", stdin="ssid: house\npass: x\n")
    await cli.ok(
        "add", "Home", "card", "Visa",
        "--cardholder", "Alice Example", "--brand", "Visa", "--expiry", "7/31",
        "--number", "stdin", "--code", "stdin",
        stdin="4111 1111 1111 1111\n737\n",
    )  # fmt: skip

    listing = await cli.json("items", "Home")
    assert [f["path"] for f in listing["folders"]] == ["Personal", "Personal/Email"]
    assert sorted(i["path"] for i in listing["items"]) == ["Personal/Email/Mail", "Visa", "Wifi"]
    text = (await cli.ok("items", "Home")).out
    assert "Personal/Email/" in text
    assert "Visa ending 1111" in text
    for secret in ("pw-one", "rec0very-code", "737", "4111111111111111"):
        assert secret not in text
    personal = await cli.json("items", "Home", "--folder", "Personal")
    assert [i["path"] for i in personal["items"]] == ["Personal/Email/Mail"]
    assert (await cli.run("items", "Home", "--folder", "Nope")).code == Exit.NOT_FOUND
    found = await cli.json("items", "Home", "--search", "m.example")
    assert [i["title"] for i in found["items"]] == ["Mail"]

    shown = await cli.ok("show", "Home", "Mail")
    assert "alice" in shown.out
    assert "https://m.example" in shown.out
    assert "Personal/Email" in shown.out
    assert "pw-one" not in shown.out
    assert "rec0very-code" not in shown.out
    assert "pw-one" in (await cli.ok("show", "Home", "Mail", "--reveal")).out
    masked = await cli.json("show", "Home", "Personal/Email/Mail")
    assert "password" not in masked["content"]
    assert set(masked["hidden_fields"]) == {"password", "totp", "Recovery"}
    assert masked["content"]["fields"][0] == {"name": "Account", "value": "42", "hidden": False}

    # `get` prints the exact value and nothing else.
    assert (await cli.ok("get", "Home", "Mail")).out == "pw-one"
    for field, value in [
        ("username", "alice"),
        ("url", "https://mail.example"),
        ("urls", "https://mail.example\nhttps://m.example"),
        ("Recovery", "rec0very-code"),
        ("Account", "42"),
        ("notes", "first notes"),
        ("totp", RFC_TOTP),
    ]:
        assert (await cli.ok("get", "Home", "Mail", "--field", field)).out == value, field
    assert (await cli.ok("get", "Home", "Visa", "--field", "number")).out == "4111111111111111"
    assert (await cli.ok("get", "Home", "Visa", "--field", "expiry")).out == "07/2031"
    assert (await cli.ok("get", "Home", "Visa", "--field", "cvv")).out == "737"
    assert (await cli.ok("get", "Home", "Wifi", "--field", "notes")).out == "ssid: house\npass: x"
    assert (await cli.json("get", "Home", "Mail"))["value"] == "pw-one"

    # RFC 6238 appendix B, T = 59 s and 1111111109 s, SHA-1, 8 digits.
    assert (await cli.ok("totp", "Home", "Mail", "--time", "59")).out == "94287082\n"
    code = await cli.json("totp", "Home", "Mail", "--time", "1111111109")
    assert code == {"code": "07081804", "seconds_left": 1, "period": 30}

    edited = await cli.json(
        "edit", "Home", "Mail", "--password", "stdin", "--clear", "totp", "--title", "Mail 2",
        stdin="pw-two\n",
    )  # fmt: skip
    assert edited["version"] == 2
    assert sorted(edited["changed"]) == ["password", "title", "totp"]
    assert (await cli.ok("get", "Home", "Mail 2")).out == "pw-two"
    assert (await cli.ok("get", "Home", "Mail 2", "--field", "Account")).out == "42"  # kept
    moved = await cli.json("edit", "Home", "Mail 2", "--folder", "/")
    assert moved["path"] == "Mail 2"

    history = await cli.json("history", "Home", "Mail 2")
    assert [v["version"] for v in history["versions"]] == [3, 2, 1]
    assert sorted(history["versions"][2]["changed_in_next"]) == ["password", "title", "totp"]
    old = await cli.ok("history", "Home", "Mail 2", "--version", "1", "--reveal")
    assert "pw-one" in old.out
    restored = await cli.json("restore", "Home", "Mail 2", "1")
    assert restored["version"] == 4
    assert restored["path"] == "Personal/Email/Mail"  # back in its folder, as version 1 was
    assert (await cli.ok("get", "Home", "Mail")).out == "pw-one"

    await cli.ok("mkdir", "Home", "Archive/2024")
    assert (await cli.run("rmdir", "Home", "Personal")).code == Exit.CONFLICT  # not empty
    await cli.ok("rmdir", "Home", "Archive/2024")
    gone = await cli.json("delete", "Home", "Wifi", "--yes")
    assert gone["deleted"]
    assert sorted(i["title"] for i in (await cli.json("items", "Home"))["items"]) == [
        "Mail",
        "Visa",
    ]

    generated = (await cli.ok("generate", "--length", "16", "--no-symbols")).out.strip()
    assert len(generated) == 16
    assert generated.isalnum()
    assert len((await cli.json("generate"))["password"]) == 20

    # Nothing but `get`, `show --reveal` and `history --reveal` ever printed a secret,
    # and stderr (progress, notes, errors) never did.
    for r in cli.results:
        assert "pw-one" not in r.err
        assert "rec0very-code" not in r.err
        assert "4111111111111111" not in r.err

    assert (await cli.json("logout"))["logged_out"] is True
    assert not (tmp_path / "state.json").exists()
    r = await cli.run("status")
    assert r.code == Exit.LOGIN
    r = await cli.run("safes")
    assert r.code == Exit.LOGIN
    assert "not logged in" in r.err
