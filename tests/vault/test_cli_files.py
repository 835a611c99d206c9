"""Files through `vault upload` and `vault download`: encrypted here and
streamed in 64 KiB chunks both ways, progress on stderr, the bytes back
exactly; a tampered body is refused and leaves no file behind."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import pytest_asyncio

from simulators.phone.app import PhoneApp
from tests.vault.clirunner import VaultCli, logged_in
from tests.vault.conftest import VaultServer
from vault_api.client.errors import Exit
from vault_api.crypto import V2, ciphertext_size

# The CLI writes format 2 (docs/vault.md 8.2).
CHUNK_BYTES = V2.chunk_bytes


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'vault.db'}"


def blobs(vault: VaultServer) -> list[Path]:
    root = vault.settings.blob_path
    return [p for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] != "tmp"]


def temporary_files(folder: Path) -> list[Path]:
    return list(folder.glob(".vault-*"))


@pytest_asyncio.fixture
async def cli(vault: VaultServer, alice_phone: PhoneApp, tmp_path: Path) -> VaultCli:
    cli = await logged_in(vault.url, tmp_path, tmp_path / "alice-phone.json", "alice")
    await cli.ok("create-safe", "Home")
    return cli


async def test_upload_and_download_give_the_same_bytes(
    cli: VaultCli, vault: VaultServer, tmp_path: Path
) -> None:
    data = os.urandom(3 * CHUNK_BYTES + 123)  # four chunks, the last short
    src = tmp_path / "scan.pdf"
    src.write_bytes(data)
    up = await cli.run("--json", "upload", "Home", src, "--folder", "Papers")
    assert up.code == 0, up.err
    result = up.json()
    assert result["file"]["size"] == len(data)
    assert result["file"]["type"] == "application/pdf"
    assert result["item"]["path"] == "Papers/scan.pdf"
    assert "uploading scan.pdf: 100%" in up.err
    # The server holds ciphertext of the exact size docs/vault.md 8.2 gives.
    (blob,) = blobs(vault)
    assert blob.stat().st_size == ciphertext_size(len(data), V2)
    assert data[:64] not in blob.read_bytes()

    out = tmp_path / "copy.pdf"
    down = await cli.run("download", "Home", "scan.pdf", "-o", out)
    assert down.code == 0, down.err
    assert "downloading scan.pdf: 100%" in down.err
    assert out.read_bytes() == data
    # To stdout: exactly the bytes.
    piped = await cli.run("download", "Home", "Papers/scan.pdf", "-o", "-", "-q", binary=True)
    assert piped.code == 0, piped.err
    assert hashlib.sha256(piped.raw).digest() == hashlib.sha256(data).digest()
    assert piped.err == ""
    # An existing file is not replaced without --force.
    r = await cli.run("download", "Home", "scan.pdf", "-o", out)
    assert r.code == Exit.USAGE
    assert "exists" in r.err
    out.write_bytes(b"mine")
    assert (await cli.run("download", "Home", "scan.pdf", "-o", out)).code == Exit.USAGE
    assert out.read_bytes() == b"mine"
    await cli.ok("download", "Home", "scan.pdf", "-o", out, "--force")
    assert out.read_bytes() == data


async def test_files_attach_to_an_item_and_go_with_it(
    cli: VaultCli, vault: VaultServer, tmp_path: Path
) -> None:
    await cli.ok("add", "Home", "login", "Bank", "--username", "alice")
    for name, content in (("a.txt", b"first"), ("empty.bin", b"")):
        (tmp_path / name).write_bytes(content)
        await cli.ok("upload", "Home", tmp_path / name, "--item", "Bank")
    shown = await cli.json("show", "Home", "Bank")
    assert [f["name"] for f in shown["files"]] == ["a.txt", "empty.bin"]
    assert shown["version"] == 3
    r = await cli.run("download", "Home", "Bank", "-o", tmp_path / "x")
    assert r.code == Exit.USAGE
    assert "several files (a.txt, empty.bin)" in r.err
    await cli.ok("download", "Home", "Bank", "--file", "empty.bin", "-o", tmp_path / "e")
    assert (tmp_path / "e").read_bytes() == b""
    (tmp_path / "downloads").mkdir()
    await cli.ok("download", "Home", "Bank", "--file", "a.txt", "-o", tmp_path / "downloads")
    assert (tmp_path / "downloads" / "a.txt").read_bytes() == b"first"  # its own name
    assert (await cli.run("download", "Home", "Bank", "--file", "zz")).code == Exit.NOT_FOUND
    # Deleting the item deletes its files at the server too.
    await cli.ok("delete", "Home", "Bank", "--yes")
    assert blobs(vault) == []


async def test_a_tampered_body_is_refused_and_nothing_is_kept(
    cli: VaultCli, vault: VaultServer, tmp_path: Path
) -> None:
    data = os.urandom(2 * CHUNK_BYTES + 5)
    (tmp_path / "f.bin").write_bytes(data)
    await cli.ok("upload", "Home", tmp_path / "f.bin")
    (blob,) = blobs(vault)
    body = bytearray(blob.read_bytes())
    body[CHUNK_BYTES + 100] ^= 1  # inside the second chunk
    blob.write_bytes(bytes(body))
    out = tmp_path / "out.bin"
    r = await cli.run("download", "Home", "f.bin", "-o", out)
    assert r.code == Exit.REFUSED
    assert "chunk 1 of file" in r.err
    assert "file_chunk_invalid" in r.err
    assert not out.exists()
    assert temporary_files(tmp_path) == []
    # Cut short: the server notices its file store lost bytes; nothing is kept either.
    blob.write_bytes(bytes(body[: CHUNK_BYTES + 28]))
    r = await cli.run("download", "Home", "f.bin", "-o", out)
    assert r.code == Exit.NOT_FOUND
    assert "missing" in r.err
    assert not out.exists()


async def test_uploading_what_is_not_a_file_says_so(cli: VaultCli, tmp_path: Path) -> None:
    r = await cli.run("upload", "Home", tmp_path / "missing.txt")
    assert r.code == Exit.USAGE
    assert "missing.txt" in r.err
    r = await cli.run("upload", "Home", tmp_path)
    assert r.code == Exit.USAGE
    assert "not a file" in r.err
    assert (await cli.json("items", "Home"))["items"] == []
