"""Request body limits, as one small ASGI middleware.

JSON requests may be at most `max_request_bytes`; file bodies (PUT
.../files/{id}/body) at most the encrypted size of the largest allowed file.
A declared Content-Length over the limit is refused before anything is read;
a body that grows past it while streaming stops there. Both are a 413 in the
API's JSON error shape.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=f"the request body is over the limit of {limit} bytes")
        self.limit = limit


def _is_upload(scope: Scope) -> bool:
    return scope.get("method") == "PUT" and str(scope.get("path", "")).endswith("/body")


class BodyLimit:
    def __init__(self, app: ASGIApp, *, json_bytes: int, upload_bytes: int) -> None:
        self.app = app
        self.json_bytes = json_bytes
        self.upload_bytes = upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_bytes if _is_upload(scope) else self.json_bytes
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                if not value.isdigit() or int(value) > limit:
                    response = JSONResponse(
                        {
                            "error": "too_large",
                            "message": f"the request body is over the limit of {limit} bytes",
                            "limit": limit,
                        },
                        status_code=413,
                    )
                    await response(scope, receive, send)
                    return
                break
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited, send)
