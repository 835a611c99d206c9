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
import os
import secrets
import socket
from dataclasses import dataclass
from types import TracebackType

import grpc
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from authnet import logs, metrics, migrations
from authnet.config import Config, ConfigError
from authnet.datadir import DataDir
from authnet.directory.sql import SqlDirectory
from authnet.gateway import SOCKETS_KEY, make_app
from authnet.gateway.limits import ConnectionGate, ConnectionLimits, GatewaySite
from authnet.health import HealthWatcher, probe_of
from authnet.network import Network
from authnet.pin_relay import PinRelay, open_relay
from authnet.ratelimit import RateLimiter
from authnet.server.passkey_api import PassKeyServicer
from authnet.server.sp_api import SpServicer
from authnet.state import StateStore, open_state
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
    # http://host:port/metrics, or "" when metrics are off.
    metrics_url: str = ""

    def lines(self) -> list[str]:
        return [
            f"SP API (mTLS)      {self.sp}",
            f"PassKey API (TLS)  {self.passkey}",
            f"Browser gateway    {self.gateway_url}  (client: {self.gateway_url}/v1/authnet.js)",
            *([f"Metrics            {self.metrics_url}"] if self.metrics_url else []),
            f"Data directory     {self.data_dir}",
        ]


def resolve_node_id(config: Config) -> str:
    """The node's name: `config.node_id`, else <hostname>-<pid>-<4 hex>. The
    random part keeps nodes apart that share a process (tests, the demo) or a
    recycled pid; a node keeps its name until it stops."""
    return config.node_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


def hostnames(config: Config) -> list[str]:
    names = [config.public_host, "localhost", "127.0.0.1", "::1", *config.extra_hostnames]
    return list(dict.fromkeys(names))


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Node:
    def __init__(
        self, config: Config, *, state: StateStore | None = None, reuse_port: bool = False
    ) -> None:
        """`reuse_port`: share the SP, PassKey and gateway ports with the other
        worker processes of `authnet serve --workers N` (SO_REUSEPORT)."""
        self.config = config
        self.reuse_port = reuse_port
        self.data_dir = DataDir(config.data_dir)
        self._state = state
        self.node_id = resolve_node_id(config)
        self.metrics = metrics.NodeMetrics(node_id=self.node_id)
        self.health: HealthWatcher | None = None
        self._metrics_runner: web.AppRunner | None = None
        self.network: Network | None = None
        self.pins: PinRelay | None = None
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
            interceptors=[metrics.RpcMetrics(self.metrics)],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", MAX_MESSAGE),
                ("grpc.so_reuseport", 1 if self.reuse_port else 0),
            ],
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
        # The servers' tasks inherit this context: their log lines name this node.
        token = logs.NODE_ID.set(self.node_id)
        try:
            return await self._start()
        except BaseException:
            await self.stop(grace=0)
            raise
        finally:
            logs.NODE_ID.reset(token)

    async def _start(self) -> NodeAddresses:
        cfg = self.config
        self.created = self.data_dir.ensure(network_name=cfg.network_name, hostnames=hostnames(cfg))
        migrations.upgrade(cfg.db_url)
        directory = SqlDirectory.open(cfg.db_url, cfg.pool_options)
        try:
            state = self._state or open_state(cfg.state_url, prefix=cfg.state_prefix)
        except ValueError as e:
            raise ConfigError(f"state_url: {e}") from None
        self.network = network = Network(
            directory=directory,
            state=state,
            identity=self.data_dir.identity(),
            network_name=cfg.network_name,
            data_max_bytes=cfg.data_max_bytes,
            sp_cache_seconds=cfg.sp_cache_seconds,
            webauthn_rp_id=cfg.webauthn_rp_id or cfg.public_host,
            node_id=self.node_id,
            metrics=self.metrics,
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
        challenges = RateLimiter(rate_per_s=cfg.challenge_rate_per_s, burst=cfg.challenge_burst)
        self.pins = open_relay(network, cfg)
        passkey_pb2_grpc.add_PassKeyServicer_to_server(
            PassKeyServicer(
                network,
                challenges=challenges,
                pins=self.pins,
                pin_attempts=RateLimiter(
                    rate_per_s=cfg.pin_attempt_rate_per_s, burst=cfg.pin_attempt_burst
                ),
            ),
            pk_server,
        )
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
        self.health = HealthWatcher(
            {"state": probe_of(state), "directory": probe_of(directory)},
            [
                (h, name)
                for h, service in zip(self._health, (SP_SERVICE, PASSKEY_SERVICE), strict=True)
                for name in (service, "")
            ],
            interval_s=cfg.health_interval_s,
            timeout_s=cfg.health_timeout_s,
            metrics=self.metrics,
        )
        await self.health.start()

        app = make_app(network, trusted_proxies=cfg.trusted_proxies, ready=self.health.describe)
        self.metrics.watch_websockets(app[SOCKETS_KEY])
        limits = ConnectionLimits.from_config(cfg)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, keepalive_timeout=limits.idle_timeout_s
        )
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in cfg.bind_host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((cfg.bind_host, cfg.gateway_port))
        gw_port = sock.getsockname()[1]
        await GatewaySite(self._runner, sock, ConnectionGate(limits)).start()

        metrics_url = await self._start_metrics()
        network.passkey_address = cfg.passkey_address or _host_port(cfg.public_host, pk_port)
        network.gateway_url = cfg.gateway_url or f"http://{_host_port(cfg.public_host, gw_port)}"
        network.gateway_urls = tuple(
            dict.fromkeys([network.gateway_url, *filter(None, cfg.cluster_gateway_urls)])
        )
        self.addresses = NodeAddresses(
            sp=_host_port(cfg.public_host, sp_port),
            passkey=network.passkey_address,
            gateway_url=network.gateway_url,
            data_dir=str(cfg.data_dir),
            metrics_url=metrics_url,
        )
        log.info(
            "node started sp=%s passkey=%s gateway=%s",
            self.addresses.sp,
            self.addresses.passkey,
            self.addresses.gateway_url,
        )
        return self.addresses

    async def _start_metrics(self) -> str:
        """/metrics and /readyz on their own port (config.metrics_port; -1: off)."""
        cfg = self.config
        if cfg.metrics_port == -1:
            return ""
        if not 0 <= cfg.metrics_port <= 65535:
            raise ConfigError(f"metrics_port must be 0..65535, or -1 for off: {cfg.metrics_port}")
        health = self.health
        app = metrics.make_app(self.metrics, ready=health.describe if health else None)
        sock = socket.socket(socket.AF_INET6 if ":" in cfg.bind_host else socket.AF_INET)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((cfg.bind_host, cfg.metrics_port))
        except OSError as err:
            sock.close()
            raise OSError(
                f"cannot bind the metrics port {cfg.metrics_port} on {cfg.bind_host} "
                f"({err.strerror}): set metrics_port, or -1 to turn metrics off"
            ) from None
        port = sock.getsockname()[1]
        self._metrics_runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._metrics_runner.setup()
        await web.SockSite(self._metrics_runner, sock).start()
        return f"http://{_host_port(cfg.bind_host, port)}/metrics"

    async def stop(self, grace: float = 1.0) -> None:
        if self.health is not None:
            await self.health.stop()
            self.health = None
        for health in self._health:
            await health.enter_graceful_shutdown()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._metrics_runner is not None:
            await self._metrics_runner.cleanup()
            self._metrics_runner = None
        for server in self._servers:
            await server.stop(grace)
        self._servers.clear()
        self._health.clear()
        if self.pins is not None:
            await self.pins.close()
            self.pins = None
        if self.network is not None:
            if self._state is None:  # a store handed in belongs to the caller
                await self.network.state.close()
            await self.network.directory.close()
            self.network = None
        log.info("node stopped")
