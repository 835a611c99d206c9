"""The hardener's domain errors: one flat list, each with a stable wire code.

Messages and details carry public facts only (a version number, attempts
left, how long to wait), never an input, an output, a key or a blob. The
gRPC boundary (`hardener.rpc_status`) maps them to status codes and back, so
a client catches `UserLocked`, not `grpc.RpcError`.
"""

from __future__ import annotations

from typing import ClassVar


class HardenerError(Exception):
    """Base of every error the hardener or its client raises."""

    code: ClassVar[str] = "hardener_error"
    default: ClassVar[str] = "the hardener refused the request"

    def __init__(
        self,
        message: str | None = None,
        *,
        hint: str = "",
        attempts_left: int = 0,
        retry_after_ms: int = 0,
        key_version: int = 0,
    ) -> None:
        self.message = message or self.default
        self.hint = hint
        self.attempts_left = attempts_left
        self.retry_after_ms = retry_after_ms
        self.key_version = key_version
        super().__init__(self.message + (f" ({hint})" if hint else ""))


class InvalidArgument(HardenerError):
    """A field is malformed: a point that does not decode, a wrong length, an empty id."""

    code = "invalid_argument"
    default = "a field of the request is malformed"


class CallerUnknown(HardenerError):
    """The client certificate is from this hardener's CA but names no registered caller."""

    code = "caller_unknown"
    default = "this client certificate is not registered with the hardener"


class CallerRevoked(HardenerError):
    """The operator revoked this caller (`hardener caller revoke`)."""

    code = "caller_revoked"
    default = "this caller has been revoked by the hardener's operator"


class UserLocked(HardenerError):
    """Too many evaluations without a proven success: only the recovery step unlocks."""

    code = "user_locked"
    default = "too many attempts without a proven success: this user is locked"


class UserBackoff(HardenerError):
    """Several failures in a row: wait `retry_after_ms` before the next evaluation."""

    code = "user_backoff"
    default = "too many recent attempts for this user: wait before trying again"


class RateLimited(HardenerError):
    """The caller's or the hardener's rate limit: retry after `retry_after_ms`."""

    code = "rate_limited"
    default = "the hardener is rate limiting this caller: retry shortly"


class KeyVersionUnknown(HardenerError):
    code = "key_version_unknown"
    default = "no such key version"


class KeyVersionRetired(HardenerError):
    code = "key_version_retired"
    default = "this key version is retired"


class AttemptUnknown(HardenerError):
    """No evaluation of this caller and user has this attempt id."""

    code = "attempt_unknown"
    default = "no such attempt for this user"


class AttemptUsed(HardenerError):
    """The attempt already proved a success (a replayed ReportSuccess)."""

    code = "attempt_used"
    default = "this attempt has already been reported"


class AttemptExpired(HardenerError):
    code = "attempt_expired"
    default = "this attempt is too old to report: evaluate again"


class SignatureInvalid(HardenerError):
    """A claimed success whose signature does not verify: nothing changed."""

    code = "signature_invalid"
    default = "the success signature does not verify against the enrolled key"


class NotEnrolled(HardenerError):
    code = "not_enrolled"
    default = "this user has no enrolled success key"


class AlreadyEnrolled(HardenerError):
    """Replacing an enrolled success key needs a signature by the old one."""

    code = "already_enrolled"
    default = "this user already has a success key: replacing it needs the old key's signature"


class UnwrapFailed(HardenerError):
    """The wrapped blob is not one this hardener made for this caller and record id."""

    code = "unwrap_failed"
    default = "the wrapped blob does not open for this caller and record id"


class HardenerUnavailable(HardenerError):
    """The hardener could not be reached (or refused the TLS handshake)."""

    code = "unavailable"
    default = "the hardener could not be reached"


class ProtocolMismatch(HardenerError):
    """The hardener's answer does not fit what was asked (client side)."""

    code = "protocol_mismatch"
    default = "the hardener's answer does not match the request"


class StoreError(HardenerError):
    """The data directory is missing, damaged or from another version."""

    code = "store_error"
    default = "the hardener's data directory cannot be used"


class KeystoreError(HardenerError):
    """The master key (key file or PKCS#11 token) is missing or refuses to open the keys."""

    code = "keystore_error"
    default = "the hardener's master key is unavailable"


class RetireRefused(HardenerError):
    """`hardener retire` of a version still in use (or current); operator side only."""

    code = "retire_refused"
    default = "this key version is still needed"


ALL: tuple[type[HardenerError], ...] = (
    InvalidArgument,
    CallerUnknown,
    CallerRevoked,
    UserLocked,
    UserBackoff,
    RateLimited,
    KeyVersionUnknown,
    KeyVersionRetired,
    AttemptUnknown,
    AttemptUsed,
    AttemptExpired,
    SignatureInvalid,
    NotEnrolled,
    AlreadyEnrolled,
    UnwrapFailed,
    HardenerUnavailable,
    ProtocolMismatch,
    StoreError,
    KeystoreError,
    RetireRefused,
)
BY_CODE: dict[str, type[HardenerError]] = {cls.code: cls for cls in ALL}
