"""A real proxy for tests: `TestKeyProxy(data_dir)` runs the server (HTTP
front, and gRPC with `grpc=True`) on free ports in a thread of its own, so
sync and async tests use it alike.

    with TestKeyProxy(tmp_path / "keyproxy") as kp:
        kp.add_issuer("vault", public_key_b64u)
        httpx.get(f"{kp.http_url}/v1/health")
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType

from keyproxy import issuers
from keyproxy.server import Config, running
from keyproxy.service import Limits, ProxyService


class TestKeyProxy:
    __test__ = False  # not a pytest test class

    def __init__(
        self,
        data_dir: Path,
        *,
        store_url: str | None = None,
        redis_prefix: str = "keyproxy-test:",
        limits: Limits | None = None,
        allow_origins: tuple[str, ...] = ("*",),
        grpc: bool = False,
    ) -> None:
        self.config = Config(
            data_dir=data_dir,
            http_port=0,
            grpc_address="127.0.0.1:0" if grpc else None,
            store_url=store_url,
            redis_prefix=redis_prefix,
            allow_origins=allow_origins,
            limits=limits or Limits(deposit_rate=0, claim_rate=0),
        )
        self.data_dir = data_dir
        self.http_url = ""
        self.grpc_address: str | None = None
        self.service: ProxyService | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> TestKeyProxy:
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        ready.result(timeout=30)
        return self

    def _run(self, ready: Future[None]) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            try:
                async with running(self.config) as (service, http_port, grpc_port):
                    self.service = service
                    self.http_url = f"http://127.0.0.1:{http_port}"
                    if grpc_port is not None:
                        self.grpc_address = f"127.0.0.1:{grpc_port}"
                    ready.set_result(None)
                    await self._stop.wait()
            except BaseException as e:
                if not ready.done():
                    ready.set_exception(e)
                raise

        asyncio.run(main())

    def add_issuer(self, name: str, public_key: str) -> None:
        """Register a grant issuer, as `keyproxy issuer add NAME --public-key KEY` does."""
        issuers.add(self.data_dir, name, public_key)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=30)
