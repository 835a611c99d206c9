"""Domain errors of authnet: one flat list, each a small class with a stable code.

The code travels over the wire (gRPC trailing metadata `authnet-error`, the
gateway's JSON events) so clients can react without parsing messages. Messages
say what was wrong and what to do; they never contain a secret (a ticket, a
key, a PIN, a signature), only public facts or short tags.

Translation to transport statuses happens in exactly one place per transport:
`authnet.server.status` (gRPC) and `authnet.gateway` (websocket events); the
SDKs translate back in `authnet.sdk.errors`.
"""

from __future__ import annotations

from typing import Any, ClassVar


class AuthnetError(Exception):
    """Base of every error authnet raises on purpose."""

    code: ClassVar[str] = "error"
    default_message: ClassVar[str] = "authnet error"
    # Whether the same call may succeed if sent again unchanged (later, or to
    # another node): true for the network being unreachable or overloaded,
    # never for a refusal of what the call asked.
    retryable: ClassVar[bool] = False

    def __init__(self, message: str | None = None, **detail: Any) -> None:
        self.message = message or self.default_message
        # Public, machine-readable facts (a current version, retries left).
        self.detail: dict[str, Any] = detail
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


# --- requests -----------------------------------------------------------------


class MalformedInput(AuthnetError):
    """A field is missing, too large, of the wrong length or not parseable."""

    code = "malformed"
    default_message = "malformed input"


class PayloadTooLarge(MalformedInput):
    """A data container write exceeds the network's size limit."""

    code = "too_large"
    default_message = "data too large"


# --- callers ------------------------------------------------------------------


class NotAuthenticated(AuthnetError):
    """The caller presented no credential the network accepts (SP API: no client
    certificate, or one this network did not issue)."""

    code = "unauthenticated"
    default_message = "no valid client certificate; the SP API needs mutual TLS"


class PermissionDenied(AuthnetError):
    """The caller is known but not allowed (disabled SP, revoked certificate)."""

    code = "permission_denied"
    default_message = "permission denied"


# --- tickets ------------------------------------------------------------------


class TicketNotFound(AuthnetError):
    """No such ticket for this caller. Also what a ticket issued to another SP
    looks like: the network does not confirm that it exists."""

    code = "ticket_not_found"
    default_message = "unknown ticket: get a new one with GetTicket"


class TicketExpired(AuthnetError):
    code = "ticket_expired"
    default_message = "ticket expired: get a new one with GetTicket"


class TicketConsumed(AuthnetError):
    """The ticket was finalised (GetPUID finalize) or replaced (PutTicket)."""

    code = "ticket_consumed"
    default_message = "ticket already used: tickets are single-use once finalised"


class TicketRejected(AuthnetError):
    code = "ticket_rejected"
    default_message = "the person declined this login on their token"


class TicketNotAuthenticated(AuthnetError):
    """An SP call that needs a completed login got a ticket still waiting."""

    code = "ticket_not_authenticated"
    default_message = "ticket not authenticated yet: wait for the browser to report success"


class TicketStateInvalid(AuthnetError):
    """A token call arrived in the wrong state (e.g. CompleteAuth twice)."""

    code = "ticket_state"
    default_message = "the ticket is not in a state that allows this call"


class BrowserNotWaiting(AuthnetError):
    code = "browser_not_waiting"
    default_message = "no browser is waiting on this ticket; reload the login page"


class BrowserKeyMismatch(AuthnetError):
    """The QR code's browser key is not the one the waiting browser registered:
    the code was altered, or belongs to another page."""

    code = "browser_key_mismatch"
    default_message = "the QR code does not belong to the browser waiting on this ticket"


class AlreadyDelivered(AuthnetError):
    """The sealed Kc of this ticket already went to its browser; it is sent once."""

    code = "already_delivered"
    default_message = "the client key for this ticket was already delivered; log in again"


class FactorNotProven(AuthnetError):
    code = "factor_not_proven"
    default_message = "the login did not prove the requested factors"


# --- tokens -------------------------------------------------------------------


class ChallengeInvalid(AuthnetError):
    """Unknown, expired, already used, or issued for another purpose."""

    code = "challenge_invalid"
    default_message = "challenge unknown, expired or already used: start again"


class SignatureInvalid(AuthnetError):
    code = "signature_invalid"
    default_message = "signature does not verify"


class TokenUnknown(AuthnetError):
    code = "token_unknown"
    default_message = "unknown token: enrol it first"


class TokenRevoked(AuthnetError):
    code = "token_revoked"
    default_message = "this token was revoked"


class LastToken(AuthnetError):
    code = "last_token"
    default_message = "this is the account's only active token: enrol a backup before revoking it"


class SealedKeyInvalid(AuthnetError):
    """The sealed Kc did not open: tampered with, corrupted, or sealed to another
    browser key or ticket."""

    code = "sealed_key_invalid"
    default_message = "the sealed client key failed to open (tampered or corrupted): log in again"


class SuiteDowngraded(AuthnetError):
    """The sealed Kc came in a weaker suite than the best one the browser
    offered: someone stripped the offer, or the token ignored it."""

    code = "suite_downgraded"
    default_message = (
        "the client key was sealed with a weaker suite than this page offered: "
        "refused; log in again"
    )


# --- data containers and locks ------------------------------------------------


class VersionConflict(AuthnetError):
    code = "version_conflict"
    default_message = "the container changed since it was read: read it again"


class LockHeld(AuthnetError):
    code = "lock_held"
    default_message = "the container is locked by another holder"


class LockNotHeld(AuthnetError):
    code = "lock_not_held"
    default_message = "no such lock: it expired or was released"


# --- token devices ------------------------------------------------------------


class PinRequired(AuthnetError):
    code = "pin_required"
    default_message = "this token needs its PIN"


class PinInvalid(AuthnetError):
    code = "pin_invalid"
    default_message = "wrong PIN"


class PinLocked(AuthnetError):
    code = "pin_locked"
    default_message = "PIN locked after too many wrong attempts"


class TokenUnavailable(AuthnetError):
    """The token is not there: unplugged, card pulled, or its reader gone."""

    code = "token_unavailable"
    default_message = "the token is not connected: plug it in (or insert the card) and retry"


class KeystoreError(AuthnetError):
    code = "keystore"
    default_message = "the key store file is unreadable or damaged"


class NotEnrolled(AuthnetError):
    code = "not_enrolled"
    default_message = "this token is not enrolled with that network"


class Declined(AuthnetError):
    """The person answered no on the token."""

    code = "declined"
    default_message = "declined on the token"


class HardenerKeyMismatch(AuthnetError):
    """The hardener's answer does not verify against the key the key store
    pinned (or names another key version): refused, nothing changed."""

    code = "hardener_key_mismatch"
    default_message = "the hardener answered with a key this key store did not pin: refused"


# --- the PIN hardener (the network's relay) -----------------------------------


class HardenerNotConfigured(AuthnetError):
    """The network runs no hardener (`authnet serve --hardener HOST:PORT`)."""

    code = "no_hardener"
    default_message = (
        "this network has no hardener: its operator can add one with "
        "`authnet serve --hardener HOST:PORT`; until then a PIN protects the key store "
        "with Argon2id only (--offline-pin)"
    )


class HardenerRefused(AuthnetError):
    """The hardener refused the relayed call for a reason the token cannot fix
    by retrying (the network is not a registered caller, an unknown key version,
    an attempt unknown or already reported)."""

    code = "hardener_refused"
    default_message = "the network's hardener refused the request"


# --- transport ----------------------------------------------------------------


class NetworkUnavailable(AuthnetError):
    code = "unavailable"
    default_message = "the authnet network could not be reached"
    retryable = True


class Overloaded(NetworkUnavailable):
    """The node had more calls than it could take and dropped this one before
    running it (gRPC's own backlog limit answers CANCELLED; the SDK reports it
    as this). Retryable at once on another node, or on this one shortly."""

    code = "overloaded"
    default_message = "the network node is overloaded: retry shortly, or on another node"


class RateLimited(AuthnetError):
    """This client address asked this node too often. Retryable after
    `detail["retry_after_ms"]` milliseconds; sending it again sooner is refused
    again."""

    code = "rate_limited"
    default_message = "too many requests from this address: slow down"
    retryable = True

    def __init__(self, message: str | None = None, **detail: Any) -> None:
        retry_after_ms = int(detail.get("retry_after_ms", 1000))
        detail["retry_after_ms"] = retry_after_ms
        super().__init__(
            message or f"too many requests from this address: retry in {retry_after_ms} ms",
            **detail,
        )

    @property
    def retry_after_ms(self) -> int:
        return int(self.detail["retry_after_ms"])


class StateUnavailable(NetworkUnavailable):
    """The node could not reach its shared state store (Redis), or a command to
    it timed out. Retryable, on this node or another: the node reconnects by
    itself once the store answers again. A command that timed out may still
    have been applied, so the caller cannot assume it was not."""

    code = "state_unavailable"
    default_message = "the network's state store is unreachable; try again"


class StateRecordUnreadable(StateUnavailable):
    """A record in the shared state store is not in a format this node reads:
    written by a node of another version during a rolling upgrade, or damaged.
    Another node (of that version) may read it, so it is retryable too."""

    code = "state_record_unreadable"
    default_message = "this node cannot read a record in the network's state store; try again"


class DirectoryUnavailable(NetworkUnavailable):
    """The node could not reach its directory database (PostgreSQL), or a query
    to it timed out. Retryable, on this node or another: the node's pool
    reconnects by itself once the database answers again. A write that timed
    out may still have been committed, so the caller cannot assume it was not."""

    code = "directory_unavailable"
    default_message = "the network's directory database is unreachable; try again"


class HardenerUnavailable(NetworkUnavailable):
    """The network could not reach its hardener. Retryable, like the node's other
    stores (every node uses the same hardener, so another node helps only when
    this one's connection to it is what failed); nothing stored on the token
    changed."""

    code = "hardener_unavailable"
    default_message = (
        "the network's PIN hardener could not be reached: try again shortly (nothing was changed)"
    )
    retryable = True


ALL_ERRORS: tuple[type[AuthnetError], ...] = tuple(
    cls
    for cls in list(globals().values())
    if isinstance(cls, type) and issubclass(cls, AuthnetError)
)

BY_CODE: dict[str, type[AuthnetError]] = {cls.code: cls for cls in ALL_ERRORS}
