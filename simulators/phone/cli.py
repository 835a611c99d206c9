"""passkey-phone: the phone PassKey app in a terminal.

    passkey-phone init --label "Alice's phone" [--pin | --offline-pin]
    passkey-phone enrol localhost:7444 --ca ~/.local/share/authnet/ca.crt
    passkey-phone set-pin                                 # set or change the PIN
    passkey-phone scan 'authnet:login?v=1&t=...'        # or: scan --image qr.png
    passkey-phone tokens
    passkey-phone revoke TOKEN_ID

The key store defaults to $PASSKEY_PHONE_STORE or ~/.local/share/authnet/phone.json.
PINs come from a prompt, from --pin-stdin (one line), or from $PASSKEY_PIN
(set-pin reads the new PIN from the next line, or $PASSKEY_NEW_PIN).

A PIN is hardened by the network's hardener once the phone enrols with a
network that has one: 10 wrong PINs and it stops, even for a copy of the key
store, and unlocking needs the network. `--offline-pin` keeps a PIN checked on
the phone only (Argon2id), which unlocks offline and is weaker.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from authnet.errors import AuthnetError, MalformedInput, PinRequired
from authnet.protocol.encoding import b64u_encode
from authnet.protocol.factors import format_factors
from authnet.protocol.ids import parse_token_id
from simulators.phone.app import DEFAULT_LABEL, OFFLINE_PIN_WARNING, PhoneApp
from simulators.phone.camera import read_qr
from tokens.arguments import protect_token_ids
from tokens.handshake import AuthRequest
from tokens.prompt import describe, token_line

DEFAULT_STORE = Path(
    os.environ.get(
        "PASSKEY_PHONE_STORE",
        Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
        / "authnet"
        / "phone.json",
    )
)
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_DECLINED = 0, 1, 2, 3


class Io:
    """Where the app talks to the person; replaceable in tests."""

    def __init__(self, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> None:
        self.out, self.err = out, err

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def ask(self, question: str) -> str:
        self.err.write(question)
        self.err.flush()
        line = sys.stdin.readline()
        if not line:
            raise MalformedInput("no answer on standard input (use --yes or --decline in scripts)")
        return line.strip()


def _pin_source(
    ns: argparse.Namespace, io: Io, *, env: str = "PASSKEY_PIN", prompt: str = "PIN: "
) -> Callable[[], str]:
    def get() -> str:
        if ns.pin_stdin:
            line = sys.stdin.readline().rstrip("\n")
            if not line:
                raise PinRequired("--pin-stdin given but standard input is empty")
            return line
        if os.environ.get(env):
            return os.environ[env]
        if sys.stdin.isatty():
            return getpass.getpass(prompt)
        raise PinRequired(f"this key store needs its PIN: use --pin-stdin or set {env}")

    return get


async def _run(ns: argparse.Namespace, io: Io) -> int:
    store: Path = ns.store
    pin = _pin_source(ns, io)
    if ns.command == "init":
        the_pin = None
        if ns.pin or ns.offline_pin:
            the_pin = pin()
        app = PhoneApp.create(store, label=ns.label, pin=the_pin, offline_pin=ns.offline_pin)
        kind = "no PIN"
        if ns.offline_pin:
            kind = "PIN-protected, checked on the phone only"
        elif the_pin:
            kind = "PIN-protected"
        io.say(f"created key store {store} ({kind})")
        io.say(f"label: {app.store.label}")
        if ns.offline_pin:
            io.err.write(OFFLINE_PIN_WARNING + "\n")
        elif the_pin:
            io.say("the PIN gets hardened by the first network with a hardener it enrols with")
        return EXIT_OK

    def open_app(path: Path) -> PhoneApp:
        probe = PhoneApp.open(path)
        return PhoneApp.open(path, pin=pin()) if probe.store.has_pin else probe

    def pin_kind(app: PhoneApp) -> str:
        if app.store.hardened:
            return "hardened"
        if app.store.has_pin:
            return "phone-only"
        return "none"

    if ns.command == "show":
        app = PhoneApp.open(store)
        info = {
            "store": str(store),
            "label": app.store.label,
            "pin": app.store.has_pin,
            "pin_kind": pin_kind(app),
            "pin_attempts_left": app.store.pin_attempts_left,
            "enrolments": [
                {
                    "network": e.network,
                    "network_name": e.network_name,
                    "token_id": b64u_encode(e.token_id),
                }
                for e in app.store.enrolments()
            ],
        }
        pinned = app.store.pinned
        if pinned is not None:
            info["pin_hardener"] = {
                "network": pinned.network,
                "caller": pinned.caller,
                "user_id": pinned.user_id,
                "key_version": pinned.key_version,
            }
        io.say(json.dumps(info, indent=2))
        return EXIT_OK

    if ns.command == "set-pin":
        app = open_app(store)
        new_pin = _pin_source(ns, io, env="PASSKEY_NEW_PIN", prompt="new PIN: ")()
        await app.set_pin(new_pin, ns.network)
        pinned = app.store.pinned
        assert pinned is not None
        io.say(f"PIN set, hardened by the hardener of {pinned.network}")
        return EXIT_OK

    if ns.command == "enrol":
        app = open_app(store)
        try:
            ca_pem = ns.ca.read_bytes()
        except OSError as e:
            raise MalformedInput(f"cannot read the network CA {ns.ca}: {e}") from None
        parent = open_app(ns.backup_of) if ns.backup_of else None
        enrolment, new_account = await app.enrol(ns.network, ca_pem, backup_of=parent)
        io.say(
            f"enrolled with {enrolment.network_name} at {enrolment.network}: token "
            f"{b64u_encode(enrolment.token_id)} "
            + ("(new account)" if new_account else "(added to the existing account)")
        )
        if app.pin_note:
            io.err.write(app.pin_note + "\n")
        return EXIT_OK

    if ns.command == "tokens":
        app = open_app(store)
        mine = app.enrolment(ns.network).token_id
        for t in await app.tokens(ns.network):
            io.say(token_line(t, mine=mine, this="this phone"))
        return EXIT_OK

    if ns.command == "revoke":
        app = open_app(store)
        await app.revoke(parse_token_id(ns.token_id), ns.network)
        io.say(f"revoked {ns.token_id}")
        return EXIT_OK

    if ns.command == "scan":
        if (ns.payload is None) == (ns.image is None):
            raise MalformedInput("give either a payload or --image FILE")
        text = read_qr(ns.image) if ns.image is not None else ns.payload
        app = PhoneApp.open(store)

        def confirm(request: AuthRequest) -> bool:
            for line in describe(request):
                io.err.write(line + "\n")
            if ns.yes:
                return True
            if ns.decline:
                return False
            return io.ask("Confirm? [y/N] ").lower() in ("y", "yes")

        def ask_pin(_: AuthRequest | None) -> str:
            return pin()

        report = await app.scan(text, confirm=confirm, ask_pin=ask_pin)
        result: dict[str, Any] = {
            "accepted": report.accepted,
            "sp": report.request.sp_name,
            "sp_display_name": report.request.sp_display_name,
            "spid": report.request.spid.hex(),
            "auth_types": format_factors(report.proven),
            "kc_fingerprint": report.kc_fingerprint,
        }
        if ns.json:
            io.say(json.dumps(result))
        elif report.accepted:
            io.say(f"logged in to {report.request.sp_display_name}")
            if report.kc_fingerprint:
                io.say(f"client key fingerprint {report.kc_fingerprint}")
        else:
            io.say(f"declined the login to {report.request.sp_display_name}")
        return EXIT_OK if report.accepted else EXIT_DECLINED
    raise AssertionError(ns.command)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="passkey-phone",
        description="The authnet phone PassKey app, simulated in a terminal.",
        epilog="Exit status: 0 ok, 1 error, 2 usage, 3 login declined.",
    )
    p.add_argument(
        "--store",
        type=Path,
        default=DEFAULT_STORE,
        help=f"key store file (default: {DEFAULT_STORE})",
    )
    p.add_argument("--pin-stdin", action="store_true", help="read the PIN from standard input")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        # The text is the command's line in `passkey-phone --help` and the
        # description in `passkey-phone NAME --help`.
        return sub.add_parser(name, help=text, description=text)

    s = command("init", "create a key store (new authentication key and Kc secret)")
    s.add_argument("--label", default=DEFAULT_LABEL, help="name shown in token lists")
    g = s.add_mutually_exclusive_group()
    g.add_argument(
        "--pin",
        action="store_true",
        help="protect the key store with a PIN (hardened by the network once enrolled)",
    )
    g.add_argument(
        "--offline-pin",
        action="store_true",
        help="a PIN checked on the phone only (Argon2id): unlocks offline, but a copied key "
        "store can be attacked offline (weaker)",
    )

    command("show", "print the key store's public part and enrolments")

    s = command("enrol", "enrol with a network (a new account, or --backup-of)")
    s.add_argument("network", help="the network's PassKey API address, host:port")
    s.add_argument("--ca", type=Path, required=True, help="the network's CA certificate (PEM)")
    s.add_argument(
        "--backup-of",
        type=Path,
        metavar="STORE",
        help="join the account of the phone whose key store this is",
    )

    s = command("set-pin", "set or change the PIN, hardened by the network's hardener")
    s.add_argument("--network", help="which enrolment's network hardens it (default: the only one)")

    s = command("tokens", "list the tokens of this phone's account")
    s.add_argument("--network", help="which enrolment (default: the only one)")

    s = command("revoke", "revoke a token of this phone's account")
    s.add_argument("token_id")
    s.add_argument("--network", help="which enrolment (default: the only one)")

    s = command("scan", "answer a login QR code")
    s.add_argument("payload", nargs="?", help="the code's text (authnet:login?...)")
    s.add_argument("--image", type=Path, help="read the QR code from an image file instead")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--yes", action="store_true", help="confirm without asking")
    g.add_argument("--decline", action="store_true", help="decline without asking")
    s.add_argument("--json", action="store_true", help="print the outcome as JSON")
    return p


def main(argv: list[str] | None = None, io: Io | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    ns = parser().parse_args(protect_token_ids(args))
    io = io or Io()
    try:
        return asyncio.run(_run(ns, io))
    except AuthnetError as e:
        io.err.write(f"passkey-phone: {e.message}\n")
        return EXIT_USAGE if isinstance(e, MalformedInput) else EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
