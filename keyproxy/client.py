"""A synchronous client of the proxy's JSON front (docs/keyproxy.md 3).

    with KeyProxyClient("http://127.0.0.1:7461") as kp:
        token, expires_ms = kp.deposit(blob, ttl_seconds=600, secret_hash=h)
        kp.status(token)["state"]        # "waiting"
        blob = kp.claim(token, secret=s)

Refusals raise the subclass of ProxyClientError named for them; messages
never carry the token, the secret, a grant or a blob. `AsyncKeyProxyClient`
is the same for asyncio. A client library: httpx and keyproxy.grants only, so
a depositor (the vault's CLI) imports it without the server.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from keyproxy.grants import b64u, unb64u


class ProxyClientError(Exception):
    code: ClassVar[str] = "error"

    def __init__(self, message: str, *, status: int = 0, body: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body or {}


class NotFound(ProxyClientError):
    code = "not_found"


class Claimed(ProxyClientError):
    code = "claimed"

    @property
    def claimed_ms(self) -> int | None:
        v = self.body.get("claimed_ms")
        return v if isinstance(v, int) else None


class Expired(ProxyClientError):
    code = "expired"


class Burned(ProxyClientError):
    code = "burned"


class ConditionFailed(ProxyClientError):
    code = "condition_failed"

    @property
    def attempts_left(self) -> int | None:
        v = self.body.get("attempts_left")
        return v if isinstance(v, int) else None


class TooLarge(ProxyClientError):
    code = "too_large"


class RateLimited(ProxyClientError):
    code = "rate_limited"

    @property
    def retry_after_ms(self) -> int | None:
        v = self.body.get("retry_after_ms")
        return v if isinstance(v, int) else None


class Full(ProxyClientError):
    code = "full"


class Invalid(ProxyClientError):
    code = "invalid"


class ProxyUnavailable(ProxyClientError):
    """The proxy (or its store) cannot be reached, or answered not as a proxy."""

    code = "unavailable"


class BadAnswer(ProxyUnavailable):
    """The proxy's success answer lacks what it should hold (a deposit's token,
    a claim's blob)."""


BY_CODE: dict[str, type[ProxyClientError]] = {
    c.code: c
    for c in (
        NotFound,
        Claimed,
        Expired,
        Burned,
        ConditionFailed,
        TooLarge,
        RateLimited,
        Full,
        Invalid,
        ProxyUnavailable,
    )
}
BY_CODE["malformed"] = Invalid


def _answer(base_url: str, r: httpx.Response) -> dict[str, Any]:
    """The JSON of a success, or the refusal it names, raised."""
    try:
        out = r.json()
    except ValueError:
        out = None
    if not isinstance(out, dict):
        raise ProxyUnavailable(
            f"the key proxy at {base_url} answered HTTP {r.status_code} without JSON",
            status=r.status_code,
        )
    if r.is_success:
        return out
    cls = BY_CODE.get(str(out.get("error")), ProxyClientError)
    raise cls(str(out.get("message") or f"HTTP {r.status_code}"), status=r.status_code, body=out)


def _unreachable(base_url: str, e: httpx.HTTPError) -> ProxyUnavailable:
    return ProxyUnavailable(f"the key proxy at {base_url} cannot be reached ({type(e).__name__})")


def _deposit_body(
    blob: bytes, ttl_seconds: int, secret_hash: bytes | None, grant: tuple[str, str] | None
) -> dict[str, Any]:
    conditions: list[dict[str, str]] = []
    if secret_hash is not None:
        conditions.append({"kind": "secret", "hash": b64u(secret_hash)})
    if grant is not None:
        conditions.append({"kind": "grant", "issuer": grant[0], "subject": grant[1]})
    body: dict[str, Any] = {"blob": b64u(blob), "ttl_seconds": ttl_seconds}
    if conditions:
        body["conditions"] = conditions
    return body


def _deposited(base_url: str, out: dict[str, Any]) -> tuple[str, int]:
    try:
        return str(out["token"]), int(out["expires_ms"])
    except (KeyError, TypeError, ValueError):
        raise BadAnswer(
            f"the key proxy at {base_url} answered a deposit without its token"
        ) from None


def _claim_body(secret: bytes | None, grant: bytes | None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if secret is not None:
        body["secret"] = b64u(secret)
    if grant is not None:
        body["grant"] = b64u(grant)
    return body


def _blob(base_url: str, out: dict[str, Any]) -> bytes:
    try:
        return unb64u(str(out["blob"]))
    except (KeyError, ValueError):
        raise BadAnswer(
            f"the key proxy at {base_url} answered a claim without the deposit"
        ) from None


class KeyProxyClient:
    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def __enter__(self) -> KeyProxyClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            r = self._http.request(method, path, json=body)
        except httpx.HTTPError as e:
            raise _unreachable(self.base_url, e) from None
        return _answer(self.base_url, r)

    def deposit(
        self,
        blob: bytes,
        *,
        ttl_seconds: int,
        secret_hash: bytes | None = None,
        grant: tuple[str, str] | None = None,
    ) -> tuple[str, int]:
        """Deposit `blob`; (token, expires_ms). `secret_hash` is SHA-256 of the
        claim secret; `grant` is (issuer, subject)."""
        body = _deposit_body(blob, ttl_seconds, secret_hash, grant)
        return _deposited(self.base_url, self._call("POST", "/v1/deposits", body))

    def status(self, token: str) -> dict[str, Any]:
        """{state, expires_ms, claimed_ms, size, conditions}; does not consume."""
        return self._call("GET", f"/v1/deposits/{quote(token, safe='')}")

    def claim(
        self, token: str, *, secret: bytes | None = None, grant: bytes | None = None
    ) -> bytes:
        path = f"/v1/deposits/{quote(token, safe='')}/claim"
        return _blob(self.base_url, self._call("POST", path, _claim_body(secret, grant)))

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/v1/health")


class AsyncKeyProxyClient:
    """KeyProxyClient for asyncio (the vault CLI's approvals and links)."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout)

    async def __aenter__(self) -> AsyncKeyProxyClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        try:
            r = await self._http.request(method, path, json=body)
        except httpx.HTTPError as e:
            raise _unreachable(self.base_url, e) from None
        return _answer(self.base_url, r)

    async def deposit(
        self,
        blob: bytes,
        *,
        ttl_seconds: int,
        secret_hash: bytes | None = None,
        grant: tuple[str, str] | None = None,
    ) -> tuple[str, int]:
        body = _deposit_body(blob, ttl_seconds, secret_hash, grant)
        return _deposited(self.base_url, await self._call("POST", "/v1/deposits", body))

    async def status(self, token: str) -> dict[str, Any]:
        return await self._call("GET", f"/v1/deposits/{quote(token, safe='')}")

    async def claim(
        self, token: str, *, secret: bytes | None = None, grant: bytes | None = None
    ) -> bytes:
        path = f"/v1/deposits/{quote(token, safe='')}/claim"
        return _blob(self.base_url, await self._call("POST", path, _claim_body(secret, grant)))

    async def health(self) -> dict[str, Any]:
        return await self._call("GET", "/v1/health")
