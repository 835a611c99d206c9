"""Fixtures shared by the whole suite.

`net` is a real network node (gRPC over TLS/mTLS, websocket gateway, SQLite)
in a temporary directory; `sp` an SP registered with it and its async client;
`phone` an enrolled phone simulator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from authnet.sdk.credentials import SpCredentials
from authnet.sdk.sp_client import AsyncSPClient
from authnet.testing import TestNetwork
from simulators.phone.app import PhoneApp
from tests.helpers import make_phone


@pytest_asyncio.fixture
async def net(tmp_path: Path) -> AsyncIterator[TestNetwork]:
    async with TestNetwork(tmp_path) as n:
        yield n


@pytest_asyncio.fixture
async def sp_creds(net: TestNetwork) -> SpCredentials:
    return await net.add_sp("hello", "Hello SP")


@pytest_asyncio.fixture
async def sp(net: TestNetwork, sp_creds: SpCredentials) -> AsyncIterator[AsyncSPClient]:
    async with net.sp_client(sp_creds) as client:
        yield client


@pytest_asyncio.fixture
async def phone(net: TestNetwork, tmp_path: Path) -> PhoneApp:
    return await make_phone(net, tmp_path / "phone.json")
