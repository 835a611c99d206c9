"""vault: the authnet vault from a terminal, for people and for scripts.

    vault --server http://localhost:8000 login --phone ~/phone.json --handle alice
    vault create-safe Home
    vault add Home login Mail --username alice --url https://mail.example --password prompt
    vault get Home Mail --field password          # exactly the value on stdout
    vault items Home
    vault import Home bitwarden.json --dry-run
    vault shell                                   # log in once, keys kept in memory

Every secret is encrypted and decrypted here, with vault_api.crypto: what the
CLI writes the browser reads, and the other way round. docs/vault.md has the
whole story ("The vault command").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import textwrap
from collections.abc import Callable

from authnet.errors import AuthnetError
from tokens.devices import DEFAULT_PKCS11_MODULE, KINDS
from vault_api.client import exporters, importers, passwords
from vault_api.client.commands import COMMANDS, Context, Io, Shared
from vault_api.client.errors import CliError, Exit

EXIT_HELP = """exit status:
  0 done              1 other error (server, network)    2 bad arguments or input
  3 not found         4 conflict: changed meanwhile, nothing written (409)
  5 login needed, failed or declined     6 not allowed (403: role)
  7 refused: a ciphertext or key slot did not open (tampering, wrong token)"""

SOURCES_HELP = """Secret fields (--password, --totp, --number, --code, --card-pin,
--hidden-field NAME=SOURCE) take where to read the value, never the value
itself: prompt (asked twice, not echoed), stdin (one line), env:NAME,
file:PATH, and for --password also generate[:LENGTH]. Several from stdin are
read one line each in that order, after the PIN line of --pin-stdin;
--notes-file - then reads the rest of stdin."""

SESSION_HELP = """The session (cookie and CSRF token) is kept in a 0600 state file
between commands; Kc and your keys never are: each command proves your token
again (the phone key store or hardware token answers by itself; a QR code
needs a scan), and `vault shell` logs in once and keeps the keys in memory."""


def _wrap(text: str) -> str:
    """Fill paragraphs of prose to 78 columns; leave indented examples as they are."""
    out = []
    for para in text.split("\n\n"):
        if any(line.startswith("  ") for line in para.splitlines()):
            out.append(para)
        else:
            out.append(textwrap.fill(" ".join(para.split()), 78))
    return "\n\n".join(out)


def _common(top: bool) -> argparse.ArgumentParser:
    """Options every command takes, before or after the command's name."""
    d = (lambda value: value) if top else (lambda _value: argparse.SUPPRESS)
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("session and output")
    g.add_argument(
        "--server",
        metavar="URL",
        default=d(None),
        help="the vault's URL (default: $VAULT_SERVER, else the session's, else "
        "http://localhost:8000)",
    )
    g.add_argument(
        "--state",
        metavar="FILE",
        default=d(None),
        help="the session file (default: $VAULT_STATE, else "
        "$XDG_STATE_HOME/authnet-vault/session.json)",
    )
    g.add_argument("--json", action="store_true", default=d(False), help="print JSON on stdout")
    g.add_argument(
        "-q", "--quiet", action="store_true", default=d(False), help="no progress on stderr"
    )
    t = p.add_argument_group(
        "login (how your token answers; `vault login` remembers it for later commands)"
    )
    t.add_argument(
        "--phone",
        metavar="STORE",
        default=d(None),
        help="answer with the phone simulator's key store file (passkey-phone)",
    )
    t.add_argument(
        "--token",
        dest="token_kind",
        choices=KINDS,
        default=d(None),
        help="answer with a token plugged into this computer (enrolled with `passkey enrol`)",
    )
    t.add_argument("--reader", default=d(None), help="PC/SC reader (piv, otp)")
    t.add_argument(
        "--pkcs11-module",
        default=d(os.environ.get("PASSKEY_PKCS11_MODULE", DEFAULT_PKCS11_MODULE)),
        help=f"PKCS#11 module (default $PASSKEY_PKCS11_MODULE, else {DEFAULT_PKCS11_MODULE})",
    )
    t.add_argument("--pkcs11-token", metavar="LABEL", default=d(None), help="PKCS#11 token label")
    t.add_argument(
        "--fido2-sim", metavar="STATE", default=d(None), help="the software security key's file"
    )
    t.add_argument(
        "--book",
        metavar="FILE",
        default=d(None),
        help="passkey's enrolment book (default: $PASSKEY_BOOK, else passkey's)",
    )
    t.add_argument(
        "--qr",
        action="store_true",
        default=d(False),
        help="show a QR code for a phone to scan (the default for a first login)",
    )
    t.add_argument(
        "--passphrase",
        metavar="SOURCE",
        default=d(None),
        help="where to read the vault passphrase, if your vault has one: prompt (the "
        "default), stdin, env:NAME or file:PATH",
    )
    t.add_argument(
        "--pin-stdin",
        action="store_true",
        default=d(False),
        help="read the token's PIN from the first line of stdin (else $VAULT_PIN or "
        "$PASSKEY_PIN, else a prompt)",
    )
    return p


def _item_options(p: argparse.ArgumentParser, *, edit: bool) -> None:
    g = p.add_argument_group("item fields" + (" (only those given change)" if edit else ""))
    if edit:
        g.add_argument("--title", dest="title_option", help="rename the item")
    g.add_argument("--username", help="login: the username")
    g.add_argument("--password", metavar="SOURCE", help="login: the password (see SOURCE below)")
    g.add_argument(
        "--url",
        action="append",
        metavar="URL",
        help="login: a URL (repeatable" + ("; replaces the item's URLs)" if edit else ")"),
    )
    g.add_argument(
        "--totp", metavar="SOURCE", help="login: otpauth://totp/... URI or base32 secret"
    )
    g.add_argument("--cardholder", help="card: the cardholder's name")
    g.add_argument("--number", metavar="SOURCE", help="card: the card number")
    g.add_argument("--brand", help="card: Visa, Mastercard, ...")
    g.add_argument("--expiry", metavar="MM/YYYY", help="card: expiry month")
    g.add_argument("--code", metavar="SOURCE", help="card: the security code (CVC)")
    g.add_argument("--card-pin", metavar="SOURCE", help="card: the card's PIN")
    g.add_argument("--notes", metavar="TEXT", help="notes (a secure note's content)")
    g.add_argument("--notes-file", metavar="FILE", help="notes from a file ('-': standard input)")
    g.add_argument(
        "--tag", action="append", metavar="TAG", help="a tag (repeatable; replaces the tags)"
    )
    g.add_argument("--field", action="append", metavar="NAME=VALUE", help="a visible custom field")
    g.add_argument(
        "--hidden-field",
        action="append",
        metavar="NAME=SOURCE",
        help="a hidden custom field (its value from SOURCE)",
    )
    g.add_argument(
        "--folder",
        metavar="PATH",
        help=(
            "move the item to folder PATH ('/' for the top)"
            if edit
            else "put the item in folder PATH (made if missing)"
        ),
    )
    if edit:
        g.add_argument(
            "--remove-field", action="append", metavar="NAME", help="remove a custom field"
        )
        g.add_argument(
            "--clear",
            action="append",
            metavar="FIELD",
            help="remove a standard field (username, password, url, totp, notes, tags, ...)",
        )
        g.add_argument(
            "--expected-version",
            type=int,
            metavar="N",
            help="the version this edit is made to (default: the one read now); a stale one "
            "is refused (exit 4) and nothing is written",
        )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vault",
        description="The authnet vault from a terminal: every secret encrypted and decrypted "
        "here, under keys that only your token opens.",
        epilog=_wrap(SESSION_HELP) + f"\n\n{EXIT_HELP}\n\nStart with `vault login --help`. "
        "Docs: docs/vault.md, section 'The vault command'.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_common(True)],
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common(False)

    def command(name: str, text: str, epilog: str = "") -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=text,
            description=text,
            epilog=_wrap(epilog) or None,
            parents=[common],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    def safe_and_item(s: argparse.ArgumentParser) -> None:
        s.add_argument("safe", metavar="SAFE", help="the safe: its name or id")
        s.add_argument(
            "item",
            metavar="ITEM",
            help="the item: its title, FOLDER/TITLE, or id (or id:ID, for an id that starts "
            "with '-'; or put -- before it)",
        )

    s = command(
        "login",
        "log in with your token; on an account's first login, make its keys",
        epilog="Examples:\n"
        "  vault --server http://localhost:8000 login --handle alice     # a QR code to scan\n"
        "  vault login --phone ~/.local/share/authnet/phone.json\n"
        "  vault login --token pkcs11 --pkcs11-token mytoken --pin-stdin < pin.txt\n\n"
        + SESSION_HELP,
    )
    s.add_argument(
        "--handle",
        help="your handle, on the account's first login (3-32 of a-z 0-9 . _ -): how others "
        "find you to share safes",
    )
    command("logout", "end the session and forget it")
    command("status", "the saved session: server, handle, whether it is still active (no token)")
    command("whoami", "prove the token and show your account and its fingerprint")
    command(
        "add-token",
        "give another token of your account a key slot, so it opens your vault too",
        epilog="The session's own token opens your keys; the token named by the login "
        "options (--phone, --token ..., --qr) is proved within the session and gets a slot: "
        "your private key wrapped under a key derived from its Kc. The new token must "
        "already be in the same authnet account (passkey enrol --add-to, passkey-phone enrol "
        "--backup-of).",
    )
    s = command(
        "passphrase",
        "set, change or roll back the vault passphrase (a second factor beside your token)",
        epilog="With a vault passphrase your vault opens only with a token AND the "
        "passphrase, hardened by the vault's hardener (10 wrong tries and it locks). "
        "set: in a session, for its token (other tokens' slots go with --drop-other-tokens; "
        "add them again with `vault add-token`). change: asks the current one (--passphrase) "
        "and the new one; the previous one is kept for a while. rollback: forgot the new "
        "one? the previous one (--old) opens the kept copy and becomes current again.\n\n"
        "Examples:\n  vault passphrase set\n  vault passphrase change --passphrase "
        "env:OLD --new env:NEW\n  vault passphrase rollback --old prompt",
    )
    s.add_argument("action", choices=("set", "change", "rollback"))
    s.add_argument("--new", metavar="SOURCE", help="the new passphrase (default: prompt, twice)")
    s.add_argument("--old", metavar="SOURCE", help="rollback: the previous passphrase")
    s.add_argument(
        "--drop-other-tokens",
        action="store_true",
        help="set: remove the slots of tokens this session has not proved",
    )
    s = command(
        "recovery",
        "set up a recovery code or passphrase; recover your vault after losing every token",
        epilog="setup --code prints a recovery code once (print it, keep it away from your "
        "tokens); setup without --code asks for a recovery passphrase. recover HANDLE logs "
        "in with a NEW token (--phone, --token, --qr), opens your vault with the recovery "
        "secret (--secret SOURCE, default a prompt) and makes the new token its only one; "
        "your other sessions are told.\n\nExamples:\n  vault recovery setup --code\n"
        "  vault recovery recover alice --phone ~/new-phone.json --secret stdin",
    )
    s.add_argument("action", choices=("setup", "recover"))
    s.add_argument("handle", nargs="?", metavar="HANDLE", help="recover: the account's handle")
    s.add_argument("--code", action="store_true", help="setup: generate a recovery code")
    s.add_argument("--recovery-passphrase", metavar="SOURCE", help="setup: the recovery passphrase")
    s.add_argument("--secret", metavar="SOURCE", help="recover: the recovery code or passphrase")

    command("safes", "list your safes")
    s = command("create-safe", "make a new safe (its name encrypted)")
    s.add_argument("name", metavar="NAME")

    s = command("items", "list a safe's folders and items (titles, usernames, URLs; no secrets)")
    s.add_argument("safe", metavar="SAFE", help="the safe: its name or id")
    s.add_argument("--folder", metavar="PATH", help="only this folder and those below it")
    s.add_argument(
        "--search",
        metavar="TEXT",
        help="only items whose title, username, URL, tags, notes or visible fields contain TEXT",
    )

    s = command("show", "show an item (secret values hidden unless --reveal)")
    safe_and_item(s)
    s.add_argument("--reveal", action="store_true", help="show secret values too")

    s = command(
        "get",
        "print one field's exact value on stdout, for scripts",
        epilog="Fields: title, username, password, url (the first), urls, totp (the secret; "
        "`vault totp` gives the code), notes, tags, cardholder, number, brand, expiry, code, "
        "pin, or a custom field's name (field:NAME when a standard name hides it). Nothing "
        "else is printed on stdout (no newline unless stdout is a terminal).",
    )
    safe_and_item(s)
    s.add_argument(
        "--field",
        dest="field_name",
        default="password",
        metavar="NAME",
        help="which field (default: password)",
    )

    s = command("totp", "print the item's current TOTP code (RFC 6238)")
    safe_and_item(s)
    s.add_argument("--time", type=float, metavar="UNIX", help="the code at this Unix time")

    s = command(
        "add",
        "add an item: login, note (secure note) or card",
        epilog="Example:\n"
        "  vault add Home login Mail --username alice --url https://mail.example "
        "--password prompt\n"
        "  printf '%s\\n' \"$PW\" | vault add Home login VPN --password stdin\n\n" + SOURCES_HELP,
    )
    s.add_argument("safe", metavar="SAFE", help="the safe: its name or id")
    s.add_argument(
        "kind", metavar="TYPE", choices=("login", "note", "card"), help="login, note or card"
    )
    s.add_argument("title", metavar="TITLE")
    _item_options(s, edit=False)

    s = command(
        "edit",
        "change an item's fields (everything else is kept)",
        epilog="If someone else changed the item since it was read (or since "
        "--expected-version), nothing is written and the exit status is 4.\n\n" + SOURCES_HELP,
    )
    safe_and_item(s)
    _item_options(s, edit=True)

    s = command("delete", "delete an item with its history and files")
    safe_and_item(s)
    s.add_argument("--yes", action="store_true", help="do not ask (required without a terminal)")
    s.add_argument(
        "--expected-version",
        type=int,
        metavar="N",
        help="delete only if the item is still at version N",
    )

    s = command("history", "list an item's earlier versions (which fields each change touched)")
    safe_and_item(s)
    s.add_argument("--version", type=int, metavar="N", help="show version N instead")
    s.add_argument("--reveal", action="store_true", help="with --version: show secret values")

    s = command("restore", "make an earlier version's content the current one (a new version)")
    safe_and_item(s)
    s.add_argument("version", type=int, metavar="VERSION")

    s = command(
        "move",
        "move an item, with its files and earlier versions, to another safe",
        epilog="Everything is re-encrypted here for the other safe's key (the files' keys "
        "re-wrapped; their contents are not uploaded again) and the server moves it all at "
        "once. You must be an editor or admin of both safes. Members of the first safe who "
        "are not members of the other no longer see the item. If the item changed since it "
        "was read (or since --expected-version), or the other safe's key is being rotated, "
        "nothing is moved (exit 4).\n\nExample:\n  vault move Home Router Work --folder Network",
    )
    safe_and_item(s)
    s.add_argument("to_safe", metavar="TO_SAFE", help="the safe it moves to: its name or id")
    s.add_argument(
        "--folder", metavar="PATH", help="an existing folder of TO_SAFE (default: its top)"
    )
    s.add_argument(
        "--expected-version",
        type=int,
        metavar="N",
        help="move only if the item is still at version N",
    )

    s = command("mkdir", "make a folder (and its parents)")
    s.add_argument("safe", metavar="SAFE")
    s.add_argument("path", metavar="PATH", help="e.g. Work/Servers")
    s = command("rmdir", "delete an empty folder")
    s.add_argument("safe", metavar="SAFE")
    s.add_argument("path", metavar="PATH")

    s = command(
        "upload",
        "upload a file, encrypted here and streamed (to an item, or as a new document item)",
    )
    s.add_argument("safe", metavar="SAFE")
    s.add_argument("file", metavar="FILE")
    s.add_argument("--item", metavar="ITEM", help="attach to this item (default: a new document)")
    s.add_argument("--name", help="the file's name in the vault (default: FILE's)")
    s.add_argument("--folder", metavar="PATH", help="the new document item's folder")

    s = command("download", "download an item's file, decrypted and checked chunk by chunk")
    safe_and_item(s)
    s.add_argument("--file", metavar="NAME", help="which of the item's files (by name or id)")
    s.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="where to save it (default: its name here; '-': stdout)",
    )
    s.add_argument("--force", action="store_true", help="replace an existing file")

    s = command(
        "import",
        "import another password manager's export into a safe",
        epilog="Formats: bitwarden (unencrypted JSON), keepass (KeePass 2 XML), chrome and "
        "firefox (their passwords CSV); found from the file unless --format. Folders are made "
        "as needed; items already in the safe and repeated entries are skipped, and every "
        "skipped entry is listed with the reason. Use --dry-run first to see what happens.",
    )
    s.add_argument("safe", metavar="SAFE")
    s.add_argument("file", metavar="FILE")
    s.add_argument("--format", choices=importers.FORMATS, help="the file's format")
    s.add_argument(
        "--dry-run", action="store_true", help="show what would be imported; change nothing"
    )
    s.add_argument("--folder", metavar="PATH", help="import below this folder")

    s = command(
        "export",
        "write a safe's items to a PLAINTEXT file (0600) for another password manager",
        epilog="bitwarden: every login, note and card with folders, URLs, TOTP and fields "
        "(`vault import` and Bitwarden read it). csv: Chrome's layout, logins only (Chrome, "
        "Firefox, Bitwarden and `vault import` read it). Files are not exported. What a format "
        "cannot hold is listed on stderr.",
    )
    s.add_argument("safe", metavar="SAFE")
    s.add_argument("--format", choices=exporters.FORMATS, default="bitwarden")
    s.add_argument("-o", "--output", required=True, metavar="FILE", help="the file ('-': stdout)")
    s.add_argument("--force", action="store_true", help="replace an existing file")

    s = command("generate", "print a random password")
    s.add_argument("--length", type=int, default=passwords.DEFAULT_LENGTH)
    s.add_argument("--no-symbols", action="store_true", help="letters and digits only")

    _device_commands(command, common)

    command(
        "shell",
        "log in once and run commands with the keys kept in memory until you leave",
        epilog="Inside: any command without `vault`, e.g. `items Home`; `help`; `exit`.",
    )
    return p


DEVICE_HELP = """This CLI can be a registered device of your account (docs/devices.md 8):
its device file (<config dir>/device-<user id>.json, the config dir
$VAULT_CONFIG_DIR or ~/.config/authnet-vault, mode 0600) holds its own two
private keys. With the bypass on, `vault login` and every command open your
vault with the token alone: no passphrase. The token login still happens; the
bypass only replaces the passphrase. A copy of the device file is a copy of
the device: revoke it (`vault device revoke`) if it may have been copied.
With `register --keyring` (or VAULT_DEVICE_KEYRING=1) the two keys go into the
OS keyring (Secret Service) instead, and the file holds only the ids."""


def _device_commands(
    command: Callable[..., argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    s = command(
        "device",
        "register this CLI as a trusted device, turn its passphrase bypass on or off, list, "
        "rename and revoke devices, approve a new browser",
        epilog=DEVICE_HELP + "\n\nExamples:\n"
        "  vault device register --name laptop --bypass --passphrase prompt\n"
        "  vault device list\n"
        "  vault device revoke 3q2-YxT1   # an id, a prefix of 4+, a name, or 'this'\n"
        "  vault device approve K3X9P-7QM2D   # the code a new browser shows",
    )
    dsub = s.add_subparsers(dest="device_action", required=True, metavar="ACTION")

    def action(name: str, text: str, epilog: str = "") -> argparse.ArgumentParser:
        return dsub.add_parser(
            name,
            help=text,
            description=text,
            epilog=_wrap(epilog) or None,
            parents=[common],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    a = action(
        "register",
        "make this CLI's device keys and register them (needs the vault passphrase)",
        epilog="The session is unlocked with the vault passphrase (never by a bypass: "
        "registration is what the passphrase vouches for), the keys are made here and only "
        "their public halves and a proof go to the vault. The device file is written 0600.",
    )
    a.add_argument(
        "--name", help="how the device is listed (1-64 characters; default: 'vault CLI on HOST')"
    )
    a.add_argument("--bypass", action="store_true", help="turn the bypass on at once")
    a.add_argument(
        "--keyring",
        action="store_true",
        help="keep the device's private keys in the OS keyring (Secret Service, macOS Keychain, "
        "Windows Credential Locker), not in the device file; VAULT_DEVICE_KEYRING=1 does the same",
    )
    action("list", "your devices: state, bypass, fingerprint, last use (no token needed)")
    a = action("rename", "rename a device")
    a.add_argument("device", metavar="ID", help="device id, an id prefix (4+), its name, or this")
    a.add_argument("name", metavar="NAME")
    a = action(
        "revoke",
        "revoke a device: its wraps are deleted and its sessions end at once",
        epilog="Revoking this CLI's own device deletes its device file too.",
    )
    a.add_argument("device", metavar="ID", help="device id, an id prefix (4+), its name, or this")
    a = action(
        "bypass",
        "on: later logins here open the vault without the passphrase; off: they ask again",
        epilog="on makes a new key-encryption key, wraps your private key under it and the "
        "token factor, and seals it to this device's key (docs/devices.md 3); it asks for "
        "the passphrase once. off deletes the wraps at the vault.",
    )
    a.add_argument("switch", choices=("on", "off"))
    a = action(
        "approve",
        "approve a new browser's device request by its code (compare the fingerprints)",
        epilog="The new browser shows a code and a fingerprint. This shows the fingerprint "
        "the request holds; approve only if both screens show the same. The new device's "
        "key-encryption key goes through the one-time key proxy, sealed to its key.",
    )
    a.add_argument("code", metavar="CODE", help="the code the new browser shows")
    a.add_argument("--yes", action="store_true", help="approve without asking")
    a.add_argument("--refuse", action="store_true", help="refuse the request")

    s = command(
        "send",
        "make a one-time link to an item, for someone without an account",
        epilog="The item is encrypted here under a fresh key that only the link holds (after "
        "'#', which browsers never send); the one-time key proxy keeps the ciphertext until "
        "the link is opened once, or it expires. The link is the only thing on stdout.\n\n"
        "Example:\n  vault send Home Wifi --ttl 1h",
    )
    s.add_argument("safe", metavar="SAFE", help="the safe: its name or id")
    s.add_argument("item", metavar="ITEM", help="the item: its title, FOLDER/TITLE, or id")
    s.add_argument(
        "--ttl",
        default="1d",
        metavar="TIME",
        help="how long the link lives: 10m to 7d (default 1d), e.g. 30m, 12h, 2d",
    )
    s = command(
        "open-link",
        "open a one-time link: show its state, then reveal the item (which uses it up)",
        epilog="Checking the state (--status) does not use the link up; only revealing does. "
        "A second open says 'already opened'. Quote the URL: it holds '#'.",
    )
    s.add_argument("url", metavar="URL", help="the link, as `vault send` printed it")
    s.add_argument("--yes", action="store_true", help="reveal without asking")
    s.add_argument("--status", action="store_true", help="only show its state; do not open it")


_TOKEN_LIBRARIES = frozenset({"pkcs11", "smartcard", "fido2"})


def report(e: BaseException, io: Io) -> int:
    """One line on stderr for any failure; the exit status."""
    if isinstance(e, CliError):
        if e.message:
            io.err.write(f"vault: {e.message}\n")
        return int(e.status)
    if isinstance(e, AuthnetError):
        io.err.write(f"vault: {e.message}\n")
        return int(Exit.LOGIN)
    if isinstance(e, OSError):
        where = f" {e.filename}" if e.filename else ""
        io.err.write(f"vault: cannot use{where}: {e.strerror or e}\n")
        return int(Exit.ERROR)
    if type(e).__module__.split(".")[0] in _TOKEN_LIBRARIES:
        io.err.write(f"vault: the token failed: {type(e).__name__}\n")
        return int(Exit.LOGIN)
    if os.environ.get("VAULT_DEBUG"):
        raise e
    io.err.write(
        f"vault: unexpected {type(e).__name__}; nothing more was done (VAULT_DEBUG=1 shows where)\n"
    )
    return int(Exit.ERROR)


async def run(ns: argparse.Namespace, io: Io, shared: Shared | None = None) -> int:
    own = shared is None
    shared = shared or Shared()
    try:
        if ns.command == "shell":
            from vault_api.client.shell import shell

            return await shell(ns, io, shared)
        await COMMANDS[ns.command](Context(ns, io, shared))
        return int(Exit.OK)
    finally:
        if own:
            await shared.close()


def main(argv: list[str] | None = None, io: Io | None = None) -> int:
    io = io or Io()
    ns = parser().parse_args(argv)
    try:
        return asyncio.run(run(ns, io))
    except KeyboardInterrupt:
        io.err.write("vault: interrupted\n")
        return 130
    except Exception as e:
        return report(e, io)


if __name__ == "__main__":
    sys.exit(main())
