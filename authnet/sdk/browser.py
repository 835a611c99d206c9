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

import json
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric import x25519

from authnet import errors
from authnet.protocol.encoding import b64u_decode, b64u_encode
from authnet.protocol.ids import ticket_hash
from authnet.protocol.payload import LoginPayload, parse_address
from authnet.protocol.sealing import SealedKey, open_kc
from authnet.sdk.sp_client import Ticket


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
    def __init__(self, session: BrowserSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._session = session
        self._ws = ws
        self.expires_at_unix_ms: int | None = None
        self.scanned = False
        # A reconnect to a ticket already answered starts with its outcome.
        self._pending: dict[str, Any] | None = None

    async def _next(self) -> dict[str, Any]:
        msg = await self._ws.receive()
        if msg.type is not aiohttp.WSMsgType.TEXT:
            raise errors.NetworkUnavailable("the gateway closed the connection")
        data = json.loads(msg.data)
        if not isinstance(data, dict):
            raise errors.MalformedInput("gateway sent a non-object event")
        return data

    async def started(self) -> None:
        """Wait for the gateway to accept the hello (`waiting`, or the outcome
        itself when reconnecting to a ticket that was already answered)."""
        event = await self._next()
        self._raise_final(event)
        if event.get("type") == "waiting":
            self.expires_at_unix_ms = int(event["expires_at"])
        elif event.get("type") == "authenticated":
            self._pending = event
        else:
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
        """Wait for the outcome; Kc opened from the sealed key when one comes."""
        while True:
            event, self._pending = self._pending or await self._next(), None
            self._raise_final(event)
            kind = event.get("type")
            if kind == "scanned":
                self.scanned = True
                if on_scanned:
                    on_scanned()
                continue
            if kind == "authenticated":
                if event.get("kc") == "browser":
                    return LoginOutcome(kc=None, kc_in_browser=True)
                sealed = event.get("sealed_kc")
                if sealed is None:
                    return LoginOutcome(kc=None)
                # Receipt acknowledged: the gateway may now delete the sealed key.
                await self._ws.send_str('{"type":"ack"}')
                return LoginOutcome(kc=self._session.open(sealed))
            raise errors.MalformedInput(f"unexpected gateway event {kind!r}")


class BrowserSession:
    def __init__(self, *, ticket: str, spid: bytes, gateway_url: str, passkey_address: str) -> None:
        self.ticket = ticket
        self.spid = spid
        self.gateway_url = gateway_url
        self.passkey_address = parse_address(passkey_address)
        self._private = x25519.X25519PrivateKey.generate()
        self.public_key = self._private.public_key().public_bytes_raw()
        self._wait_secret = secrets.token_bytes(32)

    @classmethod
    def for_ticket(cls, ticket: Ticket, spid: bytes) -> BrowserSession:
        """The browser's side of a ticket the SP just got (`spid`: the SP's own)."""
        return cls(
            ticket=ticket.ticket,
            spid=spid,
            gateway_url=ticket.gateway_url,
            passkey_address=ticket.passkey_address,
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
            ticket=self.ticket, browser_key=self.public_key, network=self.passkey_address
        )

    def open(self, sealed: dict[str, Any]) -> bytes:
        try:
            sk = SealedKey(
                enc=b64u_decode(str(sealed.get("enc", "")), field="enc"),
                ciphertext=b64u_decode(str(sealed.get("ciphertext", "")), field="ciphertext"),
            )
        except errors.MalformedInput:
            raise errors.SealedKeyInvalid() from None
        return open_kc(sk, self._private, ticket_hash=ticket_hash(self.ticket), spid=self.spid)

    @asynccontextmanager
    async def waiting(
        self, http: aiohttp.ClientSession, *, origin: str | None = None
    ) -> AsyncIterator[_Wait]:
        """Connect to the gateway and register; yields once the ticket is bound.
        `origin` is the page origin to announce, as a browser would (None: a
        client that is not a web page sends none)."""
        headers = {"Origin": origin} if origin else {}
        try:
            ws = await http.ws_connect(
                websocket_url(self.gateway_url), heartbeat=20.0, headers=headers
            )
        except (aiohttp.ClientError, OSError) as e:
            raise errors.NetworkUnavailable(f"cannot reach the gateway: {e}") from None
        try:
            await ws.send_str(
                json.dumps(
                    {
                        "type": "hello",
                        "v": 1,
                        "ticket": self.ticket,
                        "browser_key": b64u_encode(self.public_key),
                        "wait_secret": b64u_encode(self._wait_secret),
                    }
                )
            )
            wait = _Wait(self, ws)
            await wait.started()
            yield wait
        finally:
            await ws.close()

    async def login(self, http: aiohttp.ClientSession) -> LoginOutcome:
        """Connect, then wait for the outcome (the caller shows the QR code).
        Bound the wait with `asyncio.timeout`."""
        async with self.waiting(http) as wait:
            return await wait.result()
