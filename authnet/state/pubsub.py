"""Ticket events over Redis Pub/Sub: one connection per node, one dispatcher.

`EventHub` keeps one Pub/Sub connection for every waiting browser of a node
(10,000 waiters are 10,000 channels on one connection, not 10,000
connections). A reader task routes each message to the local subscribers of
its channel; a writer task sends SUBSCRIBE / UNSUBSCRIBE / PING in the order
they were asked for (an UNSUBSCRIBE must not overtake a later SUBSCRIBE of
the same channel), batched into one write. `subscription` returns only once
Redis has confirmed the SUBSCRIBE, so an event published after that reaches
the subscriber; the last local subscriber of a channel to leave unsubscribes.

Pub/Sub is at-most-once, and a lost connection loses whatever was published
meanwhile. Every current subscription on a lost connection therefore fails:
its `next_event` raises `StateUnavailable` (after the events it already
received), and its caller subscribes again and re-reads state. A connection
counts as lost on any error, and when it stays silent past a PING: the reader
PINGs after `health_check_s` of silence, or after `reply_timeout_s` while it
owes replies (SUBSCRIBE confirmations), and gives up when `reply_timeout_s`
more passes without a word. So a silently dead path is noticed too, while a
long backlog of confirmations (thousands of browsers reconnecting at once)
is not mistaken for one: it keeps the connection talking. redis-py's own PubSub would re-subscribe
on reconnect without a word, hiding exactly that gap; that is why the hub
drives its connection itself. The next `subscription` opens a new connection.
(authnet.state.redis says why at-most-once is enough for the gateway.)
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Final

from redis.asyncio.connection import AbstractConnection

from authnet.errors import StateRecordUnreadable, StateUnavailable
from authnet.state import Subscription, TicketEvent
from authnet.state.codec import EVENTS

log = logging.getLogger("authnet.state.pubsub")

# Events a subscriber may have unread before newer ones are dropped (as MemoryState).
QUEUE_LIMIT: Final = 64


class _Queue:
    """One local subscriber: events in arrival order, then the failure, if any."""

    __slots__ = ("_error", "_events", "_waiter")

    def __init__(self) -> None:
        self._events: deque[TicketEvent] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._error: StateUnavailable | None = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def push(self, event: TicketEvent) -> None:
        if len(self._events) < QUEUE_LIMIT and self._error is None:
            self._events.append(event)
            self._wake()

    def fail(self, error: StateUnavailable) -> None:
        if self._error is None:
            self._error = error
            self._wake()

    async def next_event(self) -> TicketEvent:
        while True:
            if self._events:
                return self._events.popleft()
            if self._error is not None:
                # A fresh instance each time: re-raising one would grow its traceback.
                raise type(self._error)(self._error.message)
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None


class _Channel:
    """A channel as this node is subscribed to it."""

    __slots__ = ("link", "name", "queues", "ready")

    def __init__(self, name: bytes, link: _Link) -> None:
        self.name = name
        self.link = link
        self.queues: set[_Queue] = set()
        # True once Redis confirmed the SUBSCRIBE; False if the connection died first.
        self.ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()


class _Link:
    """One live Pub/Sub connection with its reader and writer tasks."""

    def __init__(self, conn: AbstractConnection) -> None:
        self.conn = conn
        self.outbox: deque[tuple[bytes | str, ...]] = deque()
        self.wake = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.alive = True

    def send(self, *args: bytes | str) -> None:
        self.outbox.append(args)
        self.wake.set()


class EventHub:
    """Subscriptions of one node, over one connection at a time.

    `connect` opens a new connection, raising StateUnavailable when it cannot.
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable[AbstractConnection]],
        *,
        reply_timeout_s: float,
        health_check_s: float,
    ) -> None:
        self._connect_to_redis = connect
        self._reply_timeout_s = reply_timeout_s
        self._health_check_s = health_check_s
        self._link: _Link | None = None
        self._connecting: asyncio.Future[_Link] | None = None
        self._channels: dict[bytes, _Channel] = {}
        # Per channel, the futures of SUBSCRIBEs sent and not yet confirmed, in
        # the order sent: Redis confirms in that order.
        self._pending: dict[bytes, deque[asyncio.Future[bool]]] = {}
        self._closed = False

    # --- the connection ----------------------------------------------------------

    async def _connected(self) -> _Link:
        if self._link is not None:
            return self._link
        if self._connecting is None:
            # One attempt at a time however many subscribers arrive while Redis
            # is down; they all hear its outcome.
            self._connecting = asyncio.ensure_future(self._connect())
            # Retrieved even if every waiter was cancelled meanwhile.
            self._connecting.add_done_callback(lambda f: f.cancelled() or f.exception())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _connect(self) -> _Link:
        conn = await self._connect_to_redis()
        if self._closed:
            await conn.disconnect(nowait=True)
            raise StateUnavailable("the state store was closed")
        link = _Link(conn)
        self._link = link
        link.tasks = [
            asyncio.create_task(self._read(link), name="authnet-state-events-reader"),
            asyncio.create_task(self._write(link), name="authnet-state-events-writer"),
        ]
        return link

    async def _write(self, link: _Link) -> None:
        conn = link.conn
        try:
            while link.alive:
                await link.wake.wait()
                link.wake.clear()
                if not link.outbox or not link.alive:
                    continue
                commands = list(link.outbox)
                link.outbox.clear()
                if not conn.is_connected:  # send_* would silently reconnect
                    await self._lost(link, "closed")
                    return
                await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._lost(link, type(exc).__name__)

    async def _read(self, link: _Link) -> None:
        conn = link.conn
        awaiting_pong = False
        try:
            # `alive` as well as cancellation ends the loop: a cancel that meets
            # the read's own timeout can come out as that timeout.
            while link.alive:
                # Owing replies (a PONG, SUBSCRIBE confirmations), silence is
                # suspicious after the reply timeout, else after the health check.
                owed = awaiting_pong or bool(self._pending)
                timeout = self._reply_timeout_s if owed else self._health_check_s
                # push_request: with RESP3 (redis-py's default when the server
                # speaks it) messages are pushes, which a plain read hands to a
                # handler instead of returning.
                msg = await conn.read_response(
                    timeout=timeout, disconnect_on_error=False, push_request=True
                )
                if msg is None:  # silence for `timeout`
                    if awaiting_pong:
                        await self._lost(link, "no reply to a PING")
                        return
                    # Ask before giving up: the silence may be this node's busy
                    # event loop (the read timed out with the reply waiting).
                    link.send("PING")
                    awaiting_pong = True
                    continue
                awaiting_pong = False  # any traffic shows the connection alive
                self._dispatch(msg)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._lost(link, type(exc).__name__)

    def _dispatch(self, msg: Any) -> None:
        if not isinstance(msg, list) or not msg:
            return  # a PONG (RESP3, or outside subscribed mode)
        kind = msg[0]
        if kind == b"message":
            channel = self._channels.get(msg[1])
            if channel is None:
                return  # arrived after the last local subscriber left
            try:
                event = EVENTS.decode(msg[2])
            except StateRecordUnreadable as err:
                # A waiter must not sleep through an event it cannot read.
                log.warning("unreadable event on a ticket channel: %s", err.message)
                for q in channel.queues:
                    q.fail(err)
                return
            for q in channel.queues:
                q.push(event)
        elif kind == b"subscribe":
            fifo = self._pending.get(msg[1])
            if fifo:
                fut = fifo.popleft()
                if not fifo:
                    del self._pending[msg[1]]
                if not fut.done():
                    fut.set_result(True)
        # Unsubscribe confirmations and PONGs need nothing.

    async def _lost(self, link: _Link, why: str | None) -> None:
        """The connection is gone: every subscription on it fails, and the next
        subscription opens a new one."""
        if not link.alive:
            return
        link.alive = False
        link.wake.set()
        if self._link is link:
            self._link = None
        if why is not None:
            log.warning("state store events connection lost (%s)", why)
        channels, self._channels = self._channels, {}
        pending, self._pending = self._pending, {}
        error = StateUnavailable(
            "lost the connection to the network's state store while waiting; try again"
        )
        for channel in channels.values():
            for q in channel.queues:
                q.fail(error)
        for fifo in pending.values():
            for fut in fifo:
                if not fut.done():
                    fut.set_result(False)
        current = asyncio.current_task()
        for task in link.tasks:
            if task is not current:
                task.cancel()
        await link.conn.disconnect(nowait=True)

    # --- subscriptions -------------------------------------------------------------

    @asynccontextmanager
    async def subscription(self, name: bytes) -> AsyncIterator[Subscription]:
        q = _Queue()
        channel = await self._join(name, q)
        try:
            yield q
        finally:
            self._leave(channel, q)

    async def _join(self, name: bytes, q: _Queue) -> _Channel:
        if self._closed:
            raise StateUnavailable("the state store was closed")
        channel = self._channels.get(name)
        if channel is None:
            link = await self._connected()
            if self._link is not link:  # lost again before this task resumed
                raise StateUnavailable()
            channel = self._channels.get(name)  # another subscriber may have won
            if channel is None:
                channel = _Channel(name, link)
                self._channels[name] = channel
                self._pending.setdefault(name, deque()).append(channel.ready)
                link.send("SUBSCRIBE", name)
        channel.queues.add(q)
        try:
            await self._confirmed(channel)
            if channel.ready.cancelled() or not channel.ready.result():
                raise StateUnavailable(
                    "lost the connection to the network's state store while subscribing; try again"
                )
        except BaseException:
            self._leave(channel, q)
            raise
        return channel

    async def _confirmed(self, channel: _Channel) -> None:
        """Wait for the SUBSCRIBE's confirmation, however long a backlog of
        replies ahead of it takes (10,000 browsers reconnecting at once): the
        reader resolves it, True on the confirmation, False when it finds the
        connection stalled or lost (see `_read`)."""
        link = channel.link
        while not channel.ready.done() and link.alive:
            # asyncio.wait leaves the shared future alone on timeout or cancel.
            await asyncio.wait({channel.ready}, timeout=self._reply_timeout_s)
        if not channel.ready.done():  # its link was lost without resolving it
            channel.ready.set_result(False)

    def _leave(self, channel: _Channel, q: _Queue) -> None:
        channel.queues.discard(q)
        if channel.queues or self._channels.get(channel.name) is not channel:
            return
        del self._channels[channel.name]
        if not channel.ready.done():
            # Its confirmation may still come; the pending list skips it then.
            channel.ready.cancel()
        if self._link is not None:
            self._link.send("UNSUBSCRIBE", channel.name)

    def subscribed(self) -> int:
        """How many channels this node listens to (tests, metrics)."""
        return len(self._channels)

    async def close(self) -> None:
        """Fail every subscription and close the connection."""
        self._closed = True
        link = self._link
        if link is not None:
            await self._lost(link, None)
            await asyncio.wait(link.tasks, timeout=self._reply_timeout_s + 1)
