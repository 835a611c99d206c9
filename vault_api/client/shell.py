"""`vault shell`: log in once, then run commands with the keys in memory.

For people who scan QR codes with a real phone, a scan per command is too
many; the shell proves the token once and keeps the private key and the safe
keys in this process until it exits (`exit`, end of input, or `logout`). The
server's idle timeout still applies: a session that ends is logged in again
with the same token, once, and the command retried.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex

from vault_api.client.commands import COMMANDS, Context, Io, Shared
from vault_api.client.errors import ApiError

INHERITED = (
    "server",
    "state",
    "phone",
    "token_kind",
    "reader",
    "pkcs11_module",
    "pkcs11_token",
    "fido2_sim",
    "book",
    "qr",
)
NOT_HERE = {"shell": "you are in the shell", "login": "you are logged in (`logout` ends it)"}


def _read(io: Io, prompt: str) -> str | None:
    if io.stdin.isatty():
        try:
            return input(prompt)
        except EOFError:
            return None
    io.err.write(prompt)
    io.err.flush()
    line = io.stdin.readline()
    return line.rstrip("\n") if line else None


async def shell(ns: argparse.Namespace, io: Io, shared: Shared) -> int:
    from vault_api.client.cli import parser, report

    shared.in_shell = True
    ctx = Context(ns, io, shared)
    vault = await ctx.vault()
    state = shared.state
    handle = state.handle if state else "?"
    ctx.say(
        f"vault shell: {handle} at {ctx.server()}; your keys stay in memory until you leave "
        f"(fingerprint {vault.ring.fingerprint}). `help` lists commands, `exit` leaves."
    )
    p = parser()
    while True:
        line = await asyncio.to_thread(_read, io, "vault> ")
        if line is None or line.strip() in ("exit", "quit"):
            break
        try:
            words = shlex.split(line)
        except ValueError as e:
            io.err.write(f"vault: {e}\n")
            continue
        if not words:
            continue
        if words[0] == "help":
            io.out.write("commands: " + ", ".join(sorted(COMMANDS)) + "; COMMAND --help\n")
            continue
        if words[0] in NOT_HERE:
            io.err.write(f"vault: {NOT_HERE[words[0]]}\n")
            continue
        try:
            sub = p.parse_args(words)
        except SystemExit:
            continue  # argparse has said what was wrong (or printed help)
        for name in INHERITED:
            setattr(sub, name, getattr(ns, name))
        sub.pin_stdin = False  # the PIN line was read when the shell started
        for attempt in (1, 2):
            try:
                await COMMANDS[sub.command](Context(sub, io, shared))
            except ApiError as e:
                if e.ended_session and attempt == 1:
                    ctx.say("the session ended; logging in again")
                    shared.vault = None
                    try:
                        await ctx.vault()
                    except Exception as again:
                        report(again, io)
                        return int(getattr(again, "status", 1))
                    continue
                report(e, io)
            except Exception as e:
                report(e, io)
            break
        if sub.command == "logout":
            break
    return 0
