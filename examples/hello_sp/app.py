"""hello_sp: the smallest complete service provider (SP) on authnet.

    python -m examples.hello_sp.app --credentials ~/.local/share/authnet/sps/demo

A page with the authnet login (QR code) and a backend with three calls:

    POST /api/ticket   GetTicket for the page; remembered in the visitor's session
    POST /api/login    {ticket}: GetPUID(finalize) -> the session is logged in
    GET  /api/me       who is logged in

The ticket is only accepted from the browser session it was issued to, so
someone who photographs the QR code cannot redeem the ticket in their own
browser. Kc never reaches this server: the page shows its fingerprint only.
"""

from __future__ import annotations

import argparse
import os
import secrets
from pathlib import Path
from typing import Any

from aiohttp import web

from authnet.errors import AuthnetError
from authnet.sdk import AsyncSPClient

HERE = Path(__file__).resolve().parent
COOKIE = "hello_sid"
SP_KEY: web.AppKey[AsyncSPClient] = web.AppKey("sp", AsyncSPClient)
SESSIONS_KEY: web.AppKey[dict[str, dict[str, Any]]] = web.AppKey("sessions", dict)


def _session(request: web.Request, response: web.StreamResponse | None = None) -> dict[str, Any]:
    sessions = request.app[SESSIONS_KEY]
    sid = request.cookies.get(COOKIE, "")
    if sid not in sessions:
        sid = secrets.token_urlsafe(32)
        sessions[sid] = {"pending": set()}
        if response is not None:
            response.set_cookie(COOKIE, sid, httponly=True, samesite="Strict", path="/")
    return sessions[sid]


def _same_origin(request: web.Request) -> None:
    """CSRF: state-changing calls must come from our own pages."""
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        raise web.HTTPForbidden(text="cross-origin request refused")


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(HERE / "static" / "index.html")


async def config(request: web.Request) -> web.Response:
    sp = request.app[SP_KEY]
    return web.json_response({"gateway_url": sp.credentials.gateway_url})


async def ticket(request: web.Request) -> web.Response:
    _same_origin(request)
    sp = request.app[SP_KEY]
    t = await sp.get_ticket(auth_types="c")
    response = web.json_response(
        {
            "ticket": t.ticket,
            "spid": sp.spid.hex(),
            "gateway_url": t.gateway_url,
            "gateway_urls": list(t.gateway_urls),
            "passkey_address": t.passkey_address,
            "ttl_seconds": t.ttl_seconds,
            "expires_at_unix_ms": t.expires_at_unix_ms,
        }
    )
    _session(request, response)["pending"].add(t.ticket)
    return response


async def login(request: web.Request) -> web.Response:
    _same_origin(request)
    body = await request.json()
    session = _session(request)
    ticket = body.get("ticket") if isinstance(body, dict) else None
    if not isinstance(ticket, str) or ticket not in session["pending"]:
        raise web.HTTPForbidden(text="this ticket was not issued to this browser session")
    session["pending"].discard(ticket)
    try:
        who = await request.app[SP_KEY].get_puid(ticket, finalize=True)
    except AuthnetError as e:
        raise web.HTTPUnauthorized(text=e.message) from None
    session["user"] = {"puid": who.puid, "key_id": who.key_id, "auth_types": who.auth_types}
    return web.json_response(session["user"])


async def me(request: web.Request) -> web.Response:
    user = _session(request).get("user")
    if user is None:
        raise web.HTTPUnauthorized(text="not logged in")
    return web.json_response(user)


def make_app(sp: AsyncSPClient) -> web.Application:
    app = web.Application()
    app[SP_KEY] = sp
    app[SESSIONS_KEY] = {}
    app.router.add_get("/", index)
    app.router.add_get("/api/config", config)
    app.router.add_post("/api/ticket", ticket)
    app.router.add_post("/api/login", login)
    app.router.add_get("/api/me", me)
    return app


def main() -> None:
    default = (
        Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local/share")) / "authnet/sps/demo"
    )
    p = argparse.ArgumentParser(description="hello_sp: the smallest authnet service provider")
    p.add_argument(
        "--credentials", type=Path, default=default, help=f"SP folder (default {default})"
    )
    p.add_argument("--port", type=int, default=8000)
    ns = p.parse_args()

    async def app() -> web.Application:
        return make_app(AsyncSPClient.from_credentials(ns.credentials))

    print(f"hello_sp on http://localhost:{ns.port}/")
    web.run_app(app(), host="localhost", port=ns.port, print=None)


if __name__ == "__main__":
    main()
