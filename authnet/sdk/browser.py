"""The browser's side of a login, in Python: what authnet.js does in a page.

For terminal clients (the vault CLI), the demo, the benchmarks and tests:

    session = BrowserSession(ticket=t.ticket, spid=sp.spid,
                             gateway_url=t.gateway_url, passkey_address=t.passkey_address)
    async with session.waiting(http) as wait:
        show_qr(session.payload())          # the phone scans this
        kc = await wait.result()             # raises TicketRejected, TicketExpired, ...

The ephemeral X25519 private key never leaves this object; the wait secret
binds this session to the ticket at the gateway (docs/protocol.md, "Gateway").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric import x25519

from authnet import errors
from authnet.protocol.encoding import b64u_decode, b64u_encode
from authnet.protocol.ids import ticket_hash
from authnet.protocol.payload import LoginPayload, parse_address
from authnet.protocol.sealing import BrowserKeys, SealedKey
from authnet.protocol.suites import xwing_key_pair
from authnet.sdk.sp_client import Ticket

# Connections a wait opens after its first one broke, at most.
RESUME_ATTEMPTS = 8
# A gateway that accepted the connection but sent no event within this long is
# passed over for the next, as authnet.js does (docs/protocol.md 16.3).
FIRST_EVENT_TIMEOUT_S = 5.0
# Gateway error codes meaning "this node cannot serve you now": the wait
# resumes on another gateway instead of failing (the same list as authnet.js).
RESUMABLE_CODES = frozenset(
    {
        "unavailable",
        "overloaded",
        "state_unavailable",
        "state_record_unreadable",
        "directory_unavailable",
    }
)


def websocket_url(gateway_url: str) -> str:
    base = gateway_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://") :] + "/v1/wait"
    if base.startswith("http://"):
        return "ws://" + base[len("http://") :] + "/v1/wait"
    raise errors.MalformedInput("gateway URL must start with http:// or https://")


@dataclass(frozen=True, kw_only=True)
class LoginOutcome:
    """What the browser ends with: Kc (when requested) for this SP."""

    kc: bytes | None = field(repr=False)
    # The page logged in with its own security key: it derives Kc from the
    # key's PRF output itself (kc is None here).
    kc_in_browser: bool = False


class _Wait:
    def __init__(self, session: BrowserSession, http: aiohttp.ClientSession, origin: str | None):
        self._session = session
        self._http = http
        self._origin = origin
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.expires_at_unix_ms: int | None = None
        self.scanned = False
        # A reconnect to a ticket already answered starts with its outcome.
        self._pending: dict[str, Any] | None = None
        # Which gateway (index into session.gateway_urls) this wait is on, and
        # how many times it moved to another after a broken connection.
        self.gateway = 0
        self.reconnects = 0
        # The node id each gateway connection reported (in `waiting`).
        self.nodes: list[str] = []
        # The current connection has not yet sent an event.
        self._silent = False

    async def connect(self, first: int = 0) -> None:
        """Connect to a gateway, trying each in turn from `first`, and send
        the hello (the same one on every connection: it binds this session's
        key and wait secret to the ticket, and a repeat resumes the wait)."""
        urls = self._session.gateway_urls
        headers = {"Origin": self._origin} if self._origin else {}
        failure = ""
        for n in range(len(urls)):
            i = (first + n) % len(urls)
            try:
                ws = await self._http.ws_connect(
                    websocket_url(urls[i]), heartbeat=20.0, headers=headers
                )
            except (aiohttp.ClientError, OSError) as e:
                failure = str(e)
                continue
            try:
                await ws.send_str(self._session.hello())
            except (aiohttp.ClientError, OSError, ConnectionResetError) as e:
                await ws.close()
                failure = str(e)
                continue
            self._ws, self.gateway, self._silent = ws, i, True
            return
        raise errors.NetworkUnavailable(f"cannot reach the gateway: {failure}")

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
            self._ws = None

    async def _resume(self) -> None:
        """The connection broke before the outcome: resume on the next gateway,
        with a short pause after each full round, while the ticket lives."""
        await self.close()
        urls = self._session.gateway_urls
        for attempt in range(RESUME_ATTEMPTS):
            if (
                self.expires_at_unix_ms is not None
                and time.time() * 1000 >= self.expires_at_unix_ms
            ):
                raise errors.TicketExpired()
            if attempt and attempt % len(urls) == 0:
                await asyncio.sleep(min(1.0, 0.1 * 2 ** (attempt // len(urls))))
            try:
                await self.connect(self.gateway + 1)
            except errors.NetworkUnavailable:
                continue
            self.reconnects += 1
            return
        raise errors.NetworkUnavailable("the gateway connection broke and no gateway answers")

    async def _next(self) -> dict[str, Any]:
        """The next event. A broken connection, a gateway that says nothing
        within FIRST_EVENT_TIMEOUT_S of connecting, and one that answers a
        RESUMABLE_CODES error resume the wait on the next gateway."""
        while True:
            assert self._ws is not None
            try:
                async with asyncio.timeout(FIRST_EVENT_TIMEOUT_S if self._silent else None):
                    msg = await self._ws.receive()
            except (aiohttp.ClientError, OSError, ConnectionResetError, TimeoutError):
                msg = None
            if msg is None or msg.type is not aiohttp.WSMsgType.TEXT:
                await self._resume()
                continue
            self._silent = False
            data = json.loads(msg.data)
            if not isinstance(data, dict):
                raise errors.MalformedInput("gateway sent a non-object event")
            if data.get("type") == "error" and data.get("code") in RESUMABLE_CODES:
                await self._resume()
                continue
            if data.get("type") == "waiting":
                self.expires_at_unix_ms = int(data["expires_at"])
                if isinstance(data.get("node"), str):
                    self.nodes.append(data["node"])
            return data

    async def started(self) -> None:
        """Wait for the gateway to accept the hello (`waiting`, or the outcome
        itself when reconnecting to a ticket that was already answered)."""
        event = await self._next()
        self._raise_final(event)
        if event.get("type") == "authenticated":
            self._pending = event
        elif event.get("type") != "waiting":
            raise errors.MalformedInput(f"unexpected gateway event {event.get('type')!r}")

    @staticmethod
    def _raise_final(event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "error":
            cls = errors.BY_CODE.get(str(event.get("code")), errors.AuthnetError)
            raise cls(str(event.get("message") or "") or None)
        if kind == "rejected":
            raise errors.TicketRejected()
        if kind == "expired":
            raise errors.TicketExpired()

    async def result(self, on_scanned: Callable[[], None] | None = None) -> LoginOutcome:
        """Wait for the outcome; Kc opened from the sealed key when one comes.
        A broken connection resumes on another gateway; the outcome is
        returned once."""
        while True:
            event, self._pending = self._pending or await self._next(), None
            self._raise_final(event)
            kind = event.get("type")
            if kind == "waiting":  # a resumed connection starts again
                continue
            if kind == "scanned":
                if not self.scanned and on_scanned:
                    on_scanned()
                self.scanned = True
                continue
            if kind == "authenticated":
                if event.get("kc") == "browser":
                    return LoginOutcome(kc=None, kc_in_browser=True)
                sealed = event.get("sealed_kc")
                if sealed is None:
                    return LoginOutcome(kc=None)
                kc = self._session.open(sealed)
                # Receipt acknowledged: the gateway may now delete the sealed key.
                # (If this ack is lost, a later resume would get it again; the
                # outcome is returned here, once, either way.)
                assert self._ws is not None
                with contextlib.suppress(aiohttp.ClientError, OSError, ConnectionResetError):
                    await self._ws.send_str('{"type":"ack"}')
                return LoginOutcome(kc=kc)
            raise errors.MalformedInput(f"unexpected gateway event {kind!r}")


class BrowserSession:
    def __init__(
        self,
        *,
        ticket: str,
        spid: bytes,
        gateway_url: str,
        passkey_address: str,
        gateway_urls: Sequence[str] = (),
        post_quantum: bool = False,
    ) -> None:
        self.ticket = ticket
        self.spid = spid
        self.gateway_url = gateway_url
        # Where to resume the wait when a connection breaks: every gateway of
        # the network, gateway_url first.
        self.gateway_urls = tuple(dict.fromkeys([gateway_url, *gateway_urls]))
        for url in self.gateway_urls:
            websocket_url(url)  # refuses anything but http(s) URLs now
        self.passkey_address = parse_address(passkey_address)
        self._private = x25519.X25519PrivateKey.generate()
        self.public_key = self._private.public_key().public_bytes_raw()
        # post_quantum: also offer X-Wing (docs/protocol.md §7.1).
        self._keys = BrowserKeys(
            x25519_private=self._private,
            xwing=xwing_key_pair(secrets.token_bytes(32)) if post_quantum else None,
        )
        self._wait_secret = secrets.token_bytes(32)

    @classmethod
    def for_ticket(
        cls, ticket: Ticket, spid: bytes, *, post_quantum: bool = False
    ) -> BrowserSession:
        """The browser's side of a ticket the SP just got (`spid`: the SP's own)."""
        return cls(
            post_quantum=post_quantum,
            ticket=ticket.ticket,
            spid=spid,
            gateway_url=ticket.gateway_url,
            passkey_address=ticket.passkey_address,
            gateway_urls=ticket.gateway_urls,
        )

    def __repr__(self) -> str:
        return f"BrowserSession(gateway={self.gateway_url!r})"

    @property
    def wait_secret(self) -> bytes:
        """The secret this page's hello bound to the ticket; it authenticates the
        page's own requests about the ticket (a security-key login)."""
        return self._wait_secret

    def payload(self) -> LoginPayload:
        """What the QR code carries."""
        return LoginPayload(
            ticket=self.ticket,
            browser_key=self.public_key,
            network=self.passkey_address,
            pq_key_hash=self._keys.offer.pq_key_hash,
        )

    def open(self, sealed: dict[str, Any]) -> bytes:
        try:
            sk = SealedKey(
                enc=b64u_decode(str(sealed.get("enc", "")), field="enc"),
                ciphertext=b64u_decode(str(sealed.get("ciphertext", "")), field="ciphertext"),
            )
        except errors.MalformedInput:
            raise errors.SealedKeyInvalid() from None
        return self._keys.open(sk, ticket_hash=ticket_hash(self.ticket), spid=self.spid)

    def hello(self) -> str:
        """The hello frame: the same on every connection of this session."""
        frame = {
            "type": "hello",
            "v": 1,
            "ticket": self.ticket,
            "browser_key": b64u_encode(self.public_key),
            "wait_secret": b64u_encode(self._wait_secret),
        }
        if self._keys.xwing is not None:
            frame["browser_pq_key"] = b64u_encode(self._keys.xwing.public_bytes)
        return json.dumps(frame)

    @asynccontextmanager
    async def waiting(
        self, http: aiohttp.ClientSession, *, origin: str | None = None
    ) -> AsyncIterator[_Wait]:
        """Connect to the gateway and register; yields once the ticket is bound.
        `origin` is the page origin to announce, as a browser would (None: a
        client that is not a web page sends none)."""
        wait = _Wait(self, http, origin)
        await wait.connect()
        try:
            await wait.started()
            yield wait
        finally:
            await wait.close()

    async def login(self, http: aiohttp.ClientSession) -> LoginOutcome:
        """Connect, then wait for the outcome (the caller shows the QR code).
        Bound the wait with `asyncio.timeout`."""
        async with self.waiting(http) as wait:
            return await wait.result()
