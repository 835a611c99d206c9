"""Files: the encrypted body streams up and down in chunks (the server never
holds a whole file), the size limit is a 413, a body of the wrong length is
refused and nothing is kept, and roles apply."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.vault.conftest import MAX_FILE_BYTES, VaultServer
from tests.vault.driver import VaultClient, dec, enc
from vault_api import blobs
from vault_api import crypto as vc


def pieces(data: bytes, size: int = 50_000) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def download(client: VaultClient, sid: bytes, fid: bytes) -> bytes:
    out = bytearray()
    async for piece in client.download(sid, fid):
        out += piece
    return bytes(out)


def blob_files(vault: VaultServer) -> list[Path]:
    return [p for p in vault.settings.blob_path.rglob("*") if p.is_file()]


async def test_upload_and_download_stream_and_match(vault: VaultServer, alice: VaultClient) -> None:
    sid = await alice.create_safe("Docs")
    data = os.urandom(3 * vc.CHUNK_BYTES + 12345)
    fid = await alice.upload(sid, pieces(data), len(data))
    meta = await alice.json("GET", f"/api/safes/{enc(sid)}/files/{enc(fid)}")
    assert meta["state"] == "complete"
    assert meta["size"] == len(data)
    assert meta["body_size"] == vc.ciphertext_size(len(data))
    assert await download(alice, sid, fid) == data
    # On disk: exactly the ciphertext, nothing of the plaintext.
    [blob] = blob_files(vault)
    assert blob.stat().st_size == meta["body_size"]
    assert data[:64] not in blob.read_bytes()


async def test_the_server_never_holds_a_whole_file(vault: VaultServer, alice: VaultClient) -> None:
    """Client and server share this process, so the traced peak covers both:
    a 16 MiB file goes up and down with a few MiB allocated at once."""
    sid = await alice.create_safe("Big")
    size = MAX_FILE_BYTES
    seed = hashlib.sha256(b"big").digest()

    def generate() -> Iterator[bytes]:
        block = seed * (vc.CHUNK_BYTES // 32)
        for i in range(0, size, len(block)):
            yield block[: min(len(block), size - i)]

    tracemalloc.start()
    try:
        fid = await alice.upload(sid, generate(), size)
        _, up_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        digest = hashlib.sha256()
        async for piece in alice.download(sid, fid):
            digest.update(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest.hexdigest() == hashlib.sha256(b"".join(generate())).hexdigest()
    # The server holds two WRITE_BYTES batches of an upload (one being written,
    # the next arriving) and two BUFFER_BYTES pieces of a download (one being
    # sent, the next being read), plus what the transports buffer: a few MiB
    # whatever the file's size (4.4 and 5.3 MB measured for this 16 MiB file).
    bound = 4 * blobs.WRITE_BYTES + 2 * blobs.BUFFER_BYTES
    assert up_peak < bound, f"upload peak {up_peak} bytes for a {size}-byte file"
    assert peak < bound, f"download peak {peak} bytes for a {size}-byte file"
    assert bound < size / 2


async def test_too_large_is_413_and_nothing_is_kept(vault: VaultServer, alice: VaultClient) -> None:
    sid = await alice.create_safe("Docs")
    ks, g = await alice.key(sid)
    fid = vc.new_id()
    wrapped = vc.wrap_file_key(ks, vc.new_file_key(), safe_id=sid, file_id=fid, generation=g)
    body = {"id": enc(fid), "generation": g, "key_wrap": enc(wrapped), "size": MAX_FILE_BYTES + 1}
    r = await alice.call("POST", f"/api/safes/{enc(sid)}/files", json=body, expect=413)
    assert r.json()["error"] == "file_too_large"
    assert r.json()["limit"] == MAX_FILE_BYTES
    assert (await alice.contents(sid))["files"] == []

    # A body over the limit is refused before it is read.
    body["size"] = 10
    await alice.call("POST", f"/api/safes/{enc(sid)}/files", json=body, expect=201)
    huge = b"\x00" * (vc.ciphertext_size(MAX_FILE_BYTES) + 1)
    r = await alice.call(
        "PUT",
        f"/api/safes/{enc(sid)}/files/{enc(fid)}/body",
        content=huge,
        headers={"Content-Type": "application/octet-stream"},
        expect=413,
    )
    assert r.json()["error"] == "too_large"
    meta = await alice.json("GET", f"/api/safes/{enc(sid)}/files/{enc(fid)}")
    assert meta["state"] == "pending"
    assert blob_files(vault) == []


async def test_a_body_of_the_wrong_length_is_refused_and_can_be_retried(
    vault: VaultServer, alice: VaultClient
) -> None:
    sid = await alice.create_safe("Docs")
    ks, g = await alice.key(sid)
    fid, fk = vc.new_id(), vc.new_file_key()
    data = os.urandom(1000)
    wrapped = vc.wrap_file_key(ks, fk, safe_id=sid, file_id=fid, generation=g)
    await alice.json(
        "POST",
        f"/api/safes/{enc(sid)}/files",
        json={"id": enc(fid), "generation": g, "key_wrap": enc(wrapped), "size": len(data)},
        expect=201,
    )
    body = b"".join(vc.encrypt_file(fk, fid, [data]))
    path = f"/api/safes/{enc(sid)}/files/{enc(fid)}/body"
    octet = {"Content-Type": "application/octet-stream"}

    async def streamed(b: bytes) -> Iterator[bytes]:  # type: ignore[misc]
        yield b  # no Content-Length: the server counts

    for wrong in (body[:-1], body + b"x"):
        r = await alice.call("PUT", path, content=wrong, headers=octet, expect=422)
        assert r.json()["error"] == "body_length"
        r = await alice.call("PUT", path, content=streamed(wrong), headers=octet, expect=422)
        assert r.json()["error"] == "body_length"
    assert blob_files(vault) == []
    await alice.call("GET", f"{path}", expect=409)  # not uploaded yet
    await alice.call("PUT", path, content=body, headers=octet)
    assert await download(alice, sid, fid) == data
    r = await alice.call("PUT", path, content=body, headers=octet, expect=409)
    assert r.json()["error"] == "file_state"


async def test_viewers_download_but_do_not_upload_or_delete(
    vault: VaultServer, alice: VaultClient, bob: VaultClient
) -> None:
    sid = await alice.create_safe("Docs")
    data = b"quarterly report " * 1000
    fid = await alice.upload(sid, [data], len(data))
    await alice.share(sid, "bob", "viewer")
    assert await download(bob, sid, fid) == data
    ks, g = await bob.key(sid)
    fid2 = vc.new_id()
    wrapped = vc.wrap_file_key(ks, vc.new_file_key(), safe_id=sid, file_id=fid2, generation=g)
    r = await bob.call(
        "POST",
        f"/api/safes/{enc(sid)}/files",
        json={"id": enc(fid2), "generation": g, "key_wrap": enc(wrapped), "size": 5},
        expect=403,
    )
    assert r.json()["error"] == "role_forbidden"
    await bob.call("DELETE", f"/api/safes/{enc(sid)}/files/{enc(fid)}", expect=403)
    assert [dec(f["id"]) for f in (await alice.contents(sid))["files"]] == [fid]
    await alice.call("DELETE", f"/api/safes/{enc(sid)}/files/{enc(fid)}", expect=204)
    assert blob_files(vault) == []


async def test_a_body_modified_on_disk_is_refused_by_the_client(
    vault: VaultServer, alice: VaultClient
) -> None:
    sid = await alice.create_safe("Docs")
    data = os.urandom(2 * vc.CHUNK_BYTES)
    fid = await alice.upload(sid, [data], len(data))
    [blob] = blob_files(vault)
    raw = bytearray(blob.read_bytes())
    raw[vc.CHUNK_BOX_BYTES + 100] ^= 1  # a byte of the second chunk
    blob.write_bytes(bytes(raw))
    with pytest.raises(vc.FileChunkInvalid, match="chunk 1"):
        await download(alice, sid, fid)
