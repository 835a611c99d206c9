"""File bodies: a small interface, and its local-disk implementation.

The API streams bodies through `write` and `read` in pieces, so the server
never holds a whole file in memory (per upload: the received pieces of one
WRITE_BYTES batch being written and of the next one arriving; per download,
the BUFFER_BYTES piece being sent and the next one being read). A batch is
written (one writev) in a worker thread while the event loop receives the
next one, so receiving and writing overlap; a download reads its next piece
while the last one is sent. The local store starts each blob's writeback
every WRITEBACK_BYTES while the body still arrives (fdatasync in a worker
thread), so the fsync that makes the blob durable before it is placed waits
only for the tail, not the whole file. An object store (S3 and the like) can
implement the same four methods: `write` must make a blob appear only once it
is complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Final, Protocol

import anyio

# A download is read in pieces of this size, the next one while this one is sent.
BUFFER_BYTES: Final = 1024 * 1024
# Received pieces go to the file (one writev) once this many bytes wait: fewer
# trips to the worker thread, no copy into a buffer.
WRITE_BYTES: Final = 1024 * 1024
WRITEBACK_BYTES: Final = 8 * 1024 * 1024


class BlobStore(Protocol):
    async def write(self, name: str, pieces: AsyncIterable[bytes]) -> int:
        """Store the concatenated pieces under `name` (replacing any blob of that
        name) and return the byte count. Atomic: if `pieces` raises, nothing is
        stored and the error propagates."""
        ...

    def read(self, name: str) -> AsyncIterator[bytes]:
        """The blob's bytes, in pieces of at most BUFFER_BYTES. FileNotFoundError
        if there is none."""
        ...

    async def delete(self, name: str) -> None:
        """Remove the blob; no error if there is none."""
        ...

    async def size(self, name: str) -> int | None: ...


def _check(name: str) -> str:
    if not name or not all(c in "0123456789abcdef" for c in name):
        raise ValueError("blob names are lowercase hex")
    return name


class LocalBlobStore:
    """Blobs as files under `root`/ab/cd/<name>, written to `root`/tmp first
    and renamed into place (atomic on one file system), fsynced before."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "tmp").mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        name = _check(name)
        return self.root / name[:2] / name[2:4] / name

    async def write(self, name: str, pieces: AsyncIterable[bytes]) -> int:
        final = self.path(name)
        tmp = self.root / "tmp" / f"{name}.{secrets.token_hex(8)}"
        total = unsynced = held = 0
        held_pieces: list[bytes] = []
        # At most one batch is being written (and one fdatasync running) while
        # the next batch arrives; each is awaited before the next starts, so
        # the file's bytes stay in order and an error is this write's.
        writing: asyncio.Future[None] | None = None
        syncing: asyncio.Future[None] | None = None
        loop = asyncio.get_running_loop()
        try:
            async with await anyio.open_file(tmp, "wb") as f:
                fd = f.wrapped.fileno()
                async for piece in pieces:
                    held_pieces.append(piece)
                    held += len(piece)
                    total += len(piece)
                    if held < WRITE_BYTES:
                        continue
                    if writing is not None:
                        await writing
                    writing = loop.run_in_executor(None, _write_all, fd, held_pieces)
                    unsynced += held
                    held_pieces, held = [], 0
                    if unsynced >= WRITEBACK_BYTES and (syncing is None or syncing.done()):
                        if syncing is not None:
                            await syncing  # its error, if any, is this write's
                        await writing  # the writeback covers what was written
                        writing = None
                        syncing = loop.run_in_executor(None, os.fdatasync, fd)
                        unsynced = 0
                if writing is not None:
                    await writing
                    writing = None
                await anyio.to_thread.run_sync(_write_all, fd, held_pieces)
                if syncing is not None:
                    await syncing
                    syncing = None
                await anyio.to_thread.run_sync(os.fsync, fd)
            await anyio.to_thread.run_sync(self._place, tmp, final)
        except BaseException:
            for pending in (writing, syncing):
                if pending is not None:
                    with contextlib.suppress(BaseException):
                        await asyncio.shield(pending)
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return total

    @staticmethod
    def _place(tmp: Path, final: Path) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)

    async def read(self, name: str) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        f = await anyio.to_thread.run_sync(_open_unbuffered, self.path(name))
        ahead: asyncio.Future[bytes] | None = None
        try:
            ahead = loop.run_in_executor(None, f.read, BUFFER_BYTES)
            while piece := await ahead:
                ahead = loop.run_in_executor(None, f.read, BUFFER_BYTES)
                yield piece
            ahead = None
        finally:
            if ahead is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(ahead)
            f.close()

    async def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await anyio.to_thread.run_sync(self.path(name).unlink)

    async def size(self, name: str) -> int | None:
        try:
            return (await anyio.Path(self.path(name)).stat()).st_size
        except FileNotFoundError:
            return None


def _open_unbuffered(path: Path) -> io.FileIO:
    return io.FileIO(path, "rb")


def _write_all(fd: int, pieces: list[bytes]) -> None:
    """Write the pieces in order with as few system calls as it takes, without
    joining them into one more buffer."""
    views = [memoryview(p) for p in pieces if p]
    while views:
        n = os.writev(fd, views[:1024])
        while n and views:
            if n >= len(views[0]):
                n -= len(views.pop(0))
            else:
                views[0] = views[0][n:]
                n = 0


def blob_name(file_id: bytes) -> str:
    return file_id.hex()
