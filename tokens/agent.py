"""The local agent: lets a web page on this computer use a token plugged into
it, as WWPass's Security Pack does, without letting any page trigger a token.

    passkey agent --token piv --allow-origin https://shop.example

It listens on loopback only. Before touching the token, every request must:

* name a loopback Host (127.0.0.1, localhost, [::1] with the agent's port), so
  a DNS-rebinding page cannot reach it under another name;
* come from a configured origin (the browser's Origin header; a page elsewhere
  gets 403 and cannot even learn that the agent runs);
* for POST, carry `Content-Type: application/json` and `X-Authnet-Agent: 1`,
  which no cross-origin page can send without a CORS preflight the agent
  answers only for configured origins.

Then, after BeginAuth, the page that asked must be the page the network saw
waiting on the ticket (its Origin), and an origin the SP registered when it
registered any: a page that relays another site's QR code is refused. Only
then is the person asked to confirm, and for the PIN, at the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from authnet.errors import AuthnetError, Declined, MalformedInput, PermissionDenied
from authnet.protocol.payload import parse_payload
from tokens import login as flow
from tokens.devices import TokenOptions, open_for_network
from tokens.enrolments import EnrolmentBook
from tokens.handshake import AuthRequest
from tokens.passkey import PassKey
from tokens.prompt import describe

log = logging.getLogger("authnet.agent")

HEADER = "X-Authnet-Agent"
MAX_BODY = 2048


def _terminal_confirm(request: AuthRequest) -> bool:
    for line in describe(request):
        print(line, file=sys.stderr)
    print("Confirm on this computer? [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


@dataclass
class Agent:
    options: TokenOptions
    book: EnrolmentBook
    allowed_origins: tuple[str, ...]
    # None: ask on the agent's terminal.
    confirm: Callable[[AuthRequest], bool] | None = None
    ask_pin: Callable[[AuthRequest | None], str] | None = None
    # Tests and embedders may hand a token in instead of opening one.
    open_token: Callable[[str, str], PassKey] | None = None
    port: int = 7481
    _busy: asyncio.Lock = field(default_factory=asyncio.Lock)

    def _token_for(self, network: str, rp_id: str) -> PassKey:
        if self.open_token is not None:
            return self.open_token(network, rp_id)
        return open_for_network(self.options, book=self.book, network=network, rp_id=rp_id)

    async def login(self, payload_text: str, page_origin: str) -> dict[str, Any]:
        payload = parse_payload(payload_text)
        network = str(payload.network)
        ca = self.book.ca_for(network)
        if ca is None:
            raise MalformedInput(f"no token on this computer is enrolled with {network}")
        if self._busy.locked():
            raise PermissionDenied("the token is busy with another login")
        async with self._busy:
            from tokens.api import PassKeyApi

            async with PassKeyApi(network, ca_pem=ca) as api:
                rp_id = (
                    await api.webauthn_rp_id_of_network() if self.options.kind == "fido2" else ""
                )
                token = await asyncio.to_thread(self._token_for, network, rp_id)
                try:
                    enrolment = self.book.enrolment_for(token.description.public_key, network)

                    def confirm(request: AuthRequest) -> bool:
                        # The network saw which page waits on the ticket; it must be the
                        # page asking us, and one the SP registered (if it registered any).
                        if request.browser_origin != page_origin:
                            raise PermissionDenied(
                                f"the page asking ({page_origin}) is not the page waiting for "
                                f"this login ({request.browser_origin or 'no origin'})"
                            )
                        if request.origin_registered is False:
                            raise PermissionDenied(
                                f"{page_origin} is not registered for {request.sp_display_name}"
                            )
                        return (self.confirm or _terminal_confirm)(request)

                    report = await flow.login(
                        api,
                        token,
                        enrolment.token_id,
                        payload,
                        confirm=confirm,
                        ask_pin=self.ask_pin,
                    )
                finally:
                    token.close()
        if not report.accepted:
            raise Declined("the login was declined at the agent")
        log.info("login answered for %s from %s", report.request.sp_name, page_origin)
        return {"ok": True, "sp": report.request.sp_name}

    # --- HTTP -----------------------------------------------------------------

    def _cors(self, origin: str) -> dict[str, str]:
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Headers": f"Content-Type, {HEADER}",
            "Access-Control-Allow-Methods": "GET, POST",
            "Access-Control-Allow-Private-Network": "true",
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        }

    def _check(self, request: web.Request) -> str:
        hosts = {f"127.0.0.1:{self.port}", f"localhost:{self.port}", f"[::1]:{self.port}"}
        if request.headers.get("Host") not in hosts:
            raise web.HTTPMisdirectedRequest(text="the agent answers on loopback names only")
        origin = request.headers.get("Origin", "")
        if origin not in self.allowed_origins:
            raise web.HTTPForbidden(text="this page's origin may not use the local agent")
        return origin

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)

        async def preflight(request: web.Request) -> web.Response:
            return web.Response(status=204, headers=self._cors(self._check(request)))

        async def status(request: web.Request) -> web.Response:
            origin = self._check(request)
            body = {"agent": "authnet", "version": 1, "token": self.options.kind}
            return web.json_response(body, headers=self._cors(origin))

        async def login(request: web.Request) -> web.Response:
            origin = self._check(request)
            if request.headers.get(HEADER) != "1" or request.content_type != "application/json":
                raise web.HTTPForbidden(text=f"send JSON with {HEADER}: 1")
            try:
                body = await request.json()
                text = body["payload"]
                if not isinstance(text, str):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                return web.json_response(
                    {"ok": False, "code": "malformed", "message": 'expected {"payload": "..."}'},
                    status=400,
                    headers=self._cors(origin),
                )
            try:
                result = await self.login(text, origin)
            except AuthnetError as e:
                status_code = 403 if isinstance(e, PermissionDenied | Declined) else 400
                return web.json_response(
                    {"ok": False, "code": e.code, "message": e.message},
                    status=status_code,
                    headers=self._cors(origin),
                )
            return web.json_response(result, headers=self._cors(origin))

        app.router.add_route("OPTIONS", "/v1/status", preflight)
        app.router.add_route("OPTIONS", "/v1/login", preflight)
        app.router.add_get("/v1/status", status)
        app.router.add_post("/v1/login", login)
        return app


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


async def serve_agent(agent: Agent, *, host: str, port: int) -> None:
    """Serve until Ctrl-C (SIGINT) or SIGTERM. Both raise KeyboardInterrupt at
    once, even while the agent waits at a prompt on its terminal; asyncio.run
    then cancels the tasks, this one included, which closes the listening
    socket (a login under way is abandoned). A signal the agent was started with
    ignored (a background job of a script, nohup) stays ignored. Port 0 takes
    any free port (printed)."""
    agent.port = port
    runner = web.AppRunner(agent.app(), access_log=None)
    await runner.setup()
    previous: dict[signal.Signals, Any] = {}
    try:
        await web.TCPSite(runner, host, port).start()
        if port == 0:
            agent.port = runner.addresses[0][1]
        for signum in (signal.SIGINT, signal.SIGTERM):
            # Only the main thread can take signals (tests run the CLI elsewhere).
            with contextlib.suppress(ValueError):
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    previous[signum] = signal.signal(signum, _interrupt)
        print(
            f"authnet agent on http://{host}:{agent.port} for "
            f"{', '.join(agent.allowed_origins)}; Ctrl-C stops it",
            flush=True,
        )
        await asyncio.Event().wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        await runner.cleanup()


__all__ = ["Agent", "serve_agent"]
