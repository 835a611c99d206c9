"""Files: a key per file, the body in authenticated chunks, the key wrapped under Ks.

    K_f      = 32 random bytes, one per file
    wrapped  = box(Ks, K_f, transcript("authnet-vault/v1 file key", safe_id, file_id,
                                       u32(generation)))
    chunk i  = box(K_f, P_i, transcript(label, file_id, u64(i), u8(last)))
    body     = chunk 0 || chunk 1 || ... || chunk n-1

A body has a format version, which fixes its chunk size and chunk label:

    version 1: 64 KiB chunks, label "authnet-vault/v1 file chunk"
    version 2:  1 MiB chunks, label "authnet-vault/v2 file chunk"

The plaintext is cut into chunk_bytes pieces; the last piece holds the rest
(0 to chunk_bytes: an empty file is one empty last chunk), so a file of
`size` bytes has n = max(1, ceil(size / chunk_bytes)) chunks and a body of
size + 28 n bytes. The index stops reordering, the last flag stops truncation
and extension, the file id stops splicing chunks of two files, the label stops
reading a chunk as the other version's. The body does not name the safe, so
moving a file to another safe re-wraps only K_f.

The server records no version: a file's version follows from its size and
body size (`format_of`). Files of at most 64 KiB are one chunk in either
version and always written as version 1 (`format_for`), so the two sizes
never coincide; above that, version 2 has fewer chunks, hence a smaller body.

Encryption and decryption stream: neither side holds more than a chunk or two.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from authnet.protocol.encoding import transcript
from vault_api.crypto import aead, labels
from vault_api.crypto.errors import (
    FileChunkInvalid,
    FileKeyInvalid,
    FileTruncated,
    MalformedCiphertext,
)
from vault_api.crypto.ids import check_id, short, u32

FILE_KEY_BYTES: Final = 32
WRAPPED_KEY_BYTES: Final = aead.OVERHEAD + FILE_KEY_BYTES


@dataclass(frozen=True, kw_only=True)
class FileFormat:
    """A body format version: its chunk size and chunk label."""

    version: int
    chunk_bytes: int
    label: bytes

    @property
    def box_bytes(self) -> int:
        """Bytes of every chunk box but the last."""
        return self.chunk_bytes + aead.OVERHEAD


V1: Final = FileFormat(version=1, chunk_bytes=64 * 1024, label=labels.FILE_CHUNK)
V2: Final = FileFormat(version=2, chunk_bytes=1024 * 1024, label=labels.FILE_CHUNK_V2)
FORMATS: Final = (V1, V2)
CURRENT: Final = V2

# Version 1's sizes, under the names older callers use.
CHUNK_BYTES: Final = V1.chunk_bytes
CHUNK_BOX_BYTES: Final = V1.box_bytes


def new_file_key() -> bytes:
    return os.urandom(FILE_KEY_BYTES)


def format_for(size: int, chunk_bytes: int = V1.chunk_bytes) -> FileFormat:
    """The format a new file of `size` bytes is written in when its writer asks
    for `chunk_bytes`: that version's, except that a file of one version-1
    chunk stays version 1. ValueError for a chunk size no version has."""
    for fmt in FORMATS:
        if fmt.chunk_bytes == chunk_bytes:
            return V1 if size <= V1.chunk_bytes else fmt
    sizes = ", ".join(str(f.chunk_bytes) for f in FORMATS)
    raise ValueError(f"no file format has {chunk_bytes}-byte chunks (there are {sizes})")


def format_of(size: int, body_size: int) -> FileFormat:
    """The format of a stored file from its plaintext and body sizes."""
    for fmt in FORMATS:
        if format_for(size, fmt.chunk_bytes) is fmt and ciphertext_size(size, fmt) == body_size:
            return fmt
    raise ValueError(f"no file format encrypts {size} bytes to {body_size}")


def chunk_count(size: int, fmt: FileFormat = V1) -> int:
    if size < 0:
        raise ValueError("a file size is not negative")
    return max(1, -(-size // fmt.chunk_bytes))


def ciphertext_size(size: int, fmt: FileFormat = V1) -> int:
    """Bytes of the encrypted body of a `size`-byte file."""
    return size + aead.OVERHEAD * chunk_count(size, fmt)


def plaintext_size(body_size: int, fmt: FileFormat = V1) -> int:
    """The plaintext size of a body of `body_size` bytes (ValueError if no size fits)."""
    full, rest = divmod(body_size, fmt.box_bytes)
    if rest == 0 and full > 0:
        return full * fmt.chunk_bytes
    if rest < aead.OVERHEAD:
        raise ValueError("no file encrypts to this many bytes")
    return full * fmt.chunk_bytes + rest - aead.OVERHEAD


# --- the file key -----------------------------------------------------------------


def file_key_aad(*, safe_id: bytes, file_id: bytes, generation: int) -> bytes:
    check_id(safe_id, "safe id")
    check_id(file_id, "file id")
    return transcript(labels.FILE_KEY, safe_id, file_id, u32(generation, "key generation"))


def wrap_file_key(
    safe_key: bytes, file_key: bytes, *, safe_id: bytes, file_id: bytes, generation: int
) -> bytes:
    aead.check_key(file_key, "file key")
    aad = file_key_aad(safe_id=safe_id, file_id=file_id, generation=generation)
    return aead.seal(safe_key, file_key, aad)


def unwrap_file_key(
    safe_key: bytes, wrapped: bytes, *, safe_id: bytes, file_id: bytes, generation: int
) -> bytes:
    aad = file_key_aad(safe_id=safe_id, file_id=file_id, generation=generation)
    if len(wrapped) != WRAPPED_KEY_BYTES:
        raise MalformedCiphertext(
            f"a wrapped file key is {WRAPPED_KEY_BYTES} bytes, got {len(wrapped)}"
        )
    try:
        return aead.open_box(safe_key, wrapped, aad, what="wrapped file key")
    except aead.Unopened:
        raise FileKeyInvalid(
            f"the key of file {short(file_id)} in safe {short(safe_id)} (key generation "
            f"{generation}) does not open: it was modified, or wrapped for another file, "
            "safe or key generation"
        ) from None


# --- chunks -----------------------------------------------------------------------


def chunk_aad(*, file_id: bytes, index: int, last: bool, fmt: FileFormat = V1) -> bytes:
    check_id(file_id, "file id")
    if not 0 <= index < 2**64:
        raise ValueError("chunk index must fit in 64 bits")
    return transcript(fmt.label, file_id, index.to_bytes(8, "big"), bytes([int(last)]))


def _check_chunk(size: int, last: bool, fmt: FileFormat) -> None:
    if size > fmt.chunk_bytes or (not last and size != fmt.chunk_bytes):
        raise ValueError("every chunk but the last holds exactly the format's chunk_bytes")


def encrypt_chunk(
    file_key: bytes,
    chunk: bytes,
    *,
    file_id: bytes,
    index: int,
    last: bool,
    fmt: FileFormat = V1,
) -> bytes:
    _check_chunk(len(chunk), last, fmt)
    return aead.seal(file_key, chunk, chunk_aad(file_id=file_id, index=index, last=last, fmt=fmt))


def _refusal(file_id: bytes, index: int, last: bool, *, other_flag_opens: bool) -> Exception:
    if other_flag_opens and last:
        return FileTruncated(
            f"file {short(file_id)} ends after chunk {index}, which is not its last "
            "chunk: the body was truncated"
        )
    if other_flag_opens:
        return FileTruncated(
            f"file {short(file_id)} has bytes after its last chunk ({index}): the body was extended"
        )
    return FileChunkInvalid(
        f"chunk {index} of file {short(file_id)} does not open: it was modified, moved "
        "from another position, or belongs to another file or key"
    )


def decrypt_chunk(
    file_key: bytes,
    box: bytes,
    *,
    file_id: bytes,
    index: int,
    last: bool,
    fmt: FileFormat = V1,
) -> bytes:
    if len(box) < aead.OVERHEAD:
        raise MalformedCiphertext(f"file chunk is {len(box)} bytes, shorter than any ciphertext")
    out = bytearray(len(box) - aead.OVERHEAD)
    _ChunkOpener(aead.Cipher(file_key), file_id, fmt).open(memoryview(box), index, last, out)
    return bytes(out)


class _ChunkOpener:
    def __init__(self, cipher: aead.Cipher, file_id: bytes, fmt: FileFormat) -> None:
        self.cipher, self.file_id, self.fmt = cipher, file_id, fmt

    def aad(self, index: int, last: bool) -> bytes:
        return chunk_aad(file_id=self.file_id, index=index, last=last, fmt=self.fmt)

    def open(self, box: memoryview, index: int, last: bool, out: bytearray) -> None:
        target = memoryview(out)
        if self.cipher.open_into(box, self.aad(index, last), target):
            return
        flipped = self.cipher.open_into(box, self.aad(index, not last), target)
        out[:] = bytes(len(out))
        raise _refusal(self.file_id, index, last, other_flag_opens=flipped)


class FileSealer:
    """The chunk boxes of one file of a known size, sealed by index. Each call
    stands alone, so a sender can seal the next chunks in worker threads
    (AES-GCM releases the GIL) while it sends the earlier ones."""

    def __init__(self, file_key: bytes, file_id: bytes, size: int, fmt: FileFormat = V1) -> None:
        aead.check_key(file_key, "file key")
        check_id(file_id, "file id")
        self._cipher = aead.Cipher(file_key)
        self._file_id = file_id
        self.fmt = fmt
        self.size = size
        self.chunks = chunk_count(size, fmt)

    def plaintext_bytes(self, index: int) -> int:
        """The plaintext length of chunk `index`."""
        if not 0 <= index < self.chunks:
            raise ValueError(f"a {self.size}-byte file has chunks 0 to {self.chunks - 1}")
        return min(self.fmt.chunk_bytes, self.size - index * self.fmt.chunk_bytes)

    def seal(self, index: int, plaintext: bytes | memoryview) -> tuple[bytes, bytes]:
        """Chunk `index` as (nonce, ciphertext || tag): together its box."""
        if len(plaintext) != self.plaintext_bytes(index):
            raise ValueError(f"chunk {index} holds {self.plaintext_bytes(index)} bytes")
        last = index == self.chunks - 1
        aad = chunk_aad(file_id=self._file_id, index=index, last=last, fmt=self.fmt)
        return self._cipher.seal_parts(plaintext, aad)


def encrypt_file(
    file_key: bytes, file_id: bytes, data: Iterable[bytes], fmt: FileFormat = V1
) -> Iterator[bytes]:
    """The encrypted body of the bytes `data` yields (in pieces of any size),
    one chunk box at a time. A full chunk is held back until more bytes show
    whether it is the last."""
    aead.check_key(file_key, "file key")
    check_id(file_id, "file id")
    cipher = aead.Cipher(file_key)
    size = fmt.chunk_bytes
    buf = bytearray(size)
    view = memoryview(buf)
    fill = index = 0

    def box(n: int, last: bool) -> bytes:
        aad = chunk_aad(file_id=file_id, index=index, last=last, fmt=fmt)
        return b"".join(cipher.seal_parts(view[:n], aad))

    try:
        for piece in data:
            src = memoryview(piece).cast("B")
            at = 0
            while at < len(src):
                if fill == size:
                    yield box(size, False)
                    index += 1
                    fill = 0
                n = min(size - fill, len(src) - at)
                view[fill : fill + n] = src[at : at + n]
                fill += n
                at += n
        yield box(fill, True)
    finally:
        buf[:] = bytes(size)


class FileDecryptor:
    """Feed an encrypted body in pieces of any size; get the plaintext back in
    pieces. `finish()` checks the body ended with its last chunk. It holds at
    most one chunk box and the plaintext of the chunks it returns."""

    def __init__(self, file_key: bytes, file_id: bytes, fmt: FileFormat = V1) -> None:
        aead.check_key(file_key, "file key")
        check_id(file_id, "file id")
        self._file_id = file_id
        self.fmt = fmt
        self._opener = _ChunkOpener(aead.Cipher(file_key), file_id, fmt)
        self._box = bytearray(fmt.box_bytes)
        self._view = memoryview(self._box)
        self._fill = 0
        self._index = 0
        self._done = False

    @property
    def chunks(self) -> int:
        """Chunks verified so far."""
        return self._index

    def _open_full(self) -> bytearray:
        out = bytearray(self.fmt.chunk_bytes)
        self._opener.open(self._view, self._index, False, out)
        self._index += 1
        self._fill = 0
        return out

    def feed(self, data: bytes | bytearray | memoryview) -> bytes | bytearray:
        """The plaintext of every chunk `data` completes (b"" if none)."""
        if self._done:
            raise FileTruncated(f"file {short(self._file_id)} has bytes after its last chunk")
        src = memoryview(data).cast("B")
        box_bytes = self.fmt.box_bytes
        out: list[bytearray] = []
        at = 0
        while at < len(src):
            # A full chunk box followed by more bytes cannot be the last one.
            if self._fill == box_bytes:
                out.append(self._open_full())
            n = min(box_bytes - self._fill, len(src) - at)
            self._view[self._fill : self._fill + n] = src[at : at + n]
            self._fill += n
            at += n
        if not out:
            return b""
        return out[0] if len(out) == 1 else bytearray().join(out)

    def finish(self) -> bytes | bytearray:
        if self._done:
            return b""
        if self._fill < aead.OVERHEAD:
            raise FileTruncated(
                f"file {short(self._file_id)} ends inside chunk {self._index}: the body "
                "was truncated"
            )
        out = bytearray(self._fill - aead.OVERHEAD)
        self._opener.open(self._view[: self._fill], self._index, True, out)
        self._box[:] = bytes(len(self._box))
        self._index += 1
        self._done = True
        return out


def decrypt_file(
    file_key: bytes, file_id: bytes, body: Iterable[bytes], fmt: FileFormat = V1
) -> Iterator[bytes | bytearray]:
    """The plaintext of an encrypted body, streamed; raises at the first bad chunk."""
    dec = FileDecryptor(file_key, file_id, fmt)
    for piece in body:
        out = dec.feed(piece)
        if out:
            yield out
    last = dec.finish()
    if last:
        yield last
