"""The client's side of the vault passphrase and the recovery slot
(docs/vault.md 5.4-5.6), over any `Send` (the CLI's VaultApi, the tests' driver).

Every secret step happens here, in the client: the slow hash, blinding,
unblinding and the proof check against the key the record pins, the keys,
the wraps, the success signature. The server sees a blinded element, the
hardener's answer, and ciphertext.

    t, sk = await unlock_passphrase(send, kc=kc, user=user, slot=slot, passphrase=p)
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from authnet.protocol.encoding import b64u_decode, b64u_encode
from hardener import labels as hlabels
from hardener import oprf
from vault_api.crypto import factors as f
from vault_api.crypto import success as s
from vault_api.crypto.errors import PassphraseInvalid, RecoveryInvalid
from vault_api.crypto.userkeys import make_slot, public_key_bytes

# (method, path, json body or None) -> the parsed JSON answer; raises on a refusal.
Send = Callable[[str, str, Any], Awaitable[Any]]


class FactorError(Exception):
    """A hardened factor could not be used; the message says why and what to do."""

    def __init__(self, message: str, *, code: str) -> None:
        self.message = message
        self.code = code
        super().__init__(message)


def dec(text: str) -> bytes:
    return b64u_decode(text, field="value")


def enc(data: bytes) -> str:
    return b64u_encode(data)


@dataclass(frozen=True, kw_only=True)
class HardenerInfo:
    caller: str
    current_version: int
    keys: Mapping[int, bytes]
    iterations: int
    require_passphrase: bool


@dataclass(frozen=True, kw_only=True)
class Hardened:
    """y and the evaluation it came from, with how long each step took."""

    y: bytes = field(repr=False)
    attempt_id: bytes
    nonce: bytes
    attempts_left: int
    slow_hash_ms: float
    round_trip_ms: float


@dataclass(frozen=True, kw_only=True)
class Account:
    """What a client with the private key open knows of its account."""

    user_id: bytes
    public_key: bytes
    keypair_version: int
    private_key: x25519.X25519PrivateKey = field(repr=False)


async def hardener_info(send: Send) -> HardenerInfo:
    h = await send("GET", "/api/hardener", None)
    if not h["enabled"]:
        raise FactorError(
            "this vault has no hardener configured, so it offers no vault passphrase or "
            "recovery slot (the operator sets hardener_address and hardener_credentials)",
            code="hardener_not_configured",
        )
    return HardenerInfo(
        caller=h["caller"],
        current_version=int(h["current_version"]),
        keys={int(k["version"]): dec(k["public_key"]) for k in h["keys"] if k["public_key"]},
        iterations=int(h["kdf"]["iterations"]),
        require_passphrase=bool(h["require_passphrase"]),
    )


def new_params(info: HardenerInfo) -> f.FactorParams:
    v = info.current_version
    return f.FactorParams.new(
        iterations=info.iterations, key_version=v, hardener_public_key=info.keys[v]
    )


def params_of(record: Mapping[str, Any]) -> f.FactorParams:
    return f.FactorParams(
        record_id=dec(record["id"]),
        salt=dec(record["salt"]),
        iterations=int(record["iterations"]),
        key_version=int(record["key_version"]),
        hardener_public_key=dec(record["hardener_public_key"]),
    )


def _check_new(secret: str) -> None:
    try:
        f.check_new_secret(secret)
    except ValueError as e:
        raise FactorError(
            f"{e}; choose a longer one (a sentence is easy to remember)", code="passphrase_weak"
        ) from None


def record_json(params: f.FactorParams) -> dict[str, Any]:
    return {
        "id": enc(params.record_id),
        "salt": enc(params.salt),
        "iterations": params.iterations,
        "key_version": params.key_version,
        "hardener_public_key": enc(params.hardener_public_key),
    }


async def harden(
    send: Send,
    secret: str,
    *,
    purpose: f.Purpose,
    user_id: bytes,
    params: f.FactorParams,
    caller: str,
    path: str = "/api/hardener/evaluate",
    extra: Mapping[str, Any] | None = None,
) -> Hardened:
    """x = slow hash; blind it; the server relays it; unblind and check the
    proof against the key the record pins (ProofInvalid: another key)."""
    t0 = time.perf_counter()
    x = f.slow_hash(secret, purpose=purpose, user_id=user_id, params=params)
    t1 = time.perf_counter()
    info = hlabels.poprf_info(caller, f.hardener_user_id(user_id, purpose))
    blinded = oprf.poprf_blind(x, info, params.hardener_public_key)
    body = {
        **(extra or {"purpose": purpose}),
        "blinded_element": enc(blinded.blinded_element),
        "key_version": params.key_version,
    }
    ev = await send("POST", path, body)
    try:
        y = oprf.poprf_finalize(
            x,
            blinded.blind,
            dec(ev["evaluated_element"]),
            blinded.blinded_element,
            dec(ev["proof"]),
            info,
            blinded.tweaked_key,
        )
    except oprf.OprfError:
        raise FactorError(
            "the hardener's answer does not verify against the key this record pins (a "
            "hardener that changed its key, or a server that answered for it): refused, "
            "nothing was changed",
            code="hardener_proof_invalid",
        ) from None
    t2 = time.perf_counter()
    return Hardened(
        y=y,
        attempt_id=dec(ev["attempt_id"]),
        nonce=dec(ev["nonce"]),
        attempts_left=int(ev["attempts_left"]),
        slow_hash_ms=(t1 - t0) * 1000,
        round_trip_ms=(t2 - t1) * 1000,
    )


def _success_key(
    factors: Mapping[str, Any], account: Account, purpose: f.Purpose
) -> tuple[ed25519.Ed25519PrivateKey, dict[str, str] | None]:
    """The account's success key for `purpose` (opened), and the JSON to send
    when it is new."""
    for k in factors.get("success_keys", []):
        if k["purpose"] == purpose:
            key = s.open_success_key(
                dec(k["sealed"]), account.private_key, user_id=account.user_id, purpose=purpose
            )
            return key, None
    key = s.new_success_key()
    sealed = s.seal_success_key(key, account.public_key, user_id=account.user_id, purpose=purpose)
    return key, {"public_key": enc(s.success_public_key(key)), "sealed": enc(sealed)}


async def _report(
    send: Send,
    key: ed25519.Ed25519PrivateKey,
    h: Hardened,
    *,
    caller: str,
    user_id: bytes,
    purpose: f.Purpose,
) -> None:
    sig = s.sign_success(
        key,
        caller=caller,
        user_id=f.hardener_user_id(user_id, purpose),
        attempt_id=h.attempt_id,
        nonce=h.nonce,
    )
    body = {"purpose": purpose, "attempt_id": enc(h.attempt_id), "signature": enc(sig)}
    await send("POST", "/api/hardener/success", body)


def _account_user(account: Account) -> dict[str, Any]:
    return {"user_id": enc(account.user_id), "public_key": enc(account.public_key)}


# --- the vault passphrase -------------------------------------------------------------


async def set_passphrase(
    send: Send,
    account: Account,
    kcs: Mapping[bytes, bytes],
    passphrase: str,
    *,
    drop_unproven: bool = False,
) -> tuple[bytes, dict[str, Any]]:
    """Set the first passphrase: a token slot for every Kc given (tokens the
    session proved), and the wrap. Returns T and the server's factors."""
    _check_new(passphrase)
    info = await hardener_info(send)
    current = await send("GET", "/api/me/factors", None)
    key, new_key = _success_key(current, account, "passphrase")
    params = new_params(info)
    h = await harden(
        send,
        passphrase,
        purpose="passphrase",
        user_id=account.user_id,
        params=params,
        caller=info.caller,
    )
    fk = f.hardened_key(h.y, purpose="passphrase", user_id=account.user_id, params=params)
    t = f.new_token_factor()
    wrap = f.make_passphrase_wrap(
        f.passphrase_kek(t, fk),
        account.private_key,
        user_id=account.user_id,
        keypair_version=account.keypair_version,
        params=params,
    )
    slots = [
        {
            "key_id": enc(kid),
            "slot": enc(
                f.make_token_slot(
                    kc,
                    t,
                    user_id=account.user_id,
                    key_id=kid,
                    keypair_version=account.keypair_version,
                    public_key=account.public_key,
                )
            ),
        }
        for kid, kc in kcs.items()
    ]
    out = await send(
        "PUT",
        "/api/me/passphrase",
        {
            "wrap": {**record_json(params), "wrap": enc(wrap)},
            "token_slots": slots,
            "success_key": new_key,
            "drop_unproven": drop_unproven,
        },
    )
    await _report(send, key, h, caller=info.caller, user_id=account.user_id, purpose="passphrase")
    return t, out


def token_factor(kc: bytes, *, user: Mapping[str, Any], slot: Mapping[str, Any]) -> bytes:
    """T from this token's kc+passphrase slot."""
    return f.open_token_slot(
        kc,
        dec(slot["slot"]),
        user_id=dec(user["user_id"]),
        key_id=dec(slot["key_id"]),
        keypair_version=int(slot["keypair_version"]),
        public_key=dec(user["public_key"]),
    )


async def _open_wrap(
    send: Send,
    info: HardenerInfo,
    record: Mapping[str, Any],
    t: bytes,
    passphrase: str,
    *,
    user_id: bytes,
    public_key: bytes,
    keypair_version: int,
) -> tuple[x25519.X25519PrivateKey, Hardened]:
    params = params_of(record)
    h = await harden(
        send, passphrase, purpose="passphrase", user_id=user_id, params=params, caller=info.caller
    )
    fk = f.hardened_key(h.y, purpose="passphrase", user_id=user_id, params=params)
    try:
        sk = f.open_passphrase_wrap(
            f.passphrase_kek(t, fk),
            dec(record["wrap"]),
            user_id=user_id,
            keypair_version=keypair_version,
            public_key=public_key,
            params=params,
        )
    except PassphraseInvalid:
        raise wrong_passphrase(h.attempts_left) from None
    return sk, h


def wrong_passphrase(attempts_left: int) -> FactorError:
    return FactorError(
        f"wrong vault passphrase ({attempts_left} attempts left before the hardener locks it; "
        "forgot a new one? `vault passphrase rollback` with the previous one)",
        code="passphrase_invalid",
    )


async def unlock_passphrase(
    send: Send,
    *,
    kc: bytes,
    user: Mapping[str, Any],
    slot: Mapping[str, Any],
    passphrase: str,
    timings: list[Hardened] | None = None,
) -> tuple[bytes, x25519.X25519PrivateKey]:
    """Open the private key with both factors: T from the token's slot, F from
    the hardened passphrase. Reports the success (which resets the count) and
    re-keys the wrap lazily when the hardener has a newer key version."""
    user_id, public_key = dec(user["user_id"]), dec(user["public_key"])
    kpv = int(slot["keypair_version"])
    t = token_factor(kc, user=user, slot=slot)
    info = await hardener_info(send)
    factors = await send("GET", "/api/me/factors", None)
    record = factors["passphrase"]
    if record is None:
        raise FactorError("this account has no vault passphrase", code="passphrase_unset")
    sk, h = await _open_wrap(
        send,
        info,
        record,
        t,
        passphrase,
        user_id=user_id,
        public_key=public_key,
        keypair_version=kpv,
    )
    if timings is not None:
        timings.append(h)
    account = Account(user_id=user_id, public_key=public_key, keypair_version=kpv, private_key=sk)
    key, _ = _success_key(factors, account, "passphrase")
    await _report(send, key, h, caller=info.caller, user_id=user_id, purpose="passphrase")
    if int(record["key_version"]) != info.current_version:
        await change_passphrase(
            send, account, t, passphrase, expected_wrap_id=dec(record["id"]), info=info
        )
    return t, sk


async def change_passphrase(
    send: Send,
    account: Account,
    t: bytes,
    new_passphrase: str,
    *,
    expected_wrap_id: bytes,
    info: HardenerInfo | None = None,
) -> dict[str, Any]:
    """A new wrap under the same T (no token slot changes); the old one is kept."""
    _check_new(new_passphrase)
    info = info or await hardener_info(send)
    factors = await send("GET", "/api/me/factors", None)
    key, _ = _success_key(factors, account, "passphrase")
    params = new_params(info)
    h = await harden(
        send,
        new_passphrase,
        purpose="passphrase",
        user_id=account.user_id,
        params=params,
        caller=info.caller,
    )
    fk = f.hardened_key(h.y, purpose="passphrase", user_id=account.user_id, params=params)
    wrap = f.make_passphrase_wrap(
        f.passphrase_kek(t, fk),
        account.private_key,
        user_id=account.user_id,
        keypair_version=account.keypair_version,
        params=params,
    )
    out = await send(
        "POST",
        "/api/me/passphrase/change",
        {
            "expected_wrap_id": enc(expected_wrap_id),
            "wrap": {**record_json(params), "wrap": enc(wrap)},
        },
    )
    await _report(send, key, h, caller=info.caller, user_id=account.user_id, purpose="passphrase")
    return dict(out)


async def rollback_passphrase(
    send: Send,
    *,
    kc: bytes,
    user: Mapping[str, Any],
    slot: Mapping[str, Any],
    old_passphrase: str,
) -> tuple[bytes, x25519.X25519PrivateKey]:
    """Open a kept wrap with an earlier passphrase and make it current again."""
    user_id, public_key = dec(user["user_id"]), dec(user["public_key"])
    kpv = int(slot["keypair_version"])
    t = token_factor(kc, user=user, slot=slot)
    info = await hardener_info(send)
    factors = await send("GET", "/api/me/factors", None)
    if not factors["history"]:
        raise FactorError(
            "there is no earlier passphrase to roll back to (none kept, or it expired)",
            code="no_history",
        )
    for record in factors["history"]:  # newest first
        try:
            sk, h = await _open_wrap(
                send,
                info,
                record,
                t,
                old_passphrase,
                user_id=user_id,
                public_key=public_key,
                keypair_version=kpv,
            )
        except FactorError as e:
            if e.code != "passphrase_invalid":
                raise
            continue
        await send("POST", "/api/me/passphrase/rollback", {"wrap_id": record["id"]})
        account = Account(
            user_id=user_id, public_key=public_key, keypair_version=kpv, private_key=sk
        )
        key, _ = _success_key(factors, account, "passphrase")
        await _report(send, key, h, caller=info.caller, user_id=user_id, purpose="passphrase")
        return t, sk
    raise FactorError(
        "that passphrase opens none of the kept earlier wraps", code="passphrase_invalid"
    )


# --- recovery ---------------------------------------------------------------------------


async def setup_recovery(
    send: Send, account: Account, secret: str | None = None
) -> tuple[str, dict[str, Any]]:
    """Set the recovery slot under a recovery passphrase, or (secret None) a new
    recovery code, which is returned to be shown once."""
    kind: f.RecoveryKind = "passphrase" if secret is not None else "code"
    if secret is not None:
        _check_new(secret)
    text = secret if secret is not None else s.new_recovery_code()
    info = await hardener_info(send)
    factors = await send("GET", "/api/me/factors", None)
    key, new_key = _success_key(factors, account, "recovery")
    params = new_params(info)
    typed = s.normalize_code(text) if kind == "code" else text
    h = await harden(
        send, typed, purpose="recovery", user_id=account.user_id, params=params, caller=info.caller
    )
    fk = f.hardened_key(h.y, purpose="recovery", user_id=account.user_id, params=params)
    slot = f.make_recovery_slot(
        fk,
        account.private_key,
        user_id=account.user_id,
        keypair_version=account.keypair_version,
        kind=kind,
        params=params,
    )
    body = {**record_json(params), "kind": kind, "slot": enc(slot), "success_key": new_key}
    out = await send("PUT", "/api/me/recovery", body)
    await _report(send, key, h, caller=info.caller, user_id=account.user_id, purpose="recovery")
    return text, out


async def recover(
    send: Send, *, handle: str, secret: str, kc: bytes, key_id: bytes
) -> tuple[Account, dict[str, Any]]:
    """After losing every token: open the account's recovery slot with the
    recovery secret, prove it, and give the token this session logged in with
    the account's only key slot. Returns the account and the new session."""
    info = await hardener_info(send)
    target = await send("POST", "/api/recovery/lookup", {"handle": handle})
    rec = target["recovery"]
    user_id, public_key = dec(target["user_id"]), dec(target["public_key"])
    kpv = int(target["keypair_version"])
    kind: f.RecoveryKind = "code" if rec["kind"] == "code" else "passphrase"
    params = params_of(rec)
    try:
        typed = s.normalize_code(secret) if kind == "code" else secret
    except ValueError as e:
        raise FactorError(str(e), code="recovery_code_invalid") from None
    h = await harden(
        send,
        typed,
        purpose="recovery",
        user_id=user_id,
        params=params,
        caller=info.caller,
        path="/api/recovery/evaluate",
        extra={"handle": handle},
    )
    fk = f.hardened_key(h.y, purpose="recovery", user_id=user_id, params=params)
    try:
        sk = f.open_recovery_slot(
            fk,
            dec(rec["slot"]),
            user_id=user_id,
            keypair_version=kpv,
            public_key=public_key,
            kind=kind,
            params=params,
        )
    except RecoveryInvalid:
        raise FactorError(
            f"wrong recovery {'code' if kind == 'code' else 'passphrase'} ({h.attempts_left} "
            "attempts left before the hardener locks it)",
            code="recovery_invalid",
        ) from None
    key = s.open_success_key(
        dec(target["success_key"]["sealed"]), sk, user_id=user_id, purpose="recovery"
    )
    sig = s.sign_success(
        key,
        caller=info.caller,
        user_id=f.hardener_user_id(user_id, "recovery"),
        attempt_id=h.attempt_id,
        nonce=h.nonce,
    )
    slot = make_slot(kc, sk, user_id=user_id, key_id=key_id, keypair_version=kpv)
    session = await send(
        "POST",
        "/api/recovery/complete",
        {
            "handle": handle,
            "attempt_id": enc(h.attempt_id),
            "nonce": enc(h.nonce),
            "signature": enc(sig),
            "keypair_version": kpv,
            "slot": enc(slot),
        },
    )
    assert public_key_bytes(sk) == public_key
    return Account(
        user_id=user_id, public_key=public_key, keypair_version=kpv, private_key=sk
    ), session
