"""`vault device ...`, `vault send` and `vault open-link` (docs/devices.md 3-5,
7, 8; docs/vault.md 17.3).

    vault device register --name laptop --bypass   # after the passphrase unlock
    vault device register --keyring                # the keys in the OS keyring, not the file
    vault device list
    vault device bypass on|off
    vault device approve K3X9P-7QM2D               # a new browser's request: compare fingerprints
    vault send Home Mail --ttl 1h                  # prints a one-time link
    vault open-link 'https://vault.example/once#TOKEN.KEY'

The device file (vault_api.client.devices) holds this CLI's device keys;
nothing here prints a key, a wrap or a passphrase. The one link `vault send`
prints is the secret the user asked for.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric import x25519

from keyproxy import client as kpc
from vault_api import grants
from vault_api.client import devices, links
from vault_api.client import items as it
from vault_api.client.api import VaultApi
from vault_api.client.errors import ApiError, CliError, Exit, NotFound, Usage
from vault_api.client.factors import FactorError
from vault_api.client.keys import dec, enc
from vault_api.client.session import SessionState, sender

if TYPE_CHECKING:
    from vault_api.client.commands import Context

APPROVAL_LIFETIME_S = 600  # the proxy deposit of an approval (docs/devices.md 5, step 3)

# What each named refusal means for the exit status (docs/vault.md 17.5).
_STATUS: Mapping[str, Exit] = {
    "device_file_mode": Exit.LOGIN,
    "device_file_damaged": Exit.LOGIN,
    "device_file_unreadable": Exit.LOGIN,
    "device_file_other_user": Exit.LOGIN,
    "device_keyring_missing": Exit.LOGIN,
    "device_keyring_unavailable": Exit.ERROR,
    "device_not_found": Exit.NOT_FOUND,
    "device_revoked": Exit.CONFLICT,
    "device_expired": Exit.CONFLICT,
    "bypass_off": Exit.CONFLICT,
    "policy_forbids": Exit.FORBIDDEN,
    "passphrase_unset": Exit.CONFLICT,
    "device_wrap_invalid": Exit.REFUSED,
    "device_kek_invalid": Exit.REFUSED,
    "key_mismatch": Exit.REFUSED,
    "device_proof_invalid": Exit.REFUSED,
    "link_damaged": Exit.REFUSED,
    "link_claimed": Exit.NOT_FOUND,
    "link_expired": Exit.NOT_FOUND,
    "link_not_found": Exit.NOT_FOUND,
    "keyproxy_not_configured": Exit.CONFLICT,
    "keyproxy_unavailable": Exit.ERROR,
    "invalid": Exit.USAGE,
}


def named(e: FactorError) -> CliError:
    return CliError(f"{e.message} ({e.code})", _STATUS.get(e.code, Exit.ERROR))


def _api(e: ApiError) -> CliError:
    """A server refusal with its code, which names what to do."""
    return CliError(f"{e.message or 'refused'} ({e.error})", e.status)


def when(ms: int | None) -> str:
    if not ms:
        return "never"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- the bypass, for `vault login` and every unlock --------------------------------------


def has_device(state: SessionState) -> bool:
    try:
        return devices.device_path(dec(state.user_id)).exists()
    except ValueError:
        return False


def bypass_for(
    ctx: Context,
) -> Callable[[Mapping[str, Any], bytes], Awaitable[x25519.X25519PrivateKey | None]]:
    async def bypass(user: Mapping[str, Any], t: bytes) -> x25519.X25519PrivateKey | None:
        user_id = dec(user["user_id"])
        why = "; the vault passphrase opens it instead"
        try:
            device = devices.load(user_id)
        except FactorError as e:
            ctx.warn(f"device bypass not used: {e.message} ({e.code}){why}")
            return None
        if device is None:
            return None
        t0 = time.perf_counter()
        api = ctx.api()
        session = await api.session()
        nonce = session.get("device_nonce")
        if not isinstance(nonce, str):
            ctx.warn(f"device bypass not used: this vault gives no device nonce{why}")
            return None
        try:
            sk = await devices.open_with_device(
                sender(api),
                device,
                nonce=dec(nonce),
                token_factor=t,
                public_key=dec(user["public_key"]),
            )
        except FactorError as e:
            ctx.warn(f"device bypass not used: {e.message} ({e.code}){why}")
            return None
        ms = (time.perf_counter() - t0) * 1000
        ctx.say(f"unlocked with this device's bypass ({device.name}; no passphrase, {ms:.0f} ms)")
        return sk

    return bypass


# --- helpers -----------------------------------------------------------------------------


async def _session(ctx: Context) -> tuple[VaultApi, SessionState]:
    """The saved session, as is (no token): enough to list, rename and revoke."""
    state = ctx.state()
    server = ctx.server()
    if state is None or state.server != server:
        raise CliError(f"not logged in to {server}: run `vault login`", Exit.LOGIN)
    api = ctx.api()
    api.resume(state.session_cookie, state.csrf)
    try:
        await api.session()
    except ApiError as e:
        if e.ended_session:
            raise CliError(
                f"the session has ended ({e.error}): `vault login` again", Exit.LOGIN
            ) from None
        raise
    return api, state


def _local(user_id: bytes) -> devices.DeviceFile | None:
    try:
        return devices.load(user_id)
    except FactorError as e:
        raise named(e) from None


def _record(user_id: bytes) -> devices.DeviceRecord | None:
    """The device file without its keys: enough to list, rename or revoke, even
    when a keyring device's keys are gone."""
    try:
        return devices.load_record(user_id)
    except FactorError as e:
        raise named(e) from None


def _keyring_wanted(ctx: Context) -> bool:
    if getattr(ctx.ns, "keyring", False):
        return True
    return os.environ.get("VAULT_DEVICE_KEYRING", "").strip().lower() in ("1", "true", "yes", "on")


async def _list(api: VaultApi) -> list[dict[str, Any]]:
    return list((await api.call("GET", "/api/me/devices"))["devices"])


def _find(
    rows: list[dict[str, Any]], ref: str, local: devices.DeviceRecord | None
) -> dict[str, Any]:
    """A device by its id, an id prefix of 4 or more, its exact name, or `this`."""
    if ref == "this":
        if local is None:
            raise Usage("this CLI is not a registered device (`vault device register`)")
        ref = local.ref
    exact = [d for d in rows if d["device_id"] == ref]
    if exact:
        return exact[0]
    named_rows = [d for d in rows if d["name"] == ref and d["state"] == "active"]
    prefix = [d for d in rows if len(ref) >= 4 and d["device_id"].startswith(ref)]
    for found in (named_rows, prefix):
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            ids = ", ".join(d["device_id"] for d in found)
            raise Usage(f"{ref!r} names several devices ({ids}): give the id")
    raise NotFound(f"no device {ref!r} (`vault device list` shows them)")


def _row(d: Mapping[str, Any], local: devices.DeviceRecord | None) -> dict[str, Any]:
    keep = [
        "device_id",
        "name",
        "user_agent",
        "fingerprint",
        "state",
        "bypass",
        "created_ms",
        "last_used_ms",
        "expires_ms",
        "current",
    ]
    out = {k: d.get(k) for k in keep}
    out["this_cli"] = local is not None and d["device_id"] == local.ref
    return out


def _confirm(ctx: Context, question: str) -> bool:
    if ctx.ns.yes:
        return True
    if not ctx.io.stdin.isatty():
        raise Usage(f"{question} There is no terminal to ask on: add --yes to go ahead")
    ctx.io.err.write(f"{question} [y/N] ")
    ctx.io.err.flush()
    return ctx.io.stdin.readline().strip().lower() in ("y", "yes")


# --- vault device ... --------------------------------------------------------------------


async def cmd_device(ctx: Context) -> None:
    action = ctx.ns.device_action
    try:
        await _ACTIONS[action](ctx)
    except FactorError as e:
        raise named(e) from None


async def _register(ctx: Context) -> None:
    ctx.use_bypass = False  # registration needs a passphrase unlock (docs/devices.md 2)
    vault = await ctx.vault()
    ring = vault.ring
    if ring.token_factor is None:
        raise FactorError(
            "a device is registered by a session unlocked with the vault passphrase, and this "
            "vault has none: `vault passphrase set` first (the bypass replaces it)",
            code="passphrase_unset",
        )
    name = devices.check_name(ctx.ns.name or devices.default_name())
    in_keyring = _keyring_wanted(ctx)
    if in_keyring:
        devices.keyring_check()  # before the vault knows the device
    local = _record(ring.user_id)
    if local is not None:
        rows = {d["device_id"]: d for d in await _list(vault.api)}
        mine = rows.get(local.ref)
        if mine is not None and mine["state"] == "active":
            raise CliError(
                f"this CLI is already device {local.ref} ({mine['name']}), active: "
                "`vault device list`; revoke it first to register again",
                Exit.CONFLICT,
            )
        was = mine["state"] if mine is not None else "unknown to the vault"
        ctx.say(f"replacing the device file of device {local.ref} ({was})")
        devices.remove(local)
    device = devices.new_file(ring.user_id, name=name, server=ctx.server(), in_keyring=in_keyring)
    try:
        d = await vault.api.call("POST", "/api/me/devices", json=devices.registration_body(device))
    except ApiError as e:
        raise _api(e) from None
    devices.save(device)
    lines = [
        f"registered this CLI as device {device.ref} ({name})",
        f"device fingerprint {d.get('fingerprint') or devices.fingerprint_of(device)}",
        f"device file {device.path} (mode 0600; its keys are in the OS keyring, service "
        f"{devices.KEYRING_SERVICE!r})"
        if in_keyring
        else f"device file {device.path} (mode 0600: a copy of it is a copy of this device)",
    ]
    bypass = False
    if ctx.ns.bypass:
        await _put_bypass(ctx, device)
        bypass = True
        lines.append("bypass on: `vault login` here no longer asks for the passphrase")
    else:
        lines.append("`vault device bypass on` lets `vault login` here skip the passphrase")
    ctx.emit({**_row(d, device), "bypass": bypass or bool(d.get("bypass"))}, lines)


async def _put_bypass(ctx: Context, device: devices.DeviceFile) -> dict[str, Any]:
    vault = await ctx.vault()
    ring = vault.ring
    if ring.token_factor is None:
        raise FactorError(
            "the bypass replaces the vault passphrase, and this vault has none",
            code="passphrase_unset",
        )
    wrap, sealed = devices.bypass_wraps(
        token_factor=ring.token_factor,
        private_key=ring.private_key,
        user_id=ring.user_id,
        keypair_version=ring.keypair_version,
        device_id=device.device_id,
        device_public_key=device.keys.public_key,
    )
    body = {
        "keypair_version": ring.keypair_version,
        "device_wrap": enc(wrap),
        "sealed_kek": enc(sealed),
    }
    try:
        return dict(await vault.api.call("PUT", f"/api/me/devices/{device.ref}/bypass", json=body))
    except ApiError as e:
        raise _api(e) from None


async def _bypass(ctx: Context) -> None:
    state = ctx.state()
    if state is None:
        raise CliError("not logged in: run `vault login`", Exit.LOGIN)
    record = _record(dec(state.user_id))
    if record is None:
        raise Usage("this CLI is not a registered device: `vault device register` first")
    if ctx.ns.switch == "on":
        full = _local(dec(state.user_id))
        if full is None:
            raise Usage("this CLI is not a registered device: `vault device register` first")
        ctx.use_bypass = False  # new wraps are made after a passphrase unlock
        d = await _put_bypass(ctx, full)
        ctx.emit(
            _row(d, full),
            [f"bypass on for {full.name}: `vault login` here unlocks without the passphrase"],
        )
        return
    device = record
    api, _ = await _session(ctx)
    try:
        await api.call("DELETE", f"/api/me/devices/{device.ref}/bypass")
    except ApiError as e:
        raise _api(e) from None
    ctx.emit(
        {"device_id": device.ref, "bypass": False},
        [f"bypass off for {device.name}: its wraps are deleted; logins ask for the passphrase"],
    )


async def _list_cmd(ctx: Context) -> None:
    api, state = await _session(ctx)
    local = _record(dec(state.user_id))
    rows = [_row(d, local) for d in await _list(api)]
    lines = []
    for d in rows:
        marks = [m for m, on in (("this CLI", d["this_cli"]), ("this session", d["current"])) if on]
        lines += [
            f"{d['device_id']}  {d['name']}" + (f"  ({', '.join(marks)})" if marks else ""),
            f"    {d['state']}, bypass {'on' if d['bypass'] else 'off'}, fingerprint "
            f"{d['fingerprint']}",
            f"    registered {when(d['created_ms'])}, last used {when(d['last_used_ms'])}, "
            f"expires {when(d['expires_ms'])}",
            f"    {d['user_agent'] or ''}",
        ]
    ctx.emit({"devices": rows}, lines or ["no devices registered"])


async def _rename(ctx: Context) -> None:
    api, state = await _session(ctx)
    local = _record(dec(state.user_id))
    d = _find(await _list(api), ctx.ns.device, local)
    name = devices.check_name(ctx.ns.name)
    try:
        out = await api.call("PATCH", f"/api/me/devices/{d['device_id']}", json={"name": name})
    except ApiError as e:
        raise _api(e) from None
    ctx.emit(_row(out, local), [f"device {d['device_id']} is now {name!r}"])


async def _revoke(ctx: Context) -> None:
    api, state = await _session(ctx)
    local = _record(dec(state.user_id))
    d = _find(await _list(api), ctx.ns.device, local)
    try:
        await api.call("DELETE", f"/api/me/devices/{d['device_id']}")
    except ApiError as e:
        raise _api(e) from None
    lines = [
        f"revoked device {d['device_id']} ({d['name']}): its wraps are deleted and its "
        "sessions ended"
    ]
    if local is not None and local.ref == d["device_id"]:
        try:
            devices.remove(local)
            gone = f"{local.path} and its OS keyring entry are" if local.in_keyring else None
        except FactorError as e:
            ctx.warn(f"the OS keyring entry of this device was not deleted: {e.message} ({e.code})")
            gone = None
        lines.append(
            f"this was this CLI: {gone or f'{local.path} is'} deleted; logins ask for the "
            "passphrase"
        )
    ctx.emit({"device_id": d["device_id"], "revoked": True}, lines)


def _code(text: str) -> str:
    return "".join(text.split()).upper()


async def _approve(ctx: Context) -> None:
    """Approve a new browser's request (docs/devices.md 5, steps 2 and 3)."""
    code = _code(ctx.ns.code)
    api, state = await _session(ctx)  # the keys are opened only once the user approves
    user_id = dec(state.user_id)
    try:
        r = await api.call("GET", f"/api/devices/requests/{code}")
    except ApiError as e:
        raise _api(e) from None
    if r.get("state") != "pending":
        raise CliError(f"that request is already {r.get('state')}", Exit.CONFLICT)
    try:
        fp = devices.verify_request(user_id, r)
    except FactorError:
        await api.call("DELETE", f"/api/devices/requests/{code}")
        raise
    ctx.warn(
        f"device request {code}: {r.get('name')!r} ({r.get('user_agent') or 'no browser named'})\n"
        f"  fingerprint {fp}"
    )
    if ctx.ns.refuse or not _confirm(ctx, "Does the new device show this same fingerprint?"):
        await api.call("DELETE", f"/api/devices/requests/{code}")
        ctx.emit({"code": code, "approved": False}, [f"refused request {code}"])
        return
    vault = await ctx.vault()
    ring, api = vault.ring, vault.api
    if ring.token_factor is None:
        raise FactorError(
            "approval gives the new device a bypass, which replaces the vault passphrase, and "
            "this vault has none",
            code="passphrase_unset",
        )
    device_id, device_pk = dec(r["device_id"]), dec(r["public_key"])
    wrap, sealed = devices.bypass_wraps(
        token_factor=ring.token_factor,
        private_key=ring.private_key,
        user_id=ring.user_id,
        keypair_version=ring.keypair_version,
        device_id=device_id,
        device_public_key=device_pk,
    )
    claim_hash = r.get("claim_hash")
    if not isinstance(claim_hash, str):
        raise CliError(
            "the vault's answer names no claim hash for the request; cannot deposit", Exit.ERROR
        )
    proxy = await _proxy(ctx, api)
    try:
        dep = await proxy.deposit(
            sealed,
            APPROVAL_LIFETIME_S,
            secret_hash=dec(claim_hash),
            grant_subject=ring.user_id,
        )
    finally:
        await proxy.close()
    body = {
        "keypair_version": ring.keypair_version,
        "device_wrap": enc(wrap),
        "proxy_token": str(dep["token"]),
    }
    try:
        d = await api.call("POST", f"/api/devices/requests/{code}/approve", json=body)
    except ApiError as e:
        raise _api(e) from None
    ctx.emit(
        {**_row(d, None), "code": code, "approved": True},
        [f"approved {r.get('name')!r} (fingerprint {fp}): it finishes on its own screen"],
    )


_ACTIONS: dict[str, Callable[[Context], Awaitable[None]]] = {
    "register": _register,
    "list": _list_cmd,
    "rename": _rename,
    "revoke": _revoke,
    "bypass": _bypass,
    "approve": _approve,
}


# --- the proxy ---------------------------------------------------------------------------


class Proxy:
    """The one-time key proxy (keyproxy.client over its HTTP API, as the page's
    js/keyproxy.js calls it), its refusals said as the CLI says them."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._client = kpc.AsyncKeyProxyClient(self.url, timeout=30.0)

    def _refused(self, e: kpc.ProxyClientError) -> FactorError:
        if isinstance(e, kpc.Claimed):
            at = e.claimed_ms
            return FactorError(
                "already opened" + (f" (at {when(at)})" if at else "") + ": a one-time "
                "link opens once",
                code="link_claimed",
            )
        if isinstance(e, kpc.Expired):
            return FactorError("the link has expired", code="link_expired")
        if isinstance(e, kpc.NotFound):
            return FactorError(
                "the proxy holds nothing under this link (never made, expired long ago, or its "
                "token was changed)",
                code="link_not_found",
            )
        if isinstance(e, kpc.Burned):
            return FactorError(
                "the deposit was destroyed after claims that did not meet its conditions",
                code="link_not_found",
            )
        if isinstance(e, kpc.RateLimited | kpc.ProxyUnavailable | kpc.Full):
            return FactorError(
                f"the one-time key proxy at {self.url} is busy or unavailable ({e.code}): "
                f"{e.message}; try again",
                code="keyproxy_unavailable",
            )
        return FactorError(
            f"the one-time key proxy refused: {e.message}",
            code=f"keyproxy_{e.body.get('error') or e.code}",
        )

    async def deposit(
        self,
        blob: bytes,
        lifetime_s: int,
        *,
        secret_hash: bytes | None = None,
        grant_subject: bytes | None = None,
    ) -> dict[str, Any]:
        """{token, expires_ms}. With `secret_hash` and `grant_subject`: an
        approval's deposit, claimed only by device B (the claim secret) in a
        session of that account (the vault's grant; docs/devices.md 5)."""
        grant = None if grant_subject is None else (grants.ISSUER, enc(grant_subject))
        try:
            token, expires_ms = await self._client.deposit(
                blob, ttl_seconds=lifetime_s, secret_hash=secret_hash, grant=grant
            )
        except kpc.ProxyClientError as e:
            raise self._refused(e) from None
        return {"token": token, "expires_ms": expires_ms}

    async def status(self, token: str) -> dict[str, Any]:
        """{state: waiting, expires_ms, claimed_ms, ...}; not consumed. A claimed or
        expired deposit is refused as the claim would be."""
        try:
            st = await self._client.status(token)
        except kpc.ProxyClientError as e:
            raise self._refused(e) from None
        if st.get("state") == "claimed":
            raise self._refused(kpc.Claimed("claimed", body=st))
        if st.get("state") == "expired":
            raise self._refused(kpc.Expired("expired", body=st))
        return st

    async def claim(
        self, token: str, *, secret: bytes | None = None, grant: str | None = None
    ) -> bytes:
        """The blob, once; `grant` as the vault's /api/keyproxy/grant gives it."""
        try:
            return await self._client.claim(
                token, secret=secret, grant=None if grant is None else dec(grant)
            )
        except kpc.BadAnswer:
            raise FactorError(
                "the one-time key proxy answered without the deposit", code="link_damaged"
            ) from None
        except kpc.ProxyClientError as e:
            raise self._refused(e) from None

    async def close(self) -> None:
        await self._client.close()


async def _proxy(ctx: Context, api: VaultApi) -> Proxy:
    try:
        config = await api.config()
    except ApiError as e:
        raise _api(e) from None
    url = config.get("keyproxy_url")
    if not url:
        raise FactorError(
            f"the vault at {api.base_url} has no one-time key proxy configured, so device "
            "approval and one-time links are off (its operator sets keyproxy_url)",
            code="keyproxy_not_configured",
        )
    return Proxy(str(url))


# --- vault send, vault open-link ---------------------------------------------------------


async def cmd_send(ctx: Context) -> None:
    try:
        await _send(ctx)
    except FactorError as e:
        raise named(e) from None


async def _send(ctx: Context) -> None:
    ttl = links.parse_ttl(ctx.ns.ttl)
    safe = await ctx.open_safe()
    item = safe.find_item(ctx.ns.item)
    blob, key = links.seal_item(item.content)
    proxy = await _proxy(ctx, ctx.api())
    try:
        dep = await proxy.deposit(blob, ttl)
    finally:
        await proxy.close()
    link = links.Link(vault_url=ctx.server(), token=str(dep["token"]), key=key).text()
    expires_ms = int(dep.get("expires_ms") or time.time_ns() // 1_000_000 + ttl * 1000)
    ctx.say(
        f"a one-time link to {item.title!r}: it opens once, until {when(expires_ms)}; whoever "
        "has it can open it, so send it over a channel you trust"
    )
    ctx.emit({"link": link, "expires_ms": expires_ms, "item_id": item.ref}, [link])


async def cmd_open_link(ctx: Context) -> None:
    try:
        await _open_link(ctx)
    except FactorError as e:
        raise named(e) from None


async def _open_link(ctx: Context) -> None:
    link = links.parse_link(ctx.ns.url)
    async with VaultApi(link.vault_url) as api:
        proxy = await _proxy(ctx, api)
    try:
        st = await proxy.status(link.token)
        expires = st.get("expires_ms")
        ctx.say(
            "a one-time link, waiting to be opened"
            + (f" (expires {when(int(expires))})" if expires else "")
            + ": revealing it takes it, and nobody can open it again"
        )
        if ctx.ns.status:
            ctx.emit({"state": "waiting", **st}, ["waiting to be opened (not opened now)"])
            return
        if not _confirm(ctx, "Reveal it now (it can be opened once)?"):
            ctx.emit({"opened": False}, ["not opened; the link still works"])
            return
        blob = await proxy.claim(link.token)
    finally:
        await proxy.close()
    content = links.open_item(blob, link.key)
    ctx.emit({"opened": True, "content": content}, it.describe(content, reveal=True))


DEVICE_COMMANDS: dict[str, Callable[[Context], Awaitable[None]]] = {
    "device": cmd_device,
    "send": cmd_send,
    "open-link": cmd_open_link,
}
