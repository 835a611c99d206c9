"""File bodies on the wire: encrypt while sending, decrypt while receiving.

Both directions run off the event loop, in a worker thread that moves the
bytes over HTTP (httpx's blocking client, `VaultApi.upload_body` and
`download_body`). An upload reads and seals the next chunks in a second
thread, up to AHEAD chunks ahead of the one being sent (AES-GCM, file reads
and socket calls release the GIL, so on two cores both run at once); a
download opens and writes each chunk in the receiving thread as soon as its
box is complete. Neither side holds more than a few chunks of the file.

Measured (docs/vault.md 18): httpx's async client costs the CLI about twice
the CPU per downloaded byte of its blocking one in a thread (the async path
goes through the event loop for every 64 KiB piece), and a worker thread per
chunk (`asyncio.to_thread`) costs more than one long-lived worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

from vault_api import crypto as vc
from vault_api.client.errors import CliError, Exit

Progress = Callable[[int], None]

# Chunks sealed ahead of the one being sent: enough to keep both threads busy,
# few enough to bound the memory.
AHEAD = 3


class Stopped(Exception):
    """The transfer was abandoned (its caller was cancelled)."""


def _read_exactly(source: BinaryIO, n: int, name: str) -> bytes:
    piece = source.read(n)
    if len(piece) == n:
        return piece
    parts = [piece]
    got = len(piece)
    while got < n:
        more = source.read(n - got)
        if not more:
            raise CliError(f"{name} got shorter while it was read", Exit.ERROR)
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def sealed_pieces(
    sealer: vc.FileSealer,
    source: BinaryIO,
    *,
    name: str,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> Iterator[bytes]:
    """The body of the `sealer.size` bytes `source` holds, as a blocking
    iterator for the sending thread: each chunk is read and sealed in a worker
    thread up to AHEAD chunks before it is sent, and given as its nonce, then
    its ciphertext (no join: httpx passes a bytes piece on as it is)."""

    def chunk(index: int) -> tuple[bytes, bytes]:
        if stop is not None and stop.is_set():
            raise Stopped()
        return sealer.seal(index, _read_exactly(source, sealer.plaintext_bytes(index), name))

    pending: list[Future[tuple[bytes, bytes]]] = []
    with ThreadPoolExecutor(1, thread_name_prefix="vault-seal") as worker:
        try:
            queued = 0
            sent = 0
            for index in range(sealer.chunks):
                while queued < sealer.chunks and queued <= index + AHEAD:
                    pending.append(worker.submit(chunk, queued))
                    queued += 1
                nonce, sealed = pending.pop(0).result()
                yield nonce
                yield sealed
                sent += len(sealed) - vc.TAG_BYTES
                if progress:
                    progress(sent)
        finally:
            for task in pending:
                task.cancel()


class BodyOpener:
    """The receiving side of a download, called in the receiving thread:
    `feed` the body's pieces as they arrive (any size), `finish` at its end.
    Each chunk is opened (`FileDecryptor`) and its plaintext written to `sink`
    as soon as it verifies, in the same thread: the socket's buffer takes the
    next bytes meanwhile, and a second thread only added GIL hand-overs (a
    quarter more CPU, measured). The decryptor's error is raised at the first
    chunk that does not open (from `feed` or `finish`), or at a short end
    (`finish`)."""

    def __init__(
        self,
        decryptor: vc.FileDecryptor,
        sink: BinaryIO,
        *,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self._decryptor = decryptor
        self._sink = sink
        self._progress = progress
        self._stop = stop
        self.written = 0

    def feed(self, piece: bytes) -> None:
        if self._stop is not None and self._stop.is_set():
            raise Stopped()
        out = self._decryptor.feed(piece)
        if out:
            self._sink.write(out)
            self.written += len(out)
            if self._progress:
                self._progress(self.written)

    def finish(self) -> int:
        """Open the last chunk; the bytes written in all."""
        last = self._decryptor.finish()
        self._sink.write(last)
        self.written += len(last)
        if self._progress:
            self._progress(self.written)
        return self.written
