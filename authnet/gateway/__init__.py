"""The browser gateway: a websocket where a browser waits on its ticket, and the
browser client (ES modules) it loads.

    GET /v1/wait          websocket, JSON text frames (docs/protocol.md, "Gateway")
    GET /v1/authnet.js    the browser client (plus hpke.js, qr.js, vendor/)
    /v1/webauthn/...      security keys used by the page itself (webauthn_api)
    GET /healthz          "ok"

A waiting browser first sends `hello` with the ticket, its X25519 public key and
a random wait secret. The first hello binds both to the ticket; a reconnect must
repeat them. Someone who only saw the QR code (ticket + public key) therefore
cannot take the sealed Kc out of the mailbox, nor wait in the browser's place.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import weakref
from collections.abc import Callable
from importlib import resources
from typing import Any

from aiohttp import WSCloseCode, WSMessage, WSMsgType, web

from authnet.errors import (
    AlreadyDelivered,
    AuthnetError,
    MalformedInput,
    TicketConsumed,
    TicketExpired,
    TicketRejected,
)
from authnet.gateway import webauthn_api
from authnet.gateway.limits import parse_json
from authnet.network import Network
from authnet.protocol.encoding import b64u_decode, b64u_encode
from authnet.protocol.ids import check_ticket, ticket_hash, ticket_tag
from authnet.protocol.sealing import SealedKey
from authnet.protocol.suites import XWING_PUBLIC_KEY_BYTES
from authnet.state import EventKind
from authnet.tickets import BrowserHints, Ticket, TicketState, needs_client_key, state_at

log = logging.getLogger("authnet.gateway")

HELLO_TIMEOUT_S = 10.0
MAX_FRAME = 4096
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8"}
NETWORK_KEY: web.AppKey[Network] = web.AppKey("network", Network)
PROXIES_KEY: web.AppKey[tuple[str, ...]] = web.AppKey("trusted_proxies", tuple)
SOCKETS_KEY: web.AppKey[weakref.WeakSet[web.WebSocketResponse]] = web.AppKey(
    "websockets", weakref.WeakSet
)
# How long the gateway waits for the browser to acknowledge the sealed Kc.
ACK_TIMEOUT_S = 10.0


def browser_client_files() -> dict[str, bytes]:
    """The browser client's files by name (`authnet.js`, `hpke.js`, `qr.js`,
    `vendor/...`), for an SP that serves them from its own origin, so that its
    page runs no code the network could change (the vault does)."""
    return _static_files()


def _static_files() -> dict[str, bytes]:
    root = resources.files("authnet.gateway") / "static"
    out: dict[str, bytes] = {}

    def walk(node: Any, prefix: str) -> None:
        for child in node.iterdir():
            name = prefix + child.name
            if child.is_dir():
                walk(child, name + "/")
            elif any(name.endswith(ext) for ext in STATIC_TYPES):
                out[name] = child.read_bytes()

    walk(root, "")
    return out


def client_ip(request: web.Request, trusted_proxies: tuple[str, ...]) -> str:
    """The browser's address; X-Forwarded-For is believed only from trusted proxies."""
    peer = request.remote or ""
    if peer not in trusted_proxies:
        return peer
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if hop not in trusted_proxies:
            with contextlib.suppress(ValueError):
                return str(ipaddress.ip_address(hop))
            return peer
    return peer


class _Waiter:
    """One browser's websocket session."""

    def __init__(self, network: Network, ws: web.WebSocketResponse) -> None:
        self.network = network
        self.ws = ws
        self._incoming: asyncio.Future[WSMessage] | None = None

    def reading(self) -> asyncio.Future[WSMessage]:
        """The one pending read of the socket (aiohttp allows one at a time)."""
        if self._incoming is None:
            self._incoming = asyncio.ensure_future(self.ws.receive())
        return self._incoming

    def consume(self) -> WSMessage:
        assert self._incoming is not None
        assert self._incoming.done()
        msg, self._incoming = self._incoming.result(), None
        return msg

    def stop_reading(self) -> None:
        if self._incoming is not None:
            self._incoming.cancel()
            self._incoming = None

    async def send(self, kind: str, **fields: Any) -> None:
        await self.ws.send_str(json.dumps({"type": kind, **fields}, separators=(",", ":")))

    async def error(self, err: AuthnetError) -> None:
        await self.send("error", code=err.code, message=err.message)

    async def deliver(self, t: Ticket, sealed: SealedKey | None) -> None:
        """Send the sealed Kc (`sealed`: what the ticket's mailbox held when
        `t` was read); delete it from the mailbox once the browser
        acknowledges receipt. A connection that dies first (or a stale one the
        gateway has not noticed yet) leaves it there for the browser's resumed
        connection: only the holder of the wait secret can connect."""
        if t.kc_in_browser:
            # The page logged in with its own security key and derived Kc itself.
            await self.send("authenticated", kc="browser")
            return
        if sealed is None:
            if needs_client_key(t):
                await self.error(AlreadyDelivered())
            else:
                await self.send("authenticated")
            return
        await self.send(
            "authenticated",
            sealed_kc={
                "enc": b64u_encode(sealed.enc),
                "ciphertext": b64u_encode(sealed.ciphertext),
            },
        )
        try:
            async with asyncio.timeout(ACK_TIMEOUT_S):
                await self.reading()
        except TimeoutError:
            log.info("sealed key sent but not acknowledged tag=%s", ticket_tag(t.th))
            return
        msg = self.consume()
        if msg.type is WSMsgType.TEXT and _is_ack(msg.data):
            await self.network.ack_sealed_kc(t.th)
            log.debug("sealed key delivered tag=%s", ticket_tag(t.th))

    async def report(self, t: Ticket) -> bool:
        """Tell the browser where the ticket stands; True when nothing more will come."""
        state = state_at(t, self.network.clock())
        if state is TicketState.ISSUED:
            await self.send("waiting", expires_at=t.expires_ms, node=self.network.node_id)
            return False
        if state is TicketState.SCANNED:
            await self.send("waiting", expires_at=t.expires_ms, node=self.network.node_id)
            await self.send("scanned")
            return False
        if state is TicketState.AUTHENTICATED:
            sealed = None if t.kc_in_browser else await self.network.peek_sealed_kc(t.th)
            await self.deliver(t, sealed)
        elif state is TicketState.REJECTED:
            await self.send("rejected")
        elif state is TicketState.EXPIRED:
            await self.send("expired")
        else:
            await self.error(TicketConsumed())
        return True

    async def run(self, hello: dict[str, Any], hints: BrowserHints) -> None:
        ticket = check_ticket(hello.get("ticket", ""))
        browser_key = b64u_decode(hello.get("browser_key", ""), field="browser_key", length=32)
        wait_secret = b64u_decode(hello.get("wait_secret", ""), field="wait_secret", length=32)
        # An X-Wing key registered for the QR code's hash `x` (docs/protocol.md §7.1).
        pq_text = hello.get("browser_pq_key")
        pq_key = None
        if pq_text is not None:
            pq_key = b64u_decode(pq_text, field="browser_pq_key", length=XWING_PUBLIC_KEY_BYTES)
        th = ticket_hash(ticket)
        async with self.network.state.subscribe(th) as sub:
            try:
                t = await self.network.browser_hello(
                    ticket,
                    browser_key=browser_key,
                    wait_secret=wait_secret,
                    hints=hints,
                    pq_key=pq_key,
                )
            except TicketRejected:
                await self.send("rejected")
                return
            except TicketExpired:
                await self.send("expired")
                return
            if await self.report(t):
                return
            while True:
                remaining = (t.expires_ms - self.network.clock()) / 1000
                next_event = asyncio.ensure_future(sub.next_event())
                pending: set[asyncio.Future[Any]] = {next_event, self.reading()}
                done, _ = await asyncio.wait(
                    pending,
                    timeout=max(0.0, remaining),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if next_event not in done:
                    next_event.cancel()
                if self.reading() in done:
                    return  # the browser went away (or spoke out of turn)
                if not done:  # timer: the ticket expired unanswered
                    await self.send("expired")
                    return
                event = next_event.result()
                if event.kind is EventKind.SCANNED:
                    await self.send("scanned")
                    continue
                # The mail with the ticket, in one read (the swap that
                # authenticated left both before it published the event).
                fresh, sealed = await self.network.ticket_and_sealed_kc(th)
                if fresh is None:
                    await self.send("expired")
                    return
                if event.kind is EventKind.AUTHENTICATED:
                    await self.deliver(fresh, sealed)
                else:
                    await self.send("rejected")
                return


def _is_ack(data: str) -> bool:
    """Whether the browser's reply acknowledges the sealed Kc; MalformedInput
    when it is not JSON at all (or nested absurdly deep)."""
    msg = parse_json(data, what="ack")
    return isinstance(msg, dict) and msg.get("type") == "ack"


class _BrowserSocket(web.WebSocketResponse):
    """A waiting browser's websocket. aiohttp (3.14) re-arms the heartbeat
    timer whenever data arrives, even after the socket was closed: the
    browser's close frame, which always comes after ours, scheduled a ping 20 s
    later whose timer held the closed response, its request and buffers
    (about 10 KB) until it fired. A closed socket arms no timer, so its memory
    is freed as soon as the handler returns."""

    def _reset_heartbeat(self) -> None:
        if not self.closed:
            super()._reset_heartbeat()


async def wait_handler(request: web.Request) -> web.WebSocketResponse:
    network = request.app[NETWORK_KEY]
    # No permessage-deflate, although every browser offers it: the frames are a
    # few hundred bytes, and once negotiated each session holds a deflate and
    # an inflate context (about 83 + 36 KiB of touched memory, against a
    # budget of 30 KiB per waiting browser) and spends about 175 us more CPU
    # (705 -> 530 us per session, measured with a client that offers it).
    ws = _BrowserSocket(heartbeat=20.0, max_msg_size=MAX_FRAME, compress=False)
    await ws.prepare(request)
    waiter = _Waiter(network, ws)
    sockets = request.app[SOCKETS_KEY]
    sockets.add(ws)
    try:
        try:
            # A timeout scope, not wait_for: no task per session to run the read.
            async with asyncio.timeout(HELLO_TIMEOUT_S):
                msg = await ws.receive()
        except TimeoutError:
            await waiter.error(MalformedInput("no hello within 10 seconds"))
            return ws
        if msg.type is not WSMsgType.TEXT:
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                return ws
            await waiter.error(MalformedInput("expected a JSON text frame"))
            return ws
        try:
            hello = parse_json(msg.data, what="hello")
        except MalformedInput as err:
            await waiter.error(err)
            return ws
        if not isinstance(hello, dict) or hello.get("type") != "hello" or hello.get("v") != 1:
            await waiter.error(MalformedInput('expected {"type": "hello", "v": 1, ...}'))
            return ws
        hints = BrowserHints(
            ip=client_ip(request, request.app[PROXIES_KEY]),
            user_agent=request.headers.get("User-Agent", ""),
            origin=request.headers.get("Origin", ""),
        )
        try:
            await waiter.run(hello, hints)
        except AuthnetError as err:
            await waiter.error(err)
    except ConnectionResetError:
        pass
    finally:
        waiter.stop_reading()
        sockets.discard(ws)
        await ws.close()
    return ws


def make_app(
    network: Network,
    *,
    trusted_proxies: tuple[str, ...] = (),
    ready: Callable[[], tuple[bool, str]] | None = None,
) -> web.Application:
    """`ready`: the node's health (serving?, why not); /healthz answers 503
    while the node cannot reach its state store or directory."""
    # No request body the gateway accepts is larger (aiohttp's default is 1 MiB).
    app = web.Application(client_max_size=webauthn_api.MAX_BODY)
    app[NETWORK_KEY] = network
    app[PROXIES_KEY] = trusted_proxies
    files = _static_files()

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = files.get(name)
        if body is None:
            raise web.HTTPNotFound(text=f"no such file: {name[:64]}")
        suffix = name[name.rfind(".") :]
        return web.Response(
            body=body,
            headers={
                "Content-Type": STATIC_TYPES[suffix],
                "Access-Control-Allow-Origin": "*",
                "Cache-Control": "no-cache",
                "X-Content-Type-Options": "nosniff",
            },
        )

    async def healthz(_: web.Request) -> web.Response:
        ok, why = ready() if ready is not None else (True, "")
        if not ok:
            return web.Response(status=503, text=f"not serving: {why}\n")
        return web.Response(text="ok\n")

    async def index(_: web.Request) -> web.Response:
        return web.Response(
            text=(
                f"authnet network {network.network_name!r}\n"
                f"PassKey API: {network.passkey_address}\n"
                "Browser client: /v1/authnet.js\nWebsocket: /v1/wait\n"
            )
        )

    sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
    app[SOCKETS_KEY] = sockets

    async def close_sockets(_: web.Application) -> None:
        # Shutting down: end every wait now (browsers resume on another node)
        # instead of letting the server wait for them.
        for ws in list(sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")

    app.on_shutdown.append(close_sockets)
    app.router.add_get("/v1/wait", wait_handler)
    webauthn_api.add_routes(app, network)
    app.router.add_get("/v1/{name:.+}", static)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/", index)
    return app
