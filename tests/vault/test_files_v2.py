"""File body format 2 (docs/vault.md 8.2): its vectors, the format rule the
server records a file by, tampering refused by name, format 1 untouched, and
the CLI's transfer pipeline holding a few chunks rather than the file."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import tracemalloc
from typing import Any

import pytest

from tests.vault import vault_vectors
from tests.vectorfiles import load
from vault_api import crypto as vc
from vault_api.client import transfers
from vault_api.crypto import aead, labels

V = load("vault-files-v2.json")
V1_VECTORS = load("vault-v1.json")
V2 = vc.V2
FID = bytes(range(16))


def bb(x: str) -> bytes:
    return bytes.fromhex(x)


def test_the_label_is_format_2s_own() -> None:
    assert V["labels"]["file_chunk"] == labels.FILE_CHUNK_V2.decode() == V2.label.decode()
    assert V2.label != vc.V1.label
    assert V["format"] == {"version": 2, "chunk_bytes": V2.chunk_bytes}


@pytest.mark.parametrize(
    "case", V["formats"], ids=lambda c: f"{c['size']}@{c['asked_chunk_bytes']}"
)
def test_the_format_follows_from_size_and_body_size(case: dict[str, Any]) -> None:
    fmt = vc.format_for(case["size"], case["asked_chunk_bytes"])
    assert fmt.version == case["version"]
    assert vc.ciphertext_size(case["size"], fmt) == case["body_size"]
    assert vc.format_of(case["size"], case["body_size"]) is fmt


def test_no_format_has_other_chunk_sizes_or_body_sizes() -> None:
    with pytest.raises(ValueError, match="no file format"):
        vc.format_for(10, 4096)
    with pytest.raises(ValueError, match="no file format"):
        vc.format_of(2 * V2.chunk_bytes, 2 * V2.chunk_bytes + 29)


def _boxes(v: dict[str, Any]) -> list[bytes]:
    data = vault_vectors.file_plaintext(v["size"])
    boxes = []
    for c in v["chunks"]:
        piece = data[c["index"] * V2.chunk_bytes :][: c["plaintext_size"]]
        aad = vc.chunk_aad(file_id=bb(v["file_id"]), index=c["index"], last=c["last"], fmt=V2)
        assert aad.hex() == c["aad"]
        box = aead.seal_with_nonce(bb(v["file_key"]), bb(c["nonce"]), piece, aad)
        assert len(box) == c["box_size"]
        assert hashlib.sha256(box).hexdigest() == c["box_sha256"]
        if c["box"] is not None:
            assert box.hex() == c["box"]
        boxes.append(box)
    return boxes


@pytest.mark.parametrize("v", V["file"], ids=lambda v: str(v["size"]))
def test_vector_opens_and_round_trips(v: dict[str, Any]) -> None:
    key, fid = bb(v["file_key"]), bb(v["file_id"])
    boxes = _boxes(v)
    body = b"".join(boxes)
    assert len(body) == v["body_size"] == vc.ciphertext_size(v["size"], V2)
    assert vc.plaintext_size(len(body), V2) == v["size"]
    pieces = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    plain = b"".join(vc.decrypt_file(key, fid, pieces, V2))
    assert hashlib.sha256(plain).hexdigest() == v["plaintext_sha256"]
    # Sealed again with fresh nonces, by the streaming encryptor and by index.
    data = vault_vectors.file_plaintext(v["size"])
    again = list(vc.encrypt_file(key, fid, [data[:1000], data[1000:]], V2))
    assert [len(b) for b in again] == [len(b) for b in boxes]
    assert b"".join(vc.decrypt_file(key, fid, again, V2)) == data
    sealer = vc.FileSealer(key, fid, v["size"], V2)
    by_index = [
        b"".join(sealer.seal(i, data[i * V2.chunk_bytes :][: sealer.plaintext_bytes(i)]))
        for i in reversed(range(sealer.chunks))
    ][::-1]
    assert b"".join(vc.decrypt_file(key, fid, by_index, V2)) == data


def test_format_1_files_still_open_and_do_not_open_as_format_2() -> None:
    v = next(f for f in V1_VECTORS["file"] if f["size"] == vc.V1.chunk_bytes + 1)
    data = vault_vectors.file_plaintext(v["size"])
    key, fid = bb(v["file_key"]), bb(v["file_id"])
    boxes = []
    for c in v["chunks"]:
        piece = data[c["index"] * vc.V1.chunk_bytes :][: c["plaintext_size"]]
        aad = vc.chunk_aad(file_id=fid, index=c["index"], last=c["last"])
        boxes.append(aead.seal_with_nonce(key, bb(c["nonce"]), piece, aad))
    assert hashlib.sha256(boxes[0]).hexdigest() == v["chunks"][0]["box_sha256"]
    body = b"".join(boxes)
    assert b"".join(vc.decrypt_file(key, fid, [body], vc.V1)) == data
    with pytest.raises(vc.FileChunkInvalid, match="chunk 0"):
        list(vc.decrypt_file(key, fid, [body], V2))
    # A one-chunk file is format 1 whatever its writer asked: nothing to confuse.
    assert vc.format_for(13, V2.chunk_bytes) is vc.V1


def test_tampering_with_a_format_2_body_is_refused_by_name() -> None:
    fk = vc.new_file_key()
    data = os.urandom(2 * V2.chunk_bytes + 10)
    boxes = list(vc.encrypt_file(fk, FID, [data], V2))
    assert len(boxes) == 3

    def opened(body: list[bytes], fid: bytes = FID) -> bytes:
        return b"".join(vc.decrypt_file(fk, fid, body, V2))

    with pytest.raises(vc.FileChunkInvalid, match="chunk 0"):
        opened([boxes[1], boxes[0], boxes[2]])  # reordered
    with pytest.raises(vc.FileTruncated, match="truncated"):
        opened(boxes[:2])  # the last chunk dropped
    full = list(vc.encrypt_file(fk, FID, [data[: 2 * V2.chunk_bytes]], V2))
    with pytest.raises(vc.FileTruncated, match="extended"):
        opened([*full, boxes[2]])  # bytes appended after a full last chunk
    with pytest.raises(vc.FileChunkInvalid, match="another file"):
        opened(boxes, os.urandom(16))  # spliced into another file
    flipped = bytearray(boxes[1])
    flipped[100] ^= 1
    with pytest.raises(vc.FileChunkInvalid, match="chunk 1"):
        opened([boxes[0], bytes(flipped), boxes[2]])
    with pytest.raises(vc.FileChunkInvalid, match="chunk 2"):
        opened([b"".join(boxes)[:-5]])  # cut inside the last chunk
    with pytest.raises(vc.FileTruncated, match="truncated"):
        opened([])
    assert opened(boxes) == data


def test_a_sealer_refuses_a_chunk_of_the_wrong_length() -> None:
    sealer = vc.FileSealer(vc.new_file_key(), FID, V2.chunk_bytes + 5, V2)
    assert sealer.chunks == 2
    with pytest.raises(ValueError, match="chunk 1 holds 5 bytes"):
        sealer.seal(1, b"123456")
    with pytest.raises(ValueError, match="chunks 0 to 1"):
        sealer.seal(2, b"")


class _NullSink(io.RawIOBase):
    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.digest.update(b)
        self.size += len(b)
        return len(b)


class _Source(io.RawIOBase):
    """`size` pseudo-random bytes made as they are read (nothing held)."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.digest = hashlib.sha256()
        self.block = memoryview(hashlib.sha256(b"source").digest() * (V2.chunk_bytes // 32))

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = min(n, self.left, len(self.block))
        out = bytes(self.block[:n])
        self.left -= n
        self.digest.update(out)
        return out


def test_the_cli_pipeline_holds_a_few_chunks_not_the_file() -> None:
    """64 MiB sealed and opened through the CLI's transfer code (sealing in a
    worker thread AHEAD chunks before the one sent, opening as each box is
    complete) with traced allocations far below the file's size: the memory
    bound is a few format-2 chunks, whatever the file's size."""
    size = 64 * 1024 * 1024
    fk = vc.new_file_key()
    source, sink = _Source(size), _NullSink()
    sealer = vc.FileSealer(fk, FID, size, V2)
    opener = transfers.BodyOpener(vc.FileDecryptor(fk, FID, V2), sink)  # type: ignore[arg-type]

    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        for part in transfers.sealed_pieces(sealer, source, name="big"):  # type: ignore[arg-type]
            # What the server sends back: the body in 64 KiB pieces.
            for i in range(0, len(part), 65536):
                opener.feed(part[i : i + 65536])
        written = opener.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written == sink.size == size
    assert sink.digest.digest() == source.digest.digest()
    assert peak - start < (transfers.AHEAD + 5) * V2.chunk_bytes, (
        f"{peak - start} bytes held for a {size}-byte file"
    )


def test_a_short_source_stops_the_upload_with_a_clear_error() -> None:
    from vault_api.client.errors import CliError

    sealer = vc.FileSealer(vc.new_file_key(), FID, 3 * V2.chunk_bytes, V2)
    body = transfers.sealed_pieces(sealer, io.BytesIO(b"x" * V2.chunk_bytes), name="short.bin")
    with pytest.raises(CliError, match=r"short\.bin got shorter"):
        for _ in body:
            pass


def test_a_stopped_transfer_ends_at_its_next_piece() -> None:
    """A cancelled CLI transfer sets `stop`: the sealing thread and the
    receiving side give up at their next chunk or piece."""
    stop = threading.Event()
    sealer = vc.FileSealer(vc.new_file_key(), FID, 8 * V2.chunk_bytes, V2)
    body = transfers.sealed_pieces(sealer, _Source(8 * V2.chunk_bytes), name="f", stop=stop)  # type: ignore[arg-type]
    next(body)
    stop.set()
    with pytest.raises(transfers.Stopped):
        for _ in body:
            pass
    sink: Any = _NullSink()
    opener = transfers.BodyOpener(vc.FileDecryptor(vc.new_file_key(), FID, V2), sink, stop=stop)
    with pytest.raises(transfers.Stopped):
        opener.feed(b"x")
