"""passkey: tokens plugged into this computer (security keys, smartcards,
PKCS#11 tokens) as authnet PassKeys.

    passkey provision --token piv                      # keys on a PIV card / YubiKey
    passkey enrol --token piv --network localhost:7444 --ca ~/.local/share/authnet/ca.crt
    passkey login --token piv 'authnet:login?v=1&t=...'    # or --image qr.png
    passkey tokens --token piv --network localhost:7444
    passkey agent --token piv --allow-origin https://shop.example

Enrolments are kept in an enrolment book ($PASSKEY_BOOK or
~/.local/share/authnet/tokens.json). PINs come from a prompt, from
--pin-stdin (one line) or from $PASSKEY_PIN.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from authnet.errors import AuthnetError, MalformedInput, PinRequired
from authnet.protocol.encoding import b64u_encode
from authnet.protocol.factors import format_factors
from authnet.protocol.payload import parse_payload
from tokens import login as flow
from tokens.api import PassKeyApi
from tokens.devices import KINDS, TokenOptions, open_for_network, open_token
from tokens.enrolments import DEFAULT_BOOK, Enrolment, EnrolmentBook
from tokens.handshake import AuthRequest
from tokens.passkey import PassKey
from tokens.phone import now_ms
from tokens.prompt import describe, token_line

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_DECLINED = 0, 1, 2, 3


def _pin(ns: argparse.Namespace) -> str:
    if ns.pin_stdin:
        line = sys.stdin.readline().rstrip("\n")
        if not line:
            raise PinRequired("--pin-stdin given but standard input is empty")
        return line
    if os.environ.get("PASSKEY_PIN"):
        return os.environ["PASSKEY_PIN"]
    if sys.stdin.isatty():
        return getpass.getpass("Token PIN: ")
    raise PinRequired("the token needs its PIN: use --pin-stdin or set PASSKEY_PIN")


def options(ns: argparse.Namespace) -> TokenOptions:
    return TokenOptions(
        kind=ns.kind,
        reader=ns.reader,
        pkcs11_module=ns.pkcs11_module,
        pkcs11_token=ns.pkcs11_token,
        fido2_sim=ns.fido2_sim,
        label=ns.label or "",
    )


def _ca(book: EnrolmentBook, network: str) -> bytes:
    ca = book.ca_for(network)
    if ca is None:
        raise MalformedInput(f"no token here is enrolled with {network}: run `passkey enrol` first")
    return ca


async def _open_enrolled(
    ns: argparse.Namespace, book: EnrolmentBook, network: str
) -> tuple[PassKey, Enrolment, PassKeyApi]:
    api = PassKeyApi(network, ca_pem=_ca(book, network))
    rp_id = await api.webauthn_rp_id_of_network() if ns.kind == "fido2" else ""
    token = open_for_network(options(ns), book=book, network=network, rp_id=rp_id)
    enrolment = book.enrolment_for(token.description.public_key, network)
    return token, enrolment, api


async def _run(ns: argparse.Namespace) -> int:
    book = EnrolmentBook(ns.book)
    if ns.command == "provision":
        if ns.kind == "piv":
            from tokens.piv import DEFAULT_MANAGEMENT_KEY, PivPassKey, SmartcardConfig

            key = bytes.fromhex(ns.management_key) if ns.management_key else DEFAULT_MANAGEMENT_KEY
            token: PassKey = PivPassKey.provision(
                SmartcardConfig(reader=ns.reader, label=ns.label or "smartcard"),
                pin=_pin(ns),
                management_key=key,
            )
        elif ns.kind == "pkcs11":
            from tokens.pkcs11 import Pkcs11Config, Pkcs11PassKey

            if not ns.pkcs11_token:
                raise MalformedInput("provisioning a PKCS#11 token needs --pkcs11-token LABEL")
            token = Pkcs11PassKey.provision(
                Pkcs11Config(module=ns.pkcs11_module, token_label=ns.pkcs11_token), pin=_pin(ns)
            )
        else:
            raise MalformedInput(
                "only piv and pkcs11 tokens are provisioned: FIDO2 keys make their credential at "
                "enrolment, and otp uses the keys `provision --token piv` made"
            )
        print(f"provisioned: public key {b64u_encode(token.description.public_key)[:24]}...")
        token.close()
        return EXIT_OK

    if ns.command == "enrol":
        try:
            ca_pem = ns.ca.read_bytes()
        except OSError as e:
            raise MalformedInput(f"cannot read the network CA {ns.ca}: {e}") from None
        async with PassKeyApi(ns.network, ca_pem=ca_pem) as api:
            rp_id = await api.webauthn_rp_id_of_network() if ns.kind == "fido2" else None
            token = open_token(options(ns), rp_id=rp_id)
            try:
                if token.has_pin:
                    token.verify_pin(_pin(ns))
                label = ns.label or token.description.label
                token_id, new_account, network_name = await flow.enrol(api, token, label=label)
                public_key = token.description.public_key
            finally:
                token.close()
        book.add(
            public_key,
            Enrolment(
                network=ns.network,
                network_name=network_name,
                ca_pem=ca_pem.decode(),
                token_id=token_id,
                enrolled_ms=now_ms(),
            ),
            kind=int(token.description.kind),
        )
        print(
            f"enrolled with {network_name} at {ns.network}: token {b64u_encode(token_id)} "
            + ("(new account)" if new_account else "(added to an account)")
        )
        return EXIT_OK

    if ns.command == "tokens":
        token, enrolment, api = await _open_enrolled(ns, book, ns.network)
        try:
            if token.has_pin:
                token.verify_pin(_pin(ns))
            listed = await flow.list_tokens(api, token, enrolment.token_id)
        finally:
            token.close()
            await api.close()
        for t in listed:
            print(token_line(t, mine=enrolment.token_id))
        return EXIT_OK

    if ns.command == "login":
        if (ns.payload is None) == (ns.image is None):
            raise MalformedInput("give either a payload or --image FILE")
        if ns.image is not None:
            from simulators.phone.camera import read_qr

            text = read_qr(ns.image)
        else:
            text = ns.payload
        payload = parse_payload(text)
        token, enrolment, api = await _open_enrolled(ns, book, str(payload.network))

        def confirm(request: AuthRequest) -> bool:
            for line in describe(request):
                print(line, file=sys.stderr)
            if ns.yes or ns.decline:
                return bool(ns.yes)
            print("Confirm? [y/N] ", end="", file=sys.stderr, flush=True)
            return sys.stdin.readline().strip().lower() in ("y", "yes")

        try:
            report = await flow.login(
                api,
                token,
                enrolment.token_id,
                payload,
                confirm=confirm,
                ask_pin=lambda _: _pin(ns),
            )
        finally:
            token.close()
            await api.close()
        result: dict[str, Any] = {
            "accepted": report.accepted,
            "sp": report.request.sp_name,
            "auth_types": format_factors(report.proven),
            "kc_fingerprint": report.kc_fingerprint,
        }
        print(
            json.dumps(result)
            if ns.json
            else (
                f"logged in to {report.request.sp_display_name}"
                + (
                    f"; client key fingerprint {report.kc_fingerprint}"
                    if report.kc_fingerprint
                    else ""
                )
                if report.accepted
                else f"declined the login to {report.request.sp_display_name}"
            )
        )
        return EXIT_OK if report.accepted else EXIT_DECLINED

    if ns.command == "agent":
        from tokens.agent import Agent, serve_agent

        agent = Agent(
            options=options(ns),
            book=book,
            allowed_origins=tuple(ns.allow_origin),
            confirm=None if not ns.yes else (lambda _request: True),
            ask_pin=lambda _request: _pin(ns),
        )
        await serve_agent(agent, host="127.0.0.1", port=ns.port)
        return EXIT_OK
    raise AssertionError(ns.command)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="passkey",
        description="Security keys, smartcards and PKCS#11 tokens as authnet PassKeys.",
        epilog="Exit status: 0 ok, 1 error, 2 usage, 3 login declined. docs/tokens.md has more.",
    )
    p.add_argument(
        "--book", type=Path, default=DEFAULT_BOOK, help=f"enrolment book (default {DEFAULT_BOOK})"
    )
    p.add_argument("--pin-stdin", action="store_true", help="read the PIN from standard input")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        s = sub.add_parser(name, help=text, description=text)
        s.add_argument(
            "--token", dest="kind", choices=KINDS, required=True, help="which kind of token"
        )
        s.add_argument("--reader", help="PC/SC reader (piv, otp; default: the first with a card)")
        s.add_argument(
            "--pkcs11-module",
            default=os.environ.get("PASSKEY_PKCS11_MODULE", "/usr/lib/softhsm/libsofthsm2.so"),
            help="PKCS#11 module (pkcs11)",
        )
        s.add_argument("--pkcs11-token", help="PKCS#11 token label (pkcs11)")
        s.add_argument(
            "--fido2-sim",
            type=Path,
            metavar="STATE",
            help="use the software security key in STATE instead of a USB key",
        )
        s.add_argument("--label", help="name shown in token lists")
        # Also accepted after the command (SUPPRESS: absent here leaves the top-level value).
        s.add_argument(
            "--pin-stdin",
            action="store_true",
            default=argparse.SUPPRESS,
            help="read the PIN from standard input (one line)",
        )
        return s

    s = command(
        "provision", "create the token's keys (piv: 9A and 9D; pkcs11: key pair and secret)"
    )
    s.add_argument("--management-key", help="PIV card management key, hex (default: YubiKey's)")

    s = command("enrol", "enrol the token with a network (a new account)")
    s.add_argument("--network", required=True, help="the network's PassKey API, host:port")
    s.add_argument("--ca", type=Path, required=True, help="the network's CA certificate (PEM)")

    s = command("tokens", "list the tokens of this token's account")
    s.add_argument("--network", required=True, help="the network's PassKey API, host:port")

    s = command("login", "answer a login code (the QR code's text, or an image of it)")
    s.add_argument("payload", nargs="?", help="the code's text (authnet:login?...)")
    s.add_argument("--image", type=Path, help="read the QR code from an image instead")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--yes", action="store_true", help="confirm without asking")
    g.add_argument("--decline", action="store_true", help="decline without asking")
    s.add_argument("--json", action="store_true", help="print the outcome as JSON")

    s = command("agent", "serve browsers on this computer: 'use security key / smartcard'")
    s.add_argument(
        "--allow-origin",
        action="append",
        required=True,
        metavar="URL",
        help="a web origin allowed to ask for logins (repeatable)",
    )
    s.add_argument("--port", type=int, default=7481, help="loopback port (default 7481)")
    s.add_argument(
        "--yes",
        action="store_true",
        help="confirm every login without asking (for scripts and tests only)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    ns = parser().parse_args(argv)
    try:
        return asyncio.run(_run(ns))
    except AuthnetError as e:
        print(f"passkey: {e.message}", file=sys.stderr)
        return EXIT_USAGE if isinstance(e, MalformedInput) else EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
