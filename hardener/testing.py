"""A real hardener for tests: its own data directory, CA, registered callers,
and an mTLS gRPC server on a free 127.0.0.1 port, run in a background thread
with its own event loop (so sync and async tests use it alike, and many can
start in one test session: about 0.1 s each).

    with TestHardener(tmp_path) as h:                 # or: async with
        creds = h.caller_credentials("network")        # CallerCredentials
        async with HardenerClient(h.address, creds) as c: ...
        h.rotate(); h.revoke("network"); h.unlock("network", "token:ab")

Backoff is off by default (`Policy(backoff_base_ms=0)`) so a test can make
ten wrong attempts quickly; the ten-failure lockout is the production one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from hardener import admin
from hardener.admin import Pkcs11Options
from hardener.client import HardenerClient, SyncHardenerClient
from hardener.credentials import CallerCredentials
from hardener.datadir import DataDir, Policy
from hardener.keys import VersionStatus
from hardener.server import HardenerServer

TEST_POLICY = Policy(backoff_base_ms=0)


class TestHardener:
    __test__ = False  # not a pytest test class

    def __init__(
        self,
        root: Path | None = None,
        *,
        callers: tuple[str, ...] = ("network", "vault"),
        policy: Policy | None = None,
        pkcs11: Pkcs11Options | None = None,
        name: str = "test",
    ) -> None:
        self._own_root = root is None
        base = Path(tempfile.mkdtemp(prefix="hardener-test-")) if root is None else root
        self.root = base / "hardener-data" if root is not None else base
        self.policy = policy or TEST_POLICY
        self.pkcs11 = pkcs11
        self.name = name
        self._initial_callers = callers
        self._creds: dict[str, CallerCredentials] = {}
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: HardenerServer | None = None
        self._port = 0

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> TestHardener:
        if not DataDir(self.root).exists():
            admin.init(self.root, name=self.name, pkcs11=self.pkcs11, policy=self.policy)
            for c in self._initial_callers:
                self.add_caller(c)
        self._start_thread()
        return self

    def _start_thread(self) -> None:
        ready: concurrent.futures.Future[int] = concurrent.futures.Future()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                server = HardenerServer(self.root, policy=self.policy)
                port = loop.run_until_complete(server.start(f"127.0.0.1:{self._port}"))
            except BaseException as e:  # startup failure: hand it to the caller
                ready.set_exception(e)
                loop.close()
                return
            self._server = server
            ready.set_result(port)
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(server.stop(grace=0.2))
                loop.close()

        self._thread = threading.Thread(target=run, name="test-hardener", daemon=True)
        self._thread.start()
        self._port = ready.result(timeout=30)

    def stop(self) -> None:
        """Stop the server (the data directory stays; start() resumes on the same port)."""
        if self._thread is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
        self._thread = None
        self._loop = None
        self._server = None

    def restart(self) -> None:
        self.stop()
        self._start_thread()

    def close(self) -> None:
        self.stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> TestHardener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> TestHardener:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    # -- what tests use ---------------------------------------------------------

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    @property
    def data(self) -> DataDir:
        return DataDir(self.root)

    @property
    def server(self) -> HardenerServer:
        if self._server is None:
            raise RuntimeError("the test hardener is not running")
        return self._server

    def add_caller(self, name: str) -> CallerCredentials:
        out = self.credentials_dir(name)
        creds = admin.add_caller(self.root, name, out)
        self._creds[name] = creds
        self.reload()
        return creds

    def credentials_dir(self, name: str) -> Path:
        return self.root.parent / f"{self.root.name}-callers" / name

    def caller_credentials(self, name: str) -> CallerCredentials:
        """The caller's credentials (registering the caller on first use)."""
        if name not in self._creds:
            d = self.credentials_dir(name)
            self._creds[name] = CallerCredentials.load(d) if d.exists() else self.add_caller(name)
        return self._creds[name]

    def client(self, name: str = "network", **kw: Any) -> HardenerClient:
        return HardenerClient(self.address, self.caller_credentials(name), **kw)

    def sync_client(self, name: str = "network", **kw: Any) -> SyncHardenerClient:
        return SyncHardenerClient(self.address, self.caller_credentials(name), **kw)

    def reload(self) -> None:
        """Make the running server pick up operator changes now (it also polls)."""
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return

        async def go() -> None:
            await server.store.writable()
            server.reload()

        asyncio.run_coroutine_threadsafe(go(), loop).result(timeout=10)

    def rotate(self) -> int:
        v = admin.rotate(self.root)
        self.reload()
        return v

    def retire(self, version: int, *, force: bool = False) -> None:
        admin.retire(self.root, version, force=force)
        self.reload()

    def revoke(self, caller: str) -> None:
        admin.revoke_caller(self.root, caller)
        self.reload()

    def unlock(self, caller: str, user_id: str, *, forget_key: bool = False) -> None:
        admin.unlock(self.root, caller, user_id, forget_key=forget_key)
        self.reload()

    def status(self) -> list[VersionStatus]:
        return admin.status(self.root)

    def audit_entries(self) -> list[dict[str, Any]]:
        if self._loop is not None and self._server is not None:
            asyncio.run_coroutine_threadsafe(_flush(self._server), self._loop).result(timeout=10)
        path = self.data.audit_log
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]


async def _flush(server: HardenerServer) -> None:
    server.audit.flush()
