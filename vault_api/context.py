"""What every request handler reaches: the service's parts, and the
dependencies that authenticate the caller."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, APIKeyHeader

from authnet.errors import MalformedInput
from authnet.protocol.encoding import b64u_decode
from authnet.sdk import AsyncSPClient
from vault_api.blobs import BlobStore
from vault_api.config import Settings
from vault_api.db import Database
from vault_api.errors import Forbidden, Invalid
from vault_api.relay import Relay
from vault_api.sessions import (
    CSRF_HEADER,
    SESSION_COOKIE,
    PassphraseDemand,
    Principal,
    SessionService,
)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, kw_only=True)
class Vault:
    settings: Settings
    db: Database
    sp: AsyncSPClient
    blobs: BlobStore
    sessions: SessionService
    clock: Callable[[], int]
    # The hardener's caller client; None when the operator configured no hardener.
    relay: Relay | None = None


def vault_of(request: Request) -> Vault:
    return cast(Vault, request.app.state.vault)


# Documented in the OpenAPI document as the API's security schemes; the
# session service reads and checks them (sessions.py).
_COOKIE = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="the session cookie POST /api/login sets (HttpOnly, SameSite=Strict)",
)
_CSRF = APIKeyHeader(
    name=CSRF_HEADER,
    auto_error=False,
    description="the session's CSRF token (from POST /api/login or GET /api/session); "
    "required on every POST, PUT, PATCH and DELETE",
)


async def _principal(
    request: Request,
    _cookie: Annotated[str | None, Depends(_COOKIE)],
    _csrf: Annotated[str | None, Depends(_CSRF)],
) -> Principal:
    return await vault_of(request).sessions.authenticate(request)


async def _member(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    if not principal.registered:
        raise Forbidden(
            "this account has no key pair yet: register one first (POST /api/me)",
            code="not_registered",
        )
    return principal


def passphrase_required(demand: PassphraseDemand) -> Forbidden:
    """403 `passphrase_required`: who requires it and how to comply."""
    org = demand.organisation
    if demand.server and org is not None:
        who = f"this vault and your organisation {org!r} require"
    elif org is not None:
        who = f"your organisation {org!r} requires"
    else:
        who = "this vault requires"
    return Forbidden(
        f"{who} a vault passphrase and this account has none yet: set one (the page asks "
        "for it; with the CLI: `vault passphrase set`). Until then the safes stay closed",
        code="passphrase_required",
        required_by="server" if demand.server else "organisation",
        organisation=org,
    )


async def _complying(principal: Annotated[Principal, Depends(_member)]) -> Principal:
    """The passphrase rule (docs/vault.md 5.4), enforced in this one place:
    every route that reads or writes vault data depends on it (UserDep)."""
    if principal.passphrase_demand is not None:
        raise passphrase_required(principal.passphrase_demand)
    return principal


VaultDep = Annotated[Vault, Depends(vault_of)]
# Any logged-in session (registered or not).
SessionDep = Annotated[Principal, Depends(_principal)]
# A logged-in session of a registered account, whether or not it meets the
# passphrase rule: the account's own keys, factors, devices list and
# organisation, which it needs to comply or to look around.
AccountDep = Annotated[Principal, Depends(_member)]
# A registered account that meets the passphrase rule: everything about safes
# (their items, folders, files, members, moves, rotations), devices' keys,
# one-time links and public keys for sharing.
UserDep = Annotated[Principal, Depends(_complying)]

ID_PATTERN = r"^[A-Za-z0-9_-]{22}$"


def decode_id(value: str, what: str) -> bytes:
    try:
        return b64u_decode(value, field=what, length=16)
    except MalformedInput as e:
        raise Invalid(e.message, code="invalid") from None
