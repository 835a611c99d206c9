"""Plug a VirtualCard into a vsmartcard vpcd reader (the "vpicc" side).

pcscd loads the vpcd driver, which listens on 127.0.0.1:35963 for reader 0
("Virtual PCD 00 00") and 35964 for reader 1. A card connects as a TCP client;
every message either way is a 2-byte big-endian length and a payload. From
the reader, a 1-byte payload is a control message (0 power off, 1 power on,
2 reset: no answer; 4 get ATR: answer with the ATR); a longer one is a
command APDU, answered with the response APDU. The driver polls the card
about every 400 ms with "get ATR"; a closed connection is a removed card.

`VpcdLink(card).insert()` connects and serves in a background thread;
`remove()` closes the connection (pcscd sees the card leave at its next
poll); `insert()` again reconnects. `remove_during(predicate)` makes the card
vanish in the middle of the next matching command instead of answering it,
to test how a host copes with a card pulled mid-operation.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from .card import VirtualCard

__all__ = ["VPCD_HOST", "VPCD_PORT", "VpcdError", "VpcdLink", "vpcd_port"]

log = logging.getLogger(__name__)

VPCD_HOST = "127.0.0.1"
VPCD_PORT = 35963  # reader 0; reader n listens on VPCD_PORT + n

CTRL_POWER_OFF = 0
CTRL_POWER_ON = 1
CTRL_RESET = 2
CTRL_ATR = 4


def vpcd_port(reader_index: int) -> int:
    """The TCP port of vpcd reader `reader_index` (Debian's vpcd has readers 0 and 1)."""
    if reader_index < 0:
        raise ValueError("reader index must be non-negative")
    return VPCD_PORT + reader_index


class VpcdError(RuntimeError):
    """The vpcd reader cannot be reached."""


# vpcd writes each command as two segments (2-byte length, then the APDU) with
# Nagle's algorithm on: the second waits for the ACK of the first, which Linux
# would delay ~40 ms since the card has nothing to send yet. Acknowledging at
# once (set before every read: the kernel drops the flag) removes the stall,
# taking an APDU round trip from ~44 ms to ~0.2 ms (bench/tokens.py).
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        if _QUICKACK is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


class VpcdLink:
    """A VirtualCard in a vpcd reader slot."""

    def __init__(
        self,
        card: VirtualCard,
        *,
        port: int = VPCD_PORT,
        host: str = VPCD_HOST,
        connect_timeout: float = 5.0,
    ) -> None:
        self.card = card
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._yank: Callable[[bytes], bool] | None = None
        self.dropped = threading.Event()
        """Set when the reader side closed the connection (pcscd went away), or
        when remove_during() pulled the card."""

    # --- lifecycle -------------------------------------------------------------------

    @property
    def inserted(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def insert(self) -> None:
        """Connect to the reader: the card is in. Raises VpcdError if vpcd is not there."""
        with self._lock:
            if self.inserted:
                raise RuntimeError("the card is already inserted")
            self._join()
            try:
                sock = socket.create_connection((self.host, self.port), self.connect_timeout)
            except OSError as e:
                raise VpcdError(
                    f"cannot reach the vpcd reader at {self.host}:{self.port} ({e}); pcscd "
                    "must be running with the vsmartcard-vpcd driver "
                    "(simulators.smartcard.pcsc.Pcscd.ensure() starts it)"
                ) from None
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.dropped.clear()
            self.card.reset()
            self._sock = sock
            self._thread = threading.Thread(
                target=self._serve, args=(sock,), name=f"vpcd-card-{self.port}", daemon=True
            )
            self._thread.start()

    def remove(self) -> None:
        """Close the connection: the card is out (and loses power)."""
        with self._lock:
            sock, self._sock = self._sock, None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._join()
            self._yank = None
            self.card.reset()

    close = remove

    def remove_during(self, predicate: Callable[[bytes], bool]) -> None:
        """Pull the card when the next command APDU matching `predicate` arrives,
        without answering it (one shot)."""
        self._yank = predicate

    def _join(self) -> None:
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
            if thread.is_alive():  # pragma: no cover - the socket is shut down
                raise RuntimeError("the vpcd card thread did not stop")
        self._thread = None

    def __enter__(self) -> VpcdLink:
        self.insert()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

    # --- the card side of the protocol ---------------------------------------------------

    def _send(self, sock: socket.socket, payload: bytes) -> None:
        sock.sendall(len(payload).to_bytes(2, "big") + payload)

    def _serve(self, sock: socket.socket) -> None:
        try:
            while True:
                header = _recv_exact(sock, 2)
                if header is None:
                    break
                size = int.from_bytes(header, "big")
                payload = _recv_exact(sock, size)
                if payload is None:
                    break
                if size == 1:
                    control = payload[0]
                    if control == CTRL_ATR:
                        self._send(sock, self.card.atr)
                    elif control in (CTRL_POWER_OFF, CTRL_POWER_ON, CTRL_RESET):
                        self.card.reset()
                    else:
                        log.warning("vpcd: unknown control message %d", control)
                    continue
                if size == 0:
                    continue
                yank = self._yank
                if yank is not None and yank(payload):
                    self._yank = None
                    log.info("vpcd: card pulled during %s", payload[:4].hex())
                    break
                self._send(sock, self.card.process(payload))
        except OSError:
            pass  # remove() shut the socket down, or the reader went away
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            if self._sock is sock:  # not closed through remove(): the link dropped
                self.dropped.set()
            self.card.reset()
