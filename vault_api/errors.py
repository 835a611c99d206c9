"""What the API refuses: one small class per HTTP status, each with a stable
code. Raised anywhere below the routes (store, sessions, blobs) and turned
into a JSON problem in exactly one place (app.py):

    HTTP/1.1 409 Conflict
    {"error": "version_conflict", "message": "item 3fA2bC9d is at version 5, not 4; ...",
     "current_version": 5}

Messages say what was wrong and what to do; they carry ids, versions and
roles, never a ciphertext, key, ticket, cookie or CSRF token.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ApiError(Exception):
    status: ClassVar[int] = 500
    default_code: ClassVar[str] = "error"

    def __init__(self, message: str, *, code: str | None = None, **detail: Any) -> None:
        self.message = message
        self.code = code or self.default_code
        self.detail = detail
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.detail}


class Malformed(ApiError):
    """400: the request could not be parsed (not JSON, bad encoding)."""

    status = 400
    default_code = "malformed"


class Unauthenticated(ApiError):
    """401: no session, or it ended (idle, logged out, token revoked)."""

    status = 401
    default_code = "unauthenticated"


class Forbidden(ApiError):
    """403: logged in, but not allowed (role, CSRF, ticket of another browser)."""

    status = 403
    default_code = "forbidden"


class NotFound(ApiError):
    """404: no such object, or not one the caller may know about."""

    status = 404
    default_code = "not_found"


class Conflict(ApiError):
    """409: the state changed (stale version or key generation, id taken, ...);
    nothing was written."""

    status = 409
    default_code = "conflict"


class TooLarge(ApiError):
    """413: over a configured size limit (`limit` says which)."""

    status = 413
    default_code = "too_large"


class Gone(ApiError):
    """410: the object existed and ended (a revoked or expired device)."""

    status = 410
    default_code = "gone"


class Invalid(ApiError):
    """422: well-formed but not acceptable (a field's value, a body's length)."""

    status = 422
    default_code = "invalid"


class Unavailable(ApiError):
    """503: the authnet network could not be reached; try again."""

    status = 503
    default_code = "network_unavailable"


class Locked(ApiError):
    """423: the hardener locked this secret after too many wrong attempts."""

    status = 423
    default_code = "hardener_locked"


class TooMany(ApiError):
    """429: wait (`retry_after_ms`) before the next attempt."""

    status = 429
    default_code = "too_many_attempts"


class NotConfigured(ApiError):
    """409: a feature this vault's operator has not configured (the hardener):
    the server's state forbids it, not a passing outage (that is 503)."""

    status = 409
    default_code = "not_configured"
