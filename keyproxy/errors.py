"""What the proxy refuses, one class per refusal: a stable `code`, the HTTP
status of the JSON front and the facts to return. Messages never carry a
token, a claim secret, a grant or a blob."""

from __future__ import annotations

from typing import Any, ClassVar


class ProxyError(Exception):
    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400

    def __init__(self, message: str, **facts: Any) -> None:
        super().__init__(message)
        self.message = message
        self.facts = facts

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.facts}


class Invalid(ProxyError):
    code = "invalid"
    status = 422


class Malformed(ProxyError):
    code = "malformed"
    status = 400


class TooLarge(ProxyError):
    code = "too_large"
    status = 413


class NotFound(ProxyError):
    code = "not_found"
    status = 404


class Claimed(ProxyError):
    code = "claimed"
    status = 410


class Expired(ProxyError):
    code = "expired"
    status = 410


class Burned(ProxyError):
    code = "burned"
    status = 410


class ConditionFailed(ProxyError):
    code = "condition_failed"
    status = 403


class RateLimited(ProxyError):
    code = "rate_limited"
    status = 429


class Full(ProxyError):
    code = "full"
    status = 507


class StoreUnavailable(ProxyError):
    code = "unavailable"
    status = 503
