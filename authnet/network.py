"""The network's logic: what every SP, PassKey and browser call does.

Transport-free: the gRPC servicers (`authnet.server`) and the websocket gateway
(`authnet.gateway`) are thin shells over this class. State lives behind two
interfaces, `Directory` (long-lived records) and `StateStore` (tickets, mailbox,
events, challenges, locks), so several nodes can share it.

What is never stored or logged: ticket strings (only their hashes), Kc (the
network never has it), the sealed Kc once the browser acknowledged it,
signatures, challenges in clear (only hashed), wait secrets (only hashed).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from authnet import tickets as tk
from authnet.directory import DataContainer, Directory, ServiceProvider, TokenRecord
from authnet.errors import (
    BrowserKeyMismatch,
    BrowserNotWaiting,
    ChallengeInvalid,
    FactorNotProven,
    LockHeld,
    LockNotHeld,
    MalformedInput,
    NotAuthenticated,
    PayloadTooLarge,
    PermissionDenied,
    SignatureInvalid,
    TicketConsumed,
    TicketExpired,
    TicketNotFound,
    TicketRejected,
    TicketStateInvalid,
    TokenRevoked,
    TokenUnknown,
)
from authnet.metrics import AUTHENTICATED, REJECTED, NodeMetrics, counts_login
from authnet.protocol import messages
from authnet.protocol.encoding import b64u_encode
from authnet.protocol.factors import Factor, Factors, format_factors, parse_factors
from authnet.protocol.ids import (
    BROWSER_KEY_BYTES,
    check_id,
    check_ticket,
    new_id,
    new_ticket,
    ticket_hash,
    ticket_tag,
)
from authnet.protocol.proofs import Assertion, Proof, webauthn_challenge
from authnet.protocol.sealing import SealedKey
from authnet.protocol.signatures import Algorithm, load_public_key, verify
from authnet.protocol.suites import BrowserOffer, pq_key_hash, xwing_public_key
from authnet.puid import DirectedIdentity
from authnet.state import EventKind, StateStore, TicketEvent
from authnet.tickets import BrowserHints, Ticket
from authnet.webauthn import RelyingParty, Verified, credential_id

log = logging.getLogger("authnet.network")

# How long records outlive their expiry, so late callers hear "expired", not "unknown".
GRACE_MS = 300_000
CHALLENGE_TTL_MS = 120_000
NONCE_BYTES = 32
CHALLENGE_BYTES = 32
WAIT_SECRET_BYTES = 32
MAX_LOCK_S = 300
DEFAULT_LOCK_S = 30
CONTAINER_RE = re.compile(r"^[A-Za-z0-9._-]{0,64}$")
LABEL_MAX = 64
KIND_MAX = 5  # TokenKind values 1..5 (phone, fido2, piv, pkcs11, otp)
KIND_FIDO2 = 2
CAS_RETRIES = 8
# Challenge purposes: 1 enrol, 2 list tokens, 3 revoke token (GetChallenge), and
# 4 a page's own security-key login (its nonce).
PURPOSE_ENROL = 1
PURPOSE_WEBAUTHN_LOGIN = 4
# A token registering its PIN's success key (authnet.pin_relay).
PURPOSE_ENROL_PIN = 5
WEBAUTHN_TIMEOUT_MS = 120_000
# At most this long (and never longer than sp_cache_seconds) a node answers a
# login step from a token record it read before, instead of reading it again:
# a login reads its token in BeginAuth, CompleteAuth and GetPUID, a lookup
# each (a round trip to the database in a cluster). A revocation made on this
# node takes effect on it at once (it drops the record); other nodes see it
# within this time. Account operations (enrol, list, revoke) always read afresh.
TOKEN_CACHE_S = 1.0


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, kw_only=True)
class IssuedTicket:
    ticket: str
    ttl_s: int
    expires_ms: int
    factors: Factors

    def __repr__(self) -> str:
        return f"IssuedTicket(ttl_s={self.ttl_s}, ticket=<hidden>)"


@dataclass(frozen=True, kw_only=True)
class PuidResult:
    puid: str
    key_id: str
    proven: Factors


@dataclass(frozen=True, kw_only=True)
class AuthChallenge:
    """BeginAuth's answer: what the token shows and signs."""

    nonce: bytes
    spid: bytes
    sp_name: str
    sp_display_name: str
    sp_origins: tuple[str, ...]
    hints: BrowserHints
    requested: Factors
    expires_ms: int
    # The browser's X-Wing key, for the token to check against the QR code.
    browser_pq_key: bytes | None = None


@dataclass(frozen=True, kw_only=True)
class WebAuthnLoginOptions:
    """What a waiting page needs to ask its security key for an assertion."""

    nonce: bytes
    challenge: bytes
    rp_id: str
    timeout_ms: int


@dataclass(frozen=True, kw_only=True)
class WebAuthnEnrolOptions:
    """What a page on the network's own site needs to create a credential."""

    challenge: bytes  # the enrolment challenge (GetChallenge's)
    webauthn_challenge: bytes  # SHA-256 of the enrolment transcript
    rp_id: str
    rp_name: str
    user_id: bytes
    timeout_ms: int


@dataclass(frozen=True, kw_only=True)
class TokenProof:
    token_id: bytes
    challenge: bytes
    proof: Proof


class _Lru:
    """A small bounded cache with per-entry expiry."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._d: OrderedDict[object, tuple[object, float]] = OrderedDict()

    def get(self, key: object, now: float) -> object | None:
        hit = self._d.get(key)
        if hit is None or hit[1] < now:
            return None
        self._d.move_to_end(key)
        return hit[0]

    def put(self, key: object, value: object, until: float) -> None:
        self._d[key] = (value, until)
        self._d.move_to_end(key)
        while len(self._d) > self._size:
            self._d.popitem(last=False)

    def discard(self, key: object) -> None:
        self._d.pop(key, None)

    def clear(self) -> None:
        self._d.clear()


def _answer_hash(
    *, token_id: bytes, nonce: bytes, user_verified: bool, sealed: SealedKey | None, proof: Proof
) -> bytes:
    """A digest of one CompleteAuth answer (everything the token sent), kept in
    the ticket so a retry of the same answer is recognised. Length-prefixed
    fields under a label; the nonce makes it unique per login attempt."""
    parts = [token_id, nonce, bytes([user_verified]), proof.signature]
    if proof.webauthn is not None:
        a = proof.webauthn
        parts += [a.credential_id, a.authenticator_data, a.client_data_json, a.signature]
    if sealed is not None:
        parts += [sealed.enc, sealed.ciphertext]
    return _digest(b"authnet-answer-v1\x00", parts)


def _request_digest(request_id: bytes) -> bytes | None:
    """What a ticket keeps of the id of the request that consumed it."""
    return hashlib.sha256(b"authnet-request\x00" + request_id).digest() if request_id else None


def _issued(ticket: str, t: Ticket) -> IssuedTicket:
    return IssuedTicket(
        ticket=ticket,
        ttl_s=(t.expires_ms - t.created_ms) // 1000,
        expires_ms=t.expires_ms,
        factors=t.proven,
    )


def _page_answer_hash(*, nonce: bytes, assertion: Assertion, client_key: bool) -> bytes:
    """The same for a page's own security-key login (everything the page sent
    but its wait secret, which the retry must present again): a retry on
    another gateway after a lost reply is recognised by it."""
    a = assertion
    parts = [nonce, a.credential_id, a.authenticator_data, a.client_data_json, a.signature]
    return _digest(b"authnet-page-answer-v1\x00", [*parts, bytes([client_key])])


def _digest(label: bytes, parts: list[bytes]) -> bytes:
    """SHA-256 over `label` and length-prefixed `parts`."""
    h = hashlib.sha256(label)
    for part in parts:
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    return h.digest()


def _truncate(text: str, n: int) -> str:
    head = text[:n]
    if head.isprintable():  # nearly always: one C call, not one per character
        return head
    return "".join(ch for ch in head if ch.isprintable())


class Network:
    def __init__(
        self,
        *,
        directory: Directory,
        state: StateStore,
        identity: DirectedIdentity,
        network_name: str,
        passkey_address: str = "",
        gateway_url: str = "",
        data_max_bytes: int = 16 * 1024,
        sp_cache_seconds: float = 5.0,
        webauthn_rp_id: str = "localhost",
        clock: Callable[[], int] = now_ms,
        node_id: str = "",
        metrics: NodeMetrics | None = None,
    ) -> None:
        self.directory = directory
        self.state = state
        self.identity = identity
        self.network_name = network_name
        # Filled in once the node knows its bound ports.
        self.passkey_address = passkey_address
        self.gateway_url = gateway_url
        # Every gateway of the cluster, this node's first (TicketResponse).
        self.gateway_urls: tuple[str, ...] = (gateway_url,) if gateway_url else ()
        # Which node this is; every answer names it.
        self.node_id = node_id
        # Login outcomes are counted here (counts_login), whichever API ended them.
        self.metrics = metrics or NodeMetrics(node_id=node_id)
        self.data_max_bytes = data_max_bytes
        self.sp_cache_seconds = sp_cache_seconds
        self.clock = clock
        self.relying_party = RelyingParty(webauthn_rp_id, network_name)
        self._cert_cache = _Lru(4096)
        self._sp_cache = _Lru(4096)
        self._key_cache = _Lru(65536)
        self._token_cache = _Lru(65536)

    # --- helpers --------------------------------------------------------------

    async def _ticket(self, ticket: str) -> Ticket:
        t = await self.state.get_ticket(ticket_hash(check_ticket(ticket)))
        if t is None:
            raise TicketNotFound()
        return t

    async def _sp_ticket(self, sp: ServiceProvider, ticket: str) -> Ticket:
        t = await self._ticket(ticket)
        if t.spid != sp.spid:
            # Same answer as for a ticket that does not exist: no oracle.
            raise TicketNotFound()
        return t

    async def _transition(
        self,
        t: Ticket,
        step: Callable[[Ticket], Ticket | None],
        *,
        mail: bytes | None = None,
        event: EventKind | None = None,
    ) -> Ticket:
        """Apply a pure transition with compare-and-set, re-reading on a race.
        `mail` (the sealed Kc) and `event` go with the swap that wins, in the
        same atomic step (StateStore.swap_ticket): one round trip per step."""
        for _ in range(CAS_RETRIES):
            new = step(t)
            if new is None:
                return t
            if await self.state.swap_ticket(
                t,
                new,
                keep_until_ms=new.expires_ms + GRACE_MS,
                mail=mail,
                event=None if event is None else TicketEvent(kind=event, at_ms=self.clock()),
            ):
                return new
            fresh = await self.state.get_ticket(t.th)
            if fresh is None:
                raise TicketNotFound()
            t = fresh
        raise TicketStateInvalid("the ticket is changing too fast; try again")

    async def _sp(self, spid: bytes) -> ServiceProvider:
        now = time.monotonic()
        cached = self._sp_cache.get(spid, now)
        if isinstance(cached, ServiceProvider):
            return cached
        sp = await self.directory.get_sp(spid)
        if sp is None:
            raise TicketNotFound()
        self._sp_cache.put(spid, sp, now + self.sp_cache_seconds)
        return sp

    async def _touch_after_login(self, token_id: bytes) -> None:
        """Record a token's last use once its login has committed. Best effort:
        the browser may already hold Kc and the SP the PUID, so a failure here
        must not turn the committed login into an error for the token; it is
        logged (the error's type only: a driver's message can quote parameters)."""
        try:
            await self.directory.touch_token(token_id, self.clock())
        except Exception as exc:
            log.warning(
                "token last-used time not recorded, the login stands: %s",
                getattr(exc, "code", None) or type(exc).__name__,
            )

    @property
    def token_cache_seconds(self) -> float:
        """How long a login step may rely on an active token's record read
        before (0 when SP records are not cached either, as in tests)."""
        return min(self.sp_cache_seconds, TOKEN_CACHE_S)

    async def active_token(self, token_id: bytes, *, fresh: bool = False) -> TokenRecord:
        """The token's record if it is enrolled and not revoked. Login steps
        may get a record this node read up to `token_cache_seconds` ago (only
        active ones are kept); `fresh` reads the directory whatever the cache."""
        check_id(token_id, field="token_id")
        ttl = 0.0 if fresh else self.token_cache_seconds
        now = time.monotonic()
        if ttl > 0:
            cached = self._token_cache.get(token_id, now)
            if isinstance(cached, TokenRecord):
                return cached
        token = await self.directory.get_token(token_id)
        if token is None:
            raise TokenUnknown()
        if token.revoked_ms is not None:
            self._token_cache.discard(token_id)
            raise TokenRevoked()
        if ttl > 0:
            self._token_cache.put(token_id, token, now + ttl)
        return token

    def _public_key(self, token: TokenRecord) -> ec.EllipticCurvePublicKey:
        cached = self._key_cache.get(token.token_id, 0.0)
        if isinstance(cached, ec.EllipticCurvePublicKey):
            return cached
        key = load_public_key(token.public_key, Algorithm(token.algorithm))
        self._key_cache.put(token.token_id, key, float("inf"))
        return key

    async def _take_challenge(self, challenge: bytes, purpose: int) -> None:
        if not isinstance(challenge, bytes) or len(challenge) != CHALLENGE_BYTES:
            raise ChallengeInvalid("challenge must be the 32 bytes GetChallenge returned")
        got = await self.state.take_challenge(hashlib.sha256(challenge).digest())
        if got != purpose:
            raise ChallengeInvalid()

    async def _verify(self, token: TokenRecord, message: bytes, proof: Proof) -> bool:
        """Check that `token` proved `message`, whatever its kind. Returns whether
        the token itself attests user verification (FIDO2's UV flag)."""
        if token.algorithm == Algorithm.WEBAUTHN_ES256:
            if proof.webauthn is None:
                raise MalformedInput("this token proves with a WebAuthn assertion (webauthn)")
            checked = self.relying_party.verify(
                credential=token.public_key, message=message, assertion=proof.webauthn
            )
            await self._advance_sign_count(token, checked)
            return checked.user_verified
        if not proof.signature:
            raise MalformedInput("signature is required")
        verify(self._public_key(token), proof.signature, message)
        return False

    async def _advance_sign_count(self, token: TokenRecord, checked: Verified) -> None:
        if not await self.directory.advance_sign_count(token.token_id, checked.sign_count):
            raise SignatureInvalid(
                "the authenticator's signature counter did not advance: "
                "the credential may have been cloned"
            )

    async def check_proof(
        self, proof: TokenProof, purpose: int, message: Callable[[TokenRecord], bytes]
    ) -> TokenRecord:
        await self._take_challenge(proof.challenge, purpose)
        token = await self.active_token(proof.token_id, fresh=True)
        await self._verify(token, message(token), proof.proof)
        return token

    # --- SP identity ----------------------------------------------------------

    async def sp_for_certificate(self, pem: bytes | None) -> ServiceProvider:
        """The SP a (TLS-verified) client certificate belongs to."""
        if not pem:
            raise NotAuthenticated()
        now = time.monotonic()
        cached = self._cert_cache.get(pem, now)
        if isinstance(cached, ServiceProvider):
            return cached
        try:
            der = x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
        except ValueError:
            raise NotAuthenticated() from None
        found = await self.directory.sp_for_certificate(hashlib.sha256(der).digest())
        if found is None:
            raise NotAuthenticated("this certificate is not registered with the network")
        sp, cert = found
        if cert.revoked_ms is not None:
            raise PermissionDenied("this SP certificate was revoked")
        if cert.not_after_ms <= self.clock():
            raise PermissionDenied("this SP certificate has expired")
        if sp.disabled_ms is not None:
            raise PermissionDenied("this service provider is disabled")
        self._cert_cache.put(pem, sp, now + self.sp_cache_seconds)
        return sp

    # --- SP API ---------------------------------------------------------------

    async def get_ticket(self, sp: ServiceProvider, ttl_s: int, auth_types: str) -> IssuedTicket:
        factors = parse_factors(auth_types)
        ticket = new_ticket()
        t = tk.issue(
            th=ticket_hash(ticket),
            spid=sp.spid,
            requested=factors,
            now_ms=self.clock(),
            ttl_s=ttl_s,
        )
        await self.state.create_ticket(t, keep_until_ms=t.expires_ms + GRACE_MS)
        log.debug(
            "ticket issued sp=%s tag=%s ttl=%ss",
            sp.name,
            ticket_tag(t.th),
            (t.expires_ms - t.created_ms) // 1000,
        )
        return IssuedTicket(
            ticket=ticket,
            ttl_s=(t.expires_ms - t.created_ms) // 1000,
            expires_ms=t.expires_ms,
            factors=factors,
        )

    async def put_ticket(
        self,
        sp: ServiceProvider,
        ticket: str,
        ttl_s: int,
        auth_types: str,
        *,
        request_id: bytes = b"",
    ) -> IssuedTicket:
        """`request_id`: the client's id for this call, the same on its retries.
        With one, the new ticket is derived from the old one and the id
        (K_renew), so a retried PutTicket whose first reply was lost gets the
        same new ticket instead of ticket_consumed; without one it is random."""
        requested = parse_factors(auth_types)
        digest = _request_digest(request_id)
        t = await self._sp_ticket(sp, ticket)
        if digest is not None and tk.consumed_by(t, digest):
            return await self._renewed_again(sp, t, digest, requested, ttl_s)
        t = await self._authenticated(sp, ticket, t)
        fresh = new_ticket() if digest is None else self.identity.renewed_ticket(t.th, digest)
        made: list[Ticket] = []

        def step(cur: Ticket) -> Ticket:
            old, new = tk.renew(
                cur,
                new_th=ticket_hash(fresh),
                requested=requested,
                ttl_s=ttl_s,
                now_ms=self.clock(),
                by=digest,
            )
            made[:] = [new]
            return old

        await self._transition(t, step)
        new = made[0]
        await self.state.create_ticket(new, keep_until_ms=new.expires_ms + GRACE_MS)
        log.info("ticket renewed sp=%s tag=%s -> %s", sp.name, ticket_tag(t.th), ticket_tag(new.th))
        return _issued(fresh, new)

    async def _renewed_again(
        self, sp: ServiceProvider, old: Ticket, digest: bytes, requested: Factors, ttl_s: int
    ) -> IssuedTicket:
        """A retried PutTicket: `old` was consumed by this very request. Its new
        ticket again; made now if the first try died before storing it."""
        assert old.token_id is not None
        await self.active_token(old.token_id)
        fresh = self.identity.renewed_ticket(old.th, digest)
        th = ticket_hash(fresh)
        new = await self.state.get_ticket(th)
        if new is None:
            now = self.clock()
            new = tk.successor(old, new_th=th, requested=requested, ttl_s=ttl_s, now_ms=now)
            try:
                await self.state.create_ticket(new, keep_until_ms=new.expires_ms + GRACE_MS)
            except KeyError:  # a concurrent retry stored it first
                stored = await self.state.get_ticket(th)
                if stored is None:
                    raise TicketNotFound() from None
                new = stored
        log.info(
            "ticket renewed (retried) sp=%s tag=%s -> %s",
            sp.name,
            ticket_tag(old.th),
            ticket_tag(th),
        )
        return _issued(fresh, new)

    async def _authenticated(
        self, sp: ServiceProvider, ticket: str, t: Ticket | None = None
    ) -> Ticket:
        """An SP's authenticated ticket whose token is still active: revoking a
        token ends the sessions it opened, not only its future logins. `t`: the
        ticket record when the caller has already read it."""
        if t is None:
            t = await self._sp_ticket(sp, ticket)
        tk.require_authenticated(t, self.clock())
        assert t.token_id is not None
        await self.active_token(t.token_id)
        return t

    async def get_puid(
        self, sp: ServiceProvider, ticket: str, finalize: bool, *, request_id: bytes = b""
    ) -> PuidResult:
        """`request_id`: the client's id for this call, the same on its retries;
        a retried GetPUID(finalize) whose first reply was lost gets the same
        answer instead of ticket_consumed."""
        digest = _request_digest(request_id)
        t = await self._sp_ticket(sp, ticket)
        if finalize and digest is not None and tk.consumed_by(t, digest):
            assert t.token_id is not None
            await self.active_token(t.token_id)
        else:
            t = await self._authenticated(sp, ticket, t)
            if finalize:
                t = await self._transition(t, lambda cur: tk.consume(cur, self.clock(), by=digest))
        assert t.user_id is not None
        assert t.token_id is not None
        log.debug("puid read sp=%s tag=%s finalize=%s", sp.name, ticket_tag(t.th), finalize)
        return PuidResult(
            puid=self.identity.puid(t.user_id, sp.spid),
            key_id=self.identity.key_id(t.token_id, sp.spid),
            proven=t.proven,
        )

    async def _user_of(self, sp: ServiceProvider, ticket: str) -> bytes:
        t = await self._authenticated(sp, ticket)
        assert t.user_id is not None
        return t.user_id

    @staticmethod
    def _container(name: str) -> str:
        if not isinstance(name, str) or not CONTAINER_RE.fullmatch(name):
            raise MalformedInput("container name must be up to 64 of A-Z a-z 0-9 . _ -")
        return name

    async def read_data(self, sp: ServiceProvider, ticket: str, container: str) -> DataContainer:
        name = self._container(container)
        user = await self._user_of(sp, ticket)
        return await self.directory.read_data(sp.spid, user, name)

    async def write_data(
        self, sp: ServiceProvider, ticket: str, container: str, data: bytes, expected_version: int
    ) -> int:
        name = self._container(container)
        if len(data) > self.data_max_bytes:
            raise PayloadTooLarge(
                f"data is {len(data)} bytes; containers hold at most {self.data_max_bytes}",
                limit=self.data_max_bytes,
            )
        user = await self._user_of(sp, ticket)
        version = await self.directory.write_data(
            sp.spid, user, name, data, expected_version, self.clock()
        )
        log.info("data written sp=%s container=%r version=%d", sp.name, name, version)
        return version

    @staticmethod
    def _lock_key(sp: ServiceProvider, user: bytes, name: str) -> str:
        return f"{sp.spid.hex()}:{user.hex()}:{name}"

    async def lock(
        self, sp: ServiceProvider, ticket: str, container: str, timeout_s: int
    ) -> tuple[str, int]:
        name = self._container(container)
        timeout_s = timeout_s or DEFAULT_LOCK_S
        if not 1 <= timeout_s <= MAX_LOCK_S:
            raise MalformedInput(f"lock timeout must be 1..{MAX_LOCK_S} seconds (or 0)")
        user = await self._user_of(sp, ticket)
        lock_id = b64u_encode(secrets.token_bytes(16))
        until = self.clock() + timeout_s * 1000
        held_until = await self.state.acquire_lock(
            self._lock_key(sp, user, name), lock_id, until_ms=until
        )
        if held_until is not None:
            raise LockHeld(
                f"container is locked for another {max(0, held_until - self.clock()) // 1000 + 1}s",
                expires_at_unix_ms=held_until,
            )
        return lock_id, until

    async def unlock(self, sp: ServiceProvider, ticket: str, container: str, lock_id: str) -> None:
        name = self._container(container)
        user = await self._user_of(sp, ticket)
        if not await self.state.release_lock(self._lock_key(sp, user, name), lock_id):
            raise LockNotHeld()

    # --- PassKey API: accounts ------------------------------------------------

    async def get_challenge(self, purpose: int) -> tuple[bytes, int]:
        if purpose not in (1, 2, 3, PURPOSE_ENROL_PIN):
            raise MalformedInput(
                "challenge purpose must be enrol, list_tokens, revoke_token or enrol_pin"
            )
        challenge = secrets.token_bytes(CHALLENGE_BYTES)
        until = self.clock() + CHALLENGE_TTL_MS
        await self.state.put_challenge(
            hashlib.sha256(challenge).digest(), purpose, keep_until_ms=until
        )
        return challenge, until

    async def enrol(
        self,
        *,
        challenge: bytes,
        kind: int,
        algorithm: int,
        public_key: bytes,
        label: str,
        signature: bytes,
        existing: TokenProof | None,
        registration: tuple[bytes, bytes] | None = None,
        webauthn_origin: str | None = None,
    ) -> tuple[bytes, bool]:
        """Enrol a token: a new account, or added to `existing`'s account.
        ES256 tokens prove possession with `signature` over the enrolment
        transcript; FIDO2 tokens send a WebAuthn `registration`
        (client data JSON, attestation object) made for that transcript."""
        if not 1 <= kind <= KIND_MAX:
            raise MalformedInput("unknown token kind")
        if algorithm not in (Algorithm.ES256, Algorithm.WEBAUTHN_ES256):
            raise MalformedInput("unsupported signature algorithm: use ES256 or WEBAUTHN_ES256")
        if (algorithm == Algorithm.WEBAUTHN_ES256) != (kind == KIND_FIDO2):
            raise MalformedInput("FIDO2 tokens, and only they, enrol with WEBAUTHN_ES256")
        if not isinstance(label, str) or len(label) > LABEL_MAX or not label.isprintable():
            raise MalformedInput(f"label must be printable and at most {LABEL_MAX} characters")
        sign_count = 0
        if algorithm == Algorithm.WEBAUTHN_ES256:
            if registration is None or public_key or signature:
                raise MalformedInput("FIDO2 tokens enrol with a WebAuthn registration only")
            await self._take_challenge(challenge, 1)
            registered = self.relying_party.register(
                message=messages.enrol(
                    challenge=challenge,
                    kind=kind,
                    algorithm=algorithm,
                    public_key=b"",
                    label=label,
                ),
                client_data_json=registration[0],
                attestation_object=registration[1],
                origins=None if webauthn_origin is None else frozenset({webauthn_origin}),
            )
            public_key, sign_count = registered.credential, registered.sign_count
        else:
            key = load_public_key(public_key, Algorithm(algorithm))
            await self._take_challenge(challenge, 1)
            verify(
                key,
                signature,
                messages.enrol(
                    challenge=challenge,
                    kind=kind,
                    algorithm=algorithm,
                    public_key=public_key,
                    label=label,
                ),
            )
        now = self.clock()
        token_id = new_id()
        if existing is not None:
            if existing.challenge != challenge:
                raise ChallengeInvalid("the authorising token must sign the same challenge")
            parent = await self.active_token(existing.token_id, fresh=True)
            await self._verify(
                parent,
                messages.add_token(
                    challenge=challenge, token_id=parent.token_id, new_public_key=public_key
                ),
                existing.proof,
            )
            user_id = parent.user_id
        else:
            user_id = new_id()
        record = TokenRecord(
            token_id=token_id,
            user_id=user_id,
            kind=kind,
            algorithm=algorithm,
            public_key=public_key,
            label=label,
            created_ms=now,
            sign_count=sign_count,
            credential_id=(
                credential_id(public_key) if algorithm == Algorithm.WEBAUTHN_ES256 else None
            ),
        )
        if existing is None:
            await self.directory.create_account(user_id, record, now)
        else:
            await self.directory.add_token(record)
        log.info("token enrolled kind=%d new_account=%s", kind, existing is None)
        return token_id, existing is None

    async def list_tokens(self, proof: TokenProof) -> list[TokenRecord]:
        token = await self.check_proof(
            proof, 2, lambda t: messages.list_tokens(challenge=proof.challenge, token_id=t.token_id)
        )
        return await self.directory.list_tokens(token.user_id)

    async def revoke_token(self, proof: TokenProof, target: bytes) -> None:
        check_id(target, field="token_id")
        token = await self.check_proof(
            proof,
            3,
            lambda t: messages.revoke_token(
                challenge=proof.challenge, token_id=t.token_id, target_token_id=target
            ),
        )
        victim = await self.directory.get_token(target)
        if victim is None or victim.user_id != token.user_id:
            raise TokenUnknown("no such token in this account")
        await self.directory.revoke_token(target, self.clock())
        self._token_cache.discard(target)
        log.info("token revoked")

    # --- PassKey API: login ---------------------------------------------------

    async def begin_auth(
        self, ticket: str, token_id: bytes, browser_key_hash: bytes
    ) -> AuthChallenge:
        if not isinstance(browser_key_hash, bytes) or len(browser_key_hash) != 32:
            raise MalformedInput("browser_key_hash must be 32 bytes")
        t = await self._ticket(ticket)
        await self.active_token(token_id)
        nonce = secrets.token_bytes(NONCE_BYTES)
        t = await self._transition(
            t,
            lambda cur: tk.scan(
                cur,
                token_id=token_id,
                browser_key_hash=browser_key_hash,
                nonce=nonce,
                now_ms=self.clock(),
            ),
            event=EventKind.SCANNED,
        )
        sp = await self._sp(t.spid)
        log.debug("ticket scanned sp=%s tag=%s", sp.name, ticket_tag(t.th))
        assert t.hints is not None
        return AuthChallenge(
            nonce=nonce,
            spid=sp.spid,
            sp_name=sp.name,
            sp_display_name=sp.display_name,
            sp_origins=sp.origins,
            hints=t.hints,
            requested=t.requested,
            expires_ms=t.expires_ms,
            browser_pq_key=t.browser_pq_key,
        )

    @counts_login(AUTHENTICATED)
    async def complete_auth(
        self,
        ticket: str,
        *,
        token_id: bytes,
        nonce: bytes,
        user_verified: bool,
        sealed: SealedKey | None,
        proof: Proof,
    ) -> None:
        t = await self._ticket(ticket)
        token = await self.active_token(token_id)
        answer = _answer_hash(
            token_id=token_id,
            nonce=nonce,
            user_verified=user_verified,
            sealed=sealed,
            proof=proof,
        )
        if tk.answered_by(t, token_id=token_id, answer_hash=answer):
            log.info("ticket authenticated (retried answer) tag=%s", ticket_tag(t.th))
            return
        # Cheap state checks before the signature verification.
        tk.check_scanned_by(t, token_id=token_id, nonce=nonce, now_ms=self.clock())
        if tk.needs_client_key(t) and sealed is None:
            raise MalformedInput("this login requests a client key: sealed_kc is required")
        if not tk.needs_client_key(t) and sealed is not None:
            raise MalformedInput("this login did not request a client key: omit sealed_kc")
        assert t.browser_key_hash is not None
        # A FIDO2 key derives Kc (hmac-secret) in the same assertion that proves
        # the login, so its transcript cannot cover the sealed key's digest.
        covers_seal = token.algorithm != Algorithm.WEBAUTHN_ES256
        attested_uv = await self._verify(
            token,
            messages.auth_response(
                ticket_hash=t.th,
                spid=t.spid,
                browser_key_hash=t.browser_key_hash,
                nonce=nonce,
                token_id=token_id,
                user_verified=user_verified,
                sealed_digest=sealed.digest() if sealed and covers_seal else None,
            ),
            proof,
        )
        if token.algorithm == Algorithm.WEBAUTHN_ES256 and user_verified and not attested_uv:
            raise FactorNotProven("the security key did not verify the user (UV flag clear)")
        proven: set[Factor] = set()
        if user_verified:
            proven.add(Factor.PIN)
        if sealed is not None:
            proven.add(Factor.CLIENT_KEY)
        # Refuse before anything is stored: a refused answer leaves no mailbox entry.
        tk.check_factors(t, frozenset(proven))
        t = await self._transition(
            t,
            lambda cur: tk.authenticate(
                cur,
                token_id=token_id,
                nonce=nonce,
                user_id=token.user_id,
                proven=frozenset(proven),
                now_ms=self.clock(),
                answer_hash=answer,
            ),
            # The sealed Kc is stored with the swap that authenticates, never
            # without it, and before the event wakes the browser.
            mail=None if sealed is None else sealed.to_bytes(),
            event=EventKind.AUTHENTICATED,
        )
        await self._touch_after_login(token_id)
        try:
            sp_name = (await self._sp(t.spid)).name
        except Exception:  # the login stands: name the SP by its id in the log
            sp_name = t.spid.hex()[:16]
        log.info(
            "ticket authenticated sp=%s tag=%s factors=%s",
            sp_name,
            ticket_tag(t.th),
            format_factors(proven) or "-",
        )

    @counts_login(REJECTED)
    async def decline_auth(
        self, ticket: str, *, token_id: bytes, nonce: bytes, proof: Proof
    ) -> None:
        t = await self._ticket(ticket)
        token = await self.active_token(token_id)
        tk.check_scanned_by(t, token_id=token_id, nonce=nonce, now_ms=self.clock())
        await self._verify(
            token,
            messages.auth_decline(ticket_hash=t.th, spid=t.spid, nonce=nonce, token_id=token_id),
            proof,
        )
        t = await self._transition(
            t,
            lambda cur: tk.decline(cur, token_id=token_id, nonce=nonce, now_ms=self.clock()),
            event=EventKind.REJECTED,
        )
        log.info("ticket rejected by token tag=%s", ticket_tag(t.th))

    # --- a page's own security-key login (WebAuthn in the browser) -----------

    def _page_may_use_keys(self, sp: ServiceProvider, origin: str) -> bool:
        """A page may assert for this SP's tickets: an origin the SP registered,
        or, when it registered none, a page on the network's RP id."""
        if sp.origins:
            return origin in sp.origins
        return self.relying_party.on_rp_id(origin)

    async def _waiting_page(
        self, ticket: str, wait_secret: bytes, origin: str
    ) -> tuple[Ticket, ServiceProvider]:
        """The ticket, if the caller is the page waiting on it (it holds the wait
        secret, and is at the origin the gateway saw)."""
        t = self._page_ticket(await self._ticket(ticket), wait_secret)
        return t, await self._still_waiting(t, origin)

    @staticmethod
    def _page_ticket(t: Ticket, wait_secret: bytes) -> Ticket:
        """`t`, if the caller holds its wait secret (the page waiting on it)."""
        if not isinstance(wait_secret, bytes) or len(wait_secret) != WAIT_SECRET_BYTES:
            raise MalformedInput("wait_secret must be 32 bytes")
        if t.wait_secret_hash is None or t.hints is None:
            raise BrowserNotWaiting()
        if not hmac.compare_digest(t.wait_secret_hash, hashlib.sha256(wait_secret).digest()):
            raise BrowserKeyMismatch("this page is not the one waiting on the ticket")
        return t

    async def _still_waiting(self, t: Ticket, origin: str) -> ServiceProvider:
        """The ticket's SP, if the ticket still waits for a login and a page at
        `origin` may use security keys for it."""
        assert t.hints is not None
        state = tk.state_at(t, self.clock())
        if state is tk.TicketState.EXPIRED:
            raise TicketExpired()
        if state is tk.TicketState.REJECTED:
            raise TicketRejected()
        if state is tk.TicketState.CONSUMED:
            raise TicketConsumed()
        if state is tk.TicketState.AUTHENTICATED:
            raise TicketStateInvalid("ticket already authenticated")
        sp = await self._sp(t.spid)
        if (t.hints.origin and origin != t.hints.origin) or not self._page_may_use_keys(sp, origin):
            raise PermissionDenied(
                f"pages at {_truncate(origin, 100) or '(no origin)'} may not use security "
                f"keys for {sp.display_name}: register the page's origin for the SP"
            )
        return sp

    async def webauthn_login_options(
        self, ticket: str, *, wait_secret: bytes, origin: str
    ) -> WebAuthnLoginOptions:
        t, _ = await self._waiting_page(ticket, wait_secret, origin)
        assert t.browser_key_hash is not None
        nonce = secrets.token_bytes(NONCE_BYTES)
        now = self.clock()
        await self.state.put_challenge(
            hashlib.sha256(nonce).digest(),
            PURPOSE_WEBAUTHN_LOGIN,
            keep_until_ms=min(now + CHALLENGE_TTL_MS, t.expires_ms),
        )
        message = messages.webauthn_login(
            ticket_hash=t.th, spid=t.spid, browser_key_hash=t.browser_key_hash, nonce=nonce
        )
        return WebAuthnLoginOptions(
            nonce=nonce,
            challenge=webauthn_challenge(message),
            rp_id=self.relying_party.rp_id,
            timeout_ms=max(0, min(WEBAUTHN_TIMEOUT_MS, t.expires_ms - now)),
        )

    @counts_login(AUTHENTICATED)
    async def webauthn_login(
        self,
        ticket: str,
        *,
        wait_secret: bytes,
        origin: str,
        nonce: bytes,
        assertion: Assertion,
        client_key: bool,
    ) -> None:
        """The waiting page's own login: a security key's assertion over the
        ticket, the SP, the page's key and a nonce from `webauthn_login_options`.
        The page derives Kc from the key's PRF output itself; nothing is sealed.
        `client_key`: the page says it got the PRF output. The network cannot
        check that (the output is encrypted to the browser, and platform
        authenticators report no hmac-secret in authenticator data), so the
        client-key factor is the page's word here.

        Idempotent: the same request again (the page retrying on another
        gateway because the first reply was lost) succeeds and changes nothing,
        even after the SP consumed the ticket."""
        t = self._page_ticket(await self._ticket(ticket), wait_secret)
        if (
            not isinstance(assertion.credential_id, bytes)
            or not 1 <= len(assertion.credential_id) <= 1023
        ):
            raise MalformedInput("credential_id must be 1 to 1023 bytes")
        answer = _page_answer_hash(nonce=nonce, assertion=assertion, client_key=client_key)
        # The digest covers the credential id and the signature: it names the token.
        if (
            t.kc_in_browser
            and t.token_id is not None
            and tk.answered_by(t, token_id=t.token_id, answer_hash=answer)
        ):
            log.info("ticket authenticated in the browser (retried) tag=%s", ticket_tag(t.th))
            return
        sp = await self._still_waiting(t, origin)
        assert t.browser_key_hash is not None
        await self._take_challenge(nonce, PURPOSE_WEBAUTHN_LOGIN)
        token = await self.directory.token_for_credential(assertion.credential_id)
        if token is None:
            raise TokenUnknown("this security key's credential is not enrolled with the network")
        if token.revoked_ms is not None:
            raise TokenRevoked()
        checked = self.relying_party.verify(
            credential=token.public_key,
            message=messages.webauthn_login(
                ticket_hash=t.th, spid=t.spid, browser_key_hash=t.browser_key_hash, nonce=nonce
            ),
            assertion=assertion,
            origins=frozenset({origin}),
        )
        await self._advance_sign_count(token, checked)
        proven: set[Factor] = {Factor.PIN}  # UV is required (checked above)
        if client_key:
            proven.add(Factor.CLIENT_KEY)
        t = await self._transition(
            t,
            lambda cur: tk.authenticate_in_browser(
                cur,
                token_id=token.token_id,
                user_id=token.user_id,
                proven=frozenset(proven),
                now_ms=self.clock(),
                answer_hash=answer,
            ),
            event=EventKind.AUTHENTICATED,
        )
        await self._touch_after_login(token.token_id)
        log.info(
            "ticket authenticated in the browser sp=%s tag=%s factors=%s",
            sp.name,
            ticket_tag(t.th),
            format_factors(frozenset(proven)),
        )

    async def webauthn_enrol_options(self, label: str) -> WebAuthnEnrolOptions:
        if not isinstance(label, str) or len(label) > LABEL_MAX or not label.isprintable():
            raise MalformedInput(f"label must be printable and at most {LABEL_MAX} characters")
        challenge, _ = await self.get_challenge(PURPOSE_ENROL)
        message = messages.enrol(
            challenge=challenge,
            kind=KIND_FIDO2,
            algorithm=Algorithm.WEBAUTHN_ES256,
            public_key=b"",
            label=label,
        )
        return WebAuthnEnrolOptions(
            challenge=challenge,
            webauthn_challenge=webauthn_challenge(message),
            rp_id=self.relying_party.rp_id,
            rp_name=self.relying_party.name,
            user_id=secrets.token_bytes(16),
            timeout_ms=WEBAUTHN_TIMEOUT_MS,
        )

    async def webauthn_enrol(
        self,
        *,
        challenge: bytes,
        label: str,
        client_data_json: bytes,
        attestation_object: bytes,
        origin: str,
    ) -> bytes:
        """A page on the network's own site enrolled a security key: a new account."""
        if not self.relying_party.on_rp_id(origin):
            raise PermissionDenied(
                f"security keys are enrolled on the network's own pages, not at "
                f"{_truncate(origin, 100) or '(no origin)'}"
            )
        token_id, _ = await self.enrol(
            challenge=challenge,
            kind=KIND_FIDO2,
            algorithm=Algorithm.WEBAUTHN_ES256,
            public_key=b"",
            label=label,
            signature=b"",
            existing=None,
            registration=(client_data_json, attestation_object),
            webauthn_origin=origin,
        )
        return token_id

    # --- browser gateway ------------------------------------------------------

    async def browser_hello(
        self,
        ticket: str,
        *,
        browser_key: bytes,
        wait_secret: bytes,
        hints: BrowserHints,
        pq_key: bytes | None = None,
    ) -> Ticket:
        """A browser starts (or resumes) waiting on a ticket, offering its
        X25519 key and, optionally, an X-Wing key (docs/protocol.md §7.1)."""
        if len(browser_key) != BROWSER_KEY_BYTES or len(wait_secret) != WAIT_SECRET_BYTES:
            raise MalformedInput("browser key and wait secret must be 32 bytes each")
        if pq_key is not None:
            xwing_public_key(pq_key)  # MalformedInput unless a valid X-Wing key
        t = await self._ticket(ticket)
        sp = await self._sp(t.spid)
        # Browsers always send Origin, so a page elsewhere cannot wait on this SP's
        # tickets. Non-browser clients (terminals) send none; the phone shows that.
        if sp.origins and hints.origin and hints.origin not in sp.origins:
            raise PermissionDenied(
                f"pages at {_truncate(hints.origin, 100)} may not log in "
                f"to {sp.display_name}: the origin is not registered for it"
            )
        clean = BrowserHints(
            ip=_truncate(hints.ip, 64),
            user_agent=_truncate(hints.user_agent, 256),
            origin=_truncate(hints.origin, 256),
        )
        offer = BrowserOffer(
            x25519_key=browser_key, pq_key_hash=None if pq_key is None else pq_key_hash(pq_key)
        )
        bkh = offer.digest()
        wsh = hashlib.sha256(wait_secret).digest()
        return await self._transition(
            t,
            lambda cur: tk.attach_browser(
                cur,
                browser_key_hash=bkh,
                wait_secret_hash=wsh,
                hints=clean,
                now_ms=self.clock(),
                browser_pq_key=pq_key,
            ),
        )

    async def peek_sealed_kc(self, th: bytes) -> SealedKey | None:
        """The sealed Kc waiting in the ticket's mailbox, if any."""
        raw = await self.state.get_mail(th)
        if raw is None:
            return None
        return SealedKey.from_bytes(raw)

    async def ticket_and_sealed_kc(self, th: bytes) -> tuple[Ticket | None, SealedKey | None]:
        """The ticket and the sealed Kc in its mailbox, in one read."""
        t, raw = await self.state.get_ticket_and_mail(th)
        return t, None if raw is None else SealedKey.from_bytes(raw)

    async def ack_sealed_kc(self, th: bytes) -> None:
        """The browser has the sealed Kc: delete it."""
        await self.state.take_mail(th)
