"""File bodies: a small interface, and its local-disk implementation.

The API streams bodies through `write` and `read` in pieces, so the server
never holds a whole file in memory (at most one BUFFER_BYTES buffer per
transfer). An object store (S3 and the like) can implement the same four
methods: `write` must make a blob appear only once it is complete.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Final, Protocol

import anyio

BUFFER_BYTES: Final = 256 * 1024


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
        total = 0
        buf = bytearray()
        try:
            async with await anyio.open_file(tmp, "wb") as f:
                async for piece in pieces:
                    buf += piece
                    total += len(piece)
                    if len(buf) >= BUFFER_BYTES:
                        await f.write(buf)
                        buf.clear()
                if buf:
                    await f.write(buf)
                await f.flush()
                await anyio.to_thread.run_sync(os.fsync, f.wrapped.fileno())
            await anyio.to_thread.run_sync(self._place, tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return total

    @staticmethod
    def _place(tmp: Path, final: Path) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)

    async def read(self, name: str) -> AsyncIterator[bytes]:
        async with await anyio.open_file(self.path(name), "rb") as f:
            while piece := await f.read(BUFFER_BYTES):
                yield piece

    async def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await anyio.to_thread.run_sync(self.path(name).unlink)

    async def size(self, name: str) -> int | None:
        try:
            return (await anyio.Path(self.path(name)).stat()).st_size
        except FileNotFoundError:
            return None


def blob_name(file_id: bytes) -> str:
    return file_id.hex()
