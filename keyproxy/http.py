"""The JSON front browsers and the vault's CLI use (docs/keyproxy.md 3).

    POST /v1/deposits                 {blob, ttl_seconds, conditions?} -> 201 {token, expires_ms}
    GET  /v1/deposits/{token}         -> {state, expires_ms, claimed_ms, size, conditions}
    POST /v1/deposits/{token}/claim   {secret?, grant?} -> {blob}
    GET  /v1/health                   -> {status, version}

CORS only for the configured origins (no credentials: the token is the
capability). Bodies are limited on the bytes actually read, chunked or not.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from keyproxy.errors import Malformed, ProxyError, StoreUnavailable, TooLarge
from keyproxy.service import ProxyService

log = logging.getLogger("keyproxy.http")
VERSION = "1"
SERVICE: web.AppKey[ProxyService] = web.AppKey("service", ProxyService)
ORIGINS: web.AppKey[frozenset[str]] = web.AppKey("origins", frozenset)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


def _cors(request: web.Request, response: web.StreamResponse) -> None:
    origin = request.headers.get("Origin")
    allowed = request.app[ORIGINS]
    if origin and ("*" in allowed or origin in allowed):
        response.headers["Access-Control-Allow-Origin"] = "*" if "*" in allowed else origin
        response.headers["Vary"] = "Origin"


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method == "OPTIONS":
        response: web.StreamResponse = web.Response(status=204)
        _cors(request, response)
        if "Access-Control-Allow-Origin" in response.headers:
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type"
            response.headers["Access-Control-Max-Age"] = "600"
        return response
    try:
        response = await handler(request)
    except ProxyError as e:
        response = _json(e.body(), e.status)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SERVICE].limits.max_blob_bytes
        e2 = TooLarge("the request body is larger than any deposit may be", limit=limit)
        response = _json(e2.body(), e2.status)
    except web.HTTPException as e:
        response = _json(
            {"error": "not_found" if e.status == 404 else "http", "message": e.reason}, e.status
        )
    except (ConnectionError, OSError) as e:
        log.warning("store unavailable: %s", type(e).__name__)
        e3 = StoreUnavailable("the proxy's store cannot be reached; try again")
        response = _json(e3.body(), e3.status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    _cors(request, response)
    return response


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise Malformed("the body is not JSON") from None
    if not isinstance(body, dict):
        raise Malformed("the body is not a JSON object")
    return body


def _client(request: web.Request) -> str:
    return request.remote or ""


async def deposit(request: web.Request) -> web.Response:
    out = await request.app[SERVICE].deposit(await _body(request), client=_client(request))
    return _json(out, 201)


async def status(request: web.Request) -> web.Response:
    return _json(await request.app[SERVICE].status(request.match_info["token"]))


async def claim(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    out = await service.claim(
        request.match_info["token"], await _body(request), client=_client(request)
    )
    return _json(out)


async def health(request: web.Request) -> web.Response:
    return _json({"status": "ok", "version": VERSION})


def make_app(service: ProxyService, *, allow_origins: Sequence[str] = ()) -> web.Application:
    # base64 grows a blob by 4/3; the rest of a deposit is small.
    limit = service.limits.max_blob_bytes * 4 // 3 + 4096
    app = web.Application(middlewares=[_middleware], client_max_size=limit)
    app[SERVICE] = service
    app[ORIGINS] = frozenset(allow_origins)
    app.router.add_post("/v1/deposits", deposit)
    app.router.add_get("/v1/deposits/{token}", status)
    app.router.add_post("/v1/deposits/{token}/claim", claim)
    app.router.add_get("/v1/health", health)
    return app
