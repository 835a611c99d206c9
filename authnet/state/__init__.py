"""Short-lived shared state: tickets, the sealed-Kc mailbox, browser events,
single-use challenges and advisory locks.

Every network node serving the same users must see the same state, so this is
an interface with one operation per atomic step, each of which maps to one
Redis command or script: compare-and-set by version (WATCH/MULTI or a Lua
check), GETDEL, PUBLISH/SUBSCRIBE, SET NX PX. `MemoryState` is the embedded
single-node implementation.
"""

from __future__ import annotations

import enum
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

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

    async def swap_ticket(self, old: Ticket, new: Ticket, *, keep_until_ms: int) -> bool:
        """Replace `old` by `new` iff the stored version is still old.version."""
        ...

    # Mailbox: the sealed Kc waits here until the browser acknowledges it.
    async def put_mail(self, th: bytes, sealed: bytes, *, keep_until_ms: int) -> None: ...

    async def get_mail(self, th: bytes) -> bytes | None: ...

    async def take_mail(self, th: bytes) -> bytes | None:
        """Atomically read and delete."""
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

    async def close(self) -> None: ...
