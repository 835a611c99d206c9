"""Registered devices, the bypass and device approval (docs/devices.md 2-5, 9).

The client makes every key and wrap; these routes check what a server can
check (the device's proofs, the session's unlock, the policy, sizes) and keep
the wraps it cannot open.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path

from authnet.protocol.encoding import b64u_encode
from vault_api import grants
from vault_api.context import ID_PATTERN, AccountDep, UserDep, Vault, VaultDep, decode_id
from vault_api.crypto.ids import short
from vault_api.errors import NotConfigured
from vault_api.models import (
    ApproveIn,
    BypassIn,
    DeviceIn,
    DeviceOut,
    DeviceRenameIn,
    DeviceRequestCreatedOut,
    DeviceRequestIn,
    DeviceRequestOut,
    DevicesOut,
    GrantIn,
    GrantOut,
    OpenIn,
    OpenOut,
)
from vault_api.sessions import Principal, policy_defaults
from vault_api.store import devices as store

log = logging.getLogger("vault_api.devices")
router = APIRouter(tags=["devices"])

DeviceId = Annotated[str, Path(pattern=ID_PATTERN, description="a device id, base64url")]
Code = Annotated[str, Path(min_length=1, max_length=32, description="a device request code")]


def _request_ms(vault: Vault) -> int:
    return vault.settings.device_request_seconds * 1000


async def _swept(vault: Vault, principal: Principal) -> None:
    await vault.db.write(
        store.sweep_account, principal.user_id, policy_defaults(vault.settings), vault.clock()
    )


async def _code(vault: Vault, principal: Principal, code: str) -> None:
    """404 request_not_found for a wrong code, counted against the account."""
    found = await vault.db.write(
        store.check_code,
        user_id=principal.user_id,
        code=code,
        lifetime_ms=_request_ms(vault),
        now_ms=vault.clock(),
    )
    if not found:
        raise store.request_not_found()


def require_keyproxy(vault: Vault) -> str:
    if not vault.settings.keyproxy_url:
        raise NotConfigured(
            "this vault has no one-time key proxy configured, so devices cannot be approved "
            "from another device; the operator sets keyproxy_url (docs/vault.md 16)",
            code="keyproxy_not_configured",
        )
    return vault.settings.keyproxy_url


@router.get("/api/me/devices")
async def list_devices(vault: VaultDep, principal: AccountDep) -> DevicesOut:
    """The account's devices (expired and revoked ones for 30 days)."""
    return await vault.db.write(
        store.list_devices,
        user_id=principal.user_id,
        session_hash=principal.session_hash,
        defaults=policy_defaults(vault.settings),
        now_ms=vault.clock(),
    )


@router.post("/api/me/devices", status_code=201)
async def register(vault: VaultDep, principal: UserDep, body: DeviceIn) -> DeviceOut:
    """Register this device (a session unlocked with the passphrase); binds the session to it."""
    out: DeviceOut = await vault.db.write(
        store.register,
        user_id=principal.user_id,
        session_hash=principal.session_hash,
        body=body,
        defaults=policy_defaults(vault.settings),
        now_ms=vault.clock(),
    )
    log.info("device registered user=%s device=%s", short(principal.user_id), short(body.device_id))
    return out


@router.patch("/api/me/devices/{device_id}")
async def rename(
    vault: VaultDep, principal: UserDep, device_id: DeviceId, body: DeviceRenameIn
) -> DeviceOut:
    return await vault.db.write(
        store.rename,
        user_id=principal.user_id,
        session_hash=principal.session_hash,
        device_id=decode_id(device_id, "device id"),
        name=body.name,
        defaults=policy_defaults(vault.settings),
        now_ms=vault.clock(),
    )


@router.delete("/api/me/devices/{device_id}", status_code=204)
async def revoke(vault: VaultDep, principal: AccountDep, device_id: DeviceId) -> None:
    """Revoke a device: its wraps go and its sessions end at once."""
    did = decode_id(device_id, "device id")
    await vault.db.write(
        store.revoke,
        user_id=principal.user_id,
        session_hash=principal.session_hash,
        device_id=did,
        defaults=policy_defaults(vault.settings),
        now_ms=vault.clock(),
    )
    log.info("device revoked user=%s device=%s", short(principal.user_id), short(did))


@router.put("/api/me/devices/{device_id}/bypass")
async def put_bypass(
    vault: VaultDep, principal: UserDep, device_id: DeviceId, body: BypassIn
) -> DeviceOut:
    """Store the bypass wraps of a device (docs/devices.md 3, 5 step 4)."""
    await _swept(vault, principal)
    return await vault.db.write(
        store.put_bypass,
        user_id=principal.user_id,
        session_hash=principal.session_hash,
        device_id=decode_id(device_id, "device id"),
        body=body,
        defaults=policy_defaults(vault.settings),
        now_ms=vault.clock(),
    )


@router.delete("/api/me/devices/{device_id}/bypass", status_code=204)
async def delete_bypass(vault: VaultDep, principal: AccountDep, device_id: DeviceId) -> None:
    await vault.db.write(
        store.delete_bypass,
        user_id=principal.user_id,
        session_hash=principal.session_hash,
        device_id=decode_id(device_id, "device id"),
        defaults=policy_defaults(vault.settings),
        now_ms=vault.clock(),
    )


@router.post("/api/me/devices/{device_id}/open")
async def open_bypass(
    vault: VaultDep, principal: UserDep, device_id: DeviceId, body: OpenIn
) -> OpenOut:
    """A bypass login: the device's proof over the session's nonce releases its wraps."""
    did = decode_id(device_id, "device id")
    await _swept(vault, principal)
    out: OpenOut = await vault.db.write(
        store.open_bypass,
        user_id=principal.user_id,
        session_hash=principal.session_hash,
        device_id=did,
        proof=body.proof,
        defaults=policy_defaults(vault.settings),
        now_ms=vault.clock(),
    )
    log.info("bypass login user=%s device=%s", short(principal.user_id), short(did))
    return out


@router.post("/api/devices/requests", status_code=201)
async def create_request(
    vault: VaultDep, principal: UserDep, body: DeviceRequestIn
) -> DeviceRequestCreatedOut:
    """Ask to be approved from another device: a code valid device_request_seconds."""
    require_keyproxy(vault)
    return await vault.db.write(
        store.create_request,
        user_id=principal.user_id,
        session_hash=principal.session_hash,
        body=body,
        defaults=policy_defaults(vault.settings),
        lifetime_ms=_request_ms(vault),
        now_ms=vault.clock(),
    )


@router.get("/api/devices/requests/{code}")
async def get_request(vault: VaultDep, principal: UserDep, code: Code) -> DeviceRequestOut:
    """The request with this code (the proxy token only for the requesting session)."""
    await _code(vault, principal, code)
    return await vault.db.write(
        store.get_request,
        user_id=principal.user_id,
        session_hash=principal.session_hash,
        code=code,
        lifetime_ms=_request_ms(vault),
        now_ms=vault.clock(),
    )


@router.post("/api/devices/requests/{code}/approve")
async def approve(vault: VaultDep, principal: UserDep, code: Code, body: ApproveIn) -> DeviceOut:
    """Register the requesting device with the device wrap made for it."""
    require_keyproxy(vault)
    await _code(vault, principal, code)
    await _swept(vault, principal)
    out: DeviceOut = await vault.db.write(
        store.approve,
        user_id=principal.user_id,
        session_hash=principal.session_hash,
        code=code,
        body=body,
        defaults=policy_defaults(vault.settings),
        lifetime_ms=_request_ms(vault),
        now_ms=vault.clock(),
    )
    log.info("device approved user=%s", short(principal.user_id))
    return out


@router.delete("/api/devices/requests/{code}", status_code=204)
async def refuse(vault: VaultDep, principal: UserDep, code: Code) -> None:
    await _code(vault, principal, code)
    await vault.db.write(
        store.refuse,
        user_id=principal.user_id,
        code=code,
        lifetime_ms=_request_ms(vault),
        now_ms=vault.clock(),
    )


@router.post("/api/keyproxy/grant")
async def keyproxy_grant(vault: VaultDep, principal: UserDep, body: GrantIn) -> GrantOut:
    """A signed grant that this account may claim the deposit with this token
    hash at the proxy (the claim condition bound to an authenticated session)."""
    require_keyproxy(vault)
    expires_ms = vault.clock() + _request_ms(vault)
    key = grants.issuer_key(vault.settings.data_dir)
    signed = grants.grant(
        key, user_id=principal.user_id, token_hash=body.token_hash, expires_ms=expires_ms
    )
    return GrantOut(
        grant=signed,
        issuer=grants.ISSUER,
        subject=b64u_encode(principal.user_id),
        expires_ms=expires_ms,
    )
