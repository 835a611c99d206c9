"""The hardener's operations, with no gRPC in them: the servicer is a thin shell.

Each operation validates its input, applies the limits, does its crypto, and
writes what it counted (attempts, successes, record versions) into the
store's shared transaction with no await in between, then awaits
`store.durable()` so nothing answers before what it counted is on disk.
"""

from __future__ import annotations

import ctypes
import hmac
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pysodium
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hardener import labels, oprf
from hardener.attempts import ATTEMPT_ID_BYTES, AttemptKey, IssuedAttempt
from hardener.audit import AuditLog
from hardener.datadir import Policy
from hardener.errors import (
    AlreadyEnrolled,
    AttemptExpired,
    AttemptUnknown,
    AttemptUsed,
    CallerRevoked,
    CallerUnknown,
    HardenerError,
    InvalidArgument,
    NotEnrolled,
    SignatureInvalid,
    UnwrapFailed,
)
from hardener.keys import KeyRing, KeyVersion
from hardener.limits import RateLimits, check_user
from hardener.store import Store
from hardener.transcripts import (
    WRAP_HEADER,
    WRAP_MAGIC,
    WRAP_NONCE,
    WRAP_TAG,
    enrol_message,
    hash_transcript,
    wrap_aad,
)

MAX_ID = 256
MAX_BLOB = 64 * 1024
MAX_BATCH = 1024
_BAD_POINT = (
    "blinded_element is not a valid ristretto255 element (the identity, a non-canonical"
    " encoding, or not a point of the group)"
)


@dataclass(frozen=True, kw_only=True)
class Attempt:
    key_version: int
    attempt_id: bytes
    nonce: bytes
    attempts_left: int


@dataclass(frozen=True, kw_only=True)
class EvaluationResult:
    attempt: Attempt
    evaluated_element: bytes
    proof: bytes


@dataclass(frozen=True, kw_only=True)
class HashResult:
    attempt: Attempt
    mac: bytes = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class WrapResult:
    wrapped: bytes = field(repr=False)
    key_version: int


def check_id(value: str, what: str) -> str:
    raw = value.encode()
    if not raw or len(raw) > MAX_ID:
        raise InvalidArgument(f"{what} must be 1 to {MAX_ID} bytes of UTF-8 (got {len(raw)})")
    if "\x00" in value:
        raise InvalidArgument(f"{what} must not contain NUL")
    return value


def check_len(value: bytes, n: int, what: str) -> bytes:
    if len(value) != n:
        raise InvalidArgument(f"{what} must be {n} bytes (got {len(value)})")
    return value


class HardenerService:
    def __init__(
        self,
        *,
        store: Store,
        keys: KeyRing,
        policy: Policy,
        audit: AuditLog,
        certificates: dict[bytes, tuple[str, bool]],
        attempts: AttemptKey,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.keys = keys
        self.attempts = attempts
        self.policy = policy
        self.audit = audit
        self.certificates = certificates
        self.clock = clock
        self.limits = RateLimits(policy=policy)

    # -- callers ----------------------------------------------------------------

    def identify(self, fingerprint: bytes, name: str | None) -> str:
        """The registered, unrevoked caller a certificate names."""
        entry = self.certificates.get(fingerprint)
        if entry is None or entry[0] != name:
            raise CallerUnknown(
                "this client certificate is not registered with the hardener",
                hint="the operator issues caller certificates with `hardener caller add NAME`",
            )
        if entry[1]:
            raise CallerRevoked(f"caller {name!r} has been revoked by the hardener's operator")
        return entry[0]

    # -- evaluations ------------------------------------------------------------

    def _count(self, caller: str, user_id: str, kv: KeyVersion, now: float, left: int) -> Attempt:
        issued = self.attempts.issue(caller, user_id, kv.version, now)
        self.store.count_attempt(caller=caller, user_id=user_id, now=now)
        return Attempt(
            key_version=kv.version,
            attempt_id=issued.attempt_id,
            nonce=issued.nonce,
            attempts_left=left,
        )

    def _evaluate_now(
        self, caller: str, user_id: str, blinded: bytes, version: int, now: float
    ) -> EvaluationResult:
        """Everything but the commit (no await: atomic against other requests)."""
        check_id(user_id, "user_id")
        check_len(blinded, 32, "blinded_element")
        kv = self.keys.get(version)
        try:
            left = check_user(self.policy, self.store.user(caller, user_id), now)
        except HardenerError as e:
            self.audit.write(
                operation="evaluate", caller=caller, user_id=user_id, key_version=kv.version,
                outcome=e.code, attempts_left=e.attempts_left,
            )  # fmt: skip
            raise
        try:
            ev = oprf.poprf_blind_evaluate(
                kv.oprf_secret, blinded, labels.poprf_info(caller, user_id)
            )
        except oprf.OprfError:
            raise InvalidArgument(_BAD_POINT) from None
        attempt = self._count(caller, user_id, kv, now, left)
        self.audit.write(
            operation="evaluate", caller=caller, user_id=user_id, key_version=kv.version,
            outcome="ok", attempts_left=left,
        )  # fmt: skip
        return EvaluationResult(
            attempt=attempt, evaluated_element=ev.evaluated_element, proof=ev.proof
        )

    async def evaluate(
        self, caller: str, user_id: str, blinded: bytes, version: int = 0
    ) -> EvaluationResult:
        self.limits.take(caller, self.clock())
        await self.store.writable()
        self.store.begin()  # one transaction for the reads and writes that follow
        try:
            return self._evaluate_now(caller, user_id, blinded, version, self.clock())
        finally:
            # A refusal (user_locked...) writes nothing, but the transaction
            # must still end: left open, it kept the database locked against
            # the operator's `hardener unlock` until the next success.
            await self.store.durable()

    async def evaluate_batch(
        self, caller: str, items: Sequence[tuple[str, bytes, int]]
    ) -> list[EvaluationResult | HardenerError]:
        if len(items) > MAX_BATCH:
            raise InvalidArgument(f"at most {MAX_BATCH} evaluations per batch (got {len(items)})")
        self.limits.take(caller, self.clock(), len(items))
        await self.store.writable()
        self.store.begin()
        now = self.clock()
        out: list[EvaluationResult | HardenerError] = []
        for user_id, blinded, version in items:
            try:
                out.append(self._evaluate_now(caller, user_id, blinded, version, now))
            except HardenerError as e:
                out.append(e)
        await self.store.durable()
        return out

    def _hash_now(
        self, caller: str, user_id: str, digest: bytes, version: int, now: float
    ) -> HashResult:
        check_id(user_id, "user_id")
        check_len(digest, 32, "digest")
        kv = self.keys.get(version)
        try:
            left = check_user(self.policy, self.store.user(caller, user_id), now)
        except HardenerError as e:
            self.audit.write(
                operation="hash", caller=caller, user_id=user_id, key_version=kv.version,
                outcome=e.code, attempts_left=e.attempts_left,
            )  # fmt: skip
            raise
        mac = hmac.digest(kv.hash_key, hash_transcript(caller, user_id, digest), "sha256")
        attempt = self._count(caller, user_id, kv, now, left)
        self.audit.write(
            operation="hash", caller=caller, user_id=user_id, key_version=kv.version,
            outcome="ok", attempts_left=left,
        )  # fmt: skip
        return HashResult(attempt=attempt, mac=mac)

    async def hash(self, caller: str, user_id: str, digest: bytes, version: int = 0) -> HashResult:
        self.limits.take(caller, self.clock())
        await self.store.writable()
        self.store.begin()
        try:
            return self._hash_now(caller, user_id, digest, version, self.clock())
        finally:
            await self.store.durable()  # also after a refusal (see evaluate)

    async def hash_batch(
        self, caller: str, items: Sequence[tuple[str, bytes, int]]
    ) -> list[HashResult | HardenerError]:
        if len(items) > MAX_BATCH:
            raise InvalidArgument(f"at most {MAX_BATCH} hashes per batch (got {len(items)})")
        self.limits.take(caller, self.clock(), len(items))
        await self.store.writable()
        self.store.begin()
        now = self.clock()
        out: list[HashResult | HardenerError] = []
        for user_id, digest, version in items:
            try:
                out.append(self._hash_now(caller, user_id, digest, version, now))
            except HardenerError as e:
                out.append(e)
        await self.store.durable()
        return out

    # -- successes --------------------------------------------------------------

    def _attempt(self, caller: str, user_id: str, attempt_id: bytes, now: float) -> IssuedAttempt:
        check_len(attempt_id, ATTEMPT_ID_BYTES, "attempt_id")
        a = self.attempts.open(caller, user_id, attempt_id)
        if a is None:
            raise AttemptUnknown("no such attempt for this caller and user")
        if now - a.created_ms / 1000 > self.policy.attempt_ttl_s:
            raise AttemptExpired(
                f"this attempt is older than {self.policy.attempt_ttl_s} s: evaluate again"
            )
        if self.store.attempt_used(attempt_id):
            raise AttemptUsed("this attempt has already proved a success (a replay)")
        return a

    def _succeed(self, caller: str, user_id: str, a: IssuedAttempt, now: float) -> None:
        self.store.record_success(
            caller=caller,
            user_id=user_id,
            attempt_id=a.attempt_id,
            created_at=a.created_ms / 1000,
            key_version=a.key_version,
            now=now,
        )

    def _audit_refusal(self, op: str, caller: str, user_id: str, e: HardenerError) -> None:
        self.audit.write(operation=op, caller=caller, user_id=user_id, outcome=e.code)

    async def report_success(
        self, caller: str, user_id: str, attempt_id: bytes, signature: bytes
    ) -> int:
        self.limits.take(caller, self.clock())
        await self.store.writable()
        now = self.clock()
        check_id(user_id, "user_id")
        try:
            check_len(signature, 64, "signature")
            a = self._attempt(caller, user_id, attempt_id, now)
            user = self.store.user(caller, user_id)
            if user is None or user.success_key is None:
                raise NotEnrolled("this user has no enrolled success key: Enrol first")
            message = labels.success_message(caller, user_id, a.attempt_id, a.nonce)
            _verify(user.success_key, signature, message)
        except HardenerError as e:
            self._audit_refusal("report_success", caller, user_id, e)
            raise
        self._succeed(caller, user_id, a, now)
        self.audit.write(
            operation="report_success", caller=caller, user_id=user_id,
            key_version=a.key_version, outcome="ok",
        )  # fmt: skip
        await self.store.durable()
        return a.key_version

    async def enrol(
        self,
        caller: str,
        user_id: str,
        public_key: bytes,
        attempt_id: bytes = b"",
        signature: bytes = b"",
    ) -> bool:
        self.limits.take(caller, self.clock())
        await self.store.writable()
        now = self.clock()
        check_id(user_id, "user_id")
        check_len(public_key, 32, "success_public_key")
        if not _strong_ed25519_key(public_key):
            raise InvalidArgument(
                "success_public_key is not an Ed25519 public key of the main subgroup"
                " (a small-order key would let forged signatures verify)"
            )
        user = self.store.user(caller, user_id)
        old = user.success_key if user else None
        if old is None or hmac.compare_digest(old, public_key):
            self.store.set_success_key(caller, user_id, public_key)
            self.audit.write(operation="enrol", caller=caller, user_id=user_id, outcome="ok")
            await self.store.durable()
            return False
        try:
            if not attempt_id or not signature:
                raise AlreadyEnrolled(
                    "this user already has a success key: replacing it needs an attempt and"
                    " the old key's signature over enrol_message",
                    hint="or the operator's `hardener unlock --forget-key CALLER USER_ID`",
                )
            check_len(signature, 64, "signature")
            a = self._attempt(caller, user_id, attempt_id, now)
            _verify(
                old, signature, enrol_message(caller, user_id, a.attempt_id, a.nonce, public_key)
            )
        except HardenerError as e:
            self._audit_refusal("enrol", caller, user_id, e)
            raise
        self._succeed(caller, user_id, a, now)
        self.store.set_success_key(caller, user_id, public_key)
        self.audit.write(
            operation="enrol_replace", caller=caller, user_id=user_id,
            key_version=a.key_version, outcome="ok",
        )  # fmt: skip
        await self.store.durable()
        return True

    # -- wrapping ---------------------------------------------------------------

    def _seal(self, caller: str, record_id: str, blob: bytes) -> WrapResult:
        kv = self.keys.get(0)
        nonce = secrets.token_bytes(WRAP_NONCE)
        ct = AESGCM(kv.wrap_key).encrypt(nonce, blob, wrap_aad(caller, record_id, kv.version))
        return WrapResult(
            wrapped=WRAP_HEADER.pack(WRAP_MAGIC, kv.version) + nonce + ct, key_version=kv.version
        )

    def _open(self, caller: str, record_id: str, wrapped: bytes) -> tuple[bytes, int]:
        if len(wrapped) < WRAP_HEADER.size + WRAP_NONCE + WRAP_TAG:
            raise InvalidArgument("wrapped is too short to be a wrapped blob")
        magic, version = WRAP_HEADER.unpack_from(wrapped)
        if magic != WRAP_MAGIC:
            raise InvalidArgument("wrapped is not a hardener wrapped blob (bad magic)")
        if version == 0:
            raise InvalidArgument("wrapped names key version 0, which no blob is wrapped under")
        kv = self.keys.get(version)
        body = wrapped[WRAP_HEADER.size :]
        try:
            blob = AESGCM(kv.wrap_key).decrypt(
                body[:WRAP_NONCE], body[WRAP_NONCE:], wrap_aad(caller, record_id, version)
            )
        except InvalidTag:
            raise UnwrapFailed(
                "the wrapped blob does not open for this caller and record id"
                " (another record's, another caller's, or altered)"
            ) from None
        return blob, version

    def _check_blob(self, record_id: str, blob: bytes, what: str) -> None:
        check_id(record_id, "record_id")
        if len(blob) > MAX_BLOB:
            raise InvalidArgument(f"{what} is larger than {MAX_BLOB} bytes")

    async def wrap(self, caller: str, record_id: str, blob: bytes) -> WrapResult:
        self.limits.take(caller, self.clock())
        self._check_blob(record_id, blob, "blob")
        await self.store.writable()
        r = self._seal(caller, record_id, blob)
        self.store.begin()
        self.store.set_record_version(caller, record_id, r.key_version)
        self.audit.write(
            operation="wrap", caller=caller, record_id=record_id, key_version=r.key_version,
            outcome="ok",
        )  # fmt: skip
        await self.store.durable()
        return r

    async def unwrap(self, caller: str, record_id: str, wrapped: bytes) -> tuple[bytes, int]:
        self.limits.take(caller, self.clock())
        self._check_blob(record_id, wrapped, "wrapped")
        try:
            blob, version = self._open(caller, record_id, wrapped)
        except HardenerError as e:
            self.audit.write(operation="unwrap", caller=caller, record_id=record_id, outcome=e.code)
            raise
        self.audit.write(
            operation="unwrap", caller=caller, record_id=record_id, key_version=version,
            outcome="ok",
        )  # fmt: skip
        return blob, version

    async def rewrap(self, caller: str, record_id: str, wrapped: bytes) -> WrapResult:
        self.limits.take(caller, self.clock())
        self._check_blob(record_id, wrapped, "wrapped")
        await self.store.writable()
        try:
            blob, _ = self._open(caller, record_id, wrapped)
        except HardenerError as e:
            self.audit.write(operation="rewrap", caller=caller, record_id=record_id, outcome=e.code)
            raise
        r = self._seal(caller, record_id, blob)
        self.store.begin()
        self.store.set_record_version(caller, record_id, r.key_version)
        self.audit.write(
            operation="rewrap", caller=caller, record_id=record_id, key_version=r.key_version,
            outcome="ok",
        )  # fmt: skip
        await self.store.durable()
        return r


def _verify(public_key: bytes, signature: bytes, message: bytes) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        raise SignatureInvalid(
            "the signature does not verify against the user's enrolled success key:"
            " nothing was changed"
        ) from None


def _strong_ed25519_key(public_key: bytes) -> bool:
    """On the curve, canonical, in the prime-order subgroup, not of small order
    (libsodium's crypto_core_ed25519_is_valid_point, which pysodium does not wrap)."""
    ok = pysodium.sodium.crypto_core_ed25519_is_valid_point(ctypes.c_char_p(public_key))
    return bool(ok == 1)
