"""Fixtures for the hardener's tests: a real hardener (mTLS gRPC on
127.0.0.1, SQLite, an audit log) in a temporary data directory, and clients
for its registered callers `network` and `vault`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hardener import group, labels
from hardener.client import Evaluation, HardenerClient
from hardener.testing import TestHardener


@pytest.fixture
def hardener(tmp_path: Path) -> Iterator[TestHardener]:
    with TestHardener(tmp_path) as h:
        yield h


@pytest_asyncio.fixture
async def network(hardener: TestHardener) -> AsyncIterator[HardenerClient]:
    async with hardener.client("network") as c:
        yield c


@pytest_asyncio.fixture
async def vault(hardener: TestHardener) -> AsyncIterator[HardenerClient]:
    async with hardener.client("vault") as c:
        yield c


def element(seed: bytes) -> bytes:
    """A valid blinded element (what a client would send), from a seed."""
    return group.hash_to_group(seed, b"hardener-tests")


def raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign_success(key: Ed25519PrivateKey, caller: str, user_id: str, ev: Evaluation) -> bytes:
    return key.sign(labels.success_message(caller, user_id, ev.attempt_id, ev.nonce))
