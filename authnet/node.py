"""One network node: the SP API (gRPC, mutual TLS), the PassKey API (gRPC,
server TLS) and the browser gateway (HTTP + websocket), over one Network.

    async with Node(config) as node:
        print(node.addresses)

Both gRPC servers carry standard health checking (grpc.health.v1) and server
reflection. The SP port requires a client certificate chaining to the network
CA: a caller without one, or with one from another CA, fails the TLS
handshake before any request is read.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from types import TracebackType

import grpc
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from authnet import migrations
from authnet.config import Config
from authnet.datadir import DataDir
from authnet.directory.sql import SqlDirectory
from authnet.gateway import make_app
from authnet.network import Network
from authnet.server.passkey_api import PassKeyServicer
from authnet.server.sp_api import SpServicer
from authnet.state import StateStore
from authnet.state.memory import MemoryState
from authnet.v1 import passkey_pb2, passkey_pb2_grpc, sp_pb2, sp_pb2_grpc

log = logging.getLogger("authnet.node")

SP_SERVICE = sp_pb2.DESCRIPTOR.services_by_name["ServiceProvider"].full_name
PASSKEY_SERVICE = passkey_pb2.DESCRIPTOR.services_by_name["PassKey"].full_name
# Small messages only: the largest legitimate request is a data container write.
MAX_MESSAGE = 64 * 1024


@dataclass(frozen=True, kw_only=True)
class NodeAddresses:
    sp: str
    passkey: str
    gateway_url: str
    data_dir: str

    def lines(self) -> list[str]:
        return [
            f"SP API (mTLS)      {self.sp}",
            f"PassKey API (TLS)  {self.passkey}",
            f"Browser gateway    {self.gateway_url}  (client: {self.gateway_url}/v1/authnet.js)",
            f"Data directory     {self.data_dir}",
        ]


def hostnames(config: Config) -> list[str]:
    names = [config.public_host, "localhost", "127.0.0.1", "::1", *config.extra_hostnames]
    return list(dict.fromkeys(names))


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Node:
    def __init__(self, config: Config, *, state: StateStore | None = None) -> None:
        self.config = config
        self.data_dir = DataDir(config.data_dir)
        self._state = state
        self.network: Network | None = None
        self.addresses: NodeAddresses | None = None
        self.created: list[str] = []
        self._servers: list[grpc.aio.Server] = []
        self._health: list[HealthServicer] = []
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def _grpc_server(self, service: str, health: HealthServicer) -> grpc.aio.Server:
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", MAX_MESSAGE),
                ("grpc.so_reuseport", 0),
            ]
        )
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        reflection.enable_server_reflection(
            [
                service,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            server,
        )
        self._health.append(health)
        self._servers.append(server)
        return server

    async def start(self) -> NodeAddresses:
        try:
            return await self._start()
        except BaseException:
            await self.stop(grace=0)
            raise

    async def _start(self) -> NodeAddresses:
        cfg = self.config
        self.created = self.data_dir.ensure(network_name=cfg.network_name, hostnames=hostnames(cfg))
        migrations.upgrade(cfg.db_url)
        directory = SqlDirectory.open(cfg.db_url)
        state = self._state or MemoryState()
        self.network = network = Network(
            directory=directory,
            state=state,
            identity=self.data_dir.identity(),
            network_name=cfg.network_name,
            data_max_bytes=cfg.data_max_bytes,
            sp_cache_seconds=cfg.sp_cache_seconds,
            webauthn_rp_id=cfg.webauthn_rp_id or cfg.public_host,
        )
        ident = self.data_dir.server_identity()
        pair = [(ident.key_pem, ident.cert_pem)]

        sp_server = self._grpc_server(SP_SERVICE, HealthServicer())
        sp_pb2_grpc.add_ServiceProviderServicer_to_server(SpServicer(network), sp_server)
        sp_port = sp_server.add_secure_port(
            _host_port(cfg.bind_host, cfg.sp_port),
            grpc.ssl_server_credentials(
                pair, root_certificates=ident.ca_pem, require_client_auth=True
            ),
        )
        pk_server = self._grpc_server(PASSKEY_SERVICE, HealthServicer())
        passkey_pb2_grpc.add_PassKeyServicer_to_server(PassKeyServicer(network), pk_server)
        pk_port = pk_server.add_secure_port(
            _host_port(cfg.bind_host, cfg.passkey_port), grpc.ssl_server_credentials(pair)
        )
        if not sp_port or not pk_port:
            raise OSError(f"cannot bind the gRPC ports on {cfg.bind_host} (in use?)")
        for server in self._servers:
            await server.start()
        for health, service in zip(self._health, (SP_SERVICE, PASSKEY_SERVICE), strict=True):
            await health.set(service, health_pb2.HealthCheckResponse.SERVING)
            await health.set("", health_pb2.HealthCheckResponse.SERVING)

        app = make_app(network, trusted_proxies=cfg.trusted_proxies)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in cfg.bind_host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((cfg.bind_host, cfg.gateway_port))
        gw_port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

        network.passkey_address = cfg.passkey_address or _host_port(cfg.public_host, pk_port)
        network.gateway_url = cfg.gateway_url or f"http://{_host_port(cfg.public_host, gw_port)}"
        self.addresses = NodeAddresses(
            sp=_host_port(cfg.public_host, sp_port),
            passkey=network.passkey_address,
            gateway_url=network.gateway_url,
            data_dir=str(cfg.data_dir),
        )
        log.info(
            "node started sp=%s passkey=%s gateway=%s",
            self.addresses.sp,
            self.addresses.passkey,
            self.addresses.gateway_url,
        )
        return self.addresses

    async def stop(self, grace: float = 1.0) -> None:
        for health in self._health:
            await health.enter_graceful_shutdown()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for server in self._servers:
            await server.stop(grace)
        self._servers.clear()
        self._health.clear()
        if self.network is not None:
            await self.network.state.close()
            await self.network.directory.close()
            self.network = None
        log.info("node stopped")
