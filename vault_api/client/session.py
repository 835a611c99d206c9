"""The session between commands, and unlocking it.

**What persists** (the state file, 0600 in a 0700 folder, written atomically):
the server's URL, the session cookie and CSRF token (what a browser's
cookie jar and page hold), the account's user id, handle and the key id of
the token logged in with, and how to reach that token again (the phone key
store's path, or the token kind and its reader, PKCS#11 module and label).
**What never does:** Kc, the private key, a safe key, a PIN, a plaintext.

So the file lets a command act *as the session* (the server's access rules,
its idle timeout and 12-hour limit, `vault logout` ending it), but it opens
nothing: every command that reads or writes a secret proves the token again
within the session (an authnet login answered by the token, redeemed with
`POST /api/session/tokens`), gets a fresh Kc, and opens the key slot in
memory. A stolen state file gives what a stolen browser cookie gives until
the session ends: the ciphertext the server would serve, and the power to
delete; never a secret. `vault shell` logs in once and keeps the keys in
memory until it exits, for people who scan QR codes with a real phone.

The file is `--state FILE`, else `$VAULT_STATE`, else
`$XDG_STATE_HOME/authnet-vault/session.json`, else
`~/.local/state/authnet-vault/session.json`. A file readable by others is
refused, as ssh refuses a private key readable by others.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from cryptography.hazmat.primitives.asymmetric import x25519

from vault_api.client import factors
from vault_api.client.api import VaultApi
from vault_api.client.errors import ApiError, CliError, Exit, Usage
from vault_api.client.keys import Keyring, dec, enc, new_account
from vault_api.client.login import LoginMethod, Pins, Say, authnet_login
from vault_api.crypto import make_slot
from vault_api.crypto.errors import VaultCryptoError
from vault_api.crypto.factors import make_token_slot

# Asks for the vault passphrase when the account has one (None: there is no way to).
AskPassphrase = Callable[[], str] | None
# The device bypass (docs/devices.md 4): given the user and T, the private key,
# or None to ask for the passphrase (it says why). None: no device here.
Bypass = Callable[[Mapping[str, Any], bytes], Awaitable[x25519.X25519PrivateKey | None]] | None


def sender(api: VaultApi) -> factors.Send:
    async def send(method: str, path: str, body: Any) -> Any:
        return await api.call(method, path, json=body)

    return send


def factor_error(e: factors.FactorError) -> CliError:
    status = Exit.LOGIN if e.code in ("passphrase_invalid", "recovery_invalid") else Exit.REFUSED
    if e.code in ("passphrase_weak", "recovery_code_invalid"):
        status = Exit.USAGE
    elif e.code in ("hardener_not_configured", "no_history"):
        status = Exit.ERROR
    return CliError(e.message, status)


async def open_keys(
    api: VaultApi,
    kc: bytes,
    *,
    user: Mapping[str, Any],
    slot: Mapping[str, Any],
    passphrase: AskPassphrase,
    say: Say,
    bypass: Bypass = None,
) -> Keyring:
    """The keys from this token's slot; with a vault passphrase set, from the
    slot's token factor and this device's bypass (when it has one and it
    opens), else the passphrase hardened through the server."""
    if slot.get("kind", "kc") != "kc+passphrase":
        return Keyring.from_slot(kc, user=user, slot=slot)
    if bypass is not None:
        try:
            t = factors.token_factor(kc, user=user, slot=slot)
        except VaultCryptoError:
            t = None  # the passphrase path says what is wrong with the slot
        sk = await bypass(user, t) if t is not None else None
        if sk is not None:
            return Keyring(
                user_id=dec(user["user_id"]),
                public_key=dec(user["public_key"]),
                private_key=sk,
                keypair_version=int(slot["keypair_version"]),
                kc=kc,
                key_id=dec(slot["key_id"]),
                token_factor=t,
            )
    if passphrase is None:
        raise CliError(
            "this vault has a passphrase: give it with --passphrase SOURCE (prompt, stdin, "
            "env:NAME or file:PATH)",
            Exit.LOGIN,
        )
    t0 = time.perf_counter()
    timings: list[factors.Hardened] = []
    try:
        t, sk = await factors.unlock_passphrase(
            sender(api), kc=kc, user=user, slot=slot, passphrase=passphrase(), timings=timings
        )
    except factors.FactorError as e:
        raise factor_error(e) from None
    if timings:
        h = timings[0]
        say(
            f"vault passphrase accepted ({h.slow_hash_ms:.0f} ms PBKDF2, {h.round_trip_ms:.0f} ms "
            f"hardener round trip, {(time.perf_counter() - t0) * 1000:.0f} ms in all)"
        )
    return Keyring(
        user_id=dec(user["user_id"]),
        public_key=dec(user["public_key"]),
        private_key=sk,
        keypair_version=int(slot["keypair_version"]),
        kc=kc,
        key_id=dec(slot["key_id"]),
        token_factor=t,
    )


STATE_VERSION = 1


def default_state_path() -> Path:
    explicit = os.environ.get("VAULT_STATE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_STATE_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "state"
    return root / "authnet-vault" / "session.json"


@dataclass(kw_only=True)
class SessionState:
    server: str
    session_cookie: str = field(repr=False)
    csrf: str = field(repr=False)
    user_id: str
    handle: str | None
    key_id: str
    method: LoginMethod
    saved_ms: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "server": self.server,
            "session_cookie": self.session_cookie,
            "csrf_token": self.csrf,
            "user_id": self.user_id,
            "handle": self.handle,
            "key_id": self.key_id,
            "login": self.method.to_json(),
            "saved_ms": self.saved_ms,
        }

    @classmethod
    def from_json(cls, d: Any) -> SessionState:
        if not isinstance(d, dict) or d.get("version") != STATE_VERSION:
            raise ValueError("not a version-1 session file")
        return cls(
            server=str(d["server"]),
            session_cookie=str(d["session_cookie"]),
            csrf=str(d["csrf_token"]),
            user_id=str(d["user_id"]),
            handle=d.get("handle") if isinstance(d.get("handle"), str) else None,
            key_id=str(d["key_id"]),
            method=LoginMethod.from_json(d["login"]),
            saved_ms=int(d.get("saved_ms") or 0),
        )


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> SessionState | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise CliError(f"cannot read the session file {self.path}: {e.strerror}") from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CliError(
                f"the session file {self.path} can be read by other users (mode "
                f"{stat.S_IMODE(st.st_mode):o}); refusing to use it. `chmod 600` it, or "
                "`vault logout` and log in again",
                Exit.LOGIN,
            )
        try:
            return SessionState.from_json(json.loads(self.path.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            raise CliError(
                f"the session file {self.path} is damaged; delete it and log in again", Exit.LOGIN
            ) from None

    def save(self, state: SessionState) -> None:
        state.saved_ms = time.time_ns() // 1_000_000
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".session-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(state.to_json(), f, indent=1)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def remove(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True


@dataclass(kw_only=True)
class Unlocked:
    """A session with its keys open in memory."""

    state: SessionState
    ring: Keyring
    user: dict[str, Any]
    registered_now: bool = False


async def start(
    api: VaultApi,
    method: LoginMethod,
    pins: Pins,
    *,
    handle: str | None,
    say: Say,
    qr_out: TextIO,
    passphrase: AskPassphrase = None,
    bypass: Bypass = None,
) -> Unlocked:
    """A new session: log in, then open this token's key slot, or on an
    account's first login make its key pair and first slot (docs/vault.md 5)."""
    ticket, kc = await authnet_login(api, method, pins, say=say, qr_out=qr_out)
    s = await api.login(ticket)
    state = SessionState(
        server=api.base_url,
        session_cookie=api.session_cookie or "",
        csrf=str(s["csrf_token"]),
        user_id=str(s["user"]["user_id"]),
        handle=s["user"].get("handle"),
        key_id=str(s["key_id"]),
        method=method,
    )
    user = s["user"]
    if not user["registered"]:
        if not handle:
            raise CliError(
                "this is the account's first login to the vault: choose a handle (how others "
                "find you to share safes) with `vault login --handle NAME`",
                Exit.USAGE,
            )
        ring, slot = new_account(kc, user_id=dec(user["user_id"]), key_id=dec(s["key_id"]))
        me = await api.register(handle=handle, public_key=enc(ring.public_key), slot=enc(slot))
        state.handle = me["user"]["handle"]
        return Unlocked(state=state, ring=ring, user=me["user"], registered_now=True)
    if handle and handle != user.get("handle"):
        raise Usage(f"this account's handle is already {user.get('handle')!r}")
    if s["slot"] is None:
        raise _no_slot()
    ring = await open_keys(
        api, kc, user=user, slot=s["slot"], passphrase=passphrase, say=say, bypass=bypass
    )
    return Unlocked(state=state, ring=ring, user=user)


def _no_slot() -> CliError:
    return CliError(
        "this token has no key slot in the vault yet, so it cannot open your keys: log in "
        "with a token that has one, then `vault add-token` with this one (or add it in the "
        "browser)",
        Exit.LOGIN,
    )


async def add_token(
    api: VaultApi,
    ring: Keyring,
    method: LoginMethod,
    pins: Pins,
    *,
    say: Say,
    qr_out: TextIO,
) -> tuple[str, bool]:
    """Give another token of the account a key slot (docs/vault.md 5.2): prove
    it within this session, then wrap the private key, open in memory, under
    the new token's slot key. Returns its key id and whether a slot was made."""
    ticket, kc = await authnet_login(api, method, pins, say=say, qr_out=qr_out)
    try:
        proven = await api.prove(ticket)
    except ApiError as e:
        if e.error == "other_account":
            raise CliError(
                f"{method.describe()} belongs to another account: enrol it into this one first "
                "(`passkey enrol --add-to`, `passkey-phone enrol --backup-of`)",
                Exit.LOGIN,
            ) from None
        raise
    key_id = str(proven["key_id"])
    if proven["has_slot"]:
        return key_id, False
    if ring.token_factor is not None:  # a vault passphrase: the new slot holds T
        slot = make_token_slot(
            kc,
            ring.token_factor,
            user_id=ring.user_id,
            key_id=dec(key_id),
            keypair_version=ring.keypair_version,
            public_key=ring.public_key,
        )
        kind = "kc+passphrase"
    else:
        slot = make_slot(
            kc,
            ring.private_key,
            user_id=ring.user_id,
            key_id=dec(key_id),
            keypair_version=ring.keypair_version,
        )
        kind = "kc"
    await api.put_slot(key_id, keypair_version=ring.keypair_version, slot=enc(slot), kind=kind)
    return key_id, True


async def unlock(
    api: VaultApi,
    state: SessionState,
    method: LoginMethod,
    pins: Pins,
    *,
    say: Say,
    qr_out: TextIO,
    passphrase: AskPassphrase = None,
    bypass: Bypass = None,
) -> Unlocked:
    """Open the keys of a saved session: prove the token again within it and
    open its slot with the fresh Kc. If the session has ended, start a new one
    with the same token (the caller saves the new state)."""
    api.resume(state.session_cookie, state.csrf)
    try:
        s = await api.session()
    except ApiError as e:
        if not e.ended_session:
            raise
        say(f"the session had ended ({e.error}); logging in again")
        api.forget_session()
        return await start(
            api,
            method,
            pins,
            handle=None,
            say=say,
            qr_out=qr_out,
            passphrase=passphrase,
            bypass=bypass,
        )
    _notices(s, say)
    ticket, kc = await authnet_login(api, method, pins, say=say, qr_out=qr_out, announce=False)
    try:
        proven = await api.prove(ticket)
    except ApiError as e:
        if e.error == "other_account":
            raise CliError(
                f"{method.describe()} belongs to another vault account than this session's "
                f"({state.handle}): `vault logout`, then `vault login` with it",
                Exit.LOGIN,
            ) from None
        raise
    user = s["user"]
    if not user["registered"]:
        raise CliError(
            "the account has no keys yet: `vault login --handle NAME` finishes its first login",
            Exit.LOGIN,
        )
    if not proven["has_slot"]:
        raise _no_slot()
    slot = await api.slot(proven["key_id"])
    state.csrf = str(s["csrf_token"])
    state.handle = user.get("handle")
    ring = await open_keys(
        api, kc, user=user, slot=slot, passphrase=passphrase, say=say, bypass=bypass
    )
    return Unlocked(state=state, ring=ring, user=user)


def _notices(s: Mapping[str, Any], say: Say) -> None:
    """Tell the user what another session did to the account (a recovery)."""
    for n in s.get("notices", []):
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(int(n["at_ms"]) / 1000))
        if n["action"] == "account.recover":
            say(
                f"warning: this account was RECOVERED from another session at {when} (with the "
                "recovery secret; every other token's slot was removed). If that was not you, "
                "tell the vault's operator now"
            )
        else:
            say(f"note: {n['action']} from another session at {when}")


async def prove_token(
    api: VaultApi, state: SessionState, method: LoginMethod, pins: Pins, *, say: Say, qr_out: TextIO
) -> tuple[dict[str, Any], bytes, dict[str, Any]]:
    """The session, a fresh Kc of its token and the token's slot, without opening
    anything (a passphrase rollback opens a kept wrap instead)."""
    api.resume(state.session_cookie, state.csrf)
    s = await api.session()
    ticket, kc = await authnet_login(api, method, pins, say=say, qr_out=qr_out, announce=False)
    proven = await api.prove(ticket)
    if not proven["has_slot"]:
        raise _no_slot()
    return s, kc, await api.slot(proven["key_id"])
