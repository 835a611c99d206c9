"""passkey-phone, the phone simulator's command line, driven in-process against
a real network: key store set-up, enrolment, account management, and answering
logins that a real browser session (authnet.sdk.browser) is waiting on.

`main` runs its own event loop (asyncio.run), so each call runs in a worker
thread while the test's loop keeps serving the network and the browser.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from authnet.errors import TicketRejected
from authnet.protocol.encoding import b64u_encode
from authnet.protocol.kc import kc_fingerprint
from authnet.sdk.browser import BrowserSession
from authnet.sdk.sp_client import AsyncSPClient
from authnet.testing import TestNetwork
from simulators.phone.app import PhoneApp
from simulators.phone.camera import render_qr
from simulators.phone.cli import EXIT_DECLINED, EXIT_ERROR, EXIT_OK, EXIT_USAGE, Io, main
from tests.helpers import login
from tokens.phone import PhoneKeyStore

PIN = "735194"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) TestBrowser/1.0"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Cli:
    """Runs passkey-phone with its own stdin, stdout and stderr."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch

    def run_sync(self, *argv: str, stdin: str = "") -> Result:
        out, err = io.StringIO(), io.StringIO()
        self._monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main([str(a) for a in argv], io=Io(out, err))
        return Result(code, out.getvalue(), err.getvalue())

    async def run(self, *argv: str | Path, stdin: str = "") -> Result:
        return await asyncio.to_thread(self.run_sync, *(str(a) for a in argv), stdin=stdin)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.delenv("PASSKEY_PIN", raising=False)
    return Cli(monkeypatch)


@pytest.fixture
def ca_file(net: TestNetwork, tmp_path: Path) -> Path:
    path = tmp_path / "ca.crt"
    path.write_bytes(net.ca_pem)
    return path


@asynccontextmanager
async def browser(
    sp: AsyncSPClient, *, auth_types: str = "c", origin: str = "https://hello.example"
) -> AsyncIterator[tuple[BrowserSession, Any]]:
    """A browser session waiting at the gateway on a fresh ticket."""
    ticket = await sp.get_ticket(auth_types=auth_types)
    session = BrowserSession.for_ticket(ticket, sp.spid)
    headers = {"User-Agent": USER_AGENT, "Origin": origin}
    async with aiohttp.ClientSession(headers=headers) as http, session.waiting(http) as wait:
        yield session, wait


async def outcome_of(wait: Any) -> Any:
    async with asyncio.timeout(10):
        return await wait.result()


def token_lines(out: str) -> dict[str, str]:
    lines = [line for line in out.splitlines() if line.strip()]
    return {line.split()[0]: line for line in lines}


# --- help -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([], "phone PassKey app"),
        (["init"], "create a key store"),
        (["show"], "public part"),
        (["enrol"], "enrol with a network"),
        (["tokens"], "list the tokens"),
        (["revoke"], "revoke a token"),
        (["scan"], "answer a login QR code"),
    ],
)
def test_help_exits_zero_and_says_what_the_command_does(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        main([*argv, "--help"], io=Io(io.StringIO(), io.StringIO()))
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: passkey-phone")
    assert says in text


def test_usage_errors_exit_two(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["frobnicate"], ["scan", "--yes", "--decline", "x"], ["enrol", "h:1"]):
        with pytest.raises(SystemExit) as e:
            cli.run_sync(*argv)
        assert e.value.code == EXIT_USAGE
    assert "usage: passkey-phone" in capsys.readouterr().err


# --- init and show --------------------------------------------------------------


def test_init_and_show_without_pin(cli: Cli, tmp_path: Path) -> None:
    store = tmp_path / "phone.json"
    r = cli.run_sync("--store", str(store), "init", "--label", "Alice's phone")
    assert r.code == EXIT_OK
    assert f"created key store {store} (no PIN)" in r.out
    assert "label: Alice's phone" in r.out
    assert store.exists()

    r = cli.run_sync("--store", str(store), "show")
    assert r.code == EXIT_OK
    assert r.json() == {
        "store": str(store),
        "label": "Alice's phone",
        "pin": False,
        "pin_kind": "none",
        "pin_attempts_left": None,
        "enrolments": [],
    }

    again = cli.run_sync("--store", str(store), "init")
    assert again.code == EXIT_ERROR
    assert "already exists" in again.err
    assert cli.run_sync("--store", str(store), "show").json()["label"] == "Alice's phone"


def test_show_without_a_store_says_how_to_make_one(cli: Cli, tmp_path: Path) -> None:
    r = cli.run_sync("--store", str(tmp_path / "none.json"), "show")
    assert r.code == EXIT_ERROR
    assert r.out == ""
    assert r.err.startswith("passkey-phone: no key store at")
    assert "passkey-phone init" in r.err


def test_show_reports_a_damaged_store_cleanly(cli: Cli, tmp_path: Path) -> None:
    store = tmp_path / "phone.json"
    store.write_text('{"format": "authnet-phone-keystore", "version": 1}')
    r = cli.run_sync("--store", str(store), "show")
    assert r.code == EXIT_ERROR
    assert "damaged" in r.err
    assert "Traceback" not in r.err


def test_init_with_pin_from_stdin_or_environment(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = tmp_path / "a.json"
    r = cli.run_sync("--store", str(a), "--pin-stdin", "init", "--pin", stdin=PIN + "\n")
    assert r.code == EXIT_OK
    assert "(PIN-protected)" in r.out
    shown = cli.run_sync("--store", str(a), "show").json()
    assert shown["pin"] is True
    assert shown["pin_attempts_left"] == 10
    assert PIN not in a.read_text()
    PhoneKeyStore.load(a).unlock(PIN)

    b = tmp_path / "b.json"
    monkeypatch.setenv("PASSKEY_PIN", PIN)
    r = cli.run_sync("--store", str(b), "init", "--pin")
    assert r.code == EXIT_OK
    assert "(PIN-protected)" in r.out
    assert cli.run_sync("--store", str(b), "show").json()["pin"] is True


def test_init_pin_problems(cli: Cli, tmp_path: Path) -> None:
    store = tmp_path / "phone.json"
    short = cli.run_sync("--store", str(store), "--pin-stdin", "init", "--pin", stdin="12\n")
    assert short.code == EXIT_ERROR
    assert "at least 4 characters" in short.err
    empty = cli.run_sync("--store", str(store), "--pin-stdin", "init", "--pin", stdin="")
    assert empty.code == EXIT_ERROR
    assert "standard input is empty" in empty.err
    # No --pin-stdin, no PASSKEY_PIN, and standard input is not a terminal.
    none = cli.run_sync("--store", str(store), "init", "--pin")
    assert none.code == EXIT_ERROR
    assert "use --pin-stdin or set PASSKEY_PIN" in none.err
    assert not store.exists()


# --- enrol, tokens, revoke ------------------------------------------------------


async def test_enrol_backup_list_and_revoke(
    cli: Cli, net: TestNetwork, sp: AsyncSPClient, ca_file: Path, tmp_path: Path
) -> None:
    address = net.addresses.passkey
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert (await cli.run("--store", a, "init", "--label", "phone A")).code == EXIT_OK
    assert (await cli.run("--store", b, "init", "--label", "phone B")).code == EXIT_OK

    r = await cli.run("--store", a, "enrol", address, "--ca", ca_file)
    assert r.code == EXIT_OK, r.err
    shown = (await cli.run("--store", a, "show")).json()
    [enrolment] = shown["enrolments"]
    a_id = enrolment["token_id"]
    assert enrolment["network"] == address
    assert enrolment["network_name"] == net.network.network_name
    assert r.out.strip() == (
        f"enrolled with {net.network.network_name} at {address}: token {a_id} (new account)"
    )

    r = await cli.run("--store", a, "tokens")
    assert r.code == EXIT_OK, r.err
    lines = token_lines(r.out)
    assert list(lines) == [a_id]
    assert lines[a_id].split()[1:3] == ["phone", "active"]
    assert lines[a_id].endswith("phone A  (this phone)")

    r = await cli.run("--store", b, "enrol", address, "--ca", ca_file, "--backup-of", a)
    assert r.code == EXIT_OK, r.err
    assert r.out.strip().endswith("(added to the existing account)")
    b_id = (await cli.run("--store", b, "show")).json()["enrolments"][0]["token_id"]
    assert b_id != a_id

    from_a = token_lines((await cli.run("--store", a, "tokens")).out)
    from_b = token_lines((await cli.run("--store", b, "tokens")).out)
    assert set(from_a) == set(from_b) == {a_id, b_id}
    assert from_a[a_id].endswith("(this phone)")
    assert not from_a[b_id].endswith("(this phone)")
    assert from_b[b_id].endswith("phone B  (this phone)")
    assert not from_b[a_id].endswith("(this phone)")

    r = await cli.run("--store", a, "revoke", b_id)
    assert r.code == EXIT_OK, r.err
    assert r.out.strip() == f"revoked {b_id}"
    after = token_lines((await cli.run("--store", a, "tokens")).out)
    assert after[b_id].split()[2] == "revoked"
    assert after[a_id].split()[2] == "active"

    # The revoked phone can no longer answer a login, nor manage the account.
    async with browser(sp) as (session, _wait):
        r = await cli.run("--store", b, "scan", session.payload().encode(), "--yes")
    assert r.code == EXIT_ERROR
    assert r.err.strip() == "passkey-phone: this token was revoked"
    assert r.out == ""
    r = await cli.run("--store", b, "tokens")
    assert r.code == EXIT_ERROR
    assert "revoked" in r.err

    # A is now the only active token: revoking it would lock the account out.
    r = await cli.run("--store", a, "revoke", a_id)
    assert r.code == EXIT_ERROR
    assert "only active token" in r.err
    assert token_lines((await cli.run("--store", a, "tokens")).out)[a_id].split()[2] == "active"


async def test_revoke_needs_a_well_formed_token_id(
    cli: Cli, phone: PhoneApp, net: TestNetwork
) -> None:
    r = await cli.run("--store", phone.store.path, "revoke", "not a token id")
    assert r.code == EXIT_USAGE
    assert "token id" in r.err
    r = await cli.run("--store", phone.store.path, "revoke", b64u_encode(bytes(16)))
    assert r.code == EXIT_ERROR
    assert "no such token in this account" in r.err


async def test_enrol_with_unreadable_ca_is_a_usage_error(
    cli: Cli, net: TestNetwork, tmp_path: Path
) -> None:
    store = tmp_path / "phone.json"
    assert (await cli.run("--store", store, "init")).code == EXIT_OK
    r = await cli.run(
        "--store", store, "enrol", net.addresses.passkey, "--ca", tmp_path / "missing.crt"
    )
    assert r.code == EXIT_USAGE
    assert "cannot read the network CA" in r.err
    assert (await cli.run("--store", store, "show")).json()["enrolments"] == []


async def test_pin_protected_phone_enrols_and_logs_in_with_the_pin(
    cli: Cli,
    net: TestNetwork,
    sp: AsyncSPClient,
    ca_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = tmp_path / "phone.json"
    r = await cli.run("--store", store, "--pin-stdin", "init", "--pin", stdin=PIN + "\n")
    assert r.code == EXIT_OK

    r = await cli.run("--store", store, "enrol", net.addresses.passkey, "--ca", ca_file)
    assert r.code == EXIT_ERROR
    assert "use --pin-stdin or set PASSKEY_PIN" in r.err

    monkeypatch.setenv("PASSKEY_PIN", "999999")
    r = await cli.run("--store", store, "enrol", net.addresses.passkey, "--ca", ca_file)
    assert r.code == EXIT_ERROR
    assert "wrong PIN: 9 attempts left" in r.err
    shown = (await cli.run("--store", store, "show")).json()
    assert shown["pin_attempts_left"] == 9
    assert shown["enrolments"] == []

    monkeypatch.setenv("PASSKEY_PIN", PIN)
    r = await cli.run("--store", store, "enrol", net.addresses.passkey, "--ca", ca_file)
    assert r.code == EXIT_OK, r.err
    assert (await cli.run("--store", store, "show")).json()["pin_attempts_left"] == 10

    async with browser(sp, auth_types="pc") as (session, wait):
        r = await cli.run("--store", store, "scan", session.payload().encode(), "--yes", "--json")
        outcome = await outcome_of(wait)
    assert r.code == EXIT_OK, r.err
    assert r.json()["auth_types"] == "pc"
    assert r.json()["kc_fingerprint"] == kc_fingerprint(outcome.kc)
    assert "asks for        your PIN, a client key" in r.err


# --- scan -----------------------------------------------------------------------


async def test_scan_completes_a_real_login(
    cli: Cli, net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp
) -> None:
    async with browser(sp) as (session, wait):
        r = await cli.run(
            "--store", phone.store.path, "scan", session.payload().encode(), "--yes", "--json"
        )
        outcome = await outcome_of(wait)
    assert r.code == EXIT_OK, r.err
    assert outcome.kc is not None
    assert r.json() == {
        "accepted": True,
        "sp": "hello",
        "sp_display_name": "Hello SP",
        "spid": sp.spid.hex(),
        "auth_types": "c",
        "kc_fingerprint": kc_fingerprint(outcome.kc),
    }
    # What the person saw before saying yes.
    assert r.err.splitlines() == [
        "Log in to Hello SP (hello)?",
        "  requested from  127.0.0.1",
        f"  browser         {USER_AGENT}",
        "  page origin     https://hello.example  [SP lists no origins]",
        "  asks for        a client key",
    ]
    who = await sp.get_puid(session.ticket, finalize=True)
    assert who.auth_types == "c"

    # The same phone through the app API derives the same Kc for this SP.
    run = await login(sp, phone)
    assert run.kc == outcome.kc


async def test_scan_from_a_qr_image(
    cli: Cli, net: TestNetwork, phone: PhoneApp, tmp_path: Path
) -> None:
    creds = await net.add_sp("shop", "Example Shop", origins=["https://shop.example"])
    async with net.sp_client(creds) as shop:
        async with browser(shop, origin="https://shop.example") as (session, wait):
            image = tmp_path / "qr.png"
            render_qr(session.payload().encode()).save(image, format="PNG")
            r = await cli.run("--store", phone.store.path, "scan", "--image", image, "--yes")
            outcome = await outcome_of(wait)
        who = await shop.get_puid(session.ticket)
    assert r.code == EXIT_OK, r.err
    assert r.out.splitlines() == [
        "logged in to Example Shop",
        f"client key fingerprint {kc_fingerprint(outcome.kc)}",
    ]
    assert "Log in to Example Shop (shop)?" in r.err
    assert "  page origin     https://shop.example  [registered for this SP]" in r.err
    assert who.auth_types == "c"


async def test_scan_decline(cli: Cli, net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp) -> None:
    async with browser(sp) as (session, wait):
        r = await cli.run(
            "--store", phone.store.path, "scan", session.payload().encode(), "--decline"
        )
        with pytest.raises(TicketRejected):
            await outcome_of(wait)
    assert r.code == EXIT_DECLINED
    assert r.out.strip() == "declined the login to Hello SP"
    assert "Log in to Hello SP (hello)?" in r.err


async def test_scan_asks_and_a_no_declines(
    cli: Cli, net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp
) -> None:
    async with browser(sp) as (session, wait):
        r = await cli.run(
            "--store", phone.store.path, "scan", session.payload().encode(), "--json", stdin="n\n"
        )
        with pytest.raises(TicketRejected):
            await outcome_of(wait)
    assert r.code == EXIT_DECLINED
    assert r.json()["accepted"] is False
    assert r.json()["kc_fingerprint"] is None
    assert r.err.rstrip().endswith("Confirm? [y/N]")

    async with browser(sp) as (session, wait):
        r = await cli.run(
            "--store", phone.store.path, "scan", session.payload().encode(), stdin="yes\n"
        )
        outcome = await outcome_of(wait)
    assert r.code == EXIT_OK, r.err
    assert f"client key fingerprint {kc_fingerprint(outcome.kc)}" in r.out


@pytest.fixture
def plain_store(tmp_path: Path) -> Path:
    path = tmp_path / "phone.json"
    PhoneKeyStore.create(path, label="offline")
    return path


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("hello", "not an authnet login code"),
        ("https://example.com/login", "not an authnet login code"),
        ("authnet:login?v=1&t=at1_x", "lacks field(s) k, n"),
        ("authnet:login?v=2&t=a&k=b&n=c:1", "version '2' is not supported"),
        ("authnet:login?v=1&t=a&t=b", "repeats field 't'"),
    ],
)
def test_scan_malformed_payload(cli: Cli, plain_store: Path, payload: str, message: str) -> None:
    r = cli.run_sync("--store", str(plain_store), "scan", payload, "--yes")
    assert r.code == EXIT_USAGE
    assert r.err.startswith("passkey-phone: ")
    assert message in r.err
    assert r.out == ""


def test_scan_image_problems(cli: Cli, plain_store: Path, tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    Image.new("L", (200, 200), 255).save(blank, format="PNG")
    not_image = tmp_path / "notes.png"
    not_image.write_text("just text\n")
    cases = [
        (["--image", blank], "no QR code found in the image"),
        (["--image", not_image], "cannot read the image"),
        (["--image", tmp_path / "missing.png"], "cannot read the image"),
        ([], "give either a payload or --image FILE"),
        (["authnet:login?v=1", "--image", blank], "give either a payload or --image FILE"),
    ]
    for args, message in cases:
        r = cli.run_sync("--store", str(plain_store), "scan", *map(str, args), "--yes")
        assert r.code == EXIT_USAGE, args
        assert message in r.err, args


async def test_scan_by_a_phone_enrolled_elsewhere_says_so(
    cli: Cli, net: TestNetwork, sp: AsyncSPClient, tmp_path: Path
) -> None:
    (tmp_path / "elsewhere").mkdir()
    async with TestNetwork(tmp_path / "elsewhere") as other:
        stranger = PhoneApp.create(tmp_path / "stranger.json", label="stranger")
        await stranger.enrol(other.addresses.passkey, other.ca_pem)
    async with browser(sp) as (session, _wait):
        r = await cli.run(
            "--store", stranger.store.path, "scan", session.payload().encode(), "--yes"
        )
    assert r.code == EXIT_ERROR
    assert r.err.strip() == (
        f"passkey-phone: this phone is not enrolled with the network at {net.addresses.passkey}"
        f" (enrolled with: {other.addresses.passkey})"
    )
    assert r.out == ""
