"""`vault passphrase set|change|rollback` and `vault recovery setup|recover`
(docs/vault.md 5.4-5.6 and 17.3).

    vault passphrase set                       # asks twice; every token of this session
    vault passphrase change                    # the current one (--passphrase), then the new
    vault passphrase rollback                  # forgot the new one: the previous one opens it
    vault recovery setup --code                # prints a recovery code, once
    vault recovery recover alice --phone new.json   # lost every token: a new one takes over

Secrets come from where an option says (prompt, stdin, env:NAME, file:PATH),
never from the command line itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from vault_api.client import factors
from vault_api.client.errors import CliError, Exit, Usage
from vault_api.client.keys import dec
from vault_api.client.login import LoginMethod, authnet_login
from vault_api.client.session import (
    SessionState,
    factor_error,
    prove_token,
    sender,
)
from vault_api.client.vault import Vault

if TYPE_CHECKING:
    from vault_api.client.commands import Context


def _account(vault: Vault) -> factors.Account:
    r = vault.ring
    return factors.Account(
        user_id=r.user_id,
        public_key=r.public_key,
        keypair_version=r.keypair_version,
        private_key=r.private_key,
    )


async def cmd_passphrase(ctx: Context) -> None:
    action = ctx.ns.action
    try:
        if action == "set":
            await _set(ctx)
        elif action == "change":
            await _change(ctx)
        else:
            await _rollback(ctx)
    except factors.FactorError as e:
        raise factor_error(e) from None


async def _set(ctx: Context) -> None:
    vault = await ctx.vault()
    ring = vault.ring
    if ring.token_factor is not None:
        raise Usage("this vault already has a passphrase: `vault passphrase change`")
    assert ring.kc is not None
    assert ring.key_id is not None
    new = ctx.secret(ctx.ns.new or "prompt", "new vault passphrase")
    t, out = await factors.set_passphrase(
        sender(vault.api),
        _account(vault),
        {ring.key_id: ring.kc},
        new,
        drop_unproven=bool(ctx.ns.drop_other_tokens),
    )
    ring.token_factor = t
    dropped = out.get("dropped_key_ids", [])
    lines = ["vault passphrase set: your vault now opens only with a token AND the passphrase"]
    if dropped:
        lines.append(
            f"{len(dropped)} other token(s) can no longer open it: add them again with "
            "`vault add-token` (it asks for the passphrase)"
        )
    ctx.emit({"passphrase": True, "dropped_key_ids": dropped}, lines)


async def _change(ctx: Context) -> None:
    vault = await ctx.vault()  # asks for the current passphrase (--passphrase)
    ring = vault.ring
    if ring.token_factor is None:
        raise Usage("this vault has no passphrase yet: `vault passphrase set`")
    current = await vault.api.call("GET", "/api/me/factors")
    new = ctx.secret(ctx.ns.new or "prompt", "new vault passphrase")
    out = await factors.change_passphrase(
        sender(vault.api),
        _account(vault),
        ring.token_factor,
        new,
        expected_wrap_id=dec(current["passphrase"]["id"]),
    )
    newest = out["history"][0] if out["history"] else None
    kept = newest["expires_ms"] if newest else None
    days = (kept - newest["replaced_ms"]) / 86_400_000 if newest and kept else 0
    ctx.emit(
        {"changed": True, "previous_kept_until_ms": kept},
        [
            "vault passphrase changed",
            f"the previous one still rolls back (`vault passphrase rollback`) for {days:g} day(s)",
        ],
    )


async def _rollback(ctx: Context) -> None:
    state = ctx.state()
    if state is None or state.server != ctx.server():
        raise CliError(
            "not logged in: `vault login` first (it stops at the passphrase)", Exit.LOGIN
        )
    api = ctx.api()
    s, kc, slot = await prove_token(
        api, state, ctx.method() or state.method, ctx.pins, say=ctx.say, qr_out=ctx.io.err
    )
    old = ctx.secret_once(ctx.ns.old or "prompt", "previous vault passphrase")
    await factors.rollback_passphrase(
        sender(api), kc=kc, user=s["user"], slot=slot, old_passphrase=old
    )
    ctx.emit(
        {"rolled_back": True},
        ["rolled back: the previous vault passphrase is the current one again"],
    )


async def cmd_recovery(ctx: Context) -> None:
    try:
        if ctx.ns.action == "setup":
            await _setup(ctx)
        else:
            await _recover(ctx)
    except factors.FactorError as e:
        raise factor_error(e) from None


async def _setup(ctx: Context) -> None:
    vault = await ctx.vault()
    if ctx.ns.code and ctx.ns.recovery_passphrase:
        raise Usage("a recovery code or a recovery passphrase, not both")
    secret = (
        None
        if ctx.ns.code
        else ctx.secret(ctx.ns.recovery_passphrase or "prompt", "recovery passphrase")
    )
    text, _ = await factors.setup_recovery(sender(vault.api), _account(vault), secret)
    if secret is None:
        ctx.emit(
            {"recovery": "code", "code": text},
            [
                "your recovery code (shown once; print it or write it down, keep it away from "
                "your tokens):",
                "",
                f"    {text}",
                "",
                "with it, `vault recovery recover HANDLE` (or the page) opens your vault after "
                "losing every token",
            ],
        )
    else:
        ctx.emit({"recovery": "passphrase"}, ["recovery passphrase set"])


async def _recover(ctx: Context) -> None:
    method: LoginMethod | None = ctx.method()
    if method is None:
        raise Usage("name the NEW token to log in with: --phone STORE, --token KIND ... or --qr")
    api = ctx.api()
    ticket, kc = await authnet_login(api, method, ctx.pins, say=ctx.say, qr_out=ctx.io.err)
    s = await api.login(ticket)
    source = ctx.ns.secret or "prompt"
    secret = ctx.secret_once(source, "recovery code or passphrase")
    account, session = await factors.recover(
        sender(api), handle=ctx.ns.handle, secret=secret, kc=kc, key_id=dec(s["key_id"])
    )
    state = SessionState(
        server=api.base_url,
        session_cookie=api.session_cookie or "",
        csrf=str(session["csrf_token"]),
        user_id=str(session["user"]["user_id"]),
        handle=session["user"]["handle"],
        key_id=str(session["key_id"]),
        method=method,
    )
    ctx.state_file.save(state)
    ctx.shared.state, ctx.shared.user = state, session["user"]
    ctx.shared.vault = None
    ctx.emit(
        {"recovered": True, "handle": state.handle, "key_id": state.key_id},
        [
            f"recovered {state.handle}: {method.describe()} is now the account's only token",
            "the lost tokens' slots and the vault passphrase were removed; set a new one with "
            "`vault passphrase set`, and a new recovery code with `vault recovery setup`",
        ],
    )
    assert account.user_id == dec(state.user_id)


FACTOR_COMMANDS: dict[str, Callable[[Context], Awaitable[None]]] = {
    "passphrase": cmd_passphrase,
    "recovery": cmd_recovery,
}
