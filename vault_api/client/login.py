"""Logging in to authnet as the vault page does, from a terminal: get a
login ticket from the vault server, wait at the authnet gateway with the
browser's half of the protocol (authnet.sdk.browser), and have a token answer.

How the token answers (`LoginMethod`):

| kind    | who answers                                                        |
|---------|--------------------------------------------------------------------|
| `qr`    | a phone: the QR code (and its text) is shown on stderr to scan      |
| `phone` | the phone simulator's key store, in this process (`--phone STORE`) |
| `token` | a token plugged into this computer (tokens.devices): fido2, piv,  |
|         | otp or pkcs11 (`--token KIND` and where it is)                     |

An in-process answer confirms the login without asking: the person asked
for it by running the command, and the request is checked to come from the
vault whose ticket this is (the SPID). Kc arrives sealed to this process's
ephemeral key; it is returned to the caller, never stored.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from authnet.errors import AuthnetError, MalformedInput
from authnet.protocol.payload import LoginPayload
from authnet.sdk.browser import BrowserSession
from tokens.devices import KINDS, TokenOptions
from tokens.handshake import AuthRequest
from vault_api.client.api import VaultApi
from vault_api.client.errors import CliError, Exit, Usage

METHODS = ("qr", "phone", "token")
ANSWER_TIMEOUT_S = 60.0
PIN_ENV = ("VAULT_PIN", "PASSKEY_PIN")


@dataclass(frozen=True, kw_only=True)
class LoginMethod:
    kind: str
    phone_store: Path | None = None
    token: TokenOptions | None = None
    book: Path | None = None  # the enrolment book (tokens); None: passkey's default

    def describe(self) -> str:
        if self.kind == "phone":
            return f"the phone key store {self.phone_store}"
        if self.kind == "token" and self.token is not None:
            t = self.token
            if t.kind == "pkcs11":
                return f"the PKCS#11 token {t.pkcs11_token!r}"
            if t.kind in ("piv", "otp"):
                return f"the {t.kind} card" + (f" in {t.reader}" if t.reader else "")
            return "the security key" + (f" {t.fido2_sim}" if t.fido2_sim else "")
        return "a phone scanning the QR code"

    def to_json(self) -> dict[str, Any]:
        """What the state file remembers: where the token is, never a PIN."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.phone_store is not None:
            out["phone_store"] = str(self.phone_store)
        if self.token is not None:
            out["token"] = self.token.to_json()
        if self.book is not None:
            out["book"] = str(self.book)
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LoginMethod:
        kind = d.get("kind")
        if kind not in METHODS:
            raise CliError("the session file names an unknown login method; log in again")
        token = d.get("token")
        try:
            options = TokenOptions.from_json(token) if isinstance(token, dict) else None
        except AuthnetError as e:
            raise CliError(f"the session file's token is unreadable ({e.message})") from None
        return cls(
            kind=kind,
            phone_store=Path(d["phone_store"]) if d.get("phone_store") else None,
            token=options,
            book=Path(d["book"]) if d.get("book") else None,
        )


class Pins:
    """Where PINs come from: one line of standard input (--pin-stdin, read
    once), else $VAULT_PIN or $PASSKEY_PIN, else a prompt on the terminal."""

    def __init__(self, *, from_stdin: bool, stdin: TextIO | None = None) -> None:
        self.from_stdin = from_stdin
        self._stdin = stdin
        self._line: str | None = None

    def get(self, what: str) -> str:
        if self.from_stdin:
            if self._line is None:
                line = (self._stdin or sys.stdin).readline().rstrip("\r\n")
                if not line:
                    raise CliError(
                        f"--pin-stdin given but standard input is empty (the PIN of {what})",
                        Exit.USAGE,
                    )
                self._line = line
            return self._line
        for name in PIN_ENV:
            if os.environ.get(name):
                return os.environ[name]
        if sys.stdin.isatty():
            return getpass.getpass(f"PIN of {what}: ")
        raise CliError(
            f"{what} needs its PIN: use --pin-stdin, set VAULT_PIN, or run in a terminal",
            Exit.LOGIN,
        )


Say = Callable[[str], None]


def render_qr(text: str, out: TextIO) -> None:
    import qrcode

    qr = qrcode.QRCode(border=2)
    qr.add_data(text)
    qr.make(fit=True)
    qr.print_ascii(out=out, invert=True)


async def authnet_login(
    api: VaultApi,
    method: LoginMethod,
    pins: Pins,
    *,
    say: Say,
    qr_out: TextIO,
    announce: bool = True,
) -> tuple[str, bytes]:
    """One authnet login for the vault at `api`; returns the ticket (to redeem
    with POST /api/login or /api/session/tokens) and Kc."""
    t = await api.login_ticket()
    spid = bytes.fromhex(t["spid"])
    session = BrowserSession(
        ticket=t["ticket"],
        spid=spid,
        gateway_url=t["gateway_url"],
        passkey_address=t["passkey_address"],
    )
    try:
        # The phone shows this as the "browser" asking: say what it is.
        agent = {"User-Agent": "vault command line (authnet vault CLI)"}
        async with (
            aiohttp.ClientSession(headers=agent) as http,
            session.waiting(http) as wait,
        ):
            payload = session.payload()
            if method.kind == "qr":
                text = payload.encode()
                say("Scan this code with your phone's PassKey app:")
                render_qr(text, qr_out)
                say(f"or give the phone this text: {text}")
                wait_s = float(t.get("ttl_seconds") or 120) + 5
                async with asyncio.timeout(wait_s):
                    outcome = await wait.result(
                        on_scanned=lambda: say("scanned; confirm on the phone")
                    )
            else:
                await answer(method, payload, spid=spid, pins=pins, say=say, announce=announce)
                async with asyncio.timeout(ANSWER_TIMEOUT_S):
                    outcome = await wait.result()
    except TimeoutError:
        raise CliError(
            "the login was not answered in time; run the command again", Exit.LOGIN
        ) from None
    except AuthnetError as e:
        raise CliError(f"the login failed: {e.message}", Exit.LOGIN) from None
    if outcome.kc is None:
        raise CliError("the login delivered no client key; the vault needs one", Exit.LOGIN)
    return str(t["ticket"]), outcome.kc


def _confirm(spid: bytes, say: Say, what: str, *, announce: bool) -> Callable[[AuthRequest], bool]:
    def confirm(request: AuthRequest) -> bool:
        if request.spid != spid:
            say(f"refused: the login request names another service ({request.sp_display_name})")
            return False
        if announce:
            say(f"logging in to {request.sp_display_name} with {what}")
        return True

    return confirm


async def answer(
    method: LoginMethod,
    payload: LoginPayload,
    *,
    spid: bytes,
    pins: Pins,
    say: Say,
    announce: bool = True,
) -> None:
    """Answer the login in this process with the phone key store or a token."""
    confirm = _confirm(spid, say, method.describe(), announce=announce)
    if method.kind == "phone":
        from simulators.phone.app import PhoneApp

        if method.phone_store is None:
            raise Usage("--phone needs the key store file")
        try:
            app = PhoneApp.open(method.phone_store)
            if app.store.has_pin:
                app = PhoneApp.open(method.phone_store, pin=pins.get(method.describe()))
            report = await app.scan(payload.encode(), confirm=confirm)
        except FileNotFoundError:
            raise CliError(f"no phone key store at {method.phone_store}", Exit.USAGE) from None
        if not report.accepted:
            raise CliError("the login was declined", Exit.LOGIN)
        return
    if method.kind != "token" or method.token is None:
        raise Usage("no login method: give --phone STORE, --token KIND or --qr")
    await _answer_with_token(method, method.token, payload, confirm=confirm, pins=pins)


async def _answer_with_token(
    method: LoginMethod,
    options: TokenOptions,
    payload: LoginPayload,
    *,
    confirm: Callable[[AuthRequest], bool],
    pins: Pins,
) -> None:
    from tokens import login as flow
    from tokens.api import PassKeyApi
    from tokens.devices import open_for_network
    from tokens.enrolments import EnrolmentBook

    if options.kind not in KINDS:
        raise Usage(f"--token is one of {', '.join(KINDS)}")
    book = EnrolmentBook(method.book)
    network = str(payload.network)
    ca = book.ca_for(network)
    if ca is None:
        raise CliError(
            f"no token on this computer is enrolled with the network at {network} (enrolment "
            f"book {book.path}): enrol it with `passkey enrol` first",
            Exit.LOGIN,
        )
    api = PassKeyApi(network, ca_pem=ca)
    try:
        rp_id = await api.webauthn_rp_id_of_network() if options.kind == "fido2" else ""
        token = open_for_network(options, book=book, network=network, rp_id=rp_id)
        try:
            enrolment = book.enrolment_for(token.description.public_key, network)
            report = await flow.login(
                api,
                token,
                enrolment.token_id,
                payload,
                confirm=confirm,
                ask_pin=lambda _r: pins.get(method.describe()),
            )
        finally:
            token.close()
    except MalformedInput as e:
        raise CliError(e.message, Exit.USAGE) from None
    finally:
        await api.close()
    if not report.accepted:
        raise CliError("the login was declined", Exit.LOGIN)
