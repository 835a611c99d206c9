"""Running the proxy: its data directory, its store and its fronts.

`serve(config)` runs the HTTP front (and the gRPC front, keyproxy.grpc_front,
when a gRPC address is given) until cancelled, sweeping expired deposits
every `sweep_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from keyproxy import issuers
from keyproxy.http import make_app
from keyproxy.service import Limits, ProxyService
from keyproxy.store import DepositStore, SqliteStore

log = logging.getLogger("keyproxy")
DB_FILE = "deposits.db"


@dataclass(frozen=True, slots=True)
class Config:
    data_dir: Path
    http_host: str = "127.0.0.1"
    http_port: int = 7461
    grpc_address: str | None = None
    store_url: str | None = None  # None: SQLite in the data dir; redis://host:port/db
    redis_prefix: str = "keyproxy:"
    allow_origins: Sequence[str] = ()
    limits: Limits = field(default_factory=Limits)
    sweep_seconds: float = 60.0


def open_store(config: Config) -> DepositStore:
    if config.store_url is None or config.store_url.startswith("sqlite:"):
        path = config.data_dir / DB_FILE
        if config.store_url and config.store_url.startswith("sqlite:///"):
            path = Path(config.store_url.removeprefix("sqlite:///"))
        return SqliteStore(path)
    if config.store_url.startswith(("redis://", "rediss://", "unix://")):
        from keyproxy.redis_store import RedisStore

        return RedisStore(config.store_url, prefix=config.redis_prefix)
    raise ValueError(
        f"unknown store {config.store_url!r}: use sqlite:///PATH or redis://HOST:PORT/DB"
    )


def make_service(config: Config, store: DepositStore) -> ProxyService:
    return ProxyService(store, limits=config.limits, issuers=lambda: issuers.load(config.data_dir))


@contextlib.asynccontextmanager
async def running(config: Config) -> AsyncIterator[tuple[ProxyService, int, int | None]]:
    """The proxy serving; yields (service, HTTP port, gRPC port or None)."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(config)
    service = make_service(config, store)
    runner = web.AppRunner(make_app(service, allow_origins=config.allow_origins), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.http_host, config.http_port)
    await site.start()
    http_port = runner.addresses[0][1]
    grpc_server = None
    grpc_port: int | None = None
    if config.grpc_address is not None:
        from keyproxy.grpc_front import start_grpc

        grpc_server, grpc_port = await start_grpc(service, config.grpc_address)
    sweeper = asyncio.create_task(_sweep(service, config.sweep_seconds))
    log.info("keyproxy serving HTTP on %s:%d", config.http_host, http_port)
    try:
        yield service, http_port, grpc_port
    finally:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        if grpc_server is not None:
            await grpc_server.stop(1)
        await runner.cleanup()
        await store.close()


async def _sweep(service: ProxyService, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            n = await service.store.sweep(service.clock())
            if n:
                log.info("swept %d deposits", n)
        except (ConnectionError, OSError) as e:
            log.warning("sweep failed: %s", type(e).__name__)


async def serve(config: Config) -> None:
    async with running(config):
        await asyncio.Event().wait()
