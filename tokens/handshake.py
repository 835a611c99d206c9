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
from authnet.protocol.ids import ticket_hash
from authnet.protocol.kc import kc_fingerprint
from authnet.protocol.payload import LoginPayload
from authnet.protocol.proofs import Proof, Registration
from authnet.protocol.sealing import SealedKey, seal_kc_to
from authnet.protocol.suites import PREFERENCE, SealSuite, check_pq_key, choose_suite
from tokens.passkey import PassKey, WebAuthnToken, prove


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
    # The browser's X-Wing key as the network relayed it (checked against the
    # QR code's hash before anything is sealed to it).
    browser_pq_key: bytes | None = field(default=None, repr=False)

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
    proof: Proof
    # Public fingerprint of the Kc that was sealed, for the person to compare
    # with the one the browser shows. Not sent to the network.
    kc_fingerprint: str | None = None


@dataclass(frozen=True, kw_only=True)
class DeclineResponse:
    ticket: str = field(repr=False)
    token_id: bytes
    nonce: bytes = field(repr=False)
    proof: Proof


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
    browser_pq_key: bytes | None = None,
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
        browser_pq_key=browser_pq_key,
    )


def respond(
    *,
    payload: LoginPayload,
    request: AuthRequest,
    token: PassKey,
    token_id: bytes,
    suites: tuple[SealSuite, ...] = PREFERENCE,
) -> AuthResponse:
    """Sign the challenge and, when asked, derive Kc and seal it to the browser
    with the best suite both offer (`suites`: what this token seals with).

    The PIN must already be verified when the SP requested it ("p")."""
    if Factor.PIN in request.requested and not token.user_verified:
        raise PinRequired(f"{request.sp_display_name} asks for the token's PIN")
    th = ticket_hash(payload.ticket)
    uv = token.user_verified
    wants_kc = Factor.CLIENT_KEY in request.requested

    def transcript(sealed: SealedKey | None) -> bytes:
        return messages.auth_response(
            ticket_hash=th,
            spid=request.spid,
            browser_key_hash=payload.offer.digest(),
            nonce=request.nonce,
            token_id=token_id,
            user_verified=uv,
            sealed_digest=sealed.digest() if sealed else None,
        )

    suite = choose_suite(payload.offer, suites)
    if wants_kc and suite is SealSuite.XWING:
        # Before the token proves or derives anything: a dropped or swapped key
        # is refused (BrowserKeyMismatch), never answered with a weaker suite.
        check_pq_key(payload.offer, request.browser_pq_key)

    def seal(kc: bytes | None) -> SealedKey | None:
        if kc is None:
            return None
        return seal_kc_to(
            kc,
            payload.offer,
            suite=suite,
            ticket_hash=th,
            spid=request.spid,
            pq_key=request.browser_pq_key,
        )

    kc: bytes | None = None
    if isinstance(token, WebAuthnToken):
        # A FIDO2 key yields Kc from the assertion that proves the login, so the
        # proof cannot cover the sealed key (docs/protocol.md 8.5).
        if wants_kc:
            proof, kc = token.prove_and_derive(transcript(None), request.spid)
        else:
            proof = token.prove(transcript(None))
        sealed = seal(kc)
    else:
        if wants_kc:
            kc = token.derive_kc(request.spid)
        sealed = seal(kc)
        proof = Proof(signature=token.sign(transcript(sealed)))
    fingerprint = kc_fingerprint(kc) if kc is not None else None
    del kc
    return AuthResponse(
        ticket=payload.ticket,
        token_id=token_id,
        nonce=request.nonce,
        user_verified=uv,
        sealed_kc=sealed,
        proof=proof,
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
        proof=prove(token, message),
    )


def enrol_proof(token: PassKey, *, challenge: bytes, label: str) -> Proof | Registration:
    """Proof of possession for enrolment: an ES256 signature over the enrolment
    transcript, or (FIDO2) a WebAuthn registration made for it."""
    d = token.description
    if isinstance(token, WebAuthnToken):
        message = messages.enrol(
            challenge=challenge,
            kind=int(d.kind),
            algorithm=int(d.algorithm),
            public_key=b"",
            label=label,
        )
        return token.register(message, user_name=label)
    return Proof(
        signature=token.sign(
            messages.enrol(
                challenge=challenge,
                kind=int(d.kind),
                algorithm=int(d.algorithm),
                public_key=d.public_key,
                label=label,
            )
        )
    )


def add_token_proof(
    existing: PassKey, *, challenge: bytes, existing_token_id: bytes, new_public_key: bytes
) -> Proof:
    return prove(
        existing,
        messages.add_token(
            challenge=challenge, token_id=existing_token_id, new_public_key=new_public_key
        ),
    )


def list_tokens_proof(token: PassKey, *, challenge: bytes, token_id: bytes) -> Proof:
    return prove(token, messages.list_tokens(challenge=challenge, token_id=token_id))


def revoke_token_proof(
    token: PassKey, *, challenge: bytes, token_id: bytes, target_token_id: bytes
) -> Proof:
    return prove(
        token,
        messages.revoke_token(
            challenge=challenge, token_id=token_id, target_token_id=target_token_id
        ),
    )
