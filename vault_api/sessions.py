"""Logging in through authnet, and the sessions that follow.

Login (docs/vault.md, "Login and sessions"):

  1. POST /api/login/ticket: GetTicket(auth_types "c") for the page's QR code.
     The ticket is bound to this browser by a random login-binding cookie
     (HttpOnly, SameSite=Strict): only this browser may redeem it.
  2. The page runs authnet.js; the phone seals Kc to it.
  3. POST /api/login {ticket}: PutTicket turns the page's ticket into the
     session's own ticket (consuming the page's: single use), GetPUID on it
     gives the PUID and the token's key id, and the session begins: an
     HttpOnly, SameSite=Strict cookie plus a CSRF token for the page.

While requests come in, the session's ticket is renewed with PutTicket at
most every `renew_interval_seconds`; a renewal the network refuses (the token
was revoked, the login expired) ends the session. A session also ends after
`idle_timeout_seconds` without requests, after `session_max_seconds`, and at
logout (which finalises the ticket with GetPUID(finalize)).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fastapi import Request, Response

from authnet import errors as authnet_errors
from authnet.protocol.encoding import b64u_decode
from authnet.protocol.ids import ticket_hash
from authnet.sdk import AsyncSPClient
from vault_api.config import Settings
from vault_api.db import Database
from vault_api.errors import ApiError, Forbidden, Unauthenticated, Unavailable
from vault_api.models import ProvenOut, SessionOut, TicketOut
from vault_api.store import sessions as store
from vault_api.store import users as user_store
from vault_api.store.orgs import Defaults
from vault_api.store.sessions import SessionRecord

log = logging.getLogger("vault_api.sessions")

SESSION_COOKIE = "vault_session"
LOGIN_COOKIE = "vault_login"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Extra life of a pending login past its ticket's expiry (clock skew).
PENDING_GRACE_MS = 30_000
# As many gateways as authnet.js takes from a ticket (MAX_GATEWAYS there).
MAX_GATEWAYS = 64


def policy_defaults(settings: Settings) -> Defaults:
    """The policy of accounts without an organisation (docs/devices.md 6)."""
    return Defaults(
        require_passphrase=settings.require_passphrase,
        device_expiry_seconds=settings.device_expiry_seconds,
    )


def secret_hash(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


@dataclass(frozen=True, slots=True, kw_only=True)
class PassphraseDemand:
    """Who requires the vault passphrase a registered account has not set
    (docs/vault.md 5.4): this vault's `require_passphrase`, its organisation's
    policy (by name), or both."""

    server: bool
    organisation: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """Who is calling: the session's account and the tokens it proved."""

    session_hash: bytes
    user_id: bytes
    key_id: bytes
    proven_key_ids: tuple[bytes, ...]
    registered: bool
    # None: the account has a passphrase, or none is required of it.
    passphrase_demand: PassphraseDemand | None = None


def passphrase_demand(rec: SessionRecord, settings: Settings) -> PassphraseDemand | None:
    """The rule, from what the session's one query read (store.sessions.load).
    Without a hardener no passphrase can be set, so none is demanded (the
    server's own setting then refuses to start, config.py)."""
    if rec.has_passphrase or not rec.registered or not settings.hardener_configured:
        return None
    if not settings.require_passphrase and rec.org_requiring_passphrase is None:
        return None
    return PassphraseDemand(
        server=settings.require_passphrase, organisation=rec.org_requiring_passphrase
    )


def _principal(rec: SessionRecord, settings: Settings) -> Principal:
    return Principal(
        session_hash=rec.session_hash,
        user_id=rec.user_id,
        key_id=rec.key_id,
        proven_key_ids=rec.proven_key_ids,
        registered=rec.registered,
        passphrase_demand=passphrase_demand(rec, settings),
    )


def _login_error(e: authnet_errors.AuthnetError) -> ApiError:
    if isinstance(e, authnet_errors.NetworkUnavailable):
        return Unavailable("the authnet network cannot be reached; try again in a moment")
    return Unauthenticated(
        f"the login did not complete ({e.message}); start it again",
        code="login_failed",
        reason=e.code,
    )


# Refusals that mean the network ended the login the session stands on.
_ENDED = (
    authnet_errors.TokenRevoked,
    authnet_errors.TicketExpired,
    authnet_errors.TicketNotFound,
    authnet_errors.TicketRejected,
    authnet_errors.TicketNotAuthenticated,
    authnet_errors.TicketStateInvalid,
    authnet_errors.PermissionDenied,
)


class SessionService:
    def __init__(
        self, settings: Settings, db: Database, sp: AsyncSPClient, clock: Callable[[], int]
    ) -> None:
        self.settings = settings
        self.db = db
        self.sp = sp
        self.clock = clock
        self._idle_ms = settings.idle_timeout_seconds * 1000
        self._max_ms = settings.session_max_seconds * 1000
        self._renew_ms = settings.renew_interval_seconds * 1000
        self._touch_ms = min(5000, self._idle_ms // 10)
        self._renewing: dict[bytes, asyncio.Lock] = {}
        # The network's gateways: the credentials' one, then each one a ticket
        # listed (a cluster's), for the page's Content-Security-Policy.
        self._gateways: dict[str, None] = {sp.credentials.gateway_url: None}

    def gateway_urls(self) -> list[str]:
        """Every gateway the page may wait on: the SP credentials' gateway and
        those the network's tickets listed since this process started."""
        return list(self._gateways)

    def _learn_gateways(self, urls: Sequence[str]) -> None:
        for url in urls:
            if len(self._gateways) >= MAX_GATEWAYS:
                break
            self._gateways.setdefault(url, None)

    # --- cookies and origins ----------------------------------------------------

    def _cookie(self, response: Response, name: str, value: str, max_age: int | None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            httponly=True,
            samesite="strict",
            secure=self.settings.secure_cookies,
        )

    def clear_session_cookie(self, response: Response) -> None:
        response.delete_cookie(
            SESSION_COOKIE,
            path="/",
            httponly=True,
            samesite="strict",
            secure=self.settings.secure_cookies,
        )

    def check_origin(self, request: Request) -> None:
        """Calls made before there is a session (and so a CSRF token) must come
        from our own pages when they come from a browser."""
        origin = request.headers.get("origin")
        if origin is not None and origin.rstrip("/") != self.settings.origin:
            raise Forbidden(
                "this request came from another site's page and was refused",
                code="cross_origin",
            )

    # --- login ------------------------------------------------------------------

    async def issue_ticket(self, request: Request, response: Response) -> TicketOut:
        self.check_origin(request)
        try:
            t = await self.sp.get_ticket(
                ttl_seconds=self.settings.login_ticket_ttl_seconds, auth_types="c"
            )
        except authnet_errors.AuthnetError as e:
            raise _login_error(e) from None
        self._learn_gateways([t.gateway_url, *t.gateway_urls])
        binding = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
        now = self.clock()
        await self.db.write(
            store.add_pending,
            ticket_hash=ticket_hash(t.ticket),
            binding_hash=secret_hash(binding),
            expires_ms=now + t.ttl_seconds * 1000 + PENDING_GRACE_MS,
            now_ms=now,
        )
        self._cookie(response, LOGIN_COOKIE, binding, max_age=3600)
        return TicketOut(
            ticket=t.ticket,
            spid=self.sp.spid.hex(),
            gateway_url=t.gateway_url,
            gateway_urls=list(t.gateway_urls),
            passkey_address=t.passkey_address,
            ttl_seconds=t.ttl_seconds,
            expires_at_unix_ms=t.expires_at_unix_ms,
        )

    async def _redeem(self, request: Request, ticket: str) -> bytes:
        """The hash of a pending ticket this browser was given, else 403."""
        th = ticket_hash(ticket)
        binding = request.cookies.get(LOGIN_COOKIE, "")
        ok = await self.db.read(
            store.pending_matches,
            ticket_hash=th,
            binding_hash=secret_hash(binding),
            now_ms=self.clock(),
        )
        if not ok:
            raise Forbidden(
                "this ticket was not issued to this browser, or it expired; start the login again",
                code="ticket_not_yours",
            )
        return th

    async def login(self, request: Request, response: Response, ticket: str) -> SessionOut:
        self.check_origin(request)
        th = await self._redeem(request, ticket)
        try:
            # PutTicket consumes the page's ticket (so it is redeemed once)
            # and gives the session a ticket of its own to keep renewing.
            own = await self.sp.put_ticket(
                ticket, ttl_seconds=self.settings.session_ticket_ttl_seconds
            )
            who = await self.sp.get_puid(own.ticket)
        except authnet_errors.AuthnetError as e:
            raise _login_error(e) from None
        if "c" not in who.auth_types:
            await self._finalize(own.ticket)
            raise Forbidden(
                "the login delivered no client key, which the vault needs; log in again",
                code="no_client_key",
            )
        token = secrets.token_urlsafe(32)
        now = self.clock()
        previous = request.cookies.get(SESSION_COOKIE)
        rec = await self.db.write(
            store.create,
            puid=who.puid,
            key_id=b64u_decode(who.key_id, field="key id", length=16),
            session_hash=secret_hash(token),
            csrf_token=secrets.token_urlsafe(32),
            ticket=own.ticket,
            ticket_expires_ms=now + own.ttl_seconds * 1000,
            ticket_hash=th,
            now_ms=now,
            idle_ms=self._idle_ms,
            max_ms=self._max_ms,
            replaces=secret_hash(previous) if previous else None,
        )
        self._cookie(response, SESSION_COOKIE, token, max_age=None)
        response.delete_cookie(LOGIN_COOKIE, path="/")
        log.info("session started user=%s", rec.user_id.hex()[:8])
        return await self.view(rec.session_hash)

    async def prove_token(self, principal: Principal, request: Request, ticket: str) -> ProvenOut:
        """A second login in the same browser, with another token of the same
        account: the session may then add that token's key slot."""
        th = await self._redeem(request, ticket)
        try:
            who = await self.sp.get_puid(ticket, finalize=True)
        except authnet_errors.AuthnetError as e:
            raise _login_error(e) from None
        rec = await self.db.read(store.load, principal.session_hash)
        if rec is None or not hmac.compare_digest(who.puid, rec.puid):
            raise Forbidden(
                "that token belongs to another account; log in with a token of this one",
                code="other_account",
            )
        key_id = b64u_decode(who.key_id, field="key id", length=16)
        await self.db.write(
            store.add_proven_key, session_hash=principal.session_hash, key_id=key_id, ticket_hash=th
        )
        slot = await self.db.read(user_store.slot_for, principal.user_id, key_id)
        return ProvenOut(key_id=key_id, has_slot=slot is not None)

    async def view(self, session_hash: bytes) -> SessionOut:
        return await self.db.read(
            store.view,
            session_hash,
            self.settings.idle_timeout_seconds,
            policy_defaults(self.settings),
        )

    async def logout(self, principal: Principal, response: Response) -> None:
        rec = await self.db.read(store.load, principal.session_hash)
        await self.db.write(store.delete, principal.session_hash)
        self.clear_session_cookie(response)
        if rec is not None:
            await self._finalize(rec.ticket)

    async def _finalize(self, ticket: str) -> None:
        with contextlib.suppress(authnet_errors.AuthnetError):  # dead either way
            await self.sp.get_puid(ticket, finalize=True)

    # --- every request ----------------------------------------------------------

    async def authenticate(self, request: Request) -> Principal:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            raise Unauthenticated("not logged in: log in with your token first")
        session_hash = secret_hash(token)
        rec = await self.db.read(store.load, session_hash)
        if rec is None:
            raise Unauthenticated("this session ended; log in again", code="session_ended")
        now = self.clock()
        if now - rec.last_seen_ms > self._idle_ms or now - rec.created_ms > self._max_ms:
            await self.db.write(store.delete, session_hash)
            raise Unauthenticated("the session timed out; log in again", code="session_expired")
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), rec.csrf_token.encode()):
                raise Forbidden(
                    f"missing or wrong {CSRF_HEADER} header (the page gets it from "
                    "GET /api/session)",
                    code="csrf",
                )
        if now - rec.renewed_ms >= self._renew_ms:
            await self._renew(rec, now)
        elif now - rec.last_seen_ms >= self._touch_ms:
            await self.db.write(store.touch, session_hash, now)
        return _principal(rec, self.settings)

    async def _renew(self, rec: SessionRecord, now: int) -> None:
        lock = self._renewing.setdefault(rec.session_hash, asyncio.Lock())
        try:
            async with lock:
                fresh = await self.db.read(store.load, rec.session_hash)
                if fresh is None:
                    raise Unauthenticated("this session ended; log in again", code="session_ended")
                if fresh.ticket != rec.ticket:
                    return  # renewed by a concurrent request
                try:
                    t = await self.sp.put_ticket(
                        rec.ticket, ttl_seconds=self.settings.session_ticket_ttl_seconds
                    )
                except authnet_errors.TicketConsumed:
                    again = await self.db.read(store.load, rec.session_hash)
                    if again is not None and again.ticket != rec.ticket:
                        return  # another server process renewed it
                    await self._end(rec)
                except _ENDED:
                    await self._end(rec)
                except authnet_errors.NetworkUnavailable:
                    if now < rec.ticket_expires_ms:
                        # Try again after the next interval, not on every request.
                        log.warning("ticket renewal postponed: the network is unreachable")
                        await self.db.write(store.postpone_renewal, rec.session_hash, now)
                        return
                    await self._end(rec)
                else:
                    await self.db.write(
                        store.renewed,
                        session_hash=rec.session_hash,
                        old_ticket=rec.ticket,
                        ticket=t.ticket,
                        ticket_expires_ms=now + t.ttl_seconds * 1000,
                        now_ms=now,
                    )
        finally:
            if not lock.locked():
                self._renewing.pop(rec.session_hash, None)

    async def _end(self, rec: SessionRecord) -> None:
        await self.db.write(store.delete, rec.session_hash)
        log.info("session ended by the network user=%s", rec.user_id.hex()[:8])
        raise Unauthenticated(
            "the authnet network ended this login (the token was revoked, or the login "
            "expired); log in again",
            code="session_ended",
        )
