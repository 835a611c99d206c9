"""The login ticket and its state machine. Pure: no clock, no storage, no I/O.

    ISSUED --scan--> SCANNED --authenticate--> AUTHENTICATED --consume/renew--> CONSUMED
       |                |   \\--decline--> REJECTED
       |--------------------authenticate_in_browser--^  (also from SCANNED)
       '----------------+---- (now >= expires) ----> EXPIRED

(renew also issues a new AUTHENTICATED ticket for the same login.)

EXPIRED is never stored: it is what any ISSUED, SCANNED or AUTHENTICATED ticket
*is* once its time has passed (`state_at`). CONSUMED and REJECTED are final.
Every transition returns a new record with `version + 1`; the store applies it
with compare-and-set, so two nodes racing on one ticket cannot both win.

Tickets are kept by their hash (`authnet.protocol.ids.ticket_hash`); the
ticket string itself is never stored.
"""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass, replace
from typing import Final

from authnet.errors import (
    BrowserKeyMismatch,
    BrowserNotWaiting,
    ChallengeInvalid,
    FactorNotProven,
    MalformedInput,
    TicketConsumed,
    TicketExpired,
    TicketNotAuthenticated,
    TicketRejected,
    TicketStateInvalid,
)
from authnet.protocol.factors import Factor, Factors

DEFAULT_TTL_S: Final = 120
MIN_TTL_S: Final = 10
MAX_TTL_S: Final = 3600


class TicketState(enum.Enum):
    ISSUED = "issued"
    SCANNED = "scanned"
    AUTHENTICATED = "authenticated"
    CONSUMED = "consumed"
    REJECTED = "rejected"
    EXPIRED = "expired"


LIVE: Final = frozenset({TicketState.ISSUED, TicketState.SCANNED, TicketState.AUTHENTICATED})


@dataclass(frozen=True, kw_only=True)
class BrowserHints:
    """What the gateway saw of the waiting browser; shown on the token."""

    ip: str
    user_agent: str
    origin: str


@dataclass(frozen=True, kw_only=True)
class Ticket:
    th: bytes
    spid: bytes
    state: TicketState
    requested: Factors
    created_ms: int
    expires_ms: int
    version: int = 0
    # Set when the browser starts waiting (gateway hello).
    browser_key_hash: bytes | None = None
    wait_secret_hash: bytes | None = None
    # The browser's X-Wing public key when it offers one (its hash is in the
    # browser key hash), relayed to the token by BeginAuth.
    browser_pq_key: bytes | None = None
    hints: BrowserHints | None = None
    # Set by BeginAuth.
    nonce: bytes | None = None
    token_id: bytes | None = None
    # Set by CompleteAuth (or carried over by renew).
    user_id: bytes | None = None
    proven: Factors = frozenset()
    # The page derived Kc itself (browser-native WebAuthn login): no sealed Kc.
    kc_in_browser: bool = False
    # A digest of the CompleteAuth answer that authenticated the ticket, so a
    # retry of that same answer (its first reply was lost) succeeds again.
    answer_hash: bytes | None = None
    # A digest of the client request id of the GetPUID(finalize) that consumed
    # the ticket, so a retry of that same request gets the same answer.
    consumed_by: bytes | None = None

    def __repr__(self) -> str:
        return f"Ticket(tag={self.th[:4].hex()}, state={self.state.value}, v={self.version})"


def check_ttl(ttl_s: int) -> int:
    """0 means the default; otherwise MIN_TTL_S..MAX_TTL_S."""
    if ttl_s == 0:
        return DEFAULT_TTL_S
    if not MIN_TTL_S <= ttl_s <= MAX_TTL_S:
        raise MalformedInput(f"ttl_seconds must be between {MIN_TTL_S} and {MAX_TTL_S} (or 0)")
    return ttl_s


def issue(*, th: bytes, spid: bytes, requested: Factors, now_ms: int, ttl_s: int) -> Ticket:
    return Ticket(
        th=th,
        spid=spid,
        state=TicketState.ISSUED,
        requested=requested,
        created_ms=now_ms,
        expires_ms=now_ms + check_ttl(ttl_s) * 1000,
    )


def state_at(t: Ticket, now_ms: int) -> TicketState:
    if t.state in LIVE and now_ms >= t.expires_ms:
        return TicketState.EXPIRED
    return t.state


def _raise_final(state: TicketState) -> None:
    if state is TicketState.EXPIRED:
        raise TicketExpired()
    if state is TicketState.CONSUMED:
        raise TicketConsumed()
    if state is TicketState.REJECTED:
        raise TicketRejected()


def _next(t: Ticket, **changes: object) -> Ticket:
    return replace(t, version=t.version + 1, **changes)  # type: ignore[arg-type]


def attach_browser(
    t: Ticket,
    *,
    browser_key_hash: bytes,
    wait_secret_hash: bytes,
    hints: BrowserHints,
    now_ms: int,
    browser_pq_key: bytes | None = None,
) -> Ticket | None:
    """Bind the waiting browser's key to the ticket (first hello), or accept a
    reconnect by the same browser. Returns the new record, or None when nothing
    changes (a reconnect)."""
    state = state_at(t, now_ms)
    if t.browser_key_hash is None:
        _raise_final(state)
        if state is not TicketState.ISSUED:
            raise TicketStateInvalid("a browser can only start waiting on a fresh ticket")
        return _next(
            t,
            browser_key_hash=browser_key_hash,
            wait_secret_hash=wait_secret_hash,
            hints=hints,
            browser_pq_key=browser_pq_key,
        )
    assert t.wait_secret_hash is not None
    # Whoever asks about a finished ticket learns only that it is finished.
    _raise_final(state)
    same_secret = hmac.compare_digest(t.wait_secret_hash, wait_secret_hash)
    if not (same_secret and hmac.compare_digest(t.browser_key_hash, browser_key_hash)):
        raise BrowserKeyMismatch("another browser is already waiting on this ticket")
    return None


def scan(
    t: Ticket, *, token_id: bytes, browser_key_hash: bytes, nonce: bytes, now_ms: int
) -> Ticket:
    """BeginAuth: a token read the QR code. A rescan by the same token gets a new
    nonce (the old one dies); another token cannot take over the ticket."""
    state = state_at(t, now_ms)
    _raise_final(state)
    if state is TicketState.AUTHENTICATED:
        raise TicketStateInvalid("ticket already authenticated")
    if t.browser_key_hash is None:
        raise BrowserNotWaiting()
    if not hmac.compare_digest(t.browser_key_hash, browser_key_hash):
        raise BrowserKeyMismatch()
    if state is TicketState.SCANNED and t.token_id != token_id:
        raise TicketStateInvalid("another token already scanned this ticket")
    return _next(t, state=TicketState.SCANNED, token_id=token_id, nonce=nonce)


def check_scanned_by(t: Ticket, *, token_id: bytes, nonce: bytes, now_ms: int) -> None:
    """The ticket awaits this token's answer to this nonce (CompleteAuth/DeclineAuth)."""
    state = state_at(t, now_ms)
    _raise_final(state)
    if state is TicketState.AUTHENTICATED:
        raise TicketStateInvalid("ticket already authenticated")
    if state is not TicketState.SCANNED or t.nonce is None or t.token_id is None:
        raise TicketStateInvalid("call BeginAuth first")
    # Constant time: the nonce is the live challenge.
    if not hmac.compare_digest(t.nonce, nonce) or not hmac.compare_digest(t.token_id, token_id):
        raise ChallengeInvalid("nonce or token does not match this ticket's BeginAuth")


def check_factors(t: Ticket, proven: Factors) -> None:
    """The factors an answer proves cover the ones the SP requested."""
    missing = t.requested - proven
    if missing:
        names = ", ".join(sorted(f.name.lower().replace("_", " ") for f in missing))
        raise FactorNotProven(f"the SP asked for {names}, which this response does not prove")


def authenticate(
    t: Ticket,
    *,
    token_id: bytes,
    nonce: bytes,
    user_id: bytes,
    proven: Factors,
    now_ms: int,
    answer_hash: bytes | None = None,
) -> Ticket:
    """CompleteAuth, after the caller has verified the token's signature."""
    check_scanned_by(t, token_id=token_id, nonce=nonce, now_ms=now_ms)
    check_factors(t, proven)
    return _next(
        t,
        state=TicketState.AUTHENTICATED,
        user_id=user_id,
        proven=proven,
        nonce=None,
        answer_hash=answer_hash,
    )


def answered_by(t: Ticket, *, token_id: bytes, answer_hash: bytes) -> bool:
    """The ticket was authenticated by exactly this answer of this token: a
    CompleteAuth retried because its first reply was lost. It succeeds again
    (once the login is committed, its token must hear so), even after the SP
    consumed the ticket, and changes nothing."""
    if t.state not in (TicketState.AUTHENTICATED, TicketState.CONSUMED):
        return False
    if t.answer_hash is None or t.token_id is None:
        return False
    return hmac.compare_digest(t.token_id, token_id) & hmac.compare_digest(
        t.answer_hash, answer_hash
    )


def authenticate_in_browser(
    t: Ticket,
    *,
    token_id: bytes,
    user_id: bytes,
    proven: Factors,
    now_ms: int,
    answer_hash: bytes | None = None,
) -> Ticket:
    """The waiting page logged in with a security key itself (WebAuthn in the
    browser), after the caller verified the assertion over the ticket, the
    SP, the page's key and a fresh nonce. A token that scanned the QR code
    meanwhile loses the race: its CompleteAuth finds the ticket authenticated."""
    state = state_at(t, now_ms)
    _raise_final(state)
    if state is TicketState.AUTHENTICATED:
        raise TicketStateInvalid("ticket already authenticated")
    if t.browser_key_hash is None:
        raise BrowserNotWaiting()
    check_factors(t, proven)
    return _next(
        t,
        state=TicketState.AUTHENTICATED,
        token_id=token_id,
        user_id=user_id,
        proven=proven,
        nonce=None,
        kc_in_browser=True,
        answer_hash=answer_hash,
    )


def decline(t: Ticket, *, token_id: bytes, nonce: bytes, now_ms: int) -> Ticket:
    check_scanned_by(t, token_id=token_id, nonce=nonce, now_ms=now_ms)
    return _next(t, state=TicketState.REJECTED, nonce=None)


def require_authenticated(t: Ticket, now_ms: int) -> None:
    """Guard for SP calls that need a completed login."""
    state = state_at(t, now_ms)
    _raise_final(state)
    if state is not TicketState.AUTHENTICATED:
        raise TicketNotAuthenticated()


def consume(t: Ticket, now_ms: int, *, by: bytes | None = None) -> Ticket:
    """GetPUID(finalize) or PutTicket. `by`: a digest of the finalizing
    request's id, so that request's retry can be recognised (`consumed_by`)."""
    require_authenticated(t, now_ms)
    return _next(t, state=TicketState.CONSUMED, consumed_by=by)


def consumed_by(t: Ticket, request_digest: bytes) -> bool:
    """The ticket was consumed by the request with this id digest."""
    return (
        t.state is TicketState.CONSUMED
        and t.consumed_by is not None
        and hmac.compare_digest(t.consumed_by, request_digest)
    )


def renew(
    t: Ticket,
    *,
    new_th: bytes,
    requested: Factors,
    ttl_s: int,
    now_ms: int,
    by: bytes | None = None,
) -> tuple[Ticket, Ticket]:
    """PutTicket: the old ticket is consumed (`by`: the request's id digest, as
    in `consume`), a new authenticated one is issued for the same login, with a
    fresh TTL. `requested` must be a subset of what the login proved."""
    old = consume(t, now_ms, by=by)
    return old, successor(t, new_th=new_th, requested=requested, ttl_s=ttl_s, now_ms=now_ms)


def successor(t: Ticket, *, new_th: bytes, requested: Factors, ttl_s: int, now_ms: int) -> Ticket:
    """The ticket PutTicket issues for `t`'s login (also for the retry of a
    PutTicket that consumed `t` but did not store its successor)."""
    if not requested <= t.proven:
        raise FactorNotProven("PutTicket cannot ask for factors the login did not prove")
    return Ticket(
        th=new_th,
        spid=t.spid,
        state=TicketState.AUTHENTICATED,
        requested=requested,
        created_ms=now_ms,
        expires_ms=now_ms + check_ttl(ttl_s) * 1000,
        token_id=t.token_id,
        user_id=t.user_id,
        proven=t.proven,
    )


def needs_client_key(t: Ticket) -> bool:
    return Factor.CLIENT_KEY in t.requested
