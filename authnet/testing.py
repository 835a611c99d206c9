"""A throwaway network in-process, for tests (yours too) and the demo.

    async with TestNetwork(tmp_path) as net:
        creds = await net.add_sp("shop", "Example Shop")
        async with net.sp_client(creds) as sp:
            ticket = await sp.get_ticket()

Everything lives under `root`: data directory, SP credentials, log file. Ports
are picked free by the OS, so tests can run side by side.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from types import TracebackType
from typing import Any

from authnet import admin, logs
from authnet.config import Config
from authnet.network import Network
from authnet.node import Node, NodeAddresses
from authnet.sdk.credentials import SpCredentials
from authnet.sdk.sp_client import AsyncSPClient, SPClient
from authnet.state import StateStore


class TestNetwork:
    __test__ = False  # not a pytest test class

    def __init__(self, root: Path, *, state: StateStore | None = None, **config: Any) -> None:
        self.root = root
        self.config = Config(
            data_dir=root / "network",
            sp_port=0,
            passkey_port=0,
            gateway_port=0,
            log_file=str(root / "authnet.log"),
            sp_cache_seconds=0.0,
        )
        if config:
            self.config = dataclasses.replace(self.config, **config)
        self.node = Node(self.config, state=state)

    async def __aenter__(self) -> TestNetwork:
        self.root.mkdir(parents=True, exist_ok=True)
        # Everything the network logs, at every level, goes to the log file, so
        # tests can read it (and scan it for secrets).
        self._log_handler = logging.FileHandler(self.log_path, encoding="utf-8")
        self._log_handler.setFormatter(logging.Formatter(logs.FORMAT))
        logger = logging.getLogger("authnet")
        self._old_level = logger.level
        logger.setLevel(logging.DEBUG)
        logger.addHandler(self._log_handler)
        await self.node.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self.node.stop(grace=0)
        finally:
            logger = logging.getLogger("authnet")
            logger.removeHandler(self._log_handler)
            logger.setLevel(self._old_level)
            self._log_handler.close()

    @property
    def network(self) -> Network:
        assert self.node.network is not None, "network not started"
        return self.node.network

    @property
    def addresses(self) -> NodeAddresses:
        assert self.node.addresses is not None, "network not started"
        return self.node.addresses

    @property
    def ca_pem(self) -> bytes:
        return self.node.data_dir.ca_cert.read_bytes()

    @property
    def log_path(self) -> Path:
        return self.root / "authnet.log"

    async def add_sp(
        self, name: str = "hello", display_name: str = "Hello SP", origins: list[str] | None = None
    ) -> SpCredentials:
        made = await admin.register_sp(
            self.network.directory,
            self.node.data_dir,
            name=name,
            display_name=display_name,
            origins=origins or [],
            sp_address=self.addresses.sp,
            gateway_url=self.addresses.gateway_url,
            out_dir=self.root / "sps" / name,
        )
        return SpCredentials.load(made.directory)

    def sp_client(self, creds: SpCredentials) -> AsyncSPClient:
        return AsyncSPClient(creds)

    def sync_sp_client(self, creds: SpCredentials) -> SPClient:
        return SPClient(creds)
