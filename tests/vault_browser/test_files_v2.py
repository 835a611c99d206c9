"""File body format 2 in Chromium: the page makes the Python reference's
boxes from tests/vectors/vault-files-v2.json, opens them, seals new bodies
that open again, and refuses tampered ones by name (docs/vault.md 8.2)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Page

from tests.vault import vault_vectors
from tests.vault_browser.conftest import Browsers, VaultSite, script
from tests.vectorfiles import load

V = load("vault-files-v2.json")
LOAD = script("load_vaultcrypto")
FILES_V2 = script("files_v2")
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


@pytest_asyncio.fixture(loop_scope="session")
async def crypto_page(browsers: Browsers, vault: VaultSite) -> AsyncIterator[Page]:
    page = await browsers.page()
    await page.goto(f"{vault.url}/api/health")
    assert await page.evaluate(LOAD, vault.net.addresses.gateway_url) is True
    yield page


async def test_format_2_in_the_page_matches_the_reference(crypto_page: Page) -> None:
    got = await crypto_page.evaluate(FILES_V2, V)
    assert got["label"] == V["labels"]["file_chunk"]
    assert got["chunkBytes"] == V["format"]["chunk_bytes"]
    assert got["formats"] == [
        {"version": c["version"], "bodySize": c["body_size"]} for c in V["formats"]
    ]
    for g, v in zip(got["file"], V["file"], strict=True):
        assert [c["aad"] for c in g["chunks"]] == [c["aad"] for c in v["chunks"]]
        assert [c["size"] for c in g["chunks"]] == [c["box_size"] for c in v["chunks"]]
        assert [c["sha256"] for c in g["chunks"]] == [c["box_sha256"] for c in v["chunks"]]
        assert g["bodySize"] == g["ciphertextSize"] == v["body_size"]
        assert g["plaintextSize"] == v["size"]
        plain = hashlib.sha256(vault_vectors.file_plaintext(v["size"])).hexdigest()
        assert plain == v["plaintext_sha256"]
        assert g["decrypted"] == g["reopened"] == g["byParts"] == plain
    t = got["tamper"]
    assert t["reordered"]["code"] == "file_chunk_invalid"
    assert "chunk 0" in t["reordered"]["message"]
    assert t["truncated"]["code"] == "file_truncated"
    assert "truncated" in t["truncated"]["message"]
    assert t["modified"]["code"] == "file_chunk_invalid"
    assert "chunk 1" in t["modified"]["message"]
    assert t["otherFile"]["code"] == "file_chunk_invalid"
    assert t["asFormat1"]["code"] == "file_chunk_invalid"
    assert all(e["isVault"] for e in t.values())
    p = got["pushed"]
    assert p["in64k"] == p["inOddPieces"] == p["inOnePiece"] == p["plain"]
    # Chunks 1 and 2 are both bad and both in flight: the first is named.
    assert p["twoBad"]["code"] == "file_chunk_invalid"
    assert "chunk 1" in p["twoBad"]["message"]
    assert p["truncated"]["code"] == "file_truncated"
    assert "truncated" in p["truncated"]["message"]
    assert p["extended"]["code"] == "file_truncated"
    assert "extended" in p["extended"]["message"]
