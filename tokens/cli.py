"""passkey: tokens plugged into this computer (security keys, smartcards,
PKCS#11 tokens) as authnet PassKeys.

    passkey provision --token piv                      # keys on a PIV card / YubiKey
    passkey enrol --token piv --network localhost:7444 --ca ~/.local/share/authnet/ca.crt
    passkey login --token piv 'authnet:login?v=1&t=...'    # or --image qr.png
    passkey tokens --token piv --network localhost:7444
    passkey enrol --token pkcs11 --pkcs11-token backup --network localhost:7444 \\
        --add-to <token id of the card>                # a second token for the account
    passkey revoke --token piv --network localhost:7444 <token id of a lost token>
    passkey agent --token piv --allow-origin https://shop.example

Enrolments are kept in an enrolment book ($PASSKEY_BOOK, else
$XDG_DATA_HOME/authnet/tokens.json, else ~/.local/share/authnet/tokens.json).
PINs come from --pin-stdin (one line each), from $PASSKEY_PIN or from a prompt.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from authnet.errors import AuthnetError, MalformedInput, PinRequired
from authnet.protocol.encoding import b64u_encode
from authnet.protocol.factors import format_factors
from authnet.protocol.ids import parse_token_id
from authnet.protocol.payload import parse_payload
from tokens import login as flow
from tokens.api import PassKeyApi
from tokens.arguments import protect_token_ids
from tokens.devices import (
    DEFAULT_PKCS11_MODULE,
    KINDS,
    TokenOptions,
    enrolled_options,
    open_enrolled,
    open_for_network,
    open_token,
)
from tokens.enrolments import BookEntry, Enrolment, EnrolmentBook, default_book
from tokens.handshake import AuthRequest
from tokens.passkey import PassKey, TokenKind
from tokens.phone import now_ms
from tokens.prompt import describe, key_fingerprint, kind_name, token_line

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_DECLINED = 0, 1, 2, 3

STDIN_ORDER = (
    "With --pin-stdin, standard input gives one line per PIN, in the order they are "
    "needed: `login` reads its PIN line first, then (without --yes or --decline) the "
    "answer to 'Confirm? [y/N]'; `enrol --add-to` reads the new token's PIN, then the "
    "PIN of the token that authorises it."
)


class Pins:
    """Where PINs come from: one line of standard input each with --pin-stdin,
    else $PASSKEY_PIN (the same for every token), else a prompt naming the token."""

    def __init__(self, ns: argparse.Namespace) -> None:
        self.from_stdin = bool(ns.pin_stdin)

    def get(self, what: str = "the token") -> str:
        if self.from_stdin:
            line = sys.stdin.readline().rstrip("\n")
            if not line:
                raise PinRequired(
                    f"--pin-stdin given but standard input is empty (expected the PIN of {what})"
                )
            return line
        if os.environ.get("PASSKEY_PIN"):
            return os.environ["PASSKEY_PIN"]
        if sys.stdin.isatty():
            return getpass.getpass(f"PIN of {what}: ")
        raise PinRequired(f"{what} needs its PIN: use --pin-stdin or set PASSKEY_PIN")


def options(ns: argparse.Namespace) -> TokenOptions:
    return TokenOptions(
        kind=ns.kind,
        reader=ns.reader,
        pkcs11_module=ns.pkcs11_module,
        pkcs11_token=ns.pkcs11_token,
        fido2_sim=ns.fido2_sim,
        label=ns.label or "",
    )


def describe_token(o: TokenOptions) -> str:
    """The token as a prompt names it."""
    if o.kind == "pkcs11":
        return f"the PKCS#11 token {o.pkcs11_token!r}"
    if o.kind in ("piv", "otp"):
        where = f" in {o.reader}" if o.reader else ""
        return f"the {o.kind} card{where}"
    return "the security key" + (f" {o.fido2_sim}" if o.fido2_sim else "")


def _ca(book: EnrolmentBook, network: str) -> bytes:
    ca = book.ca_for(network)
    if ca is None:
        raise MalformedInput(f"no token here is enrolled with {network}: run `passkey enrol` first")
    return ca


def _read_ca(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise MalformedInput(f"cannot read the network CA {path}: {e}") from None


async def _open_enrolled(
    ns: argparse.Namespace, book: EnrolmentBook, network: str
) -> tuple[PassKey, Enrolment, PassKeyApi]:
    api = PassKeyApi(network, ca_pem=_ca(book, network))
    try:
        rp_id = await api.webauthn_rp_id_of_network() if ns.kind == "fido2" else ""
        token = open_for_network(options(ns), book=book, network=network, rp_id=rp_id)
    except BaseException:
        await api.close()
        raise
    try:
        enrolment = book.enrolment_for(token.description.public_key, network)
    except BaseException:
        token.close()
        await api.close()
        raise
    return token, enrolment, api


def _management_key(text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        return bytes.fromhex(text.replace(":", ""))
    except ValueError:
        raise MalformedInput(
            "--management-key is the key in hex (48 hex digits for AES-192)"
        ) from None


def _provision(ns: argparse.Namespace, pins: Pins) -> PassKey:
    if ns.kind in ("piv", "otp"):
        from tokens.piv import (
            DEFAULT_MANAGEMENT_KEY,
            OtpPassKey,
            PivPassKey,
            SmartcardConfig,
            management_algorithm,
        )

        key = _management_key(ns.management_key) or DEFAULT_MANAGEMENT_KEY
        algorithm = (
            management_algorithm(ns.management_key_algorithm)
            if ns.management_key_algorithm
            else None
        )
        kind = OtpPassKey if ns.kind == "otp" else PivPassKey
        return kind.provision(
            SmartcardConfig(reader=ns.reader, label=ns.label or "smartcard"),
            pin=pins.get(describe_token(options(ns))),
            management_key=key,
            management_algorithm=algorithm,
            force=ns.force,
        )
    if ns.kind == "pkcs11":
        from tokens.pkcs11 import Pkcs11Config, Pkcs11PassKey

        if not ns.pkcs11_token:
            raise MalformedInput("provisioning a PKCS#11 token needs --pkcs11-token LABEL")
        if ns.force or ns.management_key or ns.management_key_algorithm:
            raise MalformedInput(
                "--force and --management-key are for piv and otp: provisioning a PKCS#11 "
                "token keeps keys it already holds"
            )
        return Pkcs11PassKey.provision(
            Pkcs11Config(module=ns.pkcs11_module, token_label=ns.pkcs11_token),
            pin=pins.get(describe_token(options(ns))),
        )
    raise MalformedInput(
        "only piv, otp and pkcs11 tokens are provisioned: FIDO2 keys make their credential "
        "at enrolment"
    )


async def _enrol(ns: argparse.Namespace, book: EnrolmentBook, pins: Pins) -> int:
    parent: BookEntry | None = None
    if ns.add_to is not None:
        parent = book.entry_for_token(ns.network, parse_token_id(ns.add_to))
    if ns.ca is not None:
        ca_pem = _read_ca(ns.ca)
    elif parent is not None:
        ca_pem = parent.enrolment.ca_pem.encode()  # pinned when that token enrolled
    else:
        raise MalformedInput("enrolling with a network needs its CA: --ca FILE")
    mine = options(ns)
    parent_options = enrolled_options(parent) if parent is not None else None
    async with PassKeyApi(ns.network, ca_pem=ca_pem) as api:
        needs_rp_id = "fido2" in (mine.kind, parent_options.kind if parent_options else None)
        rp_id = await api.webauthn_rp_id_of_network() if needs_rp_id else None
        token = open_token(mine, rp_id=rp_id)
        authoriser: PassKey | None = None
        try:
            if token.has_pin:
                token.verify_pin(pins.get(describe_token(mine)))
            existing = None
            if parent is not None:
                authoriser = open_enrolled(parent, rp_id=rp_id or "")
                parent_id = parent.enrolment.token_id
                if authoriser.has_pin:
                    named = (parent_options.label if parent_options else "") or kind_name(
                        parent.kind or 0
                    )
                    authoriser.verify_pin(
                        pins.get(f"token {b64u_encode(parent_id)} ({named}), which authorises")
                    )
                existing = (authoriser, parent_id)
            label = ns.label or token.description.label
            token_id, new_account, network_name = await flow.enrol(
                api, token, label=label, existing=existing
            )
            public_key = token.description.public_key
        finally:
            token.close()
            if authoriser is not None:
                authoriser.close()
    recorded = dataclasses.replace(
        mine,
        label=label,
        fido2_sim=mine.fido2_sim.resolve() if mine.fido2_sim is not None else None,
    )
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
        options=recorded.to_json(),
    )
    print(
        f"enrolled with {network_name} at {ns.network}: token {b64u_encode(token_id)} "
        + ("(new account)" if new_account else f"(added to the account of {ns.add_to})")
    )
    return EXIT_OK


async def _run(ns: argparse.Namespace) -> int:
    book = EnrolmentBook(ns.book)
    pins = Pins(ns)
    if ns.command == "provision":
        token = _provision(ns, pins)
        try:
            fingerprint = key_fingerprint(token.description.public_key)
        finally:
            token.close()
        print(f"provisioned: authentication key fingerprint {fingerprint}")
        return EXIT_OK

    if ns.command == "enrol":
        return await _enrol(ns, book, pins)

    if ns.command == "tokens":
        token, enrolment, api = await _open_enrolled(ns, book, ns.network)
        try:
            if token.has_pin:
                token.verify_pin(pins.get(describe_token(options(ns))))
            listed = await flow.list_tokens(api, token, enrolment.token_id)
        finally:
            token.close()
            await api.close()
        here = {e.enrolment.token_id: e for e in book.entries(ns.network)}
        for t in listed:
            line = token_line(t, mine=enrolment.token_id)
            known = here.get(bytes(t.token_id))
            if known is not None and known.kind != TokenKind.FIDO2 and known.public_key:
                line += f"  key {key_fingerprint(known.public_key)}"
            print(line)
        return EXIT_OK

    if ns.command == "revoke":
        target = parse_token_id(ns.token_id)
        token, enrolment, api = await _open_enrolled(ns, book, ns.network)
        try:
            if token.has_pin:
                token.verify_pin(pins.get(describe_token(options(ns))))
            await flow.revoke_token(api, token, enrolment.token_id, target)
        finally:
            token.close()
            await api.close()
        forgotten = book.forget(ns.network, target)
        print(
            f"revoked {ns.token_id}"
            + ("; removed it from this computer's enrolment book" if forgotten else "")
        )
        return EXIT_OK

    if ns.command == "login":
        # With --pin-stdin the PIN is the first line, read before anything else,
        # so that the answer to "Confirm?" (if asked) is the line after it.
        pin = pins.get(describe_token(options(ns))) if pins.from_stdin else None
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
            answer = sys.stdin.readline()
            if not answer:
                raise MalformedInput(
                    "no answer to 'Confirm?' on standard input: use --yes or --decline in scripts"
                )
            return answer.strip().lower() in ("y", "yes")

        def ask_pin(_: AuthRequest | None) -> str:
            return pin if pin is not None else pins.get(describe_token(options(ns)))

        try:
            report = await flow.login(
                api, token, enrolment.token_id, payload, confirm=confirm, ask_pin=ask_pin
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
            ask_pin=lambda _request: pins.get(describe_token(options(ns))),
        )
        await serve_agent(agent, host="127.0.0.1", port=ns.port)  # ends with Ctrl-C
        return EXIT_OK
    raise AssertionError(ns.command)


def parser() -> argparse.ArgumentParser:
    book = default_book()
    p = argparse.ArgumentParser(
        prog="passkey",
        description="Security keys, smartcards and PKCS#11 tokens as authnet PassKeys.",
        epilog="Exit status: 0 ok, 1 error, 2 usage, 3 login declined. docs/tokens.md has more.",
    )
    p.add_argument(
        "--book",
        type=Path,
        default=book,
        help="enrolment book (default: $PASSKEY_BOOK, else $XDG_DATA_HOME/authnet/tokens.json, "
        f"else ~/.local/share/authnet/tokens.json; here: {book})",
    )
    pin_help = "read PINs from standard input, one line each (see COMMAND --help for the order)"
    p.add_argument("--pin-stdin", action="store_true", help=pin_help)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str, epilog: str | None = None) -> argparse.ArgumentParser:
        s = sub.add_parser(name, help=text, description=text, epilog=epilog)
        s.add_argument(
            "--token", dest="kind", choices=KINDS, required=True, help="which kind of token"
        )
        s.add_argument("--reader", help="PC/SC reader (piv, otp; default: the first with a card)")
        s.add_argument(
            "--pkcs11-module",
            default=os.environ.get("PASSKEY_PKCS11_MODULE", DEFAULT_PKCS11_MODULE),
            help="PKCS#11 module (pkcs11; default: $PASSKEY_PKCS11_MODULE, else "
            f"{DEFAULT_PKCS11_MODULE})",
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
            help="read PINs from standard input, one line each",
        )
        return s

    s = command(
        "provision",
        "create the token's keys (piv: 9A and 9D; otp: 9C; pkcs11: key pair and secret)",
        epilog="A card whose slots already hold keys is refused unless --force: "
        "re-provisioning replaces the keys, so every enrolment and every client key (Kc) "
        "made with them is lost. The PIN and the management key are checked before "
        "anything changes.",
    )
    s.add_argument(
        "--management-key",
        metavar="HEX",
        help="the card management key (piv, otp), in hex: 32, 48 or 64 hex digits; default: "
        "YubiKey's factory key 010203040506070801020304050607080102030405060708 (the same "
        "bytes are its Triple-DES key before firmware 5.7 and its AES-192 key from 5.7)",
    )
    s.add_argument(
        "--management-key-algorithm",
        choices=("3des", "aes128", "aes192", "aes256"),
        help="the management key's algorithm; default: what the card reports (YubiKey "
        "firmware 5.3+), else from the key's length: 16 bytes aes128, 32 aes256, and 24 "
        "bytes (3des or aes192: ambiguous) aes192 (YubiKey 5.7+'s default), then 3des "
        "(older YubiKeys, many PIV cards) if the card refuses aes192",
    )
    s.add_argument(
        "--force",
        action="store_true",
        help="replace keys the slots already hold (piv, otp): their enrolments and Kc are lost",
    )

    s = command(
        "enrol",
        "enrol the token with a network: a new account, or with --add-to another token's",
        epilog="With --add-to, the token enrolled on this computer as TOKEN_ID (the "
        "enrolment book says how to open it) signs the new token into its account; it must "
        "be plugged in too. " + STDIN_ORDER,
    )
    s.add_argument("--network", required=True, help="the network's PassKey API, host:port")
    s.add_argument(
        "--ca",
        type=Path,
        help="the network's CA certificate (PEM); required unless --add-to (then the one "
        "pinned for that token)",
    )
    s.add_argument(
        "--add-to",
        metavar="TOKEN_ID",
        help="join the account of this token, enrolled on this computer (it authorises)",
    )

    s = command("tokens", "list the tokens of this token's account")
    s.add_argument("--network", required=True, help="the network's PassKey API, host:port")

    s = command(
        "revoke",
        "revoke a token of this token's account (a lost one, say)",
        epilog="The network refuses to revoke an account's last active token: enrol a "
        "second token first (enrol --add-to).",
    )
    s.add_argument(
        "token_id",
        metavar="TOKEN_ID",
        help="the token to revoke (see `tokens`)",
    )
    s.add_argument("--network", required=True, help="the network's PassKey API, host:port")

    s = command(
        "login",
        "answer a login code (the QR code's text, or an image of it)",
        epilog=STDIN_ORDER
        + " For example: printf '%%s\\ny\\n' \"$PIN\" | passkey --pin-stdin login ... "
        "End of input instead of an answer is an error (nothing is declined).",
    )
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
    s.add_argument(
        "--port", type=int, default=7481, help="loopback port (default 7481; 0: any free one)"
    )
    s.add_argument(
        "--yes",
        action="store_true",
        help="confirm every login without asking (for scripts and tests only)",
    )
    return p


_TOKEN_LIBRARIES = frozenset({"pkcs11", "smartcard", "fido2"})


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    ns = parser().parse_args(protect_token_ids(args, value_options=["--add-to"]))
    try:
        return asyncio.run(_run(ns))
    except AuthnetError as e:
        print(f"passkey: {e.message}", file=sys.stderr)
        return EXIT_USAGE if isinstance(e, MalformedInput) else EXIT_ERROR
    except KeyboardInterrupt:
        if ns.command == "agent":
            # Ctrl-C (or SIGTERM) is how the agent is meant to stop; asyncio.run
            # cancelled serve_agent, which closed it down.
            print("authnet agent stopped", file=sys.stderr, flush=True)
            return EXIT_OK
        return EXIT_ERROR
    except Exception as e:
        # The backends translate their libraries' errors; should one slip through,
        # a token failure still gets one line, not a traceback.
        if isinstance(e, OSError) or type(e).__module__.split(".")[0] in _TOKEN_LIBRARIES:
            print(f"passkey: the token or a file failed: {type(e).__name__}: {e}", file=sys.stderr)
            return EXIT_ERROR
        raise


if __name__ == "__main__":
    sys.exit(main())
