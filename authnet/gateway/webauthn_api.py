"""Security keys used by the page itself (WebAuthn in the browser), over HTTP
JSON next to the websocket. docs/protocol.md, "Browser-native security-key
login", is normative; this is its transport.

    POST /v1/webauthn/login/options  {ticket, wait_secret}
    POST /v1/webauthn/login          {ticket, wait_secret, nonce, credential_id,
                                      authenticator_data, client_data_json, signature,
                                      client_key}
    POST /v1/webauthn/enrol/options  {label}
    POST /v1/webauthn/enrol          {challenge, label, client_data_json, attestation_object}
    GET  /v1/enrol                   a page that enrols a security key (a new account)
    GET  /.well-known/webauthn       related origins: the SPs' registered origins

Bytes travel as unpadded base64url. Only the page waiting on a ticket can log
in with it (it holds the wait secret the websocket hello bound to the ticket),
and only from the origin the gateway saw; the network checks the assertion's
client-data origin against it. Errors are `{"code", "message"}` with an HTTP
status that says what kind of failure it was.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import web

from authnet.errors import AuthnetError, MalformedInput, PayloadTooLarge, PermissionDenied
from authnet.gateway.limits import check_json_depth, parse_json
from authnet.network import Network
from authnet.protocol.encoding import b64u_decode, b64u_encode
from authnet.protocol.ids import check_ticket
from authnet.protocol.proofs import Assertion

log = logging.getLogger("authnet.gateway")

MAX_BODY = 16 * 1024
# Seconds a client has to send the whole body once its headers arrived.
BODY_TIMEOUT_S = 10.0

STATUS = {
    "malformed": 400,
    "too_large": 413,
    "challenge_invalid": 400,
    "signature_invalid": 400,
    "permission_denied": 403,
    "browser_key_mismatch": 403,
    "browser_not_waiting": 409,
    "factor_not_proven": 403,
    "token_revoked": 403,
    "token_unknown": 404,
    "ticket_not_found": 404,
    "ticket_state": 409,
    "ticket_consumed": 409,
    "ticket_rejected": 409,
    "ticket_expired": 410,
}

Handler = Callable[[Network, dict[str, Any], str], Awaitable[dict[str, Any]]]


def _field(body: dict[str, Any], name: str, *, length: int | None = None) -> bytes:
    value = body.get(name)
    if not isinstance(value, str):
        raise MalformedInput(f"{name} is required (base64url)")
    return b64u_decode(value, field=name, length=length)


def _client_data(body: dict[str, Any]) -> bytes:
    """client_data_json, which the WebAuthn library parses as JSON in turn."""
    raw = _field(body, "client_data_json")
    check_json_depth(raw.decode("utf-8", "replace"), what="client_data_json")
    return raw


async def _read_body(request: web.Request) -> bytes:
    """The body, read up to MAX_BODY bytes whatever the headers claim: a
    chunked body has no Content-Length to check in advance."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise PayloadTooLarge(f"requests are limited to {MAX_BODY} bytes", limit=MAX_BODY)
    body = bytearray()
    while chunk := await request.content.read(MAX_BODY + 1 - len(body)):
        body += chunk
        if len(body) > MAX_BODY:
            raise PayloadTooLarge(f"requests are limited to {MAX_BODY} bytes", limit=MAX_BODY)
    return bytes(body)


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise MalformedInput(f"{name} must be true or false")
    return value


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise MalformedInput(f"{name} is required (a string)")
    return value


async def _login_options(net: Network, body: dict[str, Any], origin: str) -> dict[str, Any]:
    options = await net.webauthn_login_options(
        check_ticket(_text(body, "ticket")),
        wait_secret=_field(body, "wait_secret", length=32),
        origin=origin,
    )
    return {
        "nonce": b64u_encode(options.nonce),
        "challenge": b64u_encode(options.challenge),
        "rp_id": options.rp_id,
        "timeout_ms": options.timeout_ms,
        "user_verification": "required",
    }


async def _login(net: Network, body: dict[str, Any], origin: str) -> dict[str, Any]:
    await net.webauthn_login(
        check_ticket(_text(body, "ticket")),
        wait_secret=_field(body, "wait_secret", length=32),
        origin=origin,
        nonce=_field(body, "nonce", length=32),
        assertion=Assertion(
            credential_id=_field(body, "credential_id"),
            authenticator_data=_field(body, "authenticator_data"),
            client_data_json=_client_data(body),
            signature=_field(body, "signature"),
        ),
        client_key=_flag(body, "client_key"),
    )
    return {"ok": True}


async def _enrol_options(net: Network, body: dict[str, Any], origin: str) -> dict[str, Any]:
    if not net.relying_party.on_rp_id(origin):
        raise PermissionDenied("security keys are enrolled on the network's own pages")
    label = _text(body, "label")
    options = await net.webauthn_enrol_options(label)
    return {
        "challenge": b64u_encode(options.challenge),
        "webauthn_challenge": b64u_encode(options.webauthn_challenge),
        "rp": {"id": options.rp_id, "name": options.rp_name},
        "user": {"id": b64u_encode(options.user_id), "name": label, "display_name": label},
        "timeout_ms": options.timeout_ms,
    }


async def _enrol(net: Network, body: dict[str, Any], origin: str) -> dict[str, Any]:
    token_id = await net.webauthn_enrol(
        challenge=_field(body, "challenge", length=32),
        label=_text(body, "label"),
        client_data_json=_client_data(body),
        attestation_object=_field(body, "attestation_object"),
        origin=origin,
    )
    return {"token_id": b64u_encode(token_id), "network_name": net.network_name}


def _cors(origin: str) -> dict[str, str]:
    # Any page may call (the wait secret and the origin checks decide); no
    # cookies are involved, so reflecting the origin grants nothing extra.
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": "POST",
        "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }


def _endpoint(network: Network, handler: Handler, *, cross_origin: bool) -> Any:
    async def serve(request: web.Request) -> web.Response:
        origin = request.headers.get("Origin", "")
        headers = _cors(origin) if cross_origin and origin else {}
        try:
            if not origin:
                raise PermissionDenied("browsers send an Origin header; this request had none")
            if request.content_type != "application/json":
                raise MalformedInput("send application/json")
            try:
                async with asyncio.timeout(BODY_TIMEOUT_S):
                    raw = await _read_body(request)
            except TimeoutError:
                late = web.json_response(
                    {
                        "code": MalformedInput.code,
                        "message": f"send the request body within {BODY_TIMEOUT_S:g} seconds",
                    },
                    status=408,
                    headers=headers,
                )
                late.force_close()
                return late
            body = parse_json(raw, what="the body")
            if not isinstance(body, dict):
                raise MalformedInput("the body must be a JSON object")
            result = await handler(network, body, origin)
        except AuthnetError as e:
            refused = web.json_response(
                {"code": e.code, "message": e.message},
                status=STATUS.get(e.code, 400),
                headers=headers,
            )
            if isinstance(e, PayloadTooLarge):
                # The rest of the body is not worth reading: end the connection.
                refused.force_close()
            return refused
        return web.json_response(result, headers=headers)

    return serve


def add_routes(app: web.Application, network: Network) -> None:
    page = resources.files("authnet.gateway").joinpath("static/enrol.html").read_bytes()

    async def preflight(request: web.Request) -> web.Response:
        return web.Response(status=204, headers=_cors(request.headers.get("Origin", "")))

    async def enrol_page(_: web.Request) -> web.Response:
        return web.Response(
            body=page,
            headers={
                "Content-Type": "text/html; charset=utf-8",
                "Cache-Control": "no-cache",
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": (
                    "default-src 'none'; script-src 'self'; connect-src 'self'; "
                    "style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"
                ),
            },
        )

    async def related_origins(_: web.Request) -> web.Response:
        # WebAuthn Related Origin Requests: SP pages may use the network's RP id.
        sps = await network.directory.list_sps()
        origins = sorted({o for sp in sps if sp.disabled_ms is None for o in sp.origins})
        return web.json_response({"origins": origins}, headers={"Cache-Control": "max-age=300"})

    for path, handler, cross in (
        ("/v1/webauthn/login/options", _login_options, True),
        ("/v1/webauthn/login", _login, True),
        ("/v1/webauthn/enrol/options", _enrol_options, False),
        ("/v1/webauthn/enrol", _enrol, False),
    ):
        app.router.add_post(path, _endpoint(network, handler, cross_origin=cross))
        if cross:
            app.router.add_route("OPTIONS", path, preflight)
    app.router.add_get("/v1/enrol", enrol_page)
    app.router.add_get("/.well-known/webauthn", related_origins)
