"""The page, login through authnet, the session, logout."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse

from vault_api.context import SessionDep, VaultDep
from vault_api.crypto.files import CHUNK_BYTES
from vault_api.models import ConfigOut, ProvenOut, SessionOut, TicketIn, TicketOut

router = APIRouter(tags=["session"])

PAGE = Path(__file__).resolve().parents[1] / "static" / "index.html"
# The one-time link page (docs/devices.md 7): no session needed.
ONCE = PAGE.with_name("once.html")
# authnet.js looks for the local agent (`passkey agent`) here.
AGENT_URL = "http://127.0.0.1:7481"


_IMPORT_MAP = re.compile(rb'<script type="importmap">(.*?)</script>', re.DOTALL)


def import_map_sources(page: bytes) -> list[str]:
    """CSP hash sources of the page's import maps (the one inline script it
    has: it maps the vendored noble files' "@noble/hashes/" imports to
    /js/vendor/, js/crypto/oprf.js). An import map is data, not code, but
    Chromium lets it run only if script-src allows it."""
    return [
        f"'sha256-{base64.b64encode(hashlib.sha256(m).digest()).decode()}'"
        for m in _IMPORT_MAP.findall(page)
    ]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# An http(s) origin as a CSP source may hold only these (no space or ';' that
# would end the source list): a gateway URL from elsewhere that does not match
# is left out.
_SAFE_ORIGIN = re.compile(
    r"https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?"
)


def _gateway_sources(gateway_urls: Sequence[str]) -> list[str]:
    """Each gateway's http(s) origin and its websocket origin, once each."""
    out: dict[str, None] = {}
    for url in gateway_urls:
        origin = _origin(url)
        if not _SAFE_ORIGIN.fullmatch(origin):
            continue
        parts = urlsplit(origin)
        out[origin] = None
        out[f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}"] = None
    return list(out)


def content_security_policy(
    gateway_urls: Sequence[str], page: bytes = b"", keyproxy_url: str = ""
) -> str:
    """Scripts only from this origin (authnet.js and hpke.js too: the vault
    serves its own copy, routes/client.py) and the page's import map by its
    hash; connections only to it, the network's gateways and the local agent;
    no other inline script, no framing. The page decrypts secrets: no script
    from elsewhere may run. With a one-time key proxy configured, its origin
    may be connected to as well (docs/devices.md 5, 7). `gateway_urls`: the
    configured gateway, then every gateway a ticket listed (a cluster's, which
    the page resumes its wait on, docs/protocol.md 16.3)."""
    return "; ".join(
        (
            "default-src 'none'",
            " ".join(("script-src 'self'", *import_map_sources(page))),
            " ".join(
                (
                    "connect-src 'self'",
                    *_gateway_sources(gateway_urls),
                    AGENT_URL,
                    *([_origin(keyproxy_url)] if keyproxy_url else []),
                )
            ),
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "form-action 'self'",
            "base-uri 'none'",
            "object-src 'none'",
            "frame-ancestors 'none'",
        )
    )


@router.get("/", include_in_schema=False)
@router.get("/index.html", include_in_schema=False)
async def page(vault: VaultDep) -> HTMLResponse:
    """The UI (vault_api/static/), with its Content-Security-Policy."""
    body = PAGE.read_bytes()
    return HTMLResponse(
        body,
        headers={
            "Content-Security-Policy": content_security_policy(
                vault.sessions.gateway_urls(), body, vault.settings.keyproxy_url
            ),
            "Cache-Control": "no-cache",
        },
    )


@router.get("/once", include_in_schema=False)
@router.get("/once.html", include_in_schema=False)
async def once_page(vault: VaultDep) -> HTMLResponse:
    """The one-time link page, with the same policy as the UI."""
    try:
        body = ONCE.read_bytes()
    except FileNotFoundError:
        raise HTTPException(status_code=404, detail="no one-time link page here") from None
    return HTMLResponse(
        body,
        headers={
            "Content-Security-Policy": content_security_policy(
                vault.sessions.gateway_urls(), body, vault.settings.keyproxy_url
            ),
            "Cache-Control": "no-cache",
        },
    )


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
        keyproxy_url=s.keyproxy_url or None,
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
