"""Files: a key per file, the body in authenticated chunks, the key wrapped under Ks.

    K_f      = 32 random bytes, one per file
    wrapped  = box(Ks, K_f, transcript("authnet-vault/v1 file key", safe_id, file_id,
                                       u32(generation)))
    chunk i  = box(K_f, P_i, transcript("authnet-vault/v1 file chunk", file_id, u64(i), u8(last)))
    body     = chunk 0 || chunk 1 || ... || chunk n-1

The plaintext is cut into CHUNK_BYTES (64 KiB) pieces; the last piece holds
the rest (0 to 64 KiB: an empty file is one empty last chunk), so a file of
`size` bytes has n = max(1, ceil(size / 64 KiB)) chunks and a body of
size + 28 n bytes. The index stops reordering, the last flag stops truncation
and extension, the file id stops splicing chunks of two files. The body does
not name the safe, so moving a file to another safe re-wraps only K_f.

Encryption and decryption stream: neither side holds more than a chunk.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
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
CHUNK_BYTES: Final = 64 * 1024
CHUNK_BOX_BYTES: Final = CHUNK_BYTES + aead.OVERHEAD
WRAPPED_KEY_BYTES: Final = aead.OVERHEAD + FILE_KEY_BYTES


def new_file_key() -> bytes:
    return os.urandom(FILE_KEY_BYTES)


def chunk_count(size: int) -> int:
    if size < 0:
        raise ValueError("a file size is not negative")
    return max(1, -(-size // CHUNK_BYTES))


def ciphertext_size(size: int) -> int:
    """Bytes of the encrypted body of a `size`-byte file."""
    return size + aead.OVERHEAD * chunk_count(size)


def plaintext_size(body_size: int) -> int:
    """The plaintext size of a body of `body_size` bytes (ValueError if no size fits)."""
    full, rest = divmod(body_size, CHUNK_BOX_BYTES)
    if rest == 0 and full > 0:
        return full * CHUNK_BYTES
    if rest < aead.OVERHEAD:
        raise ValueError("no file encrypts to this many bytes")
    return full * CHUNK_BYTES + rest - aead.OVERHEAD


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


def chunk_aad(*, file_id: bytes, index: int, last: bool) -> bytes:
    check_id(file_id, "file id")
    if not 0 <= index < 2**64:
        raise ValueError("chunk index must fit in 64 bits")
    return transcript(labels.FILE_CHUNK, file_id, index.to_bytes(8, "big"), bytes([int(last)]))


def encrypt_chunk(
    file_key: bytes, chunk: bytes, *, file_id: bytes, index: int, last: bool
) -> bytes:
    if len(chunk) > CHUNK_BYTES or (not last and len(chunk) != CHUNK_BYTES):
        raise ValueError("every chunk but the last holds exactly CHUNK_BYTES")
    return aead.seal(file_key, chunk, chunk_aad(file_id=file_id, index=index, last=last))


def _open(file_key: bytes, box: bytes, *, file_id: bytes, index: int, last: bool) -> bytes | None:
    try:
        return aead.open_box(
            file_key, box, chunk_aad(file_id=file_id, index=index, last=last), what="file chunk"
        )
    except aead.Unopened:
        return None


def decrypt_chunk(file_key: bytes, box: bytes, *, file_id: bytes, index: int, last: bool) -> bytes:
    plain = _open(file_key, box, file_id=file_id, index=index, last=last)
    if plain is None:
        if _open(file_key, box, file_id=file_id, index=index, last=not last) is not None:
            if last:
                raise FileTruncated(
                    f"file {short(file_id)} ends after chunk {index}, which is not its last "
                    "chunk: the body was truncated"
                )
            raise FileTruncated(
                f"file {short(file_id)} has bytes after its last chunk ({index}): the body "
                "was extended"
            )
        raise FileChunkInvalid(
            f"chunk {index} of file {short(file_id)} does not open: it was modified, moved "
            "from another position, or belongs to another file or key"
        )
    return plain


def encrypt_file(file_key: bytes, file_id: bytes, data: Iterable[bytes]) -> Iterator[bytes]:
    """The encrypted body of the bytes `data` yields (in pieces of any size),
    one chunk box at a time. A full chunk is held back until more bytes show
    whether it is the last."""
    aead.check_key(file_key, "file key")
    check_id(file_id, "file id")
    buf = bytearray()
    index = 0
    for piece in data:
        buf += piece
        while len(buf) > CHUNK_BYTES:
            yield encrypt_chunk(
                file_key, bytes(buf[:CHUNK_BYTES]), file_id=file_id, index=index, last=False
            )
            del buf[:CHUNK_BYTES]
            index += 1
    yield encrypt_chunk(file_key, bytes(buf), file_id=file_id, index=index, last=True)


class FileDecryptor:
    """Feed an encrypted body in pieces of any size; get the plaintext back in
    pieces. `finish()` checks the body ended with its last chunk."""

    def __init__(self, file_key: bytes, file_id: bytes) -> None:
        aead.check_key(file_key, "file key")
        check_id(file_id, "file id")
        self._key = file_key
        self._file_id = file_id
        self._buf = bytearray()
        self._index = 0
        self._done = False

    def feed(self, data: bytes) -> bytes:
        if self._done:
            raise FileTruncated(f"file {short(self._file_id)} has bytes after its last chunk")
        self._buf += data
        out = bytearray()
        # A full chunk box followed by more bytes cannot be the last one.
        while len(self._buf) > CHUNK_BOX_BYTES:
            box = bytes(self._buf[:CHUNK_BOX_BYTES])
            del self._buf[:CHUNK_BOX_BYTES]
            out += decrypt_chunk(
                self._key, box, file_id=self._file_id, index=self._index, last=False
            )
            self._index += 1
        return bytes(out)

    def finish(self) -> bytes:
        if self._done:
            return b""
        if len(self._buf) < aead.OVERHEAD:
            raise FileTruncated(
                f"file {short(self._file_id)} ends inside chunk {self._index}: the body "
                "was truncated"
            )
        plain = decrypt_chunk(
            self._key, bytes(self._buf), file_id=self._file_id, index=self._index, last=True
        )
        self._buf.clear()
        self._done = True
        return plain


def decrypt_file(file_key: bytes, file_id: bytes, body: Iterable[bytes]) -> Iterator[bytes]:
    """The plaintext of an encrypted body, streamed; raises at the first bad chunk."""
    dec = FileDecryptor(file_key, file_id)
    for piece in body:
        out = dec.feed(piece)
        if out:
            yield out
    last = dec.finish()
    if last:
        yield last
