"""The token's side of every exchange with the network, free of I/O.

Given what the network sent (a BeginAuth answer, a challenge) and a PassKey,
these functions compute exactly what the token sends back. `tokens.login`
and `tokens.api` do the talking; the tests drive these directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from authnet.errors import MalformedInput, PinRequired
from authnet.protocol import messages
from authnet.protocol.factors import Factor, Factors, parse_factors
from authnet.protocol.ids import browser_key_hash, ticket_hash
from authnet.protocol.kc import kc_fingerprint
from authnet.protocol.payload import LoginPayload
from authnet.protocol.sealing import SealedKey, seal_kc
from tokens.passkey import PassKey


@dataclass(frozen=True, kw_only=True)
class AuthRequest:
    """BeginAuth's answer, as the token received it."""

    nonce: bytes = field(repr=False)
    spid: bytes
    sp_name: str
    sp_display_name: str
    sp_origins: tuple[str, ...]
    browser_ip: str
    browser_user_agent: str
    browser_origin: str
    requested: Factors
    expires_at_unix_ms: int

    @property
    def origin_registered(self) -> bool | None:
        """Whether the page's origin is one the SP registered. None when the SP
        lists no origins or no origin was sent (a client that is not a browser)."""
        if not self.sp_origins or not self.browser_origin:
            return None
        return self.browser_origin in self.sp_origins


@dataclass(frozen=True, kw_only=True)
class AuthResponse:
    """CompleteAuth's fields."""

    ticket: str = field(repr=False)
    token_id: bytes
    nonce: bytes = field(repr=False)
    user_verified: bool
    sealed_kc: SealedKey | None
    signature: bytes = field(repr=False)
    # Public fingerprint of the Kc that was sealed, for the person to compare
    # with the one the browser shows. Not sent to the network.
    kc_fingerprint: str | None = None


@dataclass(frozen=True, kw_only=True)
class DeclineResponse:
    ticket: str = field(repr=False)
    token_id: bytes
    nonce: bytes = field(repr=False)
    signature: bytes = field(repr=False)


def auth_request(
    *,
    nonce: bytes,
    spid: bytes,
    sp_name: str,
    sp_display_name: str,
    sp_origins: list[str],
    browser_ip: str,
    browser_user_agent: str,
    browser_origin: str,
    auth_types: str,
    expires_at_unix_ms: int,
) -> AuthRequest:
    if len(nonce) != 32 or len(spid) != 16:
        raise MalformedInput("the network sent a malformed challenge")
    return AuthRequest(
        nonce=nonce,
        spid=spid,
        sp_name=sp_name,
        sp_display_name=sp_display_name,
        sp_origins=tuple(sp_origins),
        browser_ip=browser_ip,
        browser_user_agent=browser_user_agent,
        browser_origin=browser_origin,
        requested=parse_factors(auth_types),
        expires_at_unix_ms=expires_at_unix_ms,
    )


def respond(
    *, payload: LoginPayload, request: AuthRequest, token: PassKey, token_id: bytes
) -> AuthResponse:
    """Sign the challenge and, when asked, derive Kc and seal it to the browser.

    The PIN must already be verified when the SP requested it ("p")."""
    if Factor.PIN in request.requested and not token.user_verified:
        raise PinRequired(f"{request.sp_display_name} asks for the token's PIN")
    th = ticket_hash(payload.ticket)
    sealed = None
    fingerprint = None
    if Factor.CLIENT_KEY in request.requested:
        kc = token.derive_kc(request.spid)
        sealed = seal_kc(kc, payload.browser_key, ticket_hash=th, spid=request.spid)
        fingerprint = kc_fingerprint(kc)
        del kc
    uv = token.user_verified
    message = messages.auth_response(
        ticket_hash=th,
        spid=request.spid,
        browser_key_hash=browser_key_hash(payload.browser_key),
        nonce=request.nonce,
        token_id=token_id,
        user_verified=uv,
        sealed_digest=sealed.digest() if sealed else None,
    )
    return AuthResponse(
        ticket=payload.ticket,
        token_id=token_id,
        nonce=request.nonce,
        user_verified=uv,
        sealed_kc=sealed,
        signature=token.sign(message),
        kc_fingerprint=fingerprint,
    )


def decline(
    *, payload: LoginPayload, request: AuthRequest, token: PassKey, token_id: bytes
) -> DeclineResponse:
    message = messages.auth_decline(
        ticket_hash=ticket_hash(payload.ticket),
        spid=request.spid,
        nonce=request.nonce,
        token_id=token_id,
    )
    return DeclineResponse(
        ticket=payload.ticket,
        token_id=token_id,
        nonce=request.nonce,
        signature=token.sign(message),
    )


def enrol_signature(token: PassKey, *, challenge: bytes, label: str) -> bytes:
    d = token.description
    return token.sign(
        messages.enrol(
            challenge=challenge,
            kind=int(d.kind),
            algorithm=int(d.algorithm),
            public_key=d.public_key,
            label=label,
        )
    )


def add_token_signature(
    existing: PassKey, *, challenge: bytes, existing_token_id: bytes, new_public_key: bytes
) -> bytes:
    return existing.sign(
        messages.add_token(
            challenge=challenge, token_id=existing_token_id, new_public_key=new_public_key
        )
    )


def list_tokens_signature(token: PassKey, *, challenge: bytes, token_id: bytes) -> bytes:
    return token.sign(messages.list_tokens(challenge=challenge, token_id=token_id))


def revoke_token_signature(
    token: PassKey, *, challenge: bytes, token_id: bytes, target_token_id: bytes
) -> bytes:
    return token.sign(
        messages.revoke_token(
            challenge=challenge, token_id=token_id, target_token_id=target_token_id
        )
    )


__all__ = [
    "AuthRequest",
    "AuthResponse",
    "DeclineResponse",
    "add_token_signature",
    "auth_request",
    "decline",
    "enrol_signature",
    "list_tokens_signature",
    "respond",
    "revoke_token_signature",
]
