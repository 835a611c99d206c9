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
import os
import re
import secrets
import subprocess
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
from authnet.protocol.encoding import b64u_encode
from authnet.protocol.ids import parse_token_id, ticket_hash
from authnet.protocol.kc import kc_fingerprint
from authnet.sdk.browser import BrowserSession
from authnet.sdk.sp_client import AsyncSPClient
from authnet.testing import TestNetwork
from authnet.tickets import TicketState
from simulators.ctap2 import Authenticator, SoftCtapDevice
from simulators.phone.camera import render_qr
from simulators.smartcard import VirtualCard, reader_name, virtual_card
from simulators.softhsm import SoftHsm
from tests.conformance.backends import READERS
from tokens.cli import EXIT_DECLINED, EXIT_ERROR, EXIT_OK, EXIT_USAGE, main, parser
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


@dataclass(frozen=True)
class LoggedIn:
    kc_fingerprint: str
    puid: str
    key_id: str


async def assert_logs_in(
    cli: Cli, sp: AsyncSPClient, *token_args: str, stdin: str = ""
) -> LoggedIn:
    """A complete login answered by `passkey login`; returns Kc's fingerprint,
    the PUID and the key id, after checking the browser opened the same Kc."""
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
    return LoggedIn(str(result["kc_fingerprint"]), identity.puid, identity.key_id)


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
    # The fingerprint of the authentication key, not the SPKI header's base64.
    fingerprint = provisioned_fingerprint(r)

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
    assert line.endswith(f"(this token)  key {fingerprint}")

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


@dataclass
class Card:
    reader: str
    card: VirtualCard

    def piv(self) -> list[str]:
        return ["--token", "piv", "--reader", self.reader]

    def otp(self) -> list[str]:
        return ["--token", "otp", "--reader", self.reader]

    def keys(self) -> dict[int, bytes]:
        """The private keys in the card's slots (what re-provisioning replaces)."""
        return {slot: k.private_value for slot, k in self.card.snapshot().keys.items()}


@contextlib.contextmanager
def inserted(tmp_path: Path, **create: Any) -> Iterator[Card]:
    """A new virtual card (VirtualCard.create options) in a free vpcd reader.
    Other programs may hold a reader for a while: wait for it, do not fail."""
    pcscd = READERS.start()
    index = READERS.free.pop(0)
    try:
        made = VirtualCard.create(
            tmp_path / f"card-{secrets.token_hex(4)}.json",
            otp_slot2_secret=secrets.token_bytes(20),
            **create,
        )
        with virtual_card(made, reader=index, pcscd=pcscd, timeout=60):
            yield Card(reader_name(index), made)
    finally:
        READERS.free.append(index)


@pytest.fixture
def card(tmp_path: Path) -> Iterator[Card]:
    with inserted(tmp_path) as c:
        yield c


def provisioned_fingerprint(r: Result) -> str:
    m = re.fullmatch(
        r"provisioned: authentication key fingerprint ((?:[0-9a-f]{4}:){7}[0-9a-f]{4})\n", r.out
    )
    assert m, r.out
    return m.group(1)


def enrolled_token_id(r: Result) -> str:
    m = re.search(r": token ([A-Za-z0-9_-]{22}) ", r.out)
    assert m, r.out
    return m.group(1)


async def enrol(
    cli: Cli, net: TestNetwork, ca_file: Path | None, *token_args: str, stdin: str, **kw: str
) -> Result:
    # "=": a token id may start with "-", which argparse would take for an option.
    extra = [f"--{k.replace('_', '-')}={v}" for k, v in kw.items()]
    ca = ["--ca", str(ca_file)] if ca_file is not None else []
    return await cli.run(
        "--pin-stdin",
        "enrol",
        *token_args,
        "--network",
        net.addresses.passkey,
        *ca,
        *extra,
        stdin=stdin,
    )


async def test_piv_and_otp_on_one_card_are_two_tokens_of_one_account(
    cli: Cli, card: Card, net: TestNetwork, sp: AsyncSPClient, ca_file: Path
) -> None:
    # A fresh card has the default PIN 123456 and management key.
    r = await cli.run("--pin-stdin", "provision", *card.piv(), stdin="123456")
    assert r.code == EXIT_OK, r.err
    piv_fp = provisioned_fingerprint(r)
    r = await enrol(cli, net, ca_file, *card.piv(), stdin="123456")
    assert r.code == EXIT_OK, r.err
    piv_id = enrolled_token_id(r)
    piv = await assert_logs_in(cli, sp, "--pin-stdin", *card.piv(), stdin="123456")

    # OTP is a token of its own, with its own key (9C): not usable before that
    # key exists, whatever the PIV token did.
    async with browser(sp) as (session, _):
        r = await cli.run(
            "--pin-stdin",
            "login",
            *card.otp(),
            session.payload().encode(),
            "--yes",
            stdin="123456",
        )
    assert r.code == EXIT_ERROR
    assert "no authnet otp key" in r.err
    assert "passkey provision --token otp" in r.err

    r = await cli.run("--pin-stdin", "provision", *card.otp(), stdin="123456")
    assert r.code == EXIT_OK, r.err
    otp_fp = provisioned_fingerprint(r)
    assert otp_fp != piv_fp
    assert set(card.keys()) == {0x9A, 0x9C, 0x9D}
    # Joins the PIV token's account: the OTP token's PIN first, then the PIV token's.
    r = await enrol(cli, net, None, *card.otp(), stdin="123456\n123456\n", add_to=piv_id)
    assert r.code == EXIT_OK, r.err
    assert f"(added to the account of {piv_id})" in r.out
    otp_id = enrolled_token_id(r)
    assert otp_id != piv_id

    otp = await assert_logs_in(cli, sp, "--pin-stdin", *card.otp(), stdin="123456")
    # One account: the same PUID; two tokens: two key ids and two Kc, so the SP
    # can tell which Kc it gets (protocol 6.1).
    assert otp.puid == piv.puid
    assert otp.key_id != piv.key_id
    assert otp.kc_fingerprint != piv.kc_fingerprint
    # ... and each stays what it was.
    assert await assert_logs_in(cli, sp, "--pin-stdin", *card.piv(), stdin="123456") == piv
    assert await assert_logs_in(cli, sp, "--pin-stdin", *card.otp(), stdin="123456") == otp

    r = await cli.run(
        "--pin-stdin", "tokens", *card.otp(), "--network", net.addresses.passkey, stdin="123456"
    )
    assert r.code == EXIT_OK, r.err
    lines = r.out.splitlines()
    assert len(lines) == 2
    (piv_line,) = [line for line in lines if line.startswith(piv_id)]
    (otp_line,) = [line for line in lines if line.startswith(otp_id)]
    assert " piv " in piv_line
    assert piv_line.endswith(f"key {piv_fp}")
    assert " otp " in otp_line
    assert otp_line.endswith(f"(this token)  key {otp_fp}")


async def test_reprovisioning_needs_force_and_checks_the_pin_first(
    cli: Cli, card: Card, net: TestNetwork, sp: AsyncSPClient, ca_file: Path
) -> None:
    assert (await cli.run("--pin-stdin", "provision", *card.piv(), stdin="123456")).code == 0
    r = await enrol(cli, net, ca_file, *card.piv(), stdin="123456")
    assert r.code == EXIT_OK, r.err
    first = await assert_logs_in(cli, sp, "--pin-stdin", *card.piv(), stdin="123456")
    keys = card.keys()

    # Slots holding keys: refused without --force, saying what would be lost.
    r = await cli.run("--pin-stdin", "provision", *card.piv(), stdin="123456")
    assert r.code == EXIT_ERROR
    assert "slots 9A and 9D of this card already hold keys" in r.err
    assert "every enrolment and every client key (Kc) made with them is lost" in r.err
    assert "--force" in r.err
    # A wrong PIN, or a wrong management key, stops it before anything changes.
    r = await cli.run("--pin-stdin", "provision", *card.piv(), "--force", stdin="999999")
    assert r.code == EXIT_ERROR
    assert "wrong PIN: 2 tries left" in r.err
    wrong_key = secrets.token_hex(24)
    r = await cli.run(
        "--pin-stdin",
        "provision",
        *card.piv(),
        "--force",
        "--management-key",
        wrong_key,
        stdin="123456",
    )
    assert r.code == EXIT_ERROR
    assert "refused the management key: wrong key (as AES-192)" in r.err
    assert card.keys() == keys
    assert await assert_logs_in(cli, sp, "--pin-stdin", *card.piv(), stdin="123456") == first

    # --force replaces them, as it says: the enrolment no longer matches the card.
    r = await cli.run("--pin-stdin", "provision", *card.piv(), "--force", stdin="123456")
    assert r.code == EXIT_OK, r.err
    assert card.keys().keys() == keys.keys()
    assert all(card.keys()[slot] != keys[slot] for slot in keys)
    async with browser(sp) as (session, _):
        r = await cli.run(
            "--pin-stdin",
            "login",
            *card.piv(),
            session.payload().encode(),
            "--yes",
            stdin="123456",
        )
    assert r.code == EXIT_ERROR  # the new key is in no enrolment
    assert "this token is not enrolled with the network" in r.err


async def test_piv_wrong_pin_reports_the_retries_left(cli: Cli, card: Card) -> None:
    r = await cli.run("--pin-stdin", "provision", *card.piv(), stdin="999999")
    assert r.code == EXIT_ERROR
    assert "2 tries left" in r.err
    assert card.keys() == {}
    # The right PIN still works (and resets the counter).
    r = await cli.run("--pin-stdin", "provision", *card.piv(), stdin="123456")
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


# Management keys as cards ship them: (firmware, algorithm, key); None is the
# default of the firmware (3DES before 5.7, AES-192 after) with YubiKey's
# factory value.
AES128 = secrets.token_bytes(16)
AES256 = secrets.token_bytes(32)


@pytest.mark.parametrize(
    ("firmware", "algorithm", "key", "args"),
    [
        # YubiKey 5.4-5.6: 3DES factory key, and GET METADATA says so.
        ((5, 4, 3), None, None, []),
        # Before 5.3 no GET METADATA: AES-192 is refused, Triple DES tried next.
        ((5, 2, 7), None, None, []),
        ((5, 2, 7), None, None, ["--management-key-algorithm", "3des"]),
        # AES-128 and AES-256 keys, told by their length (and checked by metadata).
        ((5, 7, 1), 0x08, AES128, ["--management-key", AES128.hex()]),
        ((5, 7, 1), 0x0C, AES256, ["--management-key", AES256.hex()]),
        (
            (5, 7, 1),
            0x0C,
            AES256,
            ["--management-key", AES256.hex(), "--management-key-algorithm", "aes256"],
        ),
        # YubiKey 5.7: AES-192 factory key.
        ((5, 7, 1), None, None, ["--management-key-algorithm", "aes192"]),
    ],
    ids=["3des-metadata", "3des-witness", "3des-told", "aes128", "aes256", "aes256-told", "aes192"],
)
async def test_management_key_algorithms(
    cli: Cli,
    tmp_path: Path,
    firmware: tuple[int, int, int],
    algorithm: int | None,
    key: bytes | None,
    args: list[str],
) -> None:
    create: dict[str, Any] = {"firmware": firmware}
    if key is not None:
        create.update(management_key=key, management_algorithm=algorithm)
    with inserted(tmp_path, **create) as c:
        r = await cli.run("--pin-stdin", "provision", *c.piv(), *args, stdin="123456")
        assert r.code == EXIT_OK, r.err
        assert set(c.keys()) == {0x9A, 0x9D}


@pytest.mark.parametrize(
    ("firmware", "algorithm", "key", "args", "code", "says"),
    [
        (
            (5, 7, 1),
            None,
            None,
            ["--management-key-algorithm", "3des"],
            EXIT_ERROR,
            "refused the management key as Triple DES",
        ),
        (
            (5, 2, 7),
            None,
            None,
            ["--management-key", secrets.token_hex(24)],
            EXIT_ERROR,
            "refused the management key: wrong key (as Triple DES)",
        ),
        (
            (5, 7, 1),
            0x0C,
            AES256,
            ["--management-key", AES256[:24].hex()],
            EXIT_USAGE,
            "the card management key is AES-256, a key of 32 bytes",
        ),
        ((5, 7, 1), None, None, ["--management-key", "not hex"], EXIT_USAGE, "in hex"),
    ],
    ids=["wrong-algorithm", "wrong-key", "wrong-length", "not-hex"],
)
async def test_a_refused_management_key_changes_nothing(
    cli: Cli,
    tmp_path: Path,
    firmware: tuple[int, int, int],
    algorithm: int | None,
    key: bytes | None,
    args: list[str],
    code: int,
    says: str,
) -> None:
    create: dict[str, Any] = {"firmware": firmware}
    if key is not None:
        create.update(management_key=key, management_algorithm=algorithm)
    with inserted(tmp_path, **create) as c:
        r = await cli.run("--pin-stdin", "provision", *c.piv(), *args, stdin="123456")
        assert r.code == code, r.err
        assert says in r.err
        assert c.keys() == {}


# --- accounts: adding tokens, revoking them ---------------------------------------


def new_hsm() -> Hsm:
    shared = SoftHsm.shared()
    made = shared.new_token()
    return Hsm(module=shared.module, label=made.label, pin=made.pin)


async def test_a_pkcs11_token_joins_a_cards_account_and_the_card_revokes_it(
    cli: Cli, card: Card, hsm: Hsm, net: TestNetwork, sp: AsyncSPClient, ca_file: Path
) -> None:
    assert (await cli.run("--pin-stdin", "provision", *card.piv(), stdin="123456")).code == 0
    r = await enrol(cli, net, ca_file, *card.piv(), stdin="123456", label="my card")
    assert r.code == EXIT_OK, r.err
    card_id = enrolled_token_id(r)
    on_card = await assert_logs_in(cli, sp, "--pin-stdin", *card.piv(), stdin="123456")
    assert (await cli.run("--pin-stdin", "provision", *hsm.args(), stdin=hsm.pin)).code == 0

    # PINs in the wrong order: the card's PIN is not the HSM's, nothing is enrolled.
    r = await enrol(cli, net, None, *hsm.args(), stdin=f"123456\n{hsm.pin}\n", add_to=card_id)
    assert r.code == EXIT_ERROR
    assert "wrong PIN" in r.err
    assert accounts(net) == 1

    # The new token's PIN, then the card's (which authorises); the CA pinned
    # for the card is used.
    r = await enrol(cli, net, None, *hsm.args(), stdin=f"{hsm.pin}\n123456\n", add_to=card_id)
    assert r.code == EXIT_OK, r.err
    assert f"(added to the account of {card_id})" in r.out
    hsm_id = enrolled_token_id(r)
    assert accounts(net) == 1
    book = EnrolmentBook(cli.book)
    entry = book.entry_for_token(net.addresses.passkey, parse_token_id(card_id))
    assert entry.options == {"kind": "piv", "reader": card.reader, "label": "my card"}
    entry = book.entry_for_token(net.addresses.passkey, parse_token_id(hsm_id))
    assert entry.options == {
        "kind": "pkcs11",
        "pkcs11_module": hsm.module,
        "pkcs11_token": hsm.label,
        "label": hsm.label,
    }

    on_hsm = await assert_logs_in(cli, sp, "--pin-stdin", *hsm.args(), stdin=hsm.pin)
    assert on_hsm.puid == on_card.puid
    assert on_hsm.key_id != on_card.key_id

    # The HSM is lost: the card revokes it.
    r = await cli.run(
        "--pin-stdin",
        "revoke",
        *card.piv(),
        "--network",
        net.addresses.passkey,
        "--",
        hsm_id,
        stdin="123456",
    )
    assert r.code == EXIT_OK, r.err
    assert r.out.strip() == f"revoked {hsm_id}; removed it from this computer's enrolment book"
    r = await cli.run(
        "--pin-stdin", "tokens", *card.piv(), "--network", net.addresses.passkey, stdin="123456"
    )
    assert r.code == EXIT_OK, r.err
    (hsm_line,) = [line for line in r.out.splitlines() if line.startswith(hsm_id)]
    assert " revoked " in hsm_line
    async with browser(sp) as (session, _):
        r = await cli.run(
            "--pin-stdin",
            "login",
            *hsm.args(),
            session.payload().encode(),
            "--yes",
            stdin=hsm.pin,
        )
    assert r.code == EXIT_ERROR
    assert "not enrolled" in r.err

    # The account's last token cannot go; an unknown one is refused.
    for target, says in (
        (card_id, "only active token"),
        (b64u_encode(bytes(16)), "no such token"),
    ):
        r = await cli.run(
            "--pin-stdin",
            "revoke",
            *card.piv(),
            "--network",
            net.addresses.passkey,
            "--",
            target,
            stdin="123456",
        )
        assert r.code == EXIT_ERROR
        assert says in r.err
    r = await cli.run("revoke", *card.piv(), "--network", net.addresses.passkey, "nope")
    assert r.code == EXIT_USAGE
    assert await assert_logs_in(cli, sp, "--pin-stdin", *card.piv(), stdin="123456") == on_card


async def test_a_fido2_key_as_backup(
    cli: Cli, fido2_key: Path, hsm: Hsm, net: TestNetwork, sp: AsyncSPClient, ca_file: Path
) -> None:
    key = ["--token", "fido2", "--fido2-sim", str(fido2_key)]
    assert (await cli.run("--pin-stdin", "provision", *hsm.args(), stdin=hsm.pin)).code == 0
    r = await enrol(cli, net, ca_file, *hsm.args(), stdin=hsm.pin)
    assert r.code == EXIT_OK, r.err
    hsm_id = enrolled_token_id(r)
    on_hsm = await assert_logs_in(cli, sp, "--pin-stdin", *hsm.args(), stdin=hsm.pin)

    r = await enrol(
        cli, net, ca_file, *key, "--label", "backup key", stdin=f"4321\n{hsm.pin}\n", add_to=hsm_id
    )
    assert r.code == EXIT_OK, r.err
    key_id = enrolled_token_id(r)
    on_key = await assert_logs_in(cli, sp, "--pin-stdin", *key, stdin="4321")
    assert on_key.puid == on_hsm.puid
    assert on_key.key_id != on_hsm.key_id

    # The HSM is lost: the backup key revokes it ...
    r = await cli.run(
        "--pin-stdin",
        "revoke",
        *key,
        "--network",
        net.addresses.passkey,
        "--",
        hsm_id,
        stdin="4321",
    )
    assert r.code == EXIT_OK, r.err
    # ... and, reopened from the book, authorises a replacement.
    other = new_hsm()
    assert (await cli.run("--pin-stdin", "provision", *other.args(), stdin=other.pin)).code == 0
    r = await enrol(cli, net, None, *other.args(), stdin=f"{other.pin}\n4321\n", add_to=key_id)
    assert r.code == EXIT_OK, r.err
    assert f"(added to the account of {key_id})" in r.out
    on_other = await assert_logs_in(cli, sp, "--pin-stdin", *other.args(), stdin=other.pin)
    assert on_other.puid == on_hsm.puid
    r = await cli.run(
        "--pin-stdin", "tokens", *key, "--network", net.addresses.passkey, stdin="4321"
    )
    assert r.code == EXIT_OK, r.err
    states = sorted(line.split()[1:3] for line in r.out.splitlines())
    assert states == [["fido2", "active"], ["pkcs11", "active"], ["pkcs11", "revoked"]]


def strip_options(book: Path) -> None:
    """The book as passkey wrote it before it recorded how to reopen tokens."""
    doc = json.loads(book.read_text())
    for entries in doc["tokens"].values():
        for entry in entries:
            del entry["options"]
    book.write_text(json.dumps(doc))


async def test_a_book_without_token_options_still_works(
    cli: Cli, card: Card, hsm: Hsm, net: TestNetwork, sp: AsyncSPClient, ca_file: Path
) -> None:
    assert (await cli.run("--pin-stdin", "provision", *hsm.args(), stdin=hsm.pin)).code == 0
    r = await enrol(cli, net, ca_file, *hsm.args(), stdin=hsm.pin)
    assert r.code == EXIT_OK, r.err
    hsm_id = enrolled_token_id(r)
    assert (await cli.run("--pin-stdin", "provision", *card.piv(), stdin="123456")).code == 0
    r = await enrol(cli, net, ca_file, *card.piv(), stdin="123456")
    assert r.code == EXIT_OK, r.err
    card_id = enrolled_token_id(r)
    strip_options(cli.book)

    on_hsm = await assert_logs_in(cli, sp, "--pin-stdin", *hsm.args(), stdin=hsm.pin)
    # A PKCS#11 token cannot be found again without its module and label ...
    other = new_hsm()
    assert (await cli.run("--pin-stdin", "provision", *other.args(), stdin=other.pin)).code == 0
    r = await enrol(cli, net, None, *other.args(), stdin=f"{other.pin}\n{hsm.pin}\n", add_to=hsm_id)
    assert r.code == EXIT_USAGE
    assert "enrolled by an older passkey" in r.err
    assert "a PKCS#11 token needs its module and label" in r.err
    # ... a card can: it is looked for in every reader.
    r = await enrol(cli, net, None, *other.args(), stdin=f"{other.pin}\n123456\n", add_to=card_id)
    assert r.code == EXIT_OK, r.err
    on_other = await assert_logs_in(cli, sp, "--pin-stdin", *other.args(), stdin=other.pin)
    assert on_other.puid != on_hsm.puid  # the card's account, not the HSM's


# --- standard input, the book, the help -------------------------------------------


async def test_pin_stdin_reads_the_pin_before_the_confirmation(
    cli: Cli,
    hsm: Hsm,
    net: TestNetwork,
    sp: AsyncSPClient,
    ca_file: Path,
) -> None:
    await enrolled_hsm(cli, hsm, net, ca_file)
    async with browser(sp) as (session, wait):
        r = await cli.run(
            "--pin-stdin",
            "login",
            *hsm.args(),
            session.payload().encode(),
            stdin=f"{hsm.pin}\ny\n",
        )
        assert r.code == EXIT_OK, r.err
        assert "Confirm? [y/N]" in r.err
        assert (await outcome_of(wait)).kc is not None
    # Only the PIN, no answer: an error that declines nothing.
    async with browser(sp) as (session, _):
        r = await cli.run(
            "--pin-stdin", "login", *hsm.args(), session.payload().encode(), stdin=f"{hsm.pin}\n"
        )
        assert r.code == EXIT_USAGE
        assert "no answer to 'Confirm?' on standard input" in r.err
        ticket = await net.network.state.get_ticket(ticket_hash(session.ticket))
        assert ticket is not None
        assert ticket.state is not TicketState.REJECTED


def test_the_book_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def book() -> Path:
        ns = parser().parse_args(["tokens", "--token", "piv", "--network", "n:1"])
        return Path(ns.book)

    monkeypatch.setenv("PASSKEY_BOOK", str(tmp_path / "mine.json"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert book() == tmp_path / "mine.json"
    monkeypatch.delenv("PASSKEY_BOOK")
    assert book() == tmp_path / "xdg" / "authnet" / "tokens.json"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")  # the XDG spec: absolute only
    assert book() == Path.home() / ".local" / "share" / "authnet" / "tokens.json"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert book() == Path.home() / ".local" / "share" / "authnet" / "tokens.json"
    monkeypatch.setenv("PASSKEY_BOOK", str(tmp_path / "mine.json"))
    assert EnrolmentBook().path == tmp_path / "mine.json"


def test_token_ids_that_start_with_a_dash_can_be_given() -> None:
    # Token ids are base64url: one in 64 starts with "-", which argparse takes
    # for an option unless it is written --add-to=ID, or after "--".
    ns = parser().parse_args(["enrol", "--token", "piv", "--network", "n:1", "--add-to=-AbC"])
    assert ns.add_to == "-AbC"
    ns = parser().parse_args(["revoke", "--token", "piv", "--network", "n:1", "--", "-AbC"])
    assert ns.token_id == "-AbC"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([], "$PASSKEY_BOOK"),
        (["provision"], "$PASSKEY_PKCS11_MODULE"),
        (["provision"], "24 bytes (3des or aes192: ambiguous) aes192 (YubiKey 5.7+'s default)"),
        (["provision"], "its Triple-DES key before firmware 5.7 and its AES-192 key from 5.7"),
        (["provision"], "replaces the keys, so every enrolment and every client key (Kc)"),
        (["login"], "reads its PIN line first, then"),
        (["enrol"], "reads the new token's PIN, then the PIN of the token that authorises"),
        (["revoke"], "last active token"),
    ],
)
def test_help_says_where_things_come_from(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        main([*argv, "--help"])
    assert e.value.code == 0
    assert says in " ".join(capsys.readouterr().out.split())


# --- a token that fails mid-way, seen from outside -----------------------------


REPO = Path(__file__).resolve().parent.parent


async def test_a_pkcs11_token_that_goes_away_gives_one_clean_line(
    net: TestNetwork, sp: AsyncSPClient, ca_file: Path, tmp_path: Path
) -> None:
    """`passkey` in processes of its own (with their own SoftHSM): the token's
    storage goes while a login waits for the person's answer."""
    hsm = SoftHsm(tmp_path / "own-hsm")
    token = hsm.init_token(pin="1234")
    env = {
        **os.environ,
        "SOFTHSM2_CONF": str(hsm.conf),
        "PASSKEY_BOOK": str(tmp_path / "own-book.json"),
        "PASSKEY_PIN": "1234",
    }
    args = ["--token", "pkcs11", "--pkcs11-module", hsm.module, "--pkcs11-token", token.label]

    def passkey(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tokens.cli", *argv],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    for argv in (
        ["provision", *args],
        ["enrol", *args, "--network", net.addresses.passkey, "--ca", str(ca_file)],
    ):
        done = await asyncio.to_thread(passkey, *argv)
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "own-book.json").exists()  # $PASSKEY_BOOK was used

    async with browser(sp) as (session, _):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tokens.cli",
            "login",
            *args,
            session.payload().encode(),
            env=env,
            cwd=REPO,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdin is not None
        assert proc.stderr is not None
        async with asyncio.timeout(30):
            shown = await proc.stderr.readuntil(b"Confirm? [y/N] ")
        hsm.pull_out(token.label)  # the token goes while the person decides
        proc.stdin.write(b"y\n")
        await proc.stdin.drain()
        proc.stdin.close()
        async with asyncio.timeout(30):
            out, rest = await proc.communicate()
    assert proc.returncode == EXIT_ERROR
    assert b"Hello SP" in shown
    assert out == b""
    (line,) = rest.decode().splitlines()  # one line, no traceback
    assert line.startswith(f"passkey: the PKCS#11 token {token.label!r} failed (logging in"), line
    assert "removed" in line

    # And the next command says so in one line too.
    done = await asyncio.to_thread(passkey, "tokens", *args, "--network", net.addresses.passkey)
    assert done.returncode == EXIT_ERROR
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("passkey: ")
    assert "Traceback" not in done.stderr
