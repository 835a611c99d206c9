"""The vault's HTTP service: the JSON API (FastAPI; its OpenAPI document at
/api/openapi.json) and the static UI from vault_api/static/.

    app = create_app(settings)                      # vault-api serve does this
    app = create_app(settings, sp=client, clock=f)  # tests: their own SP client and clock

Errors of every kind leave here as one JSON shape, {"error": code,
"message": text, ...facts}: domain errors (vault_api.errors), request
validation (400 when the body is not JSON, 422 when a field is wrong) and
Starlette's own (404 unknown path, 405, 413 body too large).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from authnet.sdk import AsyncSPClient
from vault_api import __version__
from vault_api.blobs import BlobStore, LocalBlobStore
from vault_api.config import Settings
from vault_api.context import Vault, wall_clock_ms
from vault_api.crypto.files import ciphertext_size
from vault_api.db import Database
from vault_api.errors import ApiError, Invalid, Malformed
from vault_api.headers import SecurityHeaders
from vault_api.limits import BodyLimit, BodyTooLarge
from vault_api.models import ErrorOut
from vault_api.relay import Relay
from vault_api.routes import (
    client,
    devices,
    factors,
    files,
    login,
    orgs,
    records,
    rotations,
    safes,
    users,
)
from vault_api.sessions import SessionService

log = logging.getLogger("vault_api")

STATIC = Path(__file__).resolve().parent / "static"

_HTTP_CODES = {
    400: "malformed",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": text}
    for status, text in (
        (400, "malformed request"),
        (401, "not logged in, or the session ended"),
        (403, "not allowed (role, CSRF token, another browser's ticket)"),
        (404, "no such object among the caller's"),
        (409, "conflict: stale version or key generation, id taken; nothing changed"),
        (410, "gone: a revoked or expired device"),
        (413, "too large"),
        (422, "a field is not acceptable"),
    )
}


def _respond(exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _respond(exc)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"field": ".".join(str(p) for p in e.get("loc", ())), "problem": str(e.get("msg", ""))}
        for e in exc.errors()
    ]
    if any(e.get("type") == "json_invalid" for e in exc.errors()):
        return _respond(Malformed("the body is not valid JSON", problems=problems))
    first = problems[0] if problems else {"field": "", "problem": "invalid"}
    return _respond(Invalid(f"{first['field']}: {first['problem']}", problems=problems))


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    extra = {"limit": exc.limit} if isinstance(exc, BodyTooLarge) else {}
    return JSONResponse(
        {"error": code, "message": str(exc.detail), **extra},
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


def create_app(
    settings: Settings,
    *,
    sp: AsyncSPClient | None = None,
    db: Database | None = None,
    blobs: BlobStore | None = None,
    clock: Callable[[], int] = wall_clock_ms,
) -> FastAPI:
    """The app. Parts not given are made from `settings` at startup (the SP
    client inside the server's event loop) and closed at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_sp = sp is None
        own_db = db is None
        client = sp or AsyncSPClient.from_credentials(settings.credentials_path)
        database = db or Database.open(settings.db_url)
        store = blobs or LocalBlobStore(settings.blob_path)
        relay = Relay.from_settings(settings)
        app.state.vault = Vault(
            settings=settings,
            db=database,
            sp=client,
            blobs=store,
            sessions=SessionService(settings, database, client, clock),
            clock=clock,
            relay=relay,
        )
        try:
            yield
        finally:
            if relay is not None:
                await relay.close()
            if own_sp:
                await client.close()
            if own_db:
                database.dispose()

    app = FastAPI(
        title="authnet vault API",
        version=__version__,
        summary="A password vault whose secrets are encrypted only on the client.",
        description=(
            "Every secret is encrypted and decrypted on the client under keys that "
            "hang off the client key Kc authnet delivers; this API stores "
            "ciphertext and enforces access. docs/vault.md is the full description. "
            "Bytes are base64url without padding. Every state-changing call needs "
            "the session cookie and the X-CSRF-Token header."
        ),
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    app.add_middleware(
        BodyLimit,
        json_bytes=settings.max_request_bytes,
        upload_bytes=ciphertext_size(settings.max_file_bytes),
    )
    app.add_middleware(SecurityHeaders)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for router in (
        client.router,
        login.router,
        users.router,
        factors.router,
        safes.router,
        records.router,
        files.router,
        rotations.router,
        devices.router,
        orgs.router,
    ):
        app.include_router(router)

    @app.get("/api/health", tags=["session"])
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    app.mount("/", StaticFiles(directory=STATIC, html=True), name="static")
    return app
