"""The vault's HTTP API (docs/vault.md section 13) over httpx, as the `vault`
command calls it: one method per operation, JSON in and out, file bodies
streamed both ways.

It plays a browser's part in what the server checks: it keeps the cookies the
server sets (the login binding `vault_login` and the session `vault_session`)
and sends the session's CSRF token with every write. Cookies are kept here,
not in httpx's jar, so that the session can be saved and resumed exactly.
Refusals become `ApiError` with the server's code and message; the server's
messages carry no secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from http.cookiejar import CookieJar, DefaultCookiePolicy
from http.cookies import SimpleCookie
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from vault_api.client.errors import ApiError, CliError

SESSION_COOKIE = "vault_session"
LOGIN_COOKIE = "vault_login"
CSRF_HEADER = "X-CSRF-Token"
READS = frozenset({"GET", "HEAD"})
USER_AGENT = "vault-cli/1 (authnet)"


def _no_jar() -> CookieJar:
    """httpx's jar, refusing every cookie: this class keeps them itself."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


T = TypeVar("T")


async def _in_thread(fn: Callable[[], T], stop: threading.Event) -> T:
    """`fn()` in a worker thread; if the caller is cancelled, `stop` tells the
    thread to give up at its next piece."""
    task = asyncio.ensure_future(asyncio.to_thread(fn))
    try:
        return await asyncio.shield(task)
    except BaseException:
        stop.set()
        with contextlib.suppress(BaseException):
            await task  # the thread ends at its next piece; then the caller goes on
        raise


def _p(value: str) -> str:
    return quote(value, safe="")


class VaultApi:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.cookies: dict[str, str] = {}
        self.csrf: str | None = None
        self._timeout = httpx.Timeout(timeout, connect=10.0)
        self._body_http: httpx.Client | None = None
        self._body_lock = threading.Lock()
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=self._timeout,
            cookies=_no_jar(),
            headers={"User-Agent": USER_AGENT},
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"VaultApi({self.base_url!r})"

    async def close(self) -> None:
        await self._http.aclose()
        if self._body_http is not None:
            self._body_http.close()
            self._body_http = None

    async def __aenter__(self) -> VaultApi:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- the session, as a browser keeps it ---------------------------------------

    @property
    def session_cookie(self) -> str | None:
        return self.cookies.get(SESSION_COOKIE)

    def resume(self, session_cookie: str, csrf: str) -> None:
        self.cookies[SESSION_COOKIE] = session_cookie
        self.csrf = csrf

    def forget_session(self) -> None:
        self.cookies.pop(SESSION_COOKIE, None)
        self.csrf = None

    def _keep_cookies(self, response: httpx.Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(header)
            except Exception:  # noqa: S112 - a cookie we cannot parse is not ours
                continue
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value

    def _headers(self, method: str, extra: Mapping[str, str] | None) -> dict[str, str]:
        h = dict(extra or {})
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if self.csrf and method not in READS:
            h[CSRF_HEADER] = self.csrf
        return h

    # --- requests -----------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        content: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        try:
            r = await self._http.request(
                method,
                path,
                json=json,
                params=params,
                content=content,
                headers=self._headers(method, headers),
            )
        except httpx.TimeoutException:
            raise CliError(f"the vault at {self.base_url} did not answer in time") from None
        except httpx.TransportError as e:
            raise CliError(
                f"cannot reach the vault at {self.base_url} ({type(e).__name__}); is "
                "`vault-api serve` running there? (--server URL)"
            ) from None
        self._keep_cookies(r)
        if r.status_code >= 400:
            raise api_error(r)
        return r

    async def call(self, method: str, path: str, **kw: Any) -> Any:
        r = await self.request(method, path, **kw)
        return r.json() if r.content else None

    # --- session ------------------------------------------------------------------

    async def config(self) -> Any:
        return await self.call("GET", "/api/config")

    async def login_ticket(self) -> Any:
        return await self.call("POST", "/api/login/ticket")

    async def login(self, ticket: str) -> Any:
        s = await self.call("POST", "/api/login", json={"ticket": ticket})
        self.csrf = s["csrf_token"]
        return s

    async def prove(self, ticket: str) -> Any:
        return await self.call("POST", "/api/session/tokens", json={"ticket": ticket})

    async def session(self) -> Any:
        s = await self.call("GET", "/api/session")
        self.csrf = s["csrf_token"]
        return s

    async def logout(self) -> None:
        await self.call("POST", "/api/logout")
        self.forget_session()

    # --- account ------------------------------------------------------------------

    async def me(self) -> Any:
        return await self.call("GET", "/api/me")

    async def register(self, *, handle: str, public_key: str, slot: str) -> Any:
        return await self.call(
            "POST", "/api/me", json={"handle": handle, "public_key": public_key, "slot": slot}
        )

    async def slot(self, key_id: str) -> Any:
        return await self.call("GET", f"/api/me/slots/{_p(key_id)}")

    async def put_slot(
        self, key_id: str, *, keypair_version: int, slot: str, kind: str = "kc"
    ) -> Any:
        return await self.call(
            "PUT",
            f"/api/me/slots/{_p(key_id)}",
            json={"keypair_version": keypair_version, "kind": kind, "slot": slot},
        )

    # --- safes --------------------------------------------------------------------

    async def safes(self) -> Any:
        return (await self.call("GET", "/api/safes"))["safes"]

    async def create_safe(self, body: Mapping[str, Any]) -> Any:
        return await self.call("POST", "/api/safes", json=body)

    async def safe(self, sid: str) -> Any:
        return await self.call("GET", f"/api/safes/{_p(sid)}")

    async def contents(self, sid: str) -> Any:
        return await self.call("GET", f"/api/safes/{_p(sid)}/contents")

    async def key_chain(self, sid: str) -> Any:
        return await self.call("GET", f"/api/safes/{_p(sid)}/keys")

    # --- folders and items --------------------------------------------------------

    async def create_folder(self, sid: str, body: Mapping[str, Any]) -> Any:
        return await self.call("POST", f"/api/safes/{_p(sid)}/folders", json=body)

    async def delete_folder(self, sid: str, fid: str, expected_version: int) -> None:
        await self.call(
            "DELETE",
            f"/api/safes/{_p(sid)}/folders/{_p(fid)}",
            params={"expected_version": expected_version},
        )

    async def create_item(self, sid: str, body: Mapping[str, Any]) -> Any:
        return await self.call("POST", f"/api/safes/{_p(sid)}/items", json=body)

    async def create_items(self, sid: str, bodies: Sequence[Mapping[str, Any]]) -> Any:
        return await self.call("POST", f"/api/safes/{_p(sid)}/items/batch", json={"items": bodies})

    async def item(self, sid: str, iid: str) -> Any:
        return await self.call("GET", f"/api/safes/{_p(sid)}/items/{_p(iid)}")

    async def update_item(self, sid: str, iid: str, body: Mapping[str, Any]) -> Any:
        return await self.call("PUT", f"/api/safes/{_p(sid)}/items/{_p(iid)}", json=body)

    async def delete_item(self, sid: str, iid: str, expected_version: int) -> None:
        await self.call(
            "DELETE",
            f"/api/safes/{_p(sid)}/items/{_p(iid)}",
            params={"expected_version": expected_version},
        )

    async def move_item(self, sid: str, iid: str, body: Mapping[str, Any]) -> Any:
        return await self.call("POST", f"/api/safes/{_p(sid)}/items/{_p(iid)}/move", json=body)

    async def history(self, sid: str, iid: str) -> Any:
        return (await self.call("GET", f"/api/safes/{_p(sid)}/items/{_p(iid)}/history"))["versions"]

    # --- files --------------------------------------------------------------------

    async def create_file(self, sid: str, body: Mapping[str, Any]) -> Any:
        return await self.call("POST", f"/api/safes/{_p(sid)}/files", json=body)

    async def upload_body(
        self, sid: str, fid: str, body: Iterable[bytes], length: int, stop: threading.Event
    ) -> Any:
        """PUT the body (exactly `length` bytes) from a blocking iterator, in a
        worker thread (`_body_client`); `stop` is set if the caller is
        cancelled, and the iterator is to check it."""
        path = f"/api/safes/{_p(sid)}/files/{_p(fid)}/body"
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(length)}

        def put() -> httpx.Response:
            try:
                return self._body_client().put(
                    path, content=body, headers=self._headers("PUT", headers)
                )
            except httpx.TimeoutException:
                raise CliError(f"the vault at {self.base_url} did not answer in time") from None
            except httpx.TransportError as e:
                raise CliError(
                    f"the upload to {self.base_url} broke off ({type(e).__name__}); "
                    "nothing was kept"
                ) from None

        r = await _in_thread(put, stop)
        self._keep_cookies(r)
        if r.status_code >= 400:
            raise api_error(r)
        return r.json()

    async def file(self, sid: str, fid: str) -> Any:
        return await self.call("GET", f"/api/safes/{_p(sid)}/files/{_p(fid)}")

    async def download_body(
        self, sid: str, fid: str, consume: Callable[[bytes], None], stop: threading.Event
    ) -> None:
        """Hand the encrypted body to `consume` as it arrives (pieces of any
        size), in a worker thread (`_body_client`); `stop` is set if the caller
        is cancelled, and `consume` is to check it."""
        path = f"/api/safes/{_p(sid)}/files/{_p(fid)}/body"

        def get() -> httpx.Response | None:
            try:
                with self._body_client().stream(
                    "GET", path, headers=self._headers("GET", None)
                ) as r:
                    if r.status_code >= 400:
                        r.read()
                        return r
                    for piece in r.iter_raw():
                        consume(piece)
                    return None
            except httpx.TransportError as e:
                raise CliError(
                    f"the download from {self.base_url} broke off ({type(e).__name__}); "
                    "nothing was kept"
                ) from None

        refused = await _in_thread(get, stop)
        if refused is not None:
            self._keep_cookies(refused)
            raise api_error(refused)

    def _body_client(self) -> httpx.Client:
        """The blocking client that moves file bodies (in a worker thread; see
        vault_api/client/transfers.py for why), made on first use with this
        client's settings; the session's cookies and CSRF token go with each
        request as `_headers` gives them."""
        with self._body_lock:
            if self._body_http is None:
                self._body_http = httpx.Client(
                    base_url=self.base_url,
                    timeout=self._timeout,
                    cookies=_no_jar(),
                    headers={"User-Agent": USER_AGENT},
                )
            return self._body_http

    async def delete_file(self, sid: str, fid: str) -> None:
        await self.call("DELETE", f"/api/safes/{_p(sid)}/files/{_p(fid)}")


def api_error(r: httpx.Response) -> ApiError:
    try:
        body = r.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        facts = {k: v for k, v in body.items() if k not in ("error", "message")}
        return ApiError(r.status_code, body["error"], str(body.get("message", "")), facts)
    return ApiError(
        r.status_code,
        "http_error",
        f"the vault answered HTTP {r.status_code} {r.reason_phrase}",
        {},
    )
