"""Response headers every answer carries: no framing (a password manager must
not be clickjacked), no MIME sniffing, no referrer, and no caching of API
responses (they hold ciphertext and CSRF tokens). The UI sets its own
Content-Security-Policy in its pages, where it knows the gateway's origin."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALWAYS = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
API = ((b"cache-control", b"no-store"),)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = ALWAYS + (API if str(scope.get("path", "")).startswith("/api/") else ())

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)
