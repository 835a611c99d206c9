"""The shared StateStore on Redis (7.0 or later), for a cluster of stateless nodes.

Every method is one round trip: a plain command where one suffices (SET NX
PXAT, GET, GETDEL, PUBLISH), a Lua script where a read must decide a write
(the ticket's compare-and-set, which also leaves the mail and publishes the
event of the step it records; the lock's release). All commands of a node
share one pipelined connection (`authnet.state.multiplex`). Keys, all under
`prefix`:

    <prefix>t:<th>     ticket: 8-byte version, then the `codec.TICKETS` record
    <prefix>m:<th>     sealed Kc waiting for its browser
    <prefix>c:<key>    single-use challenge -> its purpose (decimal)
    <prefix>l:<key>    advisory lock: 8-byte expiry (ms), SHA-256 of the holder
    <prefix>e:<th>     Pub/Sub channel of the ticket's events

Pub/Sub channels are not scoped by Redis database number, so the prefix, not
the database, is what keeps two networks (or two tests) on one Redis apart.

**Time.** `keep_until_ms` and lock expiries are absolute Unix milliseconds
from the calling node's clock, handed to Redis as PXAT: Redis's clock decides
when a record goes, the same for every node that wrote it. Skew between a
node and Redis only moves that moment by the skew: for tickets that is within
the grace period kept after expiry (whether a ticket is still valid is decided
by the node against the ticket's own `expires_ms`); a lock lives as much
longer or shorter as the clocks differ, so keep nodes and Redis on NTP.

**Failures.** Commands are sent once and never retried by the client: a
command whose reply was lost may have been applied (a swap, a GETDEL), and
repeating it would turn a success into a wrong answer (a lost swap, mail that
looks already taken). So an unreachable Redis, a refused connection or a
command that exceeds `socket_timeout_s` raises `StateUnavailable` (retryable,
gRPC UNAVAILABLE), never a raw redis error and never None for "not found".
A connection idle for `health_check_s` is PINGed before its next command, and
a lost one is re-opened by the next command, so the same RedisState serves
again once Redis is back.

**Events.** PUBLISH on the ticket's channel; subscriptions go through one
shared Pub/Sub connection per RedisState (`authnet.state.pubsub.EventHub`),
and `subscribe` returns only once Redis confirmed the SUBSCRIBE.

Pub/Sub is at-most-once: a message published while the subscriber's
connection is down is gone. That is fine here because events only wake the
waiter, they carry no state: the gateway subscribes first and then reads the
ticket (so nothing published before the subscription matters), re-reads the
ticket after every event, and a browser that reconnects starts over with a
subscribe and a read. What must not happen is a waiter that silently misses
an event and sleeps until its ticket expires: so when the Pub/Sub connection
is lost, every subscription on it fails with `StateUnavailable` (the gateway
reports an error; the browser reconnects, subscribes and reads again), and
the next subscribe opens a new connection.
"""

from __future__ import annotations

import hashlib
import struct
from contextlib import AbstractAsyncContextManager
from typing import Any, Final

from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.exceptions import RedisError

from authnet.errors import StateUnavailable
from authnet.state import Subscription, TicketEvent
from authnet.state.codec import EVENTS, TICKETS
from authnet.state.multiplex import CommandRefused, Multiplexer
from authnet.state.pubsub import EventHub
from authnet.tickets import Ticket

DEFAULT_PREFIX: Final = "authnet:"
DEFAULT_SOCKET_TIMEOUT_S: Final = 1.0
DEFAULT_CONNECT_TIMEOUT_S: Final = 1.0
DEFAULT_HEALTH_CHECK_S: Final = 5.0

_VERSION = struct.Struct(">q")
_UNTIL = struct.Struct(">q")

# KEYS[1] ticket, KEYS[2] its mailbox, KEYS[3] its events channel; ARGV[1] the
# expected 8-byte version; ARGV[2] the new value; ARGV[3] keep until (Unix ms);
# ARGV[4] the sealed Kc to leave in the mailbox, ARGV[5] the event to publish
# (each only when ARGV[6], "m", "e" or "me", names it). One step, so the mail
# exists exactly when the swap that reports it happened, and a waiter woken
# by the event finds both.
_SWAP = """
local cur = redis.call('GET', KEYS[1])
if not cur or string.sub(cur, 1, 8) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
if string.find(ARGV[6], 'm', 1, true) then
  redis.call('SET', KEYS[2], ARGV[4], 'PXAT', ARGV[3])
end
if string.find(ARGV[6], 'e', 1, true) then
  redis.call('PUBLISH', KEYS[3], ARGV[5])
end
return 1
"""

# KEYS[1] lock; ARGV[1] SHA-256 of the caller's holder string.
# Lua compares strings in time that depends on where they first differ, and
# cannot do better. So the lock stores, and this compares, a SHA-256 of the
# holder, never the holder itself: how long the comparison takes tells an
# attacker at most how many leading bytes of *their own guess's digest* match,
# which says nothing about the holder string (SHA-256 is preimage resistant).
_RELEASE = """
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 9) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


class _Translate:
    """Turns every redis or socket failure into `StateUnavailable`, at the one
    place where this store meets Redis (a class, not @contextmanager: this
    runs on every call of the login path)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None or isinstance(exc, StateUnavailable):
            return
        if isinstance(exc, CommandRefused):
            # A refusal (out of memory, read-only replica after a failover, a
            # script error): still nothing this call can answer from.
            raise StateUnavailable(
                f"the network's state store refused the operation ({exc.code}); try again"
            ) from None
        if isinstance(exc, RedisError | OSError):
            raise StateUnavailable() from exc


_translate: Final = _Translate()


def _pxat(until_ms: int) -> int:
    # PXAT must be positive; a time in the past makes Redis drop the key at once,
    # which is what MemoryState does with it too.
    return max(1, until_ms)


class _Script:
    """A Lua script run by EVALSHA, loaded by EVAL when Redis does not know it
    (a restarted or flushed Redis): NOSCRIPT means it did not run, so sending
    it again cannot apply it twice."""

    def __init__(self, source: str) -> None:
        self.source = source.encode()
        self.sha = hashlib.sha1(self.source, usedforsecurity=False).hexdigest()

    async def __call__(self, commands: Multiplexer, keys: list[bytes], args: list[Any]) -> Any:
        try:
            return await commands.call("EVALSHA", self.sha, len(keys), *keys, *args)
        except CommandRefused as refused:
            if refused.code != "NOSCRIPT":
                raise
        return await commands.call("EVAL", self.source, len(keys), *keys, *args)


_SWAP_SCRIPT: Final = _Script(_SWAP)
_RELEASE_SCRIPT: Final = _Script(_RELEASE)


# --- the store ------------------------------------------------------------------------


class RedisState:
    """StateStore on Redis; see the module docstring for keys, time and failures."""

    def __init__(
        self,
        pool: ConnectionPool,
        *,
        prefix: str = DEFAULT_PREFIX,
        socket_timeout_s: float = DEFAULT_SOCKET_TIMEOUT_S,
        health_check_s: float = DEFAULT_HEALTH_CHECK_S,
    ) -> None:
        self.prefix = prefix
        p = prefix.encode()
        self._tickets = p + b"t:"
        self._mail = p + b"m:"
        self._challenges = p + b"c:"
        self._locks = p + b"l:"
        self._events = p + b"e:"
        self._pool = pool

        async def connection() -> AbstractConnection:
            # The pool only describes connections (URL, TLS, AUTH, SELECT,
            # timeouts); each one opened here stays open for the node's lifetime.
            conn: AbstractConnection = pool.connection_class(**pool.connection_kwargs)
            with _translate:
                await conn.connect()  # type: ignore[no-untyped-call]
            return conn

        self._commands = Multiplexer(
            connection, timeout_s=socket_timeout_s, health_check_s=health_check_s
        )
        self._hub = EventHub(
            connection,
            reply_timeout_s=socket_timeout_s,
            health_check_s=health_check_s,
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        socket_timeout_s: float = DEFAULT_SOCKET_TIMEOUT_S,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        health_check_s: float = DEFAULT_HEALTH_CHECK_S,
    ) -> RedisState:
        """`redis://[user:password@]host:port/db`, `rediss://...` (TLS) or
        `unix:///path/to/socket?db=N`. Nothing connects until the first call.

        `socket_timeout_s` bounds every command (from when it is asked for to
        its reply); `health_check_s` is how long a connection may sit idle
        before it is PINGed before use."""
        # TCP keepalive, so the kernel also notices a peer that vanished
        # (a Unix socket has no such option, and redis-py refuses it there).
        tcp = {} if url.lower().startswith("unix:") else {"socket_keepalive": True}
        pool = ConnectionPool.from_url(
            url,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=connect_timeout_s,
            **tcp,
        )
        return cls(
            pool,
            prefix=prefix,
            socket_timeout_s=socket_timeout_s,
            health_check_s=health_check_s,
        )

    # --- tickets --------------------------------------------------------------

    @staticmethod
    def _ticket_value(t: Ticket) -> bytes:
        return _VERSION.pack(t.version) + TICKETS.encode(t)

    async def create_ticket(self, ticket: Ticket, *, keep_until_ms: int) -> None:
        with _translate:
            created = await self._commands.call(
                "SET",
                self._tickets + ticket.th,
                self._ticket_value(ticket),
                "NX",
                "PXAT",
                _pxat(keep_until_ms),
            )
        if created is None:
            raise KeyError("ticket exists")

    async def get_ticket(self, th: bytes) -> Ticket | None:
        with _translate:
            raw = await self._commands.call("GET", self._tickets + th)
        if raw is None:
            return None
        return TICKETS.decode(raw[_VERSION.size :])

    async def swap_ticket(
        self,
        old: Ticket,
        new: Ticket,
        *,
        keep_until_ms: int,
        mail: bytes | None = None,
        event: TicketEvent | None = None,
    ) -> bool:
        if new.th != old.th:
            return False
        th = old.th
        what = ("m" if mail is not None else "") + ("e" if event is not None else "")
        with _translate:
            done = await _SWAP_SCRIPT(
                self._commands,
                [self._tickets + th, self._mail + th, self._events + th],
                [
                    _VERSION.pack(old.version),
                    self._ticket_value(new),
                    _pxat(keep_until_ms),
                    mail or b"",
                    b"" if event is None else EVENTS.encode(event),
                    what,
                ],
            )
        return bool(done)

    # --- mailbox --------------------------------------------------------------

    async def put_mail(self, th: bytes, sealed: bytes, *, keep_until_ms: int) -> None:
        with _translate:
            await self._commands.call("SET", self._mail + th, sealed, "PXAT", _pxat(keep_until_ms))

    async def get_mail(self, th: bytes) -> bytes | None:
        with _translate:
            raw: bytes | None = await self._commands.call("GET", self._mail + th)
        return raw

    async def get_ticket_and_mail(self, th: bytes) -> tuple[Ticket | None, bytes | None]:
        with _translate:
            raw, mail = await self._commands.call("MGET", self._tickets + th, self._mail + th)
        ticket = None if raw is None else TICKETS.decode(raw[_VERSION.size :])
        return ticket, mail

    async def take_mail(self, th: bytes) -> bytes | None:
        with _translate:
            raw: bytes | None = await self._commands.call("GETDEL", self._mail + th)
        return raw

    # --- events ---------------------------------------------------------------

    async def publish(self, th: bytes, event: TicketEvent) -> None:
        with _translate:
            await self._commands.call("PUBLISH", self._events + th, EVENTS.encode(event))

    def subscribe(self, th: bytes) -> AbstractAsyncContextManager[Subscription]:
        return self._hub.subscription(self._events + th)

    def subscribed_tickets(self) -> int:
        """How many tickets this node currently listens to events of."""
        return self._hub.subscribed()

    # --- challenges -----------------------------------------------------------

    async def put_challenge(self, key: bytes, purpose: int, *, keep_until_ms: int) -> None:
        with _translate:
            await self._commands.call(
                "SET", self._challenges + key, purpose, "PXAT", _pxat(keep_until_ms)
            )

    async def take_challenge(self, key: bytes) -> int | None:
        with _translate:
            raw = await self._commands.call("GETDEL", self._challenges + key)
        return None if raw is None else int(raw)

    # --- locks ----------------------------------------------------------------

    async def acquire_lock(self, key: str, holder: str, *, until_ms: int) -> int | None:
        value = _UNTIL.pack(until_ms) + hashlib.sha256(holder.encode()).digest()
        with _translate:
            # SET NX GET (Redis 7): sets and returns None, or returns the holder's record.
            current = await self._commands.call(
                "SET", self._locks + key.encode(), value, "NX", "PXAT", _pxat(until_ms), "GET"
            )
        if current is None:
            return None
        held_until: int = _UNTIL.unpack(current[: _UNTIL.size])[0]
        return held_until

    async def release_lock(self, key: str, holder: str) -> bool:
        with _translate:
            done = await _RELEASE_SCRIPT(
                self._commands,
                [self._locks + key.encode()],
                [hashlib.sha256(holder.encode()).digest()],
            )
        return bool(done)

    # --- health ---------------------------------------------------------------

    async def ping(self) -> bool:
        """True when Redis answers a PING within the socket timeout."""
        try:
            with _translate:
                return bool(await self._commands.call("PING") == b"PONG")
        except StateUnavailable:
            return False

    async def close(self) -> None:
        await self._hub.close()
        await self._commands.close()
        await self._pool.disconnect()
