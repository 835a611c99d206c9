"""What the gateway takes from a client before it has done anything useful:
connections, time to send request headers, and how deeply nested a JSON
message may be.

aiohttp's server bounds header *sizes* but not the time to send them: a client
could open connections, send half a request line each and hold a file
descriptor per connection for as long as it liked, until the process had none
left and the gRPC ports could not accept either. `ConnectionGate` sits
between the listening socket and aiohttp's protocol:

- a connection whose first request headers are not complete within
  `header_timeout_s` of connecting is answered 408 and closed (later requests
  on a keep-alive connection are bounded by aiohttp's `keepalive_timeout`,
  which it arms after each response and which closes a connection still
  waiting for a complete request; `idle_timeout_s` sets it);
- at most `per_address` connections are open per client address (an IPv6
  address counts by its /64; trusted proxies are exempt, since every browser
  behind one shares its address), and at most `total` in all; a connection over
  either limit is answered 429 / 503 and closed before aiohttp sees it
  (after up to REFUSAL_LINGER_S, so the client reads the answer).
  `total` defaults to the process's file-descriptor limit less a reserve, so a
  flooded gateway leaves descriptors for the gRPC ports and the databases.

`parse_json` bounds nesting before the decoder sees the text: Python's json
module recurses once per level and a few thousand levels (a 10 KB body) raise
RecursionError instead of ValueError.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import resource
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web

from authnet.config import Config
from authnet.errors import MalformedInput
from authnet.ratelimit import address_key

log = logging.getLogger("authnet.gateway")

MAX_JSON_DEPTH = 32
# Descriptors the gateway leaves for everything else in the process (gRPC
# connections, the directory's and the state store's pools, log files).
FD_RESERVE_MIN = 256
# A refused connection is answered, then kept (its input discarded) until the
# client closes or this many seconds pass: closing a socket with unread input
# sends a reset, which the client would see instead of the answer. At most
# MAX_REFUSING such connections linger; past that a refusal closes at once.
REFUSAL_LINGER_S = 1.0
MAX_REFUSING = 256

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def parse_json(text: str | bytes, *, what: str) -> Any:
    """`text` decoded as JSON, or MalformedInput saying what was wrong with
    `what` (e.g. "the body", "hello"): not UTF-8, not JSON, or nested deeper
    than MAX_JSON_DEPTH."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedInput(f"{what} is not UTF-8 JSON") from None
    check_json_depth(text, what=what)
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise MalformedInput(f"{what} is not JSON") from None


def check_json_depth(text: str, *, what: str, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse JSON text nested deeper than `limit` arrays/objects. A text with
    no more than `limit` opening brackets cannot be, so ordinary messages cost
    two counts; others are scanned with strings blanked out (brackets inside
    strings do not nest)."""
    if text.count("[") + text.count("{") <= limit:
        return
    depth = 0
    for m in _BRACKET.finditer(_STRING.sub('""', text)):
        if m.group() in "[{":
            depth += 1
            if depth > limit:
                raise MalformedInput(
                    f"{what}: JSON nested too deeply (at most {limit} levels of arrays and objects)"
                )
        else:
            depth -= 1


def default_total_connections() -> int:
    """The process's open-file limit less a reserve (an eighth, at least
    FD_RESERVE_MIN) for everything that is not a gateway connection."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        soft = 65_536
    return max(16, soft - max(FD_RESERVE_MIN, soft // 8))


@dataclass(frozen=True, kw_only=True)
class ConnectionLimits:
    header_timeout_s: float = 10.0
    idle_timeout_s: float = 30.0
    per_address: int = 64
    # 0: default_total_connections().
    total: int = 0
    # Addresses not limited per address (the trusted reverse proxies).
    exempt: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, cfg: Config) -> ConnectionLimits:
        return cls(
            header_timeout_s=cfg.gateway_header_timeout_s,
            idle_timeout_s=cfg.gateway_idle_timeout_s,
            per_address=cfg.gateway_max_connections_per_address,
            total=cfg.gateway_max_connections,
            exempt=cfg.trusted_proxies,
        )

    def resolved_total(self) -> int:
        return self.total if self.total > 0 else default_total_connections()


def _response(status: int, reason: str, text: str, *, retry_after: int | None = None) -> bytes:
    body = (text + "\n").encode()
    head = [
        f"HTTP/1.1 {status} {reason}",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    if retry_after is not None:
        head.append(f"Retry-After: {retry_after}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class ConnectionGate:
    """Counts the gateway's connections and admits or refuses each one; see
    the module docstring. One per listening gateway."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.total_limit = limits.resolved_total()
        self._exempt = frozenset(address_key(a) for a in limits.exempt)
        self._by_address: dict[str, int] = {}
        self.open = 0
        # Connections refused for each reason, and closed for slow headers.
        self.refused_per_address = 0
        self.refused_total = 0
        self.header_timeouts = 0
        self.refusing = 0
        self._warned_at = -1e9

    def connections_from(self, host: str) -> int:
        return self._by_address.get(address_key(host), 0)

    def wrap(
        self, protocol_factory: Callable[[], asyncio.Protocol]
    ) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for `loop.create_server` around aiohttp's."""
        return lambda: _GatedConnection(self, protocol_factory)

    def _admit(self, key: str) -> bytes | None:
        """None when a connection from `key` may open (and count it), else the
        answer to send before closing it."""
        limits = self.limits
        if self.open >= self.total_limit:
            self.refused_total += 1
            self._warn(f"gateway full: {self.open} connections open (limit {self.total_limit})")
            return _response(
                503, "Service Unavailable", "the gateway is full: retry shortly", retry_after=1
            )
        if key not in self._exempt and self._by_address.get(key, 0) >= limits.per_address:
            self.refused_per_address += 1
            log.debug(
                "gateway connection refused: %d already open from one address", limits.per_address
            )
            return _response(
                429,
                "Too Many Requests",
                f"too many connections from your address (at most {limits.per_address})",
                retry_after=5,
            )
        self.open += 1
        self._by_address[key] = self._by_address.get(key, 0) + 1
        return None

    def _release(self, key: str) -> None:
        self.open -= 1
        left = self._by_address.get(key, 0) - 1
        if left > 0:
            self._by_address[key] = left
        else:
            self._by_address.pop(key, None)

    def _warn(self, message: str) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._warned_at >= 60.0:
            self._warned_at = now
            log.warning("%s; refusing connections", message)


class _GatedConnection(asyncio.Protocol):
    """One accepted connection: admitted (then aiohttp's protocol behind it),
    or answered and closed at once. Forwards every protocol event to aiohttp's
    protocol unchanged; it only watches the first request's header bytes."""

    __slots__ = (
        "_deadline",
        "_factory",
        "_gate",
        "_inner",
        "_key",
        "_refusing",
        "_tail",
        "_transport",
    )

    def __init__(self, gate: ConnectionGate, factory: Callable[[], asyncio.Protocol]) -> None:
        self._gate = gate
        self._factory = factory
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._key = ""
        self._deadline: asyncio.TimerHandle | None = None
        self._tail = b""
        self._refusing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) and peer else str(peer or "")
        key = address_key(host)
        refusal = self._gate._admit(key)
        if refusal is not None:
            self._refuse(transport, refusal)
            return
        self._key = key
        self._transport = transport
        self._deadline = asyncio.get_running_loop().call_later(
            self._gate.limits.header_timeout_s, self._headers_late
        )
        self._inner = self._factory()
        self._inner.connection_made(transport)

    def _refuse(self, transport: asyncio.Transport, answer: bytes) -> None:
        transport.write(answer)
        gate = self._gate
        if gate.refusing >= MAX_REFUSING or not transport.can_write_eof():
            transport.close()
            return
        gate.refusing += 1
        self._refusing = True
        transport.write_eof()
        self._deadline = asyncio.get_running_loop().call_later(REFUSAL_LINGER_S, transport.abort)

    def data_received(self, data: bytes) -> None:
        if self._inner is None:
            return  # refused: discard
        if self._deadline is not None:
            seen = self._tail + data
            # The blank line that ends the headers (CRLF, or bare LF if a
            # lenient client sends that).
            if b"\n\r\n" in seen or b"\n\n" in seen:
                self._deadline.cancel()
                self._deadline = None
                self._tail = b""
            else:
                self._tail = seen[-2:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._refusing:
            self._refusing = False
            self._gate.refusing -= 1
        inner, self._inner = self._inner, None
        if inner is None:
            return
        self._gate._release(self._key)
        self._transport = None
        inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def _headers_late(self) -> None:
        self._deadline = None
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        self._gate.header_timeouts += 1
        timeout = self._gate.limits.header_timeout_s
        log.debug("gateway connection closed: no complete request headers within %gs", timeout)
        transport.write(
            _response(408, "Request Timeout", f"send the request headers within {timeout:g} s")
        )
        if transport.get_write_buffer_size():
            transport.abort()
        else:
            transport.close()


class GatewaySite(web.SockSite):
    """aiohttp's SockSite with every accepted connection passed through a
    ConnectionGate first. The runner stops it as it stops any site."""

    def __init__(self, runner: web.BaseRunner, sock: socket.socket, gate: ConnectionGate) -> None:
        super().__init__(runner, sock)
        self.gate = gate

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            self.gate.wrap(server), sock=self._sock, backlog=self._backlog
        )
