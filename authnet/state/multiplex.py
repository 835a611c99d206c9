"""Every Redis command of a node over one pipelined connection.

redis-py's client takes a connection from its pool for each command, sends
the command, awaits the reply under a timeout, parses it through its response
callbacks and puts the connection back: about 150-190 us of the node's CPU
per command, and one write and one read system call each, which a login of
a dozen commands pays a dozen times. `Multiplexer` sends instead every
command on one connection as soon as a coroutine asks for it; the commands
asked for in one turn of the event loop leave in one write, and one reader
task parses (hiredis) whatever the socket has and hands each reply to its
caller: Redis answers the commands of a connection in the order it received
them, so the n-th reply is the n-th caller's. A command costs its caller a
future and a packed string; Redis itself is single-threaded, so one
connection per node loses it no parallelism.

**Failures** are those of `authnet.state.redis` (whose module docstring says
why a command is never resent): any error on the connection, its end, or a
reply that does not come within `timeout_s` of its command ends the
connection, and every command still waiting on it fails with
`StateUnavailable`; the next command opens a new connection (one attempt at
a time, however many callers wait for it). An overdue reply gets one more
look RECHECK_S later, so a stall of the node's own loop (the reply waiting
unread in the socket) does not fail every command on the connection. A
reply that comes with no command waiting for it means the order is lost, and
ends the connection too. Replies
are matched by order whatever their callers do: a caller cancelled while
waiting leaves its reply to be dropped, not given to the next caller. A
connection idle for `health_check_s` is PINGed before it carries a command
again (the always-running reader notices a closed connection at once; the
PING catches a path that died silently).

The connection itself, with the URL's TLS, AUTH and SELECT, is opened by
redis-py (`connect` returns its connected `AbstractConnection`); from then on
this module reads and writes the connection's streams directly.

Pure asyncio over one socket: no protocol logic here, only ordering.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final

import hiredis
from redis.asyncio.connection import AbstractConnection

from authnet.errors import StateUnavailable

log = logging.getLogger("authnet.state.multiplex")

READ_BYTES: Final = 65536
# How much later an overdue command is looked at again (see Multiplexer._check).
RECHECK_S: Final = 0.05


class CommandRefused(Exception):
    """Redis answered a command with an error reply (NOSCRIPT, READONLY, OOM,
    a script error ...). `code` is the reply's first word; the rest of the
    message is not kept, as it can quote a command's arguments."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _code_of(reply: hiredis.ReplyError) -> str:
    text = str(reply)
    code = text.split(" ", 1)[0]
    return code if code.isupper() and code.isalpha() else "ERR"


class _Link:
    """One live connection: what was sent on it and still awaits a reply, in order."""

    __slots__ = (
        "alive",
        "conn",
        "flushing",
        "last_io",
        "outbox",
        "overdue",
        "pending",
        "reader",
        "task",
        "watchdog",
        "writer",
    )

    def __init__(self, conn: AbstractConnection, now: float) -> None:
        # redis-py opened the streams; they are private attributes, checked here
        # once so a redis-py that renamed them fails at connect, loudly.
        reader = getattr(conn, "_reader", None)
        writer = getattr(conn, "_writer", None)
        if not isinstance(reader, asyncio.StreamReader) or not isinstance(
            writer, asyncio.StreamWriter
        ):
            raise RuntimeError("this redis-py does not expose its connection's streams")
        self.conn = conn
        self.reader: asyncio.StreamReader = reader
        self.writer: asyncio.StreamWriter = writer
        # (future, time sent) per command, in the order sent.
        self.pending: deque[tuple[asyncio.Future[Any], float]] = deque()
        self.outbox: list[bytes] = []
        self.flushing: asyncio.Handle | None = None
        self.watchdog: asyncio.TimerHandle | None = None
        # The command found overdue at the last check, given a second look.
        self.overdue: asyncio.Future[Any] | None = None
        self.task: asyncio.Task[None] | None = None
        self.last_io = now
        self.alive = True


class Multiplexer:
    """One node's Redis commands over one connection at a time (see the module
    docstring). `connect` opens and hands over a new connection, raising
    StateUnavailable when it cannot."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[AbstractConnection]],
        *,
        timeout_s: float,
        health_check_s: float,
    ) -> None:
        self._connect_to_redis = connect
        self._timeout_s = timeout_s
        self._health_check_s = health_check_s
        self._link: _Link | None = None
        self._connecting: asyncio.Future[_Link] | None = None
        self._closed = False
        self._closing: set[asyncio.Task[None]] = set()

    # --- commands ----------------------------------------------------------------

    async def call(self, *args: bytes | str | int) -> Any:
        """Send one command and return its reply (bytes, int, None or a list);
        `CommandRefused` for an error reply, `StateUnavailable` when no reply
        can come."""
        link = self._link
        if link is None or not link.alive:
            link = await self._connected()
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not link.pending and now - link.last_io > self._health_check_s:
            link.last_io = now  # one health check, whoever else arrives meanwhile
            pong = self._send(link, loop, now, hiredis.pack_command(("PING",)))
            await pong
            if not link.alive:
                raise StateUnavailable()
        # hiredis's stub types the argument as a 1-tuple; it takes any length.
        packed = hiredis.pack_command(args)  # type: ignore[arg-type]
        reply = await self._send(link, loop, now, packed)
        if isinstance(reply, hiredis.ReplyError):
            raise CommandRefused(_code_of(reply))
        return reply

    def _send(
        self, link: _Link, loop: asyncio.AbstractEventLoop, now: float, packed: bytes
    ) -> asyncio.Future[Any]:
        if not link.alive:
            fut: asyncio.Future[Any] = loop.create_future()
            fut.set_exception(StateUnavailable())
            return fut
        fut = loop.create_future()
        link.pending.append((fut, now))
        link.outbox.append(packed)
        if link.flushing is None:
            # Everything asked for in this turn of the loop leaves in one write.
            link.flushing = loop.call_soon(self._flush, link)
        if link.watchdog is None:
            link.watchdog = loop.call_at(now + self._timeout_s, self._check, link)
        return fut

    def _flush(self, link: _Link) -> None:
        link.flushing = None
        if not link.alive or not link.outbox:
            return
        data = b"".join(link.outbox)
        link.outbox.clear()
        try:
            link.writer.write(data)
        except Exception as exc:
            self._lost(link, type(exc).__name__)

    def _check(self, link: _Link) -> None:
        """The oldest command waits for its reply no longer than the timeout.

        Overdue, it gets one more look a moment later: after a stall of the
        node's own loop, timers run before the loop reads its sockets, so the
        reply may be waiting unread, and giving up then would fail every
        command on the connection for nothing. Only a head that is still the
        same, still unanswered, after the loop has read again, ends it."""
        link.watchdog = None
        if not link.alive or not link.pending:
            link.overdue = None
            return
        loop = asyncio.get_running_loop()
        head, sent = link.pending[0]
        due = sent + self._timeout_s
        now = loop.time()
        if now < due:
            link.overdue = None
            link.watchdog = loop.call_at(due, self._check, link)
        elif link.overdue is not head:
            link.overdue = head
            link.watchdog = loop.call_at(now + RECHECK_S, self._check, link)
        else:
            self._lost(link, f"no reply within {self._timeout_s:g} s")

    async def _read(self, link: _Link) -> None:
        parser = hiredis.Reader()
        reader = link.reader
        pending = link.pending
        loop = asyncio.get_running_loop()
        try:
            while link.alive:
                data = await reader.read(READ_BYTES)
                if not data:
                    self._lost(link, "closed by the server")
                    return
                link.last_io = loop.time()
                parser.feed(data)
                while (reply := parser.gets()) is not False:
                    if not pending:
                        self._lost(link, "a reply nobody asked for")
                        return
                    fut = pending.popleft()[0]
                    if not fut.done():  # else its caller was cancelled
                        fut.set_result(reply)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._lost(link, type(exc).__name__)

    # --- the connection ----------------------------------------------------------

    async def _connected(self) -> _Link:
        if self._closed:
            raise StateUnavailable("the state store was closed")
        if self._connecting is None:
            # One attempt at a time however many callers arrive while Redis is
            # down; they all hear its outcome.
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
        try:
            link = _Link(conn, asyncio.get_running_loop().time())
        except BaseException:
            await conn.disconnect(nowait=True)
            raise
        link.task = asyncio.create_task(self._read(link), name="authnet-state-commands-reader")
        self._link = link
        return link

    def _lost(self, link: _Link, why: str | None) -> None:
        """The connection is gone: every command waiting on it fails, and the
        next command opens a new one."""
        if not link.alive:
            return
        link.alive = False
        if self._link is link:
            self._link = None
        if why is not None:
            log.warning("state store connection lost (%s)", why)
        for handle in (link.flushing, link.watchdog):
            if handle is not None:
                handle.cancel()
        link.outbox.clear()
        message = (
            "the network's state store was closed"
            if why is None
            else "lost the connection to the network's state store; try again"
        )
        while link.pending:
            fut = link.pending.popleft()[0]
            if not fut.done():
                fut.set_exception(StateUnavailable(message))
        if link.task is not None and link.task is not asyncio.current_task():
            link.task.cancel()
        # The socket closes now; redis-py's own bookkeeping follows in a task
        # (this runs in callbacks too, which cannot await).
        link.writer.close()
        closing = asyncio.get_running_loop().create_task(link.conn.disconnect(nowait=True))
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Fail every waiting command and close the connection."""
        self._closed = True
        link = self._link
        if link is not None:
            self._lost(link, None)
            tasks = set(self._closing)
            if link.task is not None:
                tasks.add(link.task)
            await asyncio.wait(tasks, timeout=self._timeout_s + 1)
