"""Short-lived shared state: tickets, the sealed-Kc mailbox, browser events,
single-use challenges and advisory locks.

Every network node serving the same users must see the same state, so this is
an interface with one operation per atomic step, each of which maps to one
Redis command or script: compare-and-set by version (WATCH/MULTI or a Lua
check), GETDEL, PUBLISH/SUBSCRIBE, SET NX PX. `MemoryState` is the embedded
single-node implementation, `RedisState` (authnet.state.redis) the shared one
for a cluster; `open_state` picks one from a URL. Both pass the one
conformance suite, tests/state/test_conformance.py.

A store that cannot answer raises `authnet.errors.StateUnavailable`: never a
guess such as None for a ticket it could not read.
"""

from __future__ import annotations

import enum
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Final, Protocol

from authnet.tickets import Ticket


class EventKind(enum.Enum):
    SCANNED = "scanned"
    AUTHENTICATED = "authenticated"
    REJECTED = "rejected"


@dataclass(frozen=True, kw_only=True)
class TicketEvent:
    kind: EventKind
    at_ms: int


class Subscription(Protocol):
    async def next_event(self) -> TicketEvent:
        """Wait for the ticket's next event (cancellable)."""
        ...


class StateStore(Protocol):
    # Tickets: kept until `keep_until_ms` (after expiry, so late callers get
    # "expired" rather than "unknown").
    async def create_ticket(self, ticket: Ticket, *, keep_until_ms: int) -> None: ...

    async def get_ticket(self, th: bytes) -> Ticket | None: ...

    async def swap_ticket(
        self,
        old: Ticket,
        new: Ticket,
        *,
        keep_until_ms: int,
        mail: bytes | None = None,
        event: TicketEvent | None = None,
    ) -> bool:
        """Replace `old` by `new` iff the stored version is still old.version.
        In the same atomic step, and only when the swap happens: leave `mail`
        in the ticket's mailbox (kept as long as the ticket), then publish
        `event` on its channel. So a login step is one round trip, a refused
        or lost swap leaves no mail, and a waiter woken by the event finds the
        new ticket and its mail."""
        ...

    # Mailbox: the sealed Kc waits here until the browser acknowledges it.
    async def put_mail(self, th: bytes, sealed: bytes, *, keep_until_ms: int) -> None: ...

    async def get_mail(self, th: bytes) -> bytes | None: ...

    async def take_mail(self, th: bytes) -> bytes | None:
        """Atomically read and delete."""
        ...

    async def get_ticket_and_mail(self, th: bytes) -> tuple[Ticket | None, bytes | None]:
        """`get_ticket` and `get_mail` in one read: what a browser woken by
        "authenticated" needs."""
        ...

    # Events for waiting browsers.
    async def publish(self, th: bytes, event: TicketEvent) -> None: ...

    def subscribe(self, th: bytes) -> AbstractAsyncContextManager[Subscription]: ...

    # Single-use challenges for token account operations.
    async def put_challenge(self, key: bytes, purpose: int, *, keep_until_ms: int) -> None: ...

    async def take_challenge(self, key: bytes) -> int | None: ...

    # Advisory locks.
    async def acquire_lock(self, key: str, holder: str, *, until_ms: int) -> int | None:
        """Take the lock; None on success, else the current holder's expiry."""
        ...

    async def release_lock(self, key: str, holder: str) -> bool: ...

    async def ping(self) -> bool:
        """True when the store answers, False when it cannot be reached (for
        health checks: unlike every other method, no StateUnavailable)."""
        ...

    async def close(self) -> None: ...


MEMORY_URLS: Final = ("", "memory", "memory://")
REDIS_SCHEMES: Final = ("redis", "rediss", "unix")


def open_state(url: str, *, prefix: str = "authnet:") -> StateStore:
    """The store a URL names: "" / "memory" / "memory://" for the embedded
    single-node MemoryState, `redis://`, `rediss://` (TLS) or `unix://` for
    RedisState with every key under `prefix`. Nothing connects yet."""
    if url in MEMORY_URLS:
        from authnet.state.memory import MemoryState

        return MemoryState()
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme in REDIS_SCHEMES:
        # Imported here: redis-py takes ~0.7 s to import, which a single-node
        # network (and every CLI command) should not pay.
        from authnet.state.redis import RedisState

        return RedisState.from_url(url, prefix=prefix)
    # The URL itself is not repeated: it may carry a password.
    shown = f"scheme {scheme!r}" if scheme else "a URL without a scheme"
    raise ValueError(
        f"unknown state store URL ({shown}): use '' or 'memory://' for the embedded "
        "store, or redis://host:port/db, rediss://host:port/db or unix:///path?db=N for Redis"
    )
