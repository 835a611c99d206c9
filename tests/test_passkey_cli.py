"""passkey, the command line for tokens plugged into this computer, driven
in-process against a real network with each token kind's simulator: SoftHSM2
(pkcs11), the software CTAP2 key (fido2), and a virtual card on the real PC/SC
stack (piv, otp). A real browser session (authnet.sdk.browser) waits on the
ticket, so each login is checked by the Kc the browser opens.

`main` runs its own event loop (asyncio.run), so each call runs in a worker
thread while the test's loop keeps serving the network and the browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from fido2.ctap2.base import Ctap2
from fido2.ctap2.pin import ClientPin

from authnet.directory.sql import SqlDirectory
from authnet.errors import TicketRejected
from authnet.protocol.kc import kc_fingerprint
from authnet.sdk.browser import BrowserSession
from authnet.sdk.sp_client import AsyncSPClient
from authnet.testing import TestNetwork
from simulators.ctap2 import Authenticator, SoftCtapDevice
from simulators.phone.camera import render_qr
from simulators.smartcard import VirtualCard, reader_name, virtual_card
from simulators.softhsm import SoftHsm
from tests.conformance.backends import READERS
from tokens.cli import EXIT_DECLINED, EXIT_ERROR, EXIT_OK, EXIT_USAGE, main
from tokens.enrolments import EnrolmentBook

ORIGIN = "https://hello.example"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Cli:
    """Runs `passkey` with its own stdin, stdout and stderr and an enrolment
    book in the test's directory."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, book: Path) -> None:
        self._monkeypatch = monkeypatch
        self.book = book

    def run_sync(self, *argv: str, stdin: str = "") -> Result:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            self._monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
            code = main(["--book", str(self.book), *argv])
        return Result(code, out.getvalue(), err.getvalue())

    async def run(self, *argv: str | Path, stdin: str = "") -> Result:
        return await asyncio.to_thread(self.run_sync, *(str(a) for a in argv), stdin=stdin)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Cli:
    monkeypatch.delenv("PASSKEY_PIN", raising=False)
    return Cli(monkeypatch, tmp_path / "tokens.json")


@pytest.fixture
def ca_file(net: TestNetwork, tmp_path: Path) -> Path:
    path = tmp_path / "ca.crt"
    path.write_bytes(net.ca_pem)
    return path


@asynccontextmanager
async def browser(sp: AsyncSPClient) -> AsyncIterator[tuple[BrowserSession, Any]]:
    """A browser session waiting at the gateway on a fresh ticket."""
    ticket = await sp.get_ticket(auth_types="c")
    session = BrowserSession.for_ticket(ticket, sp.spid)
    async with aiohttp.ClientSession() as http, session.waiting(http, origin=ORIGIN) as wait:
        yield session, wait


def accounts(net: TestNetwork) -> int:
    directory = net.network.directory
    assert isinstance(directory, SqlDirectory)
    with directory.engine.connect() as c:
        return int(c.execute(sa.text("select count(*) from accounts")).scalar_one())


async def outcome_of(wait: Any) -> Any:
    async with asyncio.timeout(10):
        return await wait.result()


async def assert_logs_in(
    cli: Cli, sp: AsyncSPClient, *token_args: str, stdin: str = ""
) -> tuple[str, str]:
    """A complete login answered by `passkey login`; returns Kc's fingerprint
    and the PUID, after checking the browser opened the same Kc."""
    async with browser(sp) as (session, wait):
        r = await cli.run(
            "login", *token_args, session.payload().encode(), "--yes", "--json", stdin=stdin
        )
        assert r.code == EXIT_OK, r.err
        outcome = await outcome_of(wait)
    result = r.json()
    assert result["accepted"] is True
    assert result["sp"] == "hello"
    assert outcome.kc is not None
    assert kc_fingerprint(outcome.kc) == result["kc_fingerprint"]
    identity = await sp.get_puid(session.ticket, finalize=True)
    # What the person was shown went to stderr, not into the JSON.
    assert "Hello SP" in r.err
    return str(result["kc_fingerprint"]), identity.puid


# --- help and usage -------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([], "PassKeys"),
        (["provision"], "create the token's keys"),
        (["enrol"], "enrol the token with a network"),
        (["tokens"], "list the tokens"),
        (["login"], "answer a login code"),
        (["agent"], "serve browsers on this computer"),
    ],
)
def test_help_exits_zero_and_says_what_the_command_does(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        main([*argv, "--help"])
    assert e.value.code == 0
    assert says in " ".join(capsys.readouterr().out.split())


def test_a_token_kind_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["login", "authnet:login?v=1"])
    assert e.value.code == 2
    assert "--token" in capsys.readouterr().err


# --- PKCS#11 (SoftHSM2) ---------------------------------------------------------


@dataclass
class Hsm:
    module: str
    label: str
    pin: str

    def args(self) -> list[str]:
        return ["--token", "pkcs11", "--pkcs11-module", self.module, "--pkcs11-token", self.label]


@pytest.fixture
def hsm() -> Hsm:
    shared = SoftHsm.shared()
    made = shared.new_token()
    return Hsm(module=shared.module, label=made.label, pin=made.pin)


async def test_pkcs11_provision_enrol_list_and_log_in(
    cli: Cli, hsm: Hsm, net: TestNetwork, sp: AsyncSPClient, ca_file: Path
) -> None:
    r = await cli.run("--pin-stdin", "provision", *hsm.args(), stdin=hsm.pin + "\n")
    assert r.code == EXIT_OK, r.err
    assert r.out.startswith("provisioned: public key ")

    r = await cli.run(
        "--pin-stdin",
        "enrol",
        *hsm.args(),
        "--network",
        net.addresses.passkey,
        "--ca",
        ca_file,
        "--label",
        "my hsm",
        stdin=hsm.pin + "\n",
    )
    assert r.code == EXIT_OK, r.err
    assert "(new account)" in r.out
    assert EnrolmentBook(cli.book).ca_for(net.addresses.passkey) == net.ca_pem

    r = await cli.run(
        "--pin-stdin", "tokens", *hsm.args(), "--network", net.addresses.passkey, stdin=hsm.pin
    )
    assert r.code == EXIT_OK, r.err
    (line,) = r.out.splitlines()
    assert "pkcs11" in line
    assert "active" in line
    assert "my hsm" in line
    assert line.endswith("(this token)")

    first = await assert_logs_in(cli, sp, "--pin-stdin", *hsm.args(), stdin=hsm.pin)
    # Kc is stable: a second login (a fresh process, in effect) gives the same one.
    assert await assert_logs_in(cli, sp, "--pin-stdin", *hsm.args(), stdin=hsm.pin) == first


async def enrolled_hsm(cli: Cli, hsm: Hsm, net: TestNetwork, ca_file: Path) -> None:
    assert (await cli.run("--pin-stdin", "provision", *hsm.args(), stdin=hsm.pin)).code == 0
    r = await cli.run(
        "--pin-stdin",
        "enrol",
        *hsm.args(),
        "--network",
        net.addresses.passkey,
        "--ca",
        ca_file,
        stdin=hsm.pin,
    )
    assert r.code == EXIT_OK, r.err


async def test_login_from_an_image_of_the_qr_code(
    cli: Cli,
    hsm: Hsm,
    net: TestNetwork,
    sp: AsyncSPClient,
    ca_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await enrolled_hsm(cli, hsm, net, ca_file)
    monkeypatch.setenv("PASSKEY_PIN", hsm.pin)
    async with browser(sp) as (session, wait):
        image = tmp_path / "qr.png"
        render_qr(session.payload().encode()).save(image)
        r = await cli.run("login", *hsm.args(), "--image", image, "--yes")
        assert r.code == EXIT_OK, r.err
        outcome = await outcome_of(wait)
    assert outcome.kc is not None
    assert (
        r.out.strip()
        == f"logged in to Hello SP; client key fingerprint {kc_fingerprint(outcome.kc)}"
    )


async def test_declining_rejects_the_ticket(
    cli: Cli,
    hsm: Hsm,
    net: TestNetwork,
    sp: AsyncSPClient,
    ca_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await enrolled_hsm(cli, hsm, net, ca_file)
    monkeypatch.setenv("PASSKEY_PIN", hsm.pin)
    async with browser(sp) as (session, wait):
        r = await cli.run("login", *hsm.args(), session.payload().encode(), "--decline")
        assert r.code == EXIT_DECLINED, r.err
        assert "declined the login to Hello SP" in r.out
        with pytest.raises(TicketRejected):
            await outcome_of(wait)


async def test_confirmation_is_asked_on_the_terminal(
    cli: Cli,
    hsm: Hsm,
    net: TestNetwork,
    sp: AsyncSPClient,
    ca_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await enrolled_hsm(cli, hsm, net, ca_file)
    monkeypatch.setenv("PASSKEY_PIN", hsm.pin)
    async with browser(sp) as (session, wait):
        r = await cli.run("login", *hsm.args(), session.payload().encode(), stdin="y\n")
        assert r.code == EXIT_OK, r.err
        assert "Confirm? [y/N]" in r.err
        assert (await outcome_of(wait)).kc is not None
    async with browser(sp) as (session, wait):
        # Anything but yes is no.
        r = await cli.run("login", *hsm.args(), session.payload().encode(), stdin="\n")
        assert r.code == EXIT_DECLINED
        with pytest.raises(TicketRejected):
            await outcome_of(wait)


async def test_errors_are_clear_and_change_nothing(
    cli: Cli,
    hsm: Hsm,
    net: TestNetwork,
    sp: AsyncSPClient,
    ca_file: Path,
    tmp_path: Path,
) -> None:
    # No enrolment for this network yet.
    async with browser(sp) as (session, _):
        payload = session.payload().encode()
        r = await cli.run("login", *hsm.args(), payload, "--yes")
    assert r.code == EXIT_USAGE
    assert "no token here is enrolled with" in r.err
    assert "run `passkey enrol` first" in r.err

    r = await cli.run(
        "enrol", *hsm.args(), "--network", net.addresses.passkey, "--ca", tmp_path / "nope.crt"
    )
    assert r.code == EXIT_USAGE
    assert "cannot read the network CA" in r.err

    r = await cli.run("login", *hsm.args(), payload, "--image", tmp_path / "qr.png")
    assert (r.code, r.err.strip()) == (EXIT_USAGE, "passkey: give either a payload or --image FILE")

    r = await cli.run("provision", "--token", "fido2")
    assert r.code == EXIT_USAGE
    assert "FIDO2 keys make their credential at enrolment" in r.err

    r = await cli.run("--pin-stdin", "provision", *hsm.args(), stdin="")
    assert r.code == EXIT_ERROR
    assert "standard input is empty" in r.err

    # Without a terminal and without --pin-stdin or PASSKEY_PIN, say how to give it.
    r = await cli.run("provision", *hsm.args())
    assert r.code == EXIT_ERROR
    assert "use --pin-stdin or set PASSKEY_PIN" in r.err

    r = await cli.run("login", *hsm.args(), "authnet:login?v=9", "--yes")
    assert r.code == EXIT_USAGE
    assert "passkey: " in r.err
    assert not cli.book.exists()


async def test_a_wrong_pin_is_refused_and_nothing_is_enrolled(
    cli: Cli, hsm: Hsm, net: TestNetwork, ca_file: Path
) -> None:
    assert (await cli.run("--pin-stdin", "provision", *hsm.args(), stdin=hsm.pin)).code == 0
    r = await cli.run(
        "--pin-stdin",
        "enrol",
        *hsm.args(),
        "--network",
        net.addresses.passkey,
        "--ca",
        ca_file,
        stdin="000000",
    )
    assert r.code == EXIT_ERROR
    assert "PIN" in r.err
    assert "000000" not in r.err
    assert not cli.book.exists()
    assert accounts(net) == 0


# --- FIDO2 (the software security key) ------------------------------------------


@pytest.fixture
def fido2_key(tmp_path: Path) -> Path:
    state = tmp_path / "key.json"
    ClientPin(Ctap2(SoftCtapDevice(Authenticator(state)))).set_pin("4321")
    return state


async def test_fido2_enrol_and_log_in(
    cli: Cli, fido2_key: Path, net: TestNetwork, sp: AsyncSPClient, ca_file: Path
) -> None:
    args = ["--token", "fido2", "--fido2-sim", str(fido2_key)]
    r = await cli.run(
        "--pin-stdin",
        "enrol",
        *args,
        "--network",
        net.addresses.passkey,
        "--ca",
        ca_file,
        stdin="4321",
    )
    assert r.code == EXIT_OK, r.err
    assert EnrolmentBook(cli.book).ca_for(net.addresses.passkey) == net.ca_pem
    first = await assert_logs_in(cli, sp, "--pin-stdin", *args, stdin="4321")
    assert await assert_logs_in(cli, sp, "--pin-stdin", *args, stdin="4321") == first
    r = await cli.run(
        "--pin-stdin", "tokens", *args, "--network", net.addresses.passkey, stdin="4321"
    )
    assert r.code == EXIT_OK, r.err
    assert "fido2" in r.out
    assert r.out.strip().endswith("(this token)")


async def test_fido2_wrong_pin_says_how_many_tries_are_left(
    cli: Cli, fido2_key: Path, net: TestNetwork, ca_file: Path
) -> None:
    args = ["--token", "fido2", "--fido2-sim", str(fido2_key)]
    r = await cli.run(
        "--pin-stdin",
        "enrol",
        *args,
        "--network",
        net.addresses.passkey,
        "--ca",
        ca_file,
        stdin="1111",
    )
    assert r.code == EXIT_ERROR
    assert "7 tries left" in r.err
    assert not cli.book.exists()
    assert accounts(net) == 0


# --- PIV and OTP on a virtual card in the real PC/SC stack ----------------------


@pytest.fixture
def card(tmp_path: Path) -> Iterator[str]:
    pcscd = READERS.start()
    index = READERS.free.pop(0)
    try:
        made = VirtualCard.create(tmp_path / "card.json", otp_slot2_secret=secrets.token_bytes(20))
        with virtual_card(made, reader=index, pcscd=pcscd):
            yield reader_name(index)
    finally:
        READERS.free.append(index)


async def test_piv_provision_enrol_and_log_in_then_otp(
    cli: Cli, card: str, net: TestNetwork, sp: AsyncSPClient, ca_file: Path
) -> None:
    piv = ["--token", "piv", "--reader", card]
    # A fresh card has the default PIN 123456 and management key.
    r = await cli.run("--pin-stdin", "provision", *piv, stdin="123456")
    assert r.code == EXIT_OK, r.err
    r = await cli.run(
        "--pin-stdin",
        "enrol",
        *piv,
        "--network",
        net.addresses.passkey,
        "--ca",
        ca_file,
        stdin="123456",
    )
    assert r.code == EXIT_OK, r.err
    piv_kc, piv_puid = await assert_logs_in(cli, sp, "--pin-stdin", *piv, stdin="123456")

    # The same card's OTP applet is a second Kc source under the same 9A key:
    # the same enrolment, a different Kc.
    otp = ["--token", "otp", "--reader", card]
    otp_kc, otp_puid = await assert_logs_in(cli, sp, "--pin-stdin", *otp, stdin="123456")
    assert otp_kc != piv_kc
    assert otp_puid == piv_puid


async def test_piv_wrong_pin_reports_the_retries_left(cli: Cli, card: str) -> None:
    piv = ["--token", "piv", "--reader", card]
    r = await cli.run("--pin-stdin", "provision", *piv, stdin="999999")
    assert r.code == EXIT_ERROR
    assert "2 tries left" in r.err
    # The right PIN still works (and resets the counter).
    r = await cli.run("--pin-stdin", "provision", *piv, stdin="123456")
    assert r.code == EXIT_OK, r.err


async def test_no_card_in_the_reader_is_a_clear_error(cli: Cli) -> None:
    pcscd = READERS.start()
    del pcscd
    index = READERS.free[0]
    r = await cli.run(
        "--pin-stdin", "provision", "--token", "piv", "--reader", reader_name(index), stdin="123456"
    )
    assert r.code == EXIT_ERROR
    assert "card" in r.err.lower()
