"""How `vault` logs in and what it keeps between commands.

The state file holds the session (cookie, CSRF token) and where the token
is; never Kc, the private key, a safe key or a secret. Every command that
opens something proves the token again within the one session; a session
that timed out is started again with the same token; `vault shell` logs in
once. Logins answered by the phone simulator's key store, by a phone scanning
the printed QR code, and by a PKCS#11 token (SoftHSM2) with its PIN."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from authnet.protocol.encoding import b64u_decode
from authnet.testing import TestNetwork
from simulators.phone.app import PhoneApp
from simulators.softhsm import SoftHsm
from tests.helpers import encodings, make_phone
from tests.vault.clirunner import VaultCli, logged_in
from tests.vault.conftest import VaultServer
from tests.vault.driver import VaultClient
from vault_api.client import session as client_session
from vault_api.client.cli import main
from vault_api.client.commands import Io
from vault_api.client.errors import Exit
from vault_api.db import make_engine
from vault_api.schema import sessions


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'vault.db'}"


def session_rows(vault: VaultServer) -> int:
    engine = make_engine(vault.db_url)
    try:
        with engine.connect() as c:
            return int(c.execute(sa.select(sa.func.count()).select_from(sessions)).scalar_one())
    finally:
        engine.dispose()


async def test_the_state_file_holds_the_session_and_no_secret(
    vault: VaultServer, alice_phone: PhoneApp, tmp_path: Path
) -> None:
    cli = await logged_in(vault.url, tmp_path, tmp_path / "alice-phone.json", "alice")
    await cli.ok("create-safe", "Home")
    await cli.ok(
        "add", "Home", "login", "Mail", "--password", "stdin", stdin="a-long-secret-password\n"
    )
    state = cli.state
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.parent.stat().st_mode) & 0o077 == 0 or state.parent == tmp_path
    doc = json.loads(state.read_text())
    assert set(doc) == {
        "version", "server", "session_cookie", "csrf_token", "user_id", "handle", "key_id",
        "login", "saved_ms",
    }  # fmt: skip
    assert doc["login"] == {"kind": "phone", "phone_store": str(tmp_path / "alice-phone.json")}
    # The secrets this account's client holds, as the browser-side reference opens them.
    async with vault.client() as browser:
        await browser.login(alice_phone)
        assert browser.private_key is not None
        safe = (await browser.json("GET", "/api/safes"))["safes"][0]
        sid = b64u_decode(safe["id"], field="id")
        ks, _ = await browser.key(sid)
        needles = {
            "Kc": browser.kc[b64u_decode(doc["key_id"], field="key id")],
            "private key": browser.private_key.private_bytes_raw(),
            "safe key": ks,
            "password": b"a-long-secret-password",
        }
    raw = state.read_bytes()
    for what, secret in needles.items():
        for spelling in encodings(secret):
            assert spelling not in raw, what
    # Every command ran in the one session `vault login` started (the browser has its own).
    assert session_rows(vault) == 2


async def test_a_state_file_others_can_read_or_a_damaged_one_is_refused(
    vault: VaultServer, alice_phone: PhoneApp, tmp_path: Path
) -> None:
    cli = await logged_in(vault.url, tmp_path, tmp_path / "alice-phone.json", "alice")
    cli.state.chmod(0o644)
    r = await cli.run("safes")
    assert r.code == Exit.LOGIN
    assert "can be read by other users" in r.err
    assert "chmod 600" in r.err
    cli.state.chmod(0o600)
    assert (await cli.run("safes")).code == 0
    cli.state.write_text("{not json")
    r = await cli.run("safes")
    assert r.code == Exit.LOGIN
    assert "damaged" in r.err
    assert "Traceback" not in r.err


async def test_a_timed_out_session_is_started_again_with_the_same_token(
    vault: VaultServer, alice_phone: PhoneApp, tmp_path: Path
) -> None:
    cli = await logged_in(vault.url, tmp_path, tmp_path / "alice-phone.json", "alice")
    await cli.ok("create-safe", "Home")
    before = json.loads(cli.state.read_text())["session_cookie"]
    vault.clock.advance(vault.settings.idle_timeout_seconds + 5)
    assert (await cli.json("status"))["session"] == "session_expired"
    r = await cli.ok("safes")
    assert "the session had ended (session_" in r.err
    assert "logging in again" in r.err
    assert "Home" in r.out
    after = json.loads(cli.state.read_text())["session_cookie"]
    assert after != before
    assert (await cli.json("status"))["session"] == "active"


async def test_logout_ends_the_session_at_the_server(
    vault: VaultServer, alice_phone: PhoneApp, tmp_path: Path
) -> None:
    cli = await logged_in(vault.url, tmp_path, tmp_path / "alice-phone.json", "alice")
    # A second login replaces the first session rather than adding one.
    await cli.ok("login")
    assert session_rows(vault) == 1
    cookie = json.loads(cli.state.read_text())["session_cookie"]
    await cli.ok("logout")
    assert session_rows(vault) == 0
    async with vault.client() as c:
        r = await c.call(
            "GET", "/api/session", headers={"Cookie": f"vault_session={cookie}"}, expect=401
        )
        assert r.json()["error"] == "session_ended"
    assert (await cli.json("logout"))["logged_out"] is False  # already


async def test_the_shell_logs_in_once_for_many_commands(
    vault: VaultServer, alice_phone: PhoneApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = await logged_in(vault.url, tmp_path, tmp_path / "alice-phone.json", "alice")
    logins = 0
    real = client_session.authnet_login  # type: ignore[attr-defined]

    async def counting(*a: Any, **kw: Any) -> Any:
        nonlocal logins
        logins += 1
        return await real(*a, **kw)

    monkeypatch.setattr(client_session, "authnet_login", counting)
    script = "\n".join(
        [
            "create-safe Home",
            "add Home note 'Shopping list' --notes 'eggs, milk'",
            "get Home 'Shopping list' --field notes",
            "help",
            "get Home Nothing",
            "login",
            'add Home login "unterminated',
            "--json safes",
            "exit",
        ]
    )
    r = await cli.run("shell", stdin=script + "\n")
    assert r.code == 0, r.err
    assert logins == 1
    assert "eggs, milk" in r.out
    assert "commands: add, add-token, create-safe" in r.out
    assert "no item 'Nothing'" in r.err  # an error inside does not end the shell
    assert "you are logged in" in r.err
    assert "No closing quotation" in r.err
    assert json.loads(r.out.strip().splitlines()[-1])["safes"][0]["name"] == "Home"
    # Without the shell, each command proves the token again.
    await cli.ok("safes")
    await cli.ok("items", "Home")
    assert logins == 3


async def test_login_by_qr_code_scanned_by_a_phone(
    vault: VaultServer, net: TestNetwork, tmp_path: Path
) -> None:
    """The default login shows a QR code (and its text) on stderr; a phone
    scans it; the command goes on once the phone has answered."""
    phone = await make_phone(net, tmp_path / "carol-phone.json", label="carol phone")
    err = io.StringIO()
    out = io.StringIO()
    argv = [
        "--server",
        vault.url,
        "--state",
        str(tmp_path / "c.json"),
        "login",
        "--handle",
        "carol",
    ]
    task = asyncio.create_task(
        asyncio.to_thread(main, argv, Io(out=out, err=err, stdin=io.StringIO()))
    )
    async with asyncio.timeout(20):
        while "give the phone this text: " not in err.getvalue():
            assert not task.done(), err.getvalue()
            await asyncio.sleep(0.02)
    text = re.search(r"give the phone this text: (\S+)", err.getvalue())
    assert text is not None
    assert "Scan this code" in err.getvalue()
    assert "█" in err.getvalue() or "▀" in err.getvalue() or "▄" in err.getvalue()  # the code
    seen = []

    def confirm(request: Any) -> bool:
        seen.append(request)
        return True

    report = await phone.scan(text.group(1), confirm=confirm)
    assert report.accepted
    # The phone is told what asks: the vault, from the vault command line.
    assert seen[0].sp_name == "vault"
    assert "vault command line" in seen[0].browser_user_agent
    async with asyncio.timeout(20):
        code = await task
    assert code == 0, err.getvalue()
    assert "logged in to" in out.getvalue()
    assert "as carol" in out.getvalue()
    assert "scanned; confirm on the phone" in err.getvalue()
    saved = json.loads((tmp_path / "c.json").read_text())
    assert saved["login"] == {"kind": "qr"}


async def test_login_with_a_pkcs11_token_and_its_pin(
    vault: VaultServer,
    net: TestNetwork,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`passkey provision` and `passkey enrol` a SoftHSM2 token, then the vault
    command logs in with it: the PIN from --pin-stdin (before any secret read
    from stdin), from $VAULT_PIN, and a wrong or missing PIN said clearly."""
    from tokens.cli import main as passkey

    hsm = SoftHsm.shared()
    made = hsm.new_token()
    book = tmp_path / "tokens.json"
    ca = tmp_path / "ca.crt"
    ca.write_bytes(net.ca_pem)
    token = ["--token", "pkcs11", "--pkcs11-module", hsm.module, "--pkcs11-token", made.label]
    monkeypatch.delenv("PASSKEY_PIN", raising=False)
    monkeypatch.delenv("VAULT_PIN", raising=False)

    def run_passkey(*argv: str) -> int:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            monkeypatch.setattr(sys, "stdin", io.StringIO(made.pin + "\n"))
            return passkey(["--book", str(book), "--pin-stdin", *argv])

    assert await asyncio.to_thread(run_passkey, "provision", *token) == 0
    network = ["--network", net.addresses.passkey, "--ca", str(ca)]
    assert await asyncio.to_thread(run_passkey, "enrol", *token, *network) == 0

    cli = VaultCli(vault.url, tmp_path / "d.json")
    login = await cli.json(
        "login", *token, "--book", book, "--pin-stdin", "--handle", "dave", stdin=made.pin + "\n"
    )
    assert login["handle"] == "dave"
    assert login["login"]["token"]["pkcs11_token"] == made.label
    assert made.pin not in cli.state.read_text()
    await cli.ok("create-safe", "Keys", "--pin-stdin", stdin=made.pin + "\n")
    # The PIN line first, then the secret.
    await cli.ok(
        "add", "Keys", "login", "Server", "--password", "stdin", "--pin-stdin",
        stdin=f"{made.pin}\nserver-pass\n",
    )  # fmt: skip
    monkeypatch.setenv("VAULT_PIN", made.pin)
    assert (await cli.ok("get", "Keys", "Server")).out == "server-pass"
    monkeypatch.delenv("VAULT_PIN")
    r = await cli.run("get", "Keys", "Server", "--pin-stdin", stdin="000000\n")
    assert r.code == Exit.LOGIN
    assert "PIN" in r.err
    assert r.out == ""
    r = await cli.run("get", "Keys", "Server")
    assert r.code == Exit.LOGIN
    assert "needs its PIN" in r.err


async def test_another_accounts_token_cannot_unlock_this_session(
    vault: VaultServer, alice_phone: PhoneApp, bob_phone: PhoneApp, tmp_path: Path
) -> None:
    cli = await logged_in(vault.url, tmp_path, tmp_path / "alice-phone.json", "alice")
    await logged_in(vault.url, tmp_path, tmp_path / "bob-phone.json", "bob")
    r = await cli.run("safes", "--phone", tmp_path / "bob-phone.json")
    assert r.code == Exit.LOGIN
    assert "belongs to another vault account than this session's (alice)" in r.err
    assert (await cli.run("safes")).code == 0  # the remembered token still works


async def test_the_session_works_from_the_driver_too(
    vault: VaultServer, alice_phone: PhoneApp, tmp_path: Path
) -> None:
    """The cookie and CSRF token in the state file are a real session: the
    server accepts them for a write (so a stolen state file is as good as a
    stolen browser cookie until the session ends, and no better)."""
    cli = await logged_in(vault.url, tmp_path, tmp_path / "alice-phone.json", "alice")
    doc = json.loads(cli.state.read_text())
    async with VaultClient(vault.url) as c:
        c.http.cookies.set("vault_session", doc["session_cookie"])
        c.csrf = doc["csrf_token"]
        me = await c.json("GET", "/api/me")
        assert me["user"]["handle"] == "alice"
        # A write passes the session and CSRF checks (here refused only for its
        # made-up ciphertext, 422): the holder can write, but cannot make
        # records that open.
        bogus = {"id": "A" * 22, "name_ct": "B" * 40, "sealed_key": "C" * 107}
        r = await c.call("POST", "/api/safes", json=bogus, expect=422)
        assert r.json()["error"] == "invalid"


async def test_a_backup_token_gets_a_key_slot_and_then_opens_the_vault(
    vault: VaultServer, net: TestNetwork, alice_phone: PhoneApp, tmp_path: Path
) -> None:
    cli = await logged_in(vault.url, tmp_path, tmp_path / "alice-phone.json", "alice")
    await cli.ok("create-safe", "Home")
    await cli.ok("add", "Home", "note", "N", "--notes", "only with a slot")
    backup = tmp_path / "backup.json"
    await make_phone(net, backup, label="backup", backup_of=alice_phone)
    # Same account at authnet, but no key slot in the vault yet: it cannot open the keys.
    r = await cli.run("get", "Home", "N", "--field", "notes", "--phone", backup)
    assert r.code == Exit.LOGIN
    assert "no key slot" in r.err
    assert "vault add-token" in r.err
    added = await cli.json("add-token", "--phone", backup)
    assert added["slot_made"] is True
    assert (await cli.json("add-token", "--phone", backup))["slot_made"] is False
    r = await cli.ok("get", "Home", "N", "--field", "notes", "--phone", backup)
    assert r.out == "only with a slot"
    # A fresh login with the backup alone opens the same keys.
    other = VaultCli(vault.url, tmp_path / "backup-state.json")
    login = await other.json("login", "--phone", backup)
    assert login["handle"] == "alice"
    assert login["fingerprint"] == (await cli.json("whoami"))["fingerprint"]
    assert login["key_id"] == added["key_id"]
    # A phone of another account is refused, and nothing is added.
    stranger = tmp_path / "stranger.json"
    await make_phone(net, stranger, label="stranger")
    r = await cli.run("add-token", "--phone", stranger)
    assert r.code == Exit.LOGIN
    assert "belongs to another account" in r.err
    r = await cli.run("add-token")
    assert r.code == Exit.USAGE
