"""The embedded, single-node StateStore: dictionaries on the event loop.

Expiry is lazy (every read checks it) plus a periodic sweep that bounds memory.
All methods run on one event loop without awaiting in between, so each is
atomic exactly as the interface requires.
"""

from __future__ import annotations

import asyncio
import heapq
import hmac
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from authnet.state import Subscription, TicketEvent
from authnet.tickets import Ticket


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class _Queue:
    def __init__(self) -> None:
        self._q: asyncio.Queue[TicketEvent] = asyncio.Queue(maxsize=64)

    def push(self, event: TicketEvent) -> None:
        if not self._q.full():
            self._q.put_nowait(event)

    async def next_event(self) -> TicketEvent:
        return await self._q.get()


class MemoryState:
    def __init__(self, *, clock: Callable[[], int] = _now_ms, sweep_every: int = 1024) -> None:
        self._clock = clock
        # key -> (value, keep_until_ms); one dict per kind keeps keys apart.
        self._tickets: dict[bytes, tuple[Ticket, int]] = {}
        self._mail: dict[bytes, tuple[bytes, int]] = {}
        self._challenges: dict[bytes, tuple[int, int]] = {}
        self._locks: dict[str, tuple[str, int]] = {}
        self._subs: dict[bytes, set[_Queue]] = {}
        self._expiry: list[tuple[int, int, Any, Any]] = []
        self._seq = 0
        self._writes = 0
        self._sweep_every = sweep_every

    # --- expiry ---------------------------------------------------------------

    def _track(self, table: dict[Any, Any], key: Any, until_ms: int) -> None:
        self._seq += 1
        heapq.heappush(self._expiry, (until_ms, self._seq, table, key))
        self._writes += 1
        if self._writes % self._sweep_every == 0:
            self.sweep()

    def sweep(self) -> int:
        """Drop everything whose time has passed; returns how many entries went."""
        now = self._clock()
        dropped = 0
        while self._expiry and self._expiry[0][0] <= now:
            _, _, table, key = heapq.heappop(self._expiry)
            entry = table.get(key)
            if entry is not None and entry[1] <= now:
                del table[key]
                dropped += 1
        return dropped

    def _live(self, table: dict[Any, tuple[Any, int]], key: Any) -> Any:
        entry = table.get(key)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del table[key]
            return None
        return entry[0]

    # --- tickets --------------------------------------------------------------

    async def create_ticket(self, ticket: Ticket, *, keep_until_ms: int) -> None:
        if self._live(self._tickets, ticket.th) is not None:
            raise KeyError("ticket exists")
        self._tickets[ticket.th] = (ticket, keep_until_ms)
        self._track(self._tickets, ticket.th, keep_until_ms)

    async def get_ticket(self, th: bytes) -> Ticket | None:
        t: Ticket | None = self._live(self._tickets, th)
        return t

    async def swap_ticket(
        self,
        old: Ticket,
        new: Ticket,
        *,
        keep_until_ms: int,
        mail: bytes | None = None,
        event: TicketEvent | None = None,
    ) -> bool:
        current: Ticket | None = self._live(self._tickets, old.th)
        if current is None or current.version != old.version or new.th != old.th:
            return False
        self._tickets[old.th] = (new, keep_until_ms)
        self._track(self._tickets, old.th, keep_until_ms)
        if mail is not None:
            await self.put_mail(old.th, mail, keep_until_ms=keep_until_ms)
        if event is not None:
            await self.publish(old.th, event)
        return True

    # --- mailbox --------------------------------------------------------------

    async def put_mail(self, th: bytes, sealed: bytes, *, keep_until_ms: int) -> None:
        self._mail[th] = (sealed, keep_until_ms)
        self._track(self._mail, th, keep_until_ms)

    async def get_mail(self, th: bytes) -> bytes | None:
        sealed: bytes | None = self._live(self._mail, th)
        return sealed

    async def get_ticket_and_mail(self, th: bytes) -> tuple[Ticket | None, bytes | None]:
        return await self.get_ticket(th), await self.get_mail(th)

    async def take_mail(self, th: bytes) -> bytes | None:
        sealed: bytes | None = self._live(self._mail, th)
        if sealed is not None:
            del self._mail[th]
        return sealed

    # --- events ---------------------------------------------------------------

    async def publish(self, th: bytes, event: TicketEvent) -> None:
        for q in self._subs.get(th, ()):
            q.push(event)

    @asynccontextmanager
    async def _subscribe(self, th: bytes) -> AsyncIterator[Subscription]:
        q = _Queue()
        self._subs.setdefault(th, set()).add(q)
        try:
            yield q
        finally:
            subs = self._subs.get(th)
            if subs is not None:
                subs.discard(q)
                if not subs:
                    del self._subs[th]

    def subscribe(self, th: bytes) -> Any:
        return self._subscribe(th)

    # --- challenges -----------------------------------------------------------

    async def put_challenge(self, key: bytes, purpose: int, *, keep_until_ms: int) -> None:
        self._challenges[key] = (purpose, keep_until_ms)
        self._track(self._challenges, key, keep_until_ms)

    async def take_challenge(self, key: bytes) -> int | None:
        purpose: int | None = self._live(self._challenges, key)
        if purpose is not None:
            del self._challenges[key]
        return purpose

    # --- locks ----------------------------------------------------------------

    async def acquire_lock(self, key: str, holder: str, *, until_ms: int) -> int | None:
        entry = self._locks.get(key)
        if entry is not None and entry[1] > self._clock():
            return entry[1]
        self._locks[key] = (holder, until_ms)
        self._track(self._locks, key, until_ms)
        return None

    async def release_lock(self, key: str, holder: str) -> bool:
        entry = self._locks.get(key)
        if entry is None or entry[1] <= self._clock() or not hmac.compare_digest(entry[0], holder):
            return False
        del self._locks[key]
        return True

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._subs.clear()

    # --- introspection for tests and the leak scan ----------------------------

    def dump(self) -> list[object]:
        """Every value held, for tests that scan state for secrets."""
        return [
            *(v for v, _ in self._tickets.values()),
            *(v for v, _ in self._mail.values()),
            *self._challenges.keys(),
            *(h for h, _ in self._locks.values()),
        ]
