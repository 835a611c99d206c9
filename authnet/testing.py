"""A throwaway network in-process, for tests (yours too) and the demo.

    async with TestNetwork(tmp_path) as net:
        creds = await net.add_sp("shop", "Example Shop")
        async with net.sp_client(creds) as sp:
            ticket = await sp.get_ticket()

Everything lives under `root`: data directory, SP credentials, log file. Ports
are picked free by the OS, so tests can run side by side.

`hardener=True` runs a real PIN hardener beside the network (a
`hardener.testing.TestHardener` under root/hardener, over mTLS, the network
registered as its caller "network"); pass a TestHardener to share or control
one (stop it, rotate its key). `net.hardener` is it.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from authnet import admin, logs
from authnet.config import Config
from authnet.network import Network
from authnet.node import Node, NodeAddresses
from authnet.sdk.credentials import SpCredentials
from authnet.sdk.sp_client import AsyncSPClient, SPClient
from authnet.state import StateStore

if TYPE_CHECKING:
    from hardener.testing import TestHardener


class TestNetwork:
    __test__ = False  # not a pytest test class

    def __init__(
        self,
        root: Path,
        *,
        state: StateStore | None = None,
        hardener: TestHardener | bool = False,
        **config: Any,
    ) -> None:
        self.root = root
        self._own_hardener = hardener is True
        self.hardener: TestHardener | None = None
        if hardener is True:
            from hardener.testing import TestHardener

            self.hardener = TestHardener(root / "hardener")
        elif hardener:
            self.hardener = hardener
        self.config = Config(
            data_dir=root / "network",
            sp_port=0,
            passkey_port=0,
            gateway_port=0,
            metrics_port=0,
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
        self._log_handler.setFormatter(logs.formatter(self.config.log_format))
        logger = logging.getLogger("authnet")
        self._old_level = logger.level
        logger.setLevel(logging.DEBUG)
        logger.addHandler(self._log_handler)
        if self.hardener is not None:
            if self._own_hardener:
                self.hardener.start()
            self.hardener.caller_credentials("network")
            self.config = dataclasses.replace(
                self.config,
                hardener_address=self.hardener.address,
                hardener_credentials=str(self.hardener.credentials_dir("network")),
            )
            self.node.config = self.config
        try:
            await self.node.start()
        except BaseException:
            await self._close_hardener()
            raise
        return self

    async def _close_hardener(self) -> None:
        if self.hardener is not None and self._own_hardener:
            self.hardener.close()

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self.node.stop(grace=0)
            await self._close_hardener()
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


class TestCluster:
    """Several nodes of one network in this process, for tests of the cluster.

        async with TestCluster(tmp_path, nodes=2, state_url="redis://...") as c:
            creds = await c.add_sp("shop")
            async with c.sp_client(creds) as sp:   # knows every node's address
                ...
            await c.nodes[0].node.stop()           # a node goes away

    The nodes share one data directory (CA, PUID key, server certificate), one
    directory database (`database_url`, default SQLite in the data directory)
    and one state store: a Redis URL that each node connects to on its own, or
    one `state` object handed to every node (which then does not close it).
    Each node has its own ports; every node advertises every gateway, and the
    first node's PassKey address as the one QR codes carry (a real cluster
    advertises one name for all of them).
    """

    __test__ = False

    def __init__(
        self,
        root: Path,
        *,
        nodes: int = 2,
        state: StateStore | None = None,
        state_url: str = "",
        database_url: str = "",
        **config: Any,
    ) -> None:
        if state is None and not state_url:
            raise ValueError("nodes of a cluster must share state: pass state= or state_url=")
        self.root = root
        self.nodes = [
            TestNetwork(
                root / f"node{i}",
                state=state,
                data_dir=root / "network",
                state_url=state_url,
                database_url=database_url,
                **config,
            )
            for i in range(nodes)
        ]

    async def __aenter__(self) -> TestCluster:
        started: list[TestNetwork] = []
        try:
            for net in self.nodes:
                await net.__aenter__()
                started.append(net)
        except BaseException:
            for net in reversed(started):
                await net.__aexit__(None, None, None)
            raise
        urls = [net.addresses.gateway_url for net in self.nodes]
        for net in self.nodes:
            own = net.addresses.gateway_url
            net.network.gateway_urls = (own, *(u for u in urls if u != own))
            # Like a cluster's one public name: every node's QR codes name the
            # same PassKey address (tokens know the others, see passkey_addresses).
            net.network.passkey_address = self.nodes[0].addresses.passkey
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        for net in reversed(self.nodes):
            if net.node.network is not None:
                await net.__aexit__(et, ev, tb)

    @property
    def ca_pem(self) -> bytes:
        return self.nodes[0].ca_pem

    @property
    def sp_addresses(self) -> list[str]:
        return [net.addresses.sp for net in self.nodes]

    @property
    def passkey_addresses(self) -> list[str]:
        return [net.addresses.passkey for net in self.nodes]

    async def add_sp(
        self, name: str = "hello", display_name: str = "Hello SP", origins: list[str] | None = None
    ) -> SpCredentials:
        return await self.nodes[0].add_sp(name, display_name, origins)

    def sp_client(self, creds: SpCredentials, **kw: Any) -> AsyncSPClient:
        """An SP client that knows every node (it fails over between them)."""
        return AsyncSPClient(creds, address=self.sp_addresses, **kw)
