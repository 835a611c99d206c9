"""Health follows the node's dependencies: gRPC health (asked over the real
PassKey port) and /readyz turn NOT_SERVING within about two intervals of the
state store becoming unreachable, and SERVING again once it answers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from authnet.health import HealthWatcher, probe_of
from authnet.node import PASSKEY_SERVICE, SP_SERVICE
from authnet.rpc_status import CODE_KEY
from authnet.sdk.credentials import SpCredentials
from authnet.state.memory import MemoryState
from authnet.testing import TestNetwork
from authnet.v1 import sp_pb2, sp_pb2_grpc
from tests.directory.proxy import TcpProxy
from tests.pgdb import postgres_database
from tests.redisdb import RedisServer

INTERVAL = 0.2
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class ControlledState(MemoryState):
    """Failure injection: MemoryState whose ping the test controls."""

    def __init__(self) -> None:
        super().__init__()
        self.mode = "up"  # "up", "down" (answers False), "raises", "hangs"
        self.pings = 0

    async def ping(self) -> bool:
        self.pings += 1
        if self.mode == "raises":
            raise ConnectionError("redis://:hunter2@10.0.0.7:6379 refused")
        if self.mode == "hangs":
            await asyncio.sleep(3600)
        return self.mode == "up"


async def check(stub: health_pb2_grpc.HealthStub, service: str = "") -> int:
    r = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return int(r.status)


async def status_is(stub: health_pb2_grpc.HealthStub, service: str, want: int) -> bool:
    return await check(stub, service) == want


async def until(predicate: Callable[[], Awaitable[bool]], limit_s: float) -> float:
    """Seconds until `predicate()` answers True; fails after limit_s."""
    started = time.monotonic()
    while True:
        if await predicate():
            return time.monotonic() - started
        if time.monotonic() - started > limit_s:
            raise AssertionError(f"not within {limit_s} s")
        await asyncio.sleep(0.02)


async def readyz(net: TestNetwork) -> tuple[int, str]:
    url = net.addresses.metrics_url.replace("/metrics", "/readyz")
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        return r.status, await r.text()


@pytest.mark.parametrize("mode", ["down", "raises", "hangs"])
async def test_health_follows_the_state_store(tmp_path: Path, mode: str) -> None:
    state = ControlledState()
    async with (
        TestNetwork(tmp_path, state=state, health_interval_s=INTERVAL, health_timeout_s=0.1) as net,
        grpc.aio.secure_channel(
            net.addresses.passkey, grpc.ssl_channel_credentials(net.ca_pem)
        ) as channel,
    ):
        stub = health_pb2_grpc.HealthStub(channel)
        assert await check(stub) == SERVING
        assert await check(stub, PASSKEY_SERVICE) == SERVING
        assert await readyz(net) == (200, "ok\n")
        assert state.pings >= 1

        state.mode = mode
        # Within ~2 intervals (plus the ping timeout when it hangs).
        took = await until(lambda: status_is(stub, "", NOT_SERVING), 2 * INTERVAL + 0.5)
        assert took <= 2 * INTERVAL + 0.5
        assert await check(stub, PASSKEY_SERVICE) == NOT_SERVING
        assert net.node.health is not None
        assert not net.node.health.is_serving()
        assert net.node.health.status() == {"state": False, "directory": True}
        assert await readyz(net) == (503, "unreachable: state\n")

        state.mode = "up"
        await until(lambda: status_is(stub, "", SERVING), 2 * INTERVAL + 0.5)
        assert await check(stub, PASSKEY_SERVICE) == SERVING
        assert await readyz(net) == (200, "ok\n")
    log = net.log_path.read_text()
    assert "unreachable: state: NOT_SERVING" in log
    assert "dependencies reachable again: SERVING" in log
    # The driver's message (here with a password in a URL) stays out of the log.
    assert "hunter2" not in log
    if mode == "raises":
        assert "state ping failed (ConnectionError)" in log


async def test_the_sp_port_follows_too(tmp_path: Path) -> None:
    state = ControlledState()
    async with TestNetwork(tmp_path, state=state, health_interval_s=INTERVAL) as net:
        creds = await net.add_sp()
        channel_creds = grpc.ssl_channel_credentials(
            creds.ca_pem, private_key=creds.key_pem, certificate_chain=creds.certificate_pem
        )
        async with grpc.aio.secure_channel(net.addresses.sp, channel_creds) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            assert await check(stub, SP_SERVICE) == SERVING
            state.mode = "down"
            await until(lambda: status_is(stub, SP_SERVICE, NOT_SERVING), 2 * INTERVAL + 0.5)
            assert await check(stub) == NOT_SERVING
            state.mode = "up"
            await until(lambda: status_is(stub, SP_SERVICE, SERVING), 2 * INTERVAL + 0.5)


async def test_a_node_started_without_its_state_store_never_says_serving(tmp_path: Path) -> None:
    state = ControlledState()
    state.mode = "down"
    async with (
        TestNetwork(tmp_path, state=state, health_interval_s=INTERVAL) as net,
        grpc.aio.secure_channel(
            net.addresses.passkey, grpc.ssl_channel_credentials(net.ca_pem)
        ) as channel,
    ):
        assert await check(health_pb2_grpc.HealthStub(channel)) == NOT_SERVING


async def test_dependencies_show_in_metrics(tmp_path: Path) -> None:
    state = ControlledState()
    async with TestNetwork(tmp_path, state=state, health_interval_s=INTERVAL) as net:

        async def up_gauge() -> str:
            async with aiohttp.ClientSession() as http, http.get(net.addresses.metrics_url) as r:
                text = await r.text()
            return next(
                line
                for line in text.splitlines()
                if line.startswith("authnet_dependency_up{") and 'dependency="state"' in line
            )

        assert (await up_gauge()).endswith(" 1.0")
        state.mode = "down"

        async def down() -> bool:
            return (await up_gauge()).endswith(" 0.0")

        await until(down, 2 * INTERVAL + 0.5)


async def test_watcher_follows_the_directory_too_and_tolerates_old_stores() -> None:
    """The watcher alone, against a real grpc health server: the directory's
    probe decides as much as the state's; a store without ping() counts as up."""
    directory_up = True

    async def directory_ping() -> bool:
        return directory_up

    servicer = HealthServicer()
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await servicer.set("", SERVING)
    watcher = HealthWatcher(
        {"state": probe_of(object()), "directory": directory_ping},
        [(servicer, "")],
        interval_s=INTERVAL,
        timeout_s=0.1,
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            await watcher.start()
            assert await check(stub) == SERVING
            directory_up = False
            await until(lambda: status_is(stub, "", NOT_SERVING), 2 * INTERVAL + 0.5)
            assert watcher.describe() == (False, "unreachable: directory")
            directory_up = True
            await until(lambda: status_is(stub, "", SERVING), 2 * INTERVAL + 0.5)
            assert watcher.status() == {"state": True, "directory": True}
    finally:
        await watcher.stop()
        await server.stop(0)


def test_bad_intervals_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        HealthWatcher({}, [], interval_s=0)


async def raw_get_ticket(net: TestNetwork, creds: SpCredentials) -> grpc.aio.AioRpcError:
    """One GetTicket without the SDK (which would retry it on another node); its error."""
    credentials = grpc.ssl_channel_credentials(
        creds.ca_pem, private_key=creds.key_pem, certificate_chain=creds.certificate_pem
    )
    async with grpc.aio.secure_channel(net.addresses.sp, credentials) as channel:
        stub = sp_pb2_grpc.ServiceProviderStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetTicket(sp_pb2.GetTicketRequest(), timeout=10)
    return refused.value


async def scrape_text(net: TestNetwork) -> str:
    async with aiohttp.ClientSession() as http, http.get(net.addresses.metrics_url) as r:
        return await r.text()


class ThreadedProxy:
    """TcpProxy on its own event loop in a thread: the node runs its
    migrations with a blocking driver, which would starve a proxy sharing the
    node's loop."""

    def __init__(self, host: str, port: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.proxy = asyncio.run_coroutine_threadsafe(
            TcpProxy(host, port).start(), self.loop
        ).result(10)
        self.port = self.proxy.port

    def _do(self, what: Callable[[], None]) -> None:
        async def run() -> None:
            what()

        asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def drop(self) -> None:
        self._do(self.proxy.drop)

    def stall(self) -> None:
        self._do(self.proxy.stall)

    def restore(self) -> None:
        self._do(self.proxy.restore)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.proxy.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


async def test_health_follows_a_real_redis_and_postgresql(tmp_path: Path) -> None:
    """The real stores: a private redis-server frozen and killed, and the
    shared PostgreSQL cut off behind a proxy. Each outage turns the node
    NOT_SERVING naming what is unreachable; each recovery turns it back,
    without restarting the node."""
    limit = 2 * INTERVAL + 1.0  # two intervals, plus a ping that runs into its timeout
    with RedisServer() as redis_server, postgres_database("authnet_health") as db_url:
        parts = urlsplit(db_url)
        proxy = ThreadedProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
        try:
            via_proxy = db_url.replace(f":{parts.port}/", f":{proxy.port}/")
            async with (
                TestNetwork(
                    tmp_path,
                    state_url=redis_server.url,
                    state_prefix="authnet-health-test:",
                    database_url=via_proxy,
                    health_interval_s=INTERVAL,
                    health_timeout_s=0.3,
                ) as net,
                grpc.aio.secure_channel(
                    net.addresses.passkey, grpc.ssl_channel_credentials(net.ca_pem)
                ) as channel,
            ):
                stub = health_pb2_grpc.HealthStub(channel)
                assert await check(stub, PASSKEY_SERVICE) == SERVING
                creds = await net.add_sp()

                async def outage(why: str) -> None:
                    await until(lambda: status_is(stub, PASSKEY_SERVICE, NOT_SERVING), limit)
                    assert await check(stub) == NOT_SERVING
                    assert await readyz(net) == (503, f"unreachable: {why}\n")

                async def recovered() -> None:
                    await until(lambda: status_is(stub, PASSKEY_SERVICE, SERVING), limit + 2)
                    assert await check(stub) == SERVING
                    assert await readyz(net) == (200, "ok\n")

                redis_server.freeze()  # connections stay open, nothing answers
                await outage("state")
                redis_server.thaw()
                await recovered()

                redis_server.kill()  # connections reset, nothing listens
                await outage("state")
                redis_server.start()  # same port, empty: the node reconnects by itself
                await recovered()

                proxy.drop()
                await outage("directory")
                # A call meanwhile fails as retryable and counts as a directory error.
                refused = await raw_get_ticket(net, creds)
                assert refused.code() is grpc.StatusCode.UNAVAILABLE
                metadata = dict(refused.trailing_metadata() or ())
                assert metadata.get(CODE_KEY) == "directory_unavailable"
                assert "authnet_directory_errors_total 1.0" in await scrape_text(net)
                proxy.restore()
                await recovered()

                proxy.stall()  # a black hole: the ping runs into its timeout
                await outage("directory")
                proxy.restore()
                await recovered()
        finally:
            proxy.close()
