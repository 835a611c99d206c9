"""The `vault` commands: one coroutine each, over a `Context` that knows the
parsed arguments, where output goes and how to get an unlocked vault.

Output: results on stdout (text for people, or one JSON object with
`--json`), everything else on stderr (progress, what is happening, warnings),
so `vault get ... --field password | ...` pipes exactly the value.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from vault_api.client import device_commands, exporters, importers, passwords, totp
from vault_api.client import items as it
from vault_api.client.api import VaultApi
from vault_api.client.contents import Item, OpenedSafe, item_body
from vault_api.client.errors import ApiError, CliError, Exit, NotFound, Usage
from vault_api.client.factor_commands import FACTOR_COMMANDS
from vault_api.client.keys import enc
from vault_api.client.login import LoginMethod, Pins
from vault_api.client.progress import Meter
from vault_api.client.session import (
    Bypass,
    SessionState,
    StateFile,
    add_token,
    default_state_path,
    start,
    unlock,
)
from vault_api.client.vault import Vault, file_size
from vault_api.crypto import MovePlan, new_id

DEFAULT_SERVER = "http://localhost:8000"
MAX_IMPORT_BYTES = 64 * 1024 * 1024
PLAINTEXT_WARNING = (
    "warning: {path} holds the safe's secrets in PLAINTEXT (readable by anyone who can read "
    "the file; it is mode 0600, owner only). Import it where it is needed, then delete it."
)


@dataclass
class Io:
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    stdin: TextIO = field(default_factory=lambda: sys.stdin)


@dataclass
class Shared:
    """What outlives one command in a `vault shell`: the API client and the
    unlocked keys."""

    api: VaultApi | None = None
    vault: Vault | None = None
    state: SessionState | None = None
    user: dict[str, Any] | None = None
    in_shell: bool = False

    async def close(self) -> None:
        if self.api is not None:
            await self.api.close()
            self.api = None


class Context:
    def __init__(self, ns: argparse.Namespace, io: Io, shared: Shared) -> None:
        self.ns = ns
        self.io = io
        self.shared = shared
        self.state_file = StateFile(Path(ns.state) if ns.state else default_state_path())
        self.pins = Pins(from_stdin=bool(ns.pin_stdin), stdin=io.stdin)
        # Open the keys with this CLI's device bypass when it has one (docs/devices.md 8);
        # `vault device register` turns it off: registration needs the passphrase.
        self.use_bypass = True
        if ns.pin_stdin:
            # The PIN is the first line of standard input, whatever else is read from it.
            self.pins.get("the token")

    # --- output ---------------------------------------------------------------------

    def say(self, text: str) -> None:
        if not self.ns.quiet:
            self.io.err.write(text + "\n")
            self.io.err.flush()

    def warn(self, text: str) -> None:
        self.io.err.write(text + "\n")
        self.io.err.flush()

    def emit(self, data: Any, lines: list[str] | None = None) -> None:
        if self.ns.json:
            self.io.out.write(json.dumps(data, ensure_ascii=False) + "\n")
        else:
            for line in lines or []:
                self.io.out.write(line + "\n")
        self.io.out.flush()

    # --- session ----------------------------------------------------------------------

    def state(self) -> SessionState | None:
        if self.shared.state is None:
            self.shared.state = self.state_file.load()
        return self.shared.state

    def server(self) -> str:
        if self.ns.server:
            return str(self.ns.server).rstrip("/")
        if os.environ.get("VAULT_SERVER"):
            return os.environ["VAULT_SERVER"].rstrip("/")
        state = self.state()
        return state.server if state is not None else DEFAULT_SERVER

    def method(self) -> LoginMethod | None:
        ns = self.ns
        given = [m for m in (ns.phone, ns.token_kind, ns.qr or None) if m]
        if len(given) > 1:
            raise Usage("log in one way: --phone STORE, --token KIND or --qr")
        if ns.phone:
            return LoginMethod(kind="phone", phone_store=Path(ns.phone).expanduser().resolve())
        if ns.token_kind:
            from tokens.devices import TokenOptions

            sim = Path(ns.fido2_sim).expanduser().resolve() if ns.fido2_sim else None
            return LoginMethod(
                kind="token",
                token=TokenOptions(
                    kind=ns.token_kind,
                    reader=ns.reader,
                    pkcs11_module=ns.pkcs11_module,
                    pkcs11_token=ns.pkcs11_token,
                    fido2_sim=sim,
                ),
                book=Path(ns.book).expanduser() if ns.book else None,
            )
        if ns.qr:
            return LoginMethod(kind="qr")
        return None

    def api(self) -> VaultApi:
        server = self.server()
        if self.shared.api is None or self.shared.api.base_url != server:
            self.shared.api = VaultApi(server)
        return self.shared.api

    async def vault(self, *, remembered: bool = False) -> Vault:
        """The vault with this session's keys open (proving the token again:
        the one given on the command line, or with `remembered` the session's)."""
        if self.shared.vault is not None:
            return self.shared.vault
        server = self.server()
        state = self.state()
        if state is None or state.server != server:
            raise CliError(
                f"not logged in to {server}: run `vault login` (with --phone STORE, "
                "--token KIND, or a QR code for your phone)",
                Exit.LOGIN,
            )
        method = state.method if remembered else self.method() or state.method
        # A bypass unlock works within the saved session too: the server gives
        # the session a fresh device nonce after each one (docs/devices.md 4).
        u = await unlock(
            self.api(),
            state,
            method,
            self.pins,
            say=self.say,
            qr_out=self.io.err,
            passphrase=self.ask_passphrase,
            bypass=self.bypass(),
        )
        self.state_file.save(u.state)
        self.shared.state = u.state
        self.shared.user = u.user
        self.shared.vault = Vault(self.api(), u.ring)
        return self.shared.vault

    async def open_safe(self) -> OpenedSafe:
        vault = await self.vault()
        safe = await vault.open(self.ns.safe)
        if safe.rotation_needed:
            self.say(
                f"note: safe {safe.name!r} is waiting for its key to be rotated (a member was "
                "removed); an admin's browser does that when it opens the safe"
            )
        return safe

    def bypass(self) -> Bypass:
        """The device bypass for this command, or None (docs/devices.md 8)."""
        if not self.use_bypass:
            return None
        return device_commands.bypass_for(self)

    # --- reading secrets ----------------------------------------------------------------

    def ask_passphrase(self) -> str:
        """The vault passphrase, from --passphrase SOURCE (default: a prompt)."""
        return self.secret_once(
            getattr(self.ns, "passphrase", None) or "prompt", "vault passphrase"
        )

    def secret_once(self, source: str, what: str) -> str:
        """Like secret(), but a prompt asks once (for a secret that already exists)."""
        if source == "prompt":
            if not self.io.stdin.isatty():
                raise Usage(
                    f"the {what} is needed and there is no terminal to ask on: give "
                    "stdin, env:NAME or file:PATH"
                )
            return getpass.getpass(f"{what}: ")
        return self.secret(source, what)

    def secret(self, source: str, what: str) -> str:
        """A secret from where `source` says: never from the command line itself."""
        if source == "prompt":
            if not self.io.stdin.isatty():
                raise Usage(
                    f"--{what} prompt needs a terminal; in scripts use stdin, env:NAME or file:PATH"
                )
            first = getpass.getpass(f"{what}: ")
            if getpass.getpass(f"{what} again: ") != first:
                raise Usage(f"the two {what} entries differ; nothing was changed")
            return first
        if source == "stdin":
            line = self.io.stdin.readline()
            if not line:
                raise Usage(f"standard input ended before the {what}")
            return line.rstrip("\r\n")
        if source.startswith("env:"):
            value = os.environ.get(source[4:])
            if value is None:
                raise Usage(f"--{what} env:{source[4:]}: that variable is not set")
            return value
        if source.startswith("file:"):
            try:
                return Path(source[5:]).expanduser().read_text().rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as e:
                raise Usage(f"--{what} {source}: cannot read it ({e})") from None
        if what == "password" and (source == "generate" or source.startswith("generate:")):
            length = source.partition(":")[2]
            if length and not length.isdigit():
                raise Usage("--password generate:LENGTH takes a number")
            return passwords.generate(int(length) if length else passwords.DEFAULT_LENGTH)
        raise Usage(
            f"--{what} says where to read the {what} (never the value itself, which would "
            "show in `ps` and shell history): prompt, stdin, env:NAME or file:PATH"
            + (", or generate[:LENGTH]" if what == "password" else "")
        )


# --- helpers ------------------------------------------------------------------------------


def when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def table(rows: list[list[str]], header: list[str]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]


def item_json(safe: OpenedSafe, item: Item) -> dict[str, Any]:
    c = item.content
    return {
        "id": item.ref,
        "type": item.kind,
        "title": item.title,
        "folder": safe.path(item.folder_id),
        "path": safe.item_path(item),
        "username": c.get("username") if isinstance(c.get("username"), str) else None,
        "urls": it.urls(c),
        "files": [
            {"id": f["id"], "name": f.get("name"), "size": f.get("size")} for f in it.files(c)
        ],
        "version": item.version,
        "updated_ms": item.updated_ms,
    }


def _pair(text: str, option: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise Usage(f"{option} takes NAME=VALUE, got {text!r}")
    return name, value


SECRET_OPTIONS = (
    ("password", "password"),
    ("totp", "totp"),
    ("number", "number"),
    ("code", "code"),
    ("card_pin", "pin"),
)


def changes(ctx: Context, *, kind: str) -> it.Changes:
    """What the item options of `add` and `edit` ask for. Secrets are read in
    a fixed order (password, totp, number, code, card PIN, hidden fields), so
    several can come from standard input, one line each."""
    ns = ctx.ns
    ch = it.Changes()
    if getattr(ns, "title_option", None) is not None:
        ch.values["title"] = ns.title_option
    for name in ("username", "cardholder", "brand", "expiry"):
        value = getattr(ns, name)
        if value is not None:
            ch.values[name] = value
    for option, name in SECRET_OPTIONS:
        source = getattr(ns, option)
        if source is not None:
            ch.values[name] = ctx.secret(source, option.replace("_", "-"))
    if ch.values.get("totp"):
        totp.parse(ch.values["totp"])  # refuse a secret no code can come from
    visible = [(*_pair(f, "--field"), False) for f in ns.field or []]
    hidden = []
    for h in ns.hidden_field or []:
        name, source = _pair(h, "--hidden-field")
        hidden.append((name, ctx.secret(source, f"hidden field {name}"), True))
    ch.set_fields = visible + hidden
    if ns.notes is not None and ns.notes_file is not None:
        raise Usage("give the notes once: --notes TEXT or --notes-file FILE")
    if ns.notes is not None:
        ch.values["notes"] = ns.notes
    if ns.notes_file is not None:
        try:
            text = ctx.io.stdin.read() if ns.notes_file == "-" else Path(ns.notes_file).read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise Usage(f"cannot read the notes file: {e}") from None
        ch.values["notes"] = text.rstrip("\n")
    if ns.url:
        ch.urls = list(ns.url)
    if ns.tag:
        ch.tags = [t for t in ns.tag if t]
    for name in getattr(ns, "clear", None) or []:
        key = it.ALIASES.get(name, name)
        if key in ("url", "urls"):
            ch.urls = []
        elif key == "tags":
            ch.tags = []
        elif key == "title":
            raise Usage("an item keeps its title (rename it with --title)")
        else:
            ch.values[key] = ""
    ch.remove_fields = list(getattr(ns, "remove_field", None) or [])
    if ch.urls is not None and kind != "login":
        raise Usage(f"a {kind} item has no URLs")
    return ch


# --- commands -----------------------------------------------------------------------------


HANDLE = re.compile(r"[a-z0-9][a-z0-9._-]{2,31}")


async def cmd_login(ctx: Context) -> None:
    if ctx.ns.handle is not None and not HANDLE.fullmatch(ctx.ns.handle):
        raise Usage(
            "a handle is 3 to 32 of a-z 0-9 . _ - and starts with a letter or digit, "
            f"not {ctx.ns.handle!r}"
        )
    state = ctx.state()
    server = ctx.server()
    method = ctx.method() or (state.method if state and state.server == server else None)
    if method is None:
        method = LoginMethod(kind="qr")
    api = ctx.api()
    if state is not None and state.server == server:
        # The server ends the session this client had when a new one starts.
        api.cookies["vault_session"] = state.session_cookie
    u = await start(
        api,
        method,
        ctx.pins,
        handle=ctx.ns.handle,
        say=ctx.say,
        qr_out=ctx.io.err,
        passphrase=ctx.ask_passphrase,
        bypass=ctx.bypass(),
    )
    ctx.state_file.save(u.state)
    ctx.shared.state, ctx.shared.user = u.state, u.user
    ctx.shared.vault = Vault(api, u.ring)
    data = {
        "server": server,
        "handle": u.state.handle,
        "user_id": u.state.user_id,
        "key_id": u.state.key_id,
        "fingerprint": u.ring.fingerprint,
        "registered_now": u.registered_now,
        "login": method.to_json(),
    }
    first = (
        " (a new account: your keys were made and sealed to this token)" if u.registered_now else ""
    )
    if u.ring.token_factor is None:
        # The server's setting, or the organisation's policy (docs/devices.md 6), as the
        # page: the server refuses the safes until then (passphrase_required).
        try:
            hardener = await api.call("GET", "/api/hardener")
            policy = await api.call("GET", "/api/me/policy")
        except ApiError:
            hardener, policy = {"enabled": False}, {}
        if hardener["enabled"] and (hardener["require_passphrase"] or policy["require_passphrase"]):
            org = policy.get("organisation") if policy["require_passphrase"] else None
            who = f"your organisation {org['name']}" if org else "this vault"
            ctx.warn(
                f"{who} requires a vault passphrase, and the safes stay closed until this "
                "account has one: set it with `vault passphrase set`"
            )
    ctx.emit(
        data,
        [
            f"logged in to {server} as {u.state.handle}{first}",
            f"account fingerprint {u.ring.fingerprint}",
            f"later commands log in again with {method.describe()}",
        ],
    )


async def cmd_logout(ctx: Context) -> None:
    state = ctx.state()
    if state is None:
        ctx.emit({"logged_out": False}, ["not logged in"])
        return
    own = state.server != ctx.server()
    api = VaultApi(state.server) if own else ctx.api()
    api.resume(state.session_cookie, state.csrf)
    try:
        await api.logout()
    except ApiError as e:
        if not e.ended_session:
            raise
    except CliError:
        ctx.warn(
            "the session is forgotten here, but the server was not told: it ends there after "
            "its idle timeout"
        )
        raise
    finally:
        ctx.state_file.remove()
        ctx.shared.state = ctx.shared.vault = None
        if own:
            await api.close()
    ctx.emit({"logged_out": True}, [f"logged out of {state.server}"])


async def cmd_status(ctx: Context) -> None:
    state = ctx.state()
    if state is None:
        ctx.emit({"logged_in": False, "server": ctx.server()}, [f"not logged in ({ctx.server()})"])
        raise CliError("", Exit.LOGIN)
    api = ctx.api()
    api.resume(state.session_cookie, state.csrf)
    try:
        s = await api.session()
        active, ended = True, None
    except ApiError as e:
        if not e.ended_session:
            raise
        active, ended = False, e.error
    data = {
        "logged_in": True,
        "server": state.server,
        "handle": state.handle,
        "user_id": state.user_id,
        "key_id": state.key_id,
        "session": "active" if active else ended,
        "login": state.method.to_json(),
        "idle_timeout_seconds": s["idle_timeout_seconds"] if active else None,
    }
    ctx.emit(
        data,
        [
            f"{state.handle} at {state.server}",
            "session active"
            if active
            else f"session ended ({ended}): the next command logs in again",
            f"logs in with {state.method.describe()}",
        ],
    )


async def cmd_whoami(ctx: Context) -> None:
    vault = await ctx.vault()
    state = ctx.shared.state
    assert state is not None
    data = {
        "server": state.server,
        "handle": state.handle,
        "user_id": state.user_id,
        "key_id": state.key_id,
        "fingerprint": vault.ring.fingerprint,
    }
    ctx.emit(
        data,
        [
            f"{state.handle} at {state.server}",
            f"account fingerprint {vault.ring.fingerprint}",
            f"user id {state.user_id}; token key id {state.key_id}",
        ],
    )


async def cmd_add_token(ctx: Context) -> None:
    new = ctx.method()
    state = ctx.state()
    if new is None:
        raise Usage("name the token to add: --phone STORE, --token KIND ... or --qr")
    if state is not None and new == state.method:
        raise Usage("that is the token this session logs in with; name another one")
    vault = await ctx.vault(remembered=True)  # opens the keys with the session's token
    key_id, made = await add_token(
        vault.api, vault.ring, new, ctx.pins, say=ctx.say, qr_out=ctx.io.err
    )
    ctx.emit(
        {"key_id": key_id, "slot_made": made, "login": new.to_json()},
        [
            f"{new.describe()} can now open your vault (key id {key_id})"
            if made
            else f"{new.describe()} already had a key slot (key id {key_id})"
        ],
    )


async def cmd_safes(ctx: Context) -> None:
    safes = await (await ctx.vault()).safes()
    ctx.emit(
        {
            "safes": [
                {
                    "id": s.id,
                    "name": s.name,
                    "role": s.role,
                    "generation": s.generation,
                    "rotation_needed": s.rotation_needed,
                }
                for s in safes
            ]
        },
        table([[s.name, s.role, s.id] for s in safes], ["NAME", "ROLE", "ID"])
        if safes
        else ["no safes yet: `vault create-safe NAME`"],
    )


async def cmd_create_safe(ctx: Context) -> None:
    vault = await ctx.vault()
    if any(s.name == ctx.ns.name for s in await vault.safes()):
        ctx.warn(f"note: you already have a safe named {ctx.ns.name!r}; name them by id")
    safe = await vault.create_safe(ctx.ns.name)
    ctx.emit(
        {"id": safe["id"], "name": ctx.ns.name}, [f"created safe {ctx.ns.name!r} ({safe['id']})"]
    )


async def cmd_items(ctx: Context) -> None:
    safe = await ctx.open_safe()
    under = safe.path(safe.find_folder(ctx.ns.folder)) if ctx.ns.folder else ""

    def inside(path: str) -> bool:
        return not under or path == under or path.startswith(under + "/")

    chosen = [i for i in safe.items if inside(safe.path(i.folder_id))]
    if ctx.ns.search:
        chosen = [i for i in chosen if it.matches(i.content, ctx.ns.search)]
    rows: list[tuple[str, list[str]]] = []
    if not ctx.ns.search:
        for fid in safe.folders:
            path = safe.path(fid)
            if inside(path):
                rows.append((path + "/", ["folder", path + "/", "", ""]))
    for i in chosen:
        rows.append(
            (safe.item_path(i), [i.kind, safe.item_path(i), it.summary(i.content), i.ref[:8]])
        )
    rows.sort(key=lambda r: r[0].lower())
    data = {
        "safe": {"id": safe.ref, "name": safe.name, "role": safe.role},
        "folders": [
            {"id": enc(f.id), "path": safe.path(f.id), "version": f.version}
            for f in sorted(safe.folders.values(), key=lambda f: safe.path(f.id))
        ],
        "items": [item_json(safe, i) for i in sorted(chosen, key=safe.item_path)],
    }
    count = f"{len(chosen)} item{'s' if len(chosen) != 1 else ''}"
    lines = [f"safe {safe.name!r}: {count}"]
    if rows:
        lines += table([r for _, r in rows], ["TYPE", "NAME", "DETAILS", "ID"])
    ctx.emit(data, lines)


async def cmd_show(ctx: Context) -> None:
    safe = await ctx.open_safe()
    item = safe.find_item(ctx.ns.item)
    _show(ctx, safe, item, reveal=ctx.ns.reveal)


def _show(ctx: Context, safe: OpenedSafe, item: Item, *, reveal: bool) -> None:
    content, hidden = (dict(item.content), []) if reveal else it.masked(item.content)
    data = {**item_json(safe, item), "content": content, "hidden_fields": hidden}
    lines = it.describe(item.content, reveal=reveal)
    lines.insert(1, f"{'Folder:':15}{safe.path(item.folder_id) or '(top)'}")
    lines.append(f"version {item.version}, updated {when(item.updated_ms)}; id {item.ref}")
    if hidden and not reveal:
        lines.append("(--reveal shows the hidden values; `vault get ... --field NAME` prints one)")
    ctx.emit(data, lines)


async def cmd_get(ctx: Context) -> None:
    safe = await ctx.open_safe()
    item = safe.find_item(ctx.ns.item)
    value = it.get_field(item.content, ctx.ns.field_name)
    if ctx.ns.json:
        ctx.emit({"value": value})
        return
    ctx.io.out.write(value + ("\n" if ctx.io.out.isatty() else ""))
    ctx.io.out.flush()


async def cmd_totp(ctx: Context) -> None:
    safe = await ctx.open_safe()
    item = safe.find_item(ctx.ns.item)
    secret = item.content.get("totp")
    if not isinstance(secret, str) or not secret:
        raise NotFound(f"item {item.title!r} has no TOTP secret (`vault edit ... --totp stdin`)")
    spec = totp.parse(secret)
    now = ctx.ns.time if ctx.ns.time is not None else time.time()
    code = totp.code_at(spec, now)
    left = totp.seconds_left(spec, now)
    ctx.emit({"code": code, "seconds_left": left, "period": spec.period}, [code])
    if not ctx.ns.json:
        ctx.say(f"valid for {left} more seconds")


async def cmd_add(ctx: Context) -> None:
    ns = ctx.ns
    content = it.new_item(ns.kind, ns.title, changes(ctx, kind=ns.kind))
    safe = await ctx.open_safe()
    vault = await ctx.vault()
    folder_id, made = await vault.ensure_folder(safe, ns.folder or "")
    for path in made:
        ctx.say(f"made folder {path}/")
    if any(i.title == ns.title and i.folder_id == folder_id for i in safe.items):
        ctx.warn(f"note: this folder already has an item titled {ns.title!r}; name them by id")
    item = await vault.add_item(safe, content, folder_id)
    ctx.emit(
        {**item_json(safe, item), "folders_made": made},
        [f"added {safe.item_path(item)!r} to safe {safe.name!r} ({item.ref})"],
    )


async def cmd_edit(ctx: Context) -> None:
    ns = ctx.ns
    safe = await ctx.open_safe()
    item = safe.find_item(ns.item)
    ch = changes(ctx, kind=item.kind)
    vault = await ctx.vault()
    folder_id = item.folder_id
    made: list[str] = []
    if ns.folder is not None:
        folder_id, made = await vault.ensure_folder(safe, ns.folder)
    if ch.empty and folder_id == item.folder_id:
        raise Usage("nothing to change: give the fields to set (see `vault edit --help`)")
    content = it.apply(item.content, ch)
    expected = ns.expected_version if ns.expected_version is not None else item.version
    updated = await vault.update_item(
        safe, item, content, folder_id=folder_id, expected_version=expected
    )
    ctx.emit(
        {
            **item_json(safe, updated),
            "changed": it.changed(item.content, content),
            "folders_made": made,
        },
        [f"updated {safe.item_path(updated)!r} (now version {updated.version})"],
    )


async def cmd_delete(ctx: Context) -> None:
    ns = ctx.ns
    safe = await ctx.open_safe()
    item = safe.find_item(ns.item)
    if not ns.yes:
        if not ctx.io.stdin.isatty():
            raise Usage("deleting also deletes the item's history and files: add --yes")
        ctx.io.err.write(f"Delete {safe.item_path(item)!r}, its history and its files? [y/N] ")
        ctx.io.err.flush()
        if ctx.io.stdin.readline().strip().lower() not in ("y", "yes"):
            ctx.emit({"deleted": None}, ["nothing deleted"])
            return
    expected = ns.expected_version if ns.expected_version is not None else item.version
    await (await ctx.vault()).delete_item(safe, item, expected)
    ctx.emit({"deleted": item.ref}, [f"deleted {safe.item_path(item)!r}"])


async def cmd_history(ctx: Context) -> None:
    ns = ctx.ns
    safe = await ctx.open_safe()
    item = safe.find_item(ns.item)
    versions = [item, *await (await ctx.vault()).history(safe, item)]
    if ns.version is not None:
        chosen = next((v for v in versions if v.version == ns.version), None)
        if chosen is None:
            kept = ", ".join(str(v.version) for v in versions)
            raise NotFound(f"item {item.title!r} keeps versions {kept}, not {ns.version}")
        _show(ctx, safe, chosen, reveal=ns.reveal)
        return
    rows, data = [], []
    for n, v in enumerate(versions):
        newer = versions[n - 1] if n else None
        what = ", ".join(it.changed(v.content, newer.content)) if newer else "(current)"
        rows.append([str(v.version), when(v.updated_ms), v.title, what])
        data.append(
            {
                "version": v.version,
                "updated_ms": v.updated_ms,
                "title": v.title,
                "current": n == 0,
                "changed_in_next": it.changed(v.content, newer.content) if newer else [],
            }
        )
    ctx.emit(
        {"item": item.ref, "versions": data},
        table(rows, ["VERSION", "SAVED", "TITLE", "CHANGED BY THE NEXT VERSION"]),
    )


async def cmd_restore(ctx: Context) -> None:
    ns = ctx.ns
    safe = await ctx.open_safe()
    item = safe.find_item(ns.item)
    vault = await ctx.vault()
    old = next((v for v in await vault.history(safe, item) if v.version == ns.version), None)
    if old is None:
        raise NotFound(f"item {item.title!r} has no earlier version {ns.version}")
    folder = old.folder_id if old.folder_id is None or old.folder_id in safe.folders else None
    updated = await vault.update_item(
        safe, item, old.content, folder_id=folder, expected_version=item.version
    )
    ctx.emit(
        item_json(safe, updated),
        [
            f"restored {safe.item_path(updated)!r} to the content of version {ns.version} "
            f"(now version {updated.version})"
        ],
    )


async def cmd_move(ctx: Context) -> None:
    ns = ctx.ns
    safe = await ctx.open_safe()
    item = safe.find_item(ns.item)
    vault = await ctx.vault()
    to = await vault.find_safe(ns.to_safe)
    if to.id == safe.ref:
        raise Usage(
            f"{safe.item_path(item)!r} is already in safe {safe.name!r}; to change its folder: "
            "vault edit SAFE ITEM --folder PATH"
        )
    for role, name in ((safe.role, safe.name), (to.role, to.name)):
        if role == "viewer":
            raise CliError(
                f"you are viewer of safe {name!r}: moving an item out of or into a safe needs "
                "editor or admin in both. Nothing was moved.",
                Exit.FORBIDDEN,
            )
    target = await vault.open_id(to.id)
    folder_id = target.find_folder(ns.folder) if ns.folder else None
    expected = ns.expected_version if ns.expected_version is not None else item.version
    moved, plan = await vault.move_item(
        safe, item, target, folder_id=folder_id, expected_version=expected
    )
    arrived = _moved_item(item, moved["item"], plan)
    names = {f["id"]: f.get("name") for f in it.files(item.content)}
    data = {
        **item_json(target, arrived),
        "from_safe": {"id": safe.ref, "name": safe.name},
        "to_safe": {"id": target.ref, "name": target.name},
        "moved_files": [
            {"id": f["id"], "name": names.get(f["id"]), "size": f["size"]} for f in moved["files"]
        ],
        "moved_versions": int(moved["history"]),
        "missing_files": [enc(f) for f in plan.missing_files],
    }
    what = [
        f"{len(moved['files'])} file{'s' if len(moved['files']) != 1 else ''}",
        f"{moved['history']} earlier version{'s' if moved['history'] != 1 else ''}",
    ]
    lines = [
        f"moved {safe.item_path(item)!r} from safe {safe.name!r} to "
        f"{target.item_path(arrived)!r} in safe {target.name!r} (with {' and '.join(what)})"
    ]
    if plan.missing_files:
        ctx.warn(
            f"warning: the item lists {len(plan.missing_files)} file(s) that safe {safe.name!r} "
            "does not hold; the item still lists them, and there was nothing to move for them"
        )
    ctx.emit(data, lines)


def _moved_item(item: Item, moved: dict[str, Any], plan: MovePlan) -> Item:
    """The item as the target safe now holds it (its content is the plan's)."""
    return Item(
        id=item.id,
        folder_id=plan.folder_id,
        version=int(moved["version"]),
        generation=int(moved["generation"]),
        schema=int(moved["schema"]),
        content=dict(plan.content),
        updated_ms=int(moved["updated_ms"]),
    )


async def cmd_mkdir(ctx: Context) -> None:
    safe = await ctx.open_safe()
    fid, made = await (await ctx.vault()).ensure_folder(safe, ctx.ns.path)
    if fid is None:
        raise Usage("name the folder to make, e.g. Work/Servers")
    ctx.emit(
        {"id": enc(fid), "path": safe.path(fid), "made": made},
        [f"made {p}/" for p in made] or [f"{safe.path(fid)}/ already exists"],
    )


async def cmd_rmdir(ctx: Context) -> None:
    safe = await ctx.open_safe()
    await (await ctx.vault()).delete_folder(safe, ctx.ns.path)
    ctx.emit({"deleted": ctx.ns.path}, [f"deleted {ctx.ns.path.strip('/')}/"])


def _open_for_reading(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as e:
        raise Usage(f"cannot read {path}: {e.strerror}") from None


def _read_export(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_IMPORT_BYTES:
            raise Usage(f"{path} is over {MAX_IMPORT_BYTES // 2**20} MiB; is it an export?")
        return path.read_bytes()
    except OSError as e:
        raise Usage(f"cannot read {path}: {e.strerror}") from None


async def cmd_upload(ctx: Context) -> None:
    ns = ctx.ns
    path = Path(ns.file)
    size = file_size(path)
    safe = await ctx.open_safe()
    vault = await ctx.vault()
    target = safe.find_item(ns.item) if ns.item else None
    name = ns.name or path.name
    if target is not None and ns.folder:
        raise Usage("--folder is for a new document item; --item names an existing one")
    meter = Meter(f"uploading {name}", size, ctx.io.err, enabled=not ns.quiet)
    with _open_for_reading(path) as source:
        entry = await vault.upload(safe, source, size, name=name, progress=meter)
    try:
        if target is not None:
            listed = target.content.get("files")
            content = {**target.content, "files": [*(listed or []), entry]}
            item = await vault.update_item(
                safe, target, content, folder_id=target.folder_id, expected_version=target.version
            )
        else:
            folder_id, _ = await vault.ensure_folder(safe, ns.folder or "")
            item = await vault.add_item(
                safe, {"type": "document", "title": name, "files": [entry]}, folder_id
            )
    except BaseException:
        with contextlib.suppress(CliError):
            await vault.api.delete_file(safe.ref, entry["id"])
        raise
    ctx.say(f"uploaded {it.human_size(size)} at {meter.rate(size)}")
    ctx.emit(
        {"file": entry, "item": item_json(safe, item)},
        [f"uploaded {name} to {safe.item_path(item)!r} ({entry['id']})"],
    )


@contextlib.contextmanager
def _output(ctx: Context, target: str, name: str, *, force: bool) -> Iterator[tuple[BinaryIO, str]]:
    """Where a download goes: stdout, or a temporary file renamed into place
    only once the whole file has verified (else removed)."""
    if target == "-":
        raw = getattr(ctx.io.out, "buffer", None)
        if raw is None:
            raise Usage("standard output takes no bytes here; use -o FILE")
        ctx.io.out.flush()
        try:
            yield raw, "-"
        except CliError:
            ctx.warn("warning: the output above is incomplete; discard it")
            raise
        raw.flush()
        return
    path = Path(target or name)
    if path.is_dir():
        path = path / name
    if path.exists() and not force:
        raise Usage(f"{path} exists; choose another -o PATH or add --force")
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=".vault-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            yield f, str(path)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


async def cmd_download(ctx: Context) -> None:
    ns = ctx.ns
    safe = await ctx.open_safe()
    item = safe.find_item(ns.item)
    entries = it.files(item.content)
    if ns.file:
        entries = [f for f in entries if f.get("name") == ns.file or f["id"] == ns.file]
    if not entries:
        raise NotFound(
            f"item {item.title!r} has no file"
            + (f" {ns.file!r}" if ns.file else "")
            + (
                f"; its files: {', '.join(str(f.get('name')) for f in it.files(item.content))}"
                if it.files(item.content)
                else ""
            )
        )
    if len(entries) > 1:
        names = ", ".join(str(f.get("name")) for f in entries)
        raise Usage(f"item {item.title!r} has several files ({names}): choose one with --file NAME")
    entry = entries[0]
    name = Path(str(entry.get("name") or entry["id"])).name or str(entry["id"])
    size = int(entry.get("size") or 0)
    meter = Meter(f"downloading {name}", size, ctx.io.err, enabled=not ns.quiet)
    with _output(ctx, ns.output or "", name, force=ns.force) as (sink, where):
        written = await (await ctx.vault()).download(safe, entry, sink, progress=meter)
    ctx.say(f"downloaded {it.human_size(written)} at {meter.rate(written)}")
    if where != "-":
        ctx.emit({"path": where, "size": written, "name": name}, [f"saved {where}"])


async def cmd_import(ctx: Context) -> None:
    ns = ctx.ns
    path = Path(ns.file)
    text = importers.decode(_read_export(path))
    fmt = ns.format or importers.detect(text)
    parsed = importers.parse(text, fmt)
    safe = await ctx.open_safe()
    vault = await ctx.vault()
    prefix = (ns.folder or "").strip("/")
    existing = {(safe.path(i.folder_id), it.fingerprint(i.content)) for i in safe.items}
    ready: list[tuple[importers.Candidate, str]] = []
    skipped = list(parsed.skipped)
    for c in parsed.items:
        folder = "/".join(p for p in (prefix, c.folder.strip("/")) if p)
        if (folder, it.fingerprint(c.content)) in existing:
            skipped.append(importers.Skipped(c.source, "already in the safe"))
            continue
        try:
            item_body(safe, new_id(), c.content, version=1, folder_id=None)  # fits the format?
        except Usage as e:
            skipped.append(
                importers.Skipped(c.source, e.message.removeprefix("the item cannot be stored: "))
            )
            continue
        ready.append((c, folder))
    new_folders = sorted({f for _, f in ready if f and safe.missing_folders(f)[1]})
    kinds: dict[str, int] = {}
    for c, _ in ready:
        kinds[c.content["type"]] = kinds.get(c.content["type"], 0) + 1
    data: dict[str, Any] = {
        "format": fmt,
        "dry_run": bool(ns.dry_run),
        "imported": 0 if ns.dry_run else len(ready),
        "would_import": len(ready),
        "by_type": kinds,
        "skipped": [{"source": s.source, "reason": s.reason} for s in skipped],
        "notes": parsed.notes,
        "folders": new_folders,
        "items": [
            {
                "type": c.content["type"],
                "title": c.title,
                "folder": f,
                "username": c.content.get("username"),
            }
            for c, f in ready
        ],
    }
    lines: list[str] = []
    if ns.dry_run:
        lines.append(f"preview of importing {path.name} ({fmt}) into safe {safe.name!r}:")
        lines += (
            table(
                [
                    [
                        c.content["type"],
                        f"{f}/{c.title}" if f else c.title,
                        str(c.content.get("username") or ""),
                    ]
                    for c, f in ready
                ],
                ["TYPE", "NAME", "USERNAME"],
            )
            if ready
            else []
        )
    else:
        batch: list[tuple[dict[str, Any], bytes | None]] = []
        for c, folder in ready:
            fid, _ = await vault.ensure_folder(safe, folder)
            batch.append((c.content, fid))
        meter = Meter(
            "importing", max(len(batch), 1), ctx.io.err, enabled=not ns.quiet and len(batch) > 1000
        )
        stored = 0

        def progress(done: int) -> None:
            nonlocal stored
            stored = done
            meter(done)

        try:
            await vault.add_items(safe, batch, progress=progress)
        except CliError as e:
            raise CliError(
                f"{e.message} ({stored} of {len(batch)} items were imported before this; run "
                "the import again: items already in the safe are skipped)",
                e.status,
            ) from None
    verb = "would import" if ns.dry_run else "imported"
    by_type = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    lines.append(
        f"{verb} {len(ready)} items"
        + (f" ({by_type})" if by_type else "")
        + f", skipped {len(skipped)}"
    )
    if new_folders:
        lines.append(
            ("would make" if ns.dry_run else "made") + " folders: " + ", ".join(new_folders)
        )
    for s in skipped:
        lines.append(f"  skipped {s.source}: {s.reason}")
    for n in parsed.notes:
        lines.append(f"  note: {n}")
    ctx.emit(data, lines)


def write_private(path: Path, text: str, *, force: bool) -> None:
    """Write a plaintext export readable by its owner only (0600 from the
    moment it exists); an existing file is replaced only with --force."""
    if path.exists() and not force:
        raise Usage(f"{path} exists; choose another file or add --force to replace it")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".vault-export-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


async def cmd_export(ctx: Context) -> None:
    ns = ctx.ns
    safe = await ctx.open_safe()
    out = exporters.export(safe, ns.format)
    if ns.output == "-":
        ctx.warn("warning: the export below is PLAINTEXT: every secret of the safe, unencrypted")
        ctx.io.out.write(out.text)
        ctx.io.out.flush()
    else:
        path = Path(ns.output)
        write_private(path, out.text, force=ns.force)
        ctx.warn(PLAINTEXT_WARNING.format(path=path))
    for what in out.left_out:
        ctx.warn(f"not in the export: {what}")
    if ns.output != "-":
        ctx.emit(
            {"path": ns.output, "format": ns.format, "items": out.items, "left_out": out.left_out},
            [f"exported {out.items} items of safe {safe.name!r} to {ns.output} ({ns.format})"],
        )


async def cmd_generate(ctx: Context) -> None:
    value = passwords.generate(ctx.ns.length, symbols=not ctx.ns.no_symbols)
    ctx.emit({"password": value}, [value])


Command = Callable[[Context], Awaitable[None]]
COMMANDS: dict[str, Command] = {
    **FACTOR_COMMANDS,
    **device_commands.DEVICE_COMMANDS,
    "login": cmd_login,
    "logout": cmd_logout,
    "status": cmd_status,
    "whoami": cmd_whoami,
    "add-token": cmd_add_token,
    "safes": cmd_safes,
    "create-safe": cmd_create_safe,
    "items": cmd_items,
    "show": cmd_show,
    "get": cmd_get,
    "totp": cmd_totp,
    "add": cmd_add,
    "edit": cmd_edit,
    "delete": cmd_delete,
    "history": cmd_history,
    "restore": cmd_restore,
    "move": cmd_move,
    "mkdir": cmd_mkdir,
    "rmdir": cmd_rmdir,
    "upload": cmd_upload,
    "download": cmd_download,
    "import": cmd_import,
    "export": cmd_export,
    "generate": cmd_generate,
}
