"""File bodies on the wire: encrypt while sending, decrypt while receiving.

Each side keeps one step ahead in a worker thread (AES-GCM releases the GIL),
so the event loop moves bytes over HTTP while the next chunk is read and
sealed, or the last one is opened and written. Neither holds more than a few
chunks of the file: the chunk in flight, the one being sealed or opened, and
the received pieces of the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any, BinaryIO, TypeVar

from vault_api import crypto as vc
from vault_api.client.errors import CliError, Exit

T = TypeVar("T")
Progress = Callable[[int], None]


def _ahead(fn: Callable[[], T]) -> asyncio.Future[T]:
    return asyncio.ensure_future(asyncio.to_thread(fn))


async def _settle(task: asyncio.Future[Any] | None) -> None:
    """Let a step still running in its thread end before the caller goes on
    (and closes the file it reads or writes); its error is the caller's own."""
    if task is not None:
        with contextlib.suppress(BaseException):
            await asyncio.shield(task)


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


async def sealed_body(
    sealer: vc.FileSealer, source: BinaryIO, *, name: str, progress: Progress | None = None
) -> AsyncIterator[bytes]:
    """The body of the `sealer.size` bytes `source` holds, each chunk read and
    sealed in a thread while the one before is sent (as its nonce, then its
    ciphertext: no join)."""

    def chunk(index: int) -> tuple[bytes, bytes]:
        return sealer.seal(index, _read_exactly(source, sealer.plaintext_bytes(index), name))

    task: asyncio.Future[tuple[bytes, bytes]] | None = _ahead(functools.partial(chunk, 0))
    sent = 0
    try:
        for index in range(sealer.chunks):
            assert task is not None
            nonce, sealed = await task
            task = None
            if index + 1 < sealer.chunks:
                task = _ahead(functools.partial(chunk, index + 1))
            yield nonce
            yield sealed
            sent += len(sealed) - vc.TAG_BYTES
            if progress:
                progress(sent)
    finally:
        await _settle(task)


async def open_body(
    decryptor: vc.FileDecryptor,
    body: AsyncIterable[bytes],
    sink: BinaryIO,
    *,
    progress: Progress | None = None,
) -> int:
    """Write the plaintext of `body` to `sink` as each chunk verifies; the
    received pieces of about a chunk box are opened and written in a thread
    while the next ones arrive. Returns the bytes written; raises the
    decryptor's error at the first chunk that does not open (or a short end)."""
    batch_bytes = decryptor.fmt.box_bytes

    def absorb(pieces: list[bytes]) -> int:
        n = 0
        for piece in pieces:
            out = decryptor.feed(piece)
            if out:
                sink.write(out)
                n += len(out)
        return n

    written = 0
    task: asyncio.Future[int] | None = None
    batch: list[bytes] = []
    batched = 0
    try:
        async for piece in body:
            batch.append(piece)
            batched += len(piece)
            if batched < batch_bytes:
                continue
            if task is not None:
                written += await task
                task = None
                if progress:
                    progress(written)
            task = _ahead(functools.partial(absorb, batch))
            batch, batched = [], 0
        if task is not None:
            written += await task
            task = None
        written += absorb(batch)
        last = decryptor.finish()
    finally:
        await _settle(task)
    sink.write(last)
    written += len(last)
    if progress:
        progress(written)
    return written
