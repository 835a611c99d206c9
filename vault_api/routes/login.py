"""Login through authnet, the session, logout."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from vault_api.context import SessionDep, VaultDep
from vault_api.crypto.files import CHUNK_BYTES
from vault_api.models import ConfigOut, ProvenOut, SessionOut, TicketIn, TicketOut

router = APIRouter(tags=["session"])


@router.get("/api/config")
async def config(vault: VaultDep) -> ConfigOut:
    """What the page needs before login: the SPID and gateway, and the limits."""
    s = vault.settings
    return ConfigOut(
        spid=vault.sp.spid.hex(),
        gateway_url=vault.sp.credentials.gateway_url,
        max_file_bytes=s.max_file_bytes,
        chunk_bytes=CHUNK_BYTES,
        idle_timeout_seconds=s.idle_timeout_seconds,
        history_versions=s.history_versions,
    )


@router.post("/api/login/ticket", status_code=201)
async def login_ticket(vault: VaultDep, request: Request, response: Response) -> TicketOut:
    """A login ticket for the page's QR code (GetTicket, client key requested),
    bound to this browser by the `vault_login` cookie."""
    return await vault.sessions.issue_ticket(request, response)


@router.post("/api/login")
async def login(
    vault: VaultDep, body: TicketIn, request: Request, response: Response
) -> SessionOut:
    """Redeem the ticket once the page holds Kc: starts the session (cookie
    `vault_session`) and returns it, with the CSRF token and the key slot of
    the token used."""
    return await vault.sessions.login(request, response, body.ticket)


@router.get("/api/session")
async def session(vault: VaultDep, principal: SessionDep) -> SessionOut:
    """The current session (after a page reload: the CSRF token again)."""
    return await vault.sessions.view(principal.session_hash)


@router.post("/api/session/tokens")
async def prove_token(
    vault: VaultDep, principal: SessionDep, body: TicketIn, request: Request
) -> ProvenOut:
    """Log in again in this session with another token of the account (a
    ticket from POST /api/login/ticket): the session may then add its key slot."""
    return await vault.sessions.prove_token(principal, request, body.ticket)


@router.post("/api/logout", status_code=204)
async def logout(vault: VaultDep, principal: SessionDep, response: Response) -> None:
    await vault.sessions.logout(principal, response)
