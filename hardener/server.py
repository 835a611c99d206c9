"""The hardener's gRPC server: mTLS with client certificates from its own CA,
the caller named by the certificate, a thin servicer over HardenerService.

`HardenerServer` opens the data directory (configuration, master key, keys,
registry), listens, and polls the store's generation counter so operator
commands (rotate, retire, revoke) take effect without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from hardener.audit import AuditLog
from hardener.datadir import DataDir, Policy
from hardener.errors import CallerUnknown, HardenerError, StoreError
from hardener.keys import KeyRing, attempt_key
from hardener.masterkey import MasterKey
from hardener.pki import caller_name_of
from hardener.rpc_status import abort_with, detail_of
from hardener.service import EvaluationResult, HardenerService, HashResult
from hardener.store import Store
from hardener.v1 import hardener_pb2 as pb
from hardener.v1 import hardener_pb2_grpc as pb_grpc

log = logging.getLogger("hardener")
SERVICE_NAME = "hardener.v1.Hardener"
POLL_S = 0.5
_STATES = {"active": pb.KEY_STATE_ACTIVE, "old": pb.KEY_STATE_OLD, "retired": pb.KEY_STATE_RETIRED}
T = TypeVar("T")


class _Certificates:
    """PEM (as the TLS stack hands it over) -> (fingerprint, caller name), cached."""

    def __init__(self) -> None:
        self._cache: dict[bytes, tuple[bytes, str | None]] = {}

    def parse(self, pem: bytes) -> tuple[bytes, str | None]:
        hit = self._cache.get(pem)
        if hit is None:
            cert = x509.load_pem_x509_certificate(pem)
            der = cert.public_bytes(Encoding.DER)
            hit = (hashlib.sha256(der).digest(), caller_name_of(cert))
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[pem] = hit
        return hit


class HardenerServicer(pb_grpc.HardenerServicer):
    def __init__(self, service: HardenerService) -> None:
        self.service = service
        self._certs = _Certificates()

    def _caller(self, context: Any) -> str:
        pems = context.auth_context().get("x509_pem_cert") or []
        if not pems:
            raise CallerUnknown("no client certificate was presented")
        fingerprint, name = self._certs.parse(pems[0])
        return self.service.identify(fingerprint, name)

    async def _run(self, context: Any, call: Callable[[str], Awaitable[T]]) -> T:
        try:
            return await call(self._caller(context))
        except HardenerError as e:
            await abort_with(context, e)

    async def GetKeys(self, request: pb.GetKeysRequest, context: Any) -> pb.GetKeysResponse:
        async def call(caller: str) -> pb.GetKeysResponse:
            ring = self.service.keys
            return pb.GetKeysResponse(
                caller=caller,
                current_version=ring.current,
                keys=[
                    pb.KeyInfo(version=k.version, public_key=k.public_key, state=_STATES[k.state])
                    for k in ring.public
                ],
            )

        return await self._run(context, call)

    async def Evaluate(self, request: pb.EvaluateRequest, context: Any) -> pb.EvaluateResponse:
        async def call(caller: str) -> pb.EvaluateResponse:
            r = await self.service.evaluate(
                caller, request.user_id, request.blinded_element, request.key_version
            )
            return _evaluate_response(r)

        return await self._run(context, call)

    async def EvaluateBatch(
        self, request: pb.EvaluateBatchRequest, context: Any
    ) -> pb.EvaluateBatchResponse:
        async def call(caller: str) -> pb.EvaluateBatchResponse:
            items = [(r.user_id, r.blinded_element, r.key_version) for r in request.requests]
            results = await self.service.evaluate_batch(caller, items)
            return pb.EvaluateBatchResponse(
                results=[
                    pb.EvaluateResult(error=detail_of(r))
                    if isinstance(r, HardenerError)
                    else pb.EvaluateResult(response=_evaluate_response(r))
                    for r in results
                ]
            )

        return await self._run(context, call)

    async def Hash(self, request: pb.HashRequest, context: Any) -> pb.HashResponse:
        async def call(caller: str) -> pb.HashResponse:
            r = await self.service.hash(
                caller, request.user_id, request.digest, request.key_version
            )
            return _hash_response(r)

        return await self._run(context, call)

    async def HashBatch(self, request: pb.HashBatchRequest, context: Any) -> pb.HashBatchResponse:
        async def call(caller: str) -> pb.HashBatchResponse:
            items = [(r.user_id, r.digest, r.key_version) for r in request.requests]
            results = await self.service.hash_batch(caller, items)
            return pb.HashBatchResponse(
                results=[
                    pb.HashResult(error=detail_of(r))
                    if isinstance(r, HardenerError)
                    else pb.HashResult(response=_hash_response(r))
                    for r in results
                ]
            )

        return await self._run(context, call)

    async def Enrol(self, request: pb.EnrolRequest, context: Any) -> pb.EnrolResponse:
        async def call(caller: str) -> pb.EnrolResponse:
            replaced = await self.service.enrol(
                caller,
                request.user_id,
                request.success_public_key,
                request.attempt_id,
                request.signature,
            )
            return pb.EnrolResponse(replaced=replaced)

        return await self._run(context, call)

    async def ReportSuccess(
        self, request: pb.ReportSuccessRequest, context: Any
    ) -> pb.ReportSuccessResponse:
        async def call(caller: str) -> pb.ReportSuccessResponse:
            v = await self.service.report_success(
                caller, request.user_id, request.attempt_id, request.signature
            )
            return pb.ReportSuccessResponse(key_version_recorded=v)

        return await self._run(context, call)

    async def Wrap(self, request: pb.WrapRequest, context: Any) -> pb.WrapResponse:
        async def call(caller: str) -> pb.WrapResponse:
            r = await self.service.wrap(caller, request.record_id, request.blob)
            return pb.WrapResponse(wrapped=r.wrapped, key_version=r.key_version)

        return await self._run(context, call)

    async def Unwrap(self, request: pb.UnwrapRequest, context: Any) -> pb.UnwrapResponse:
        async def call(caller: str) -> pb.UnwrapResponse:
            blob, version = await self.service.unwrap(caller, request.record_id, request.wrapped)
            return pb.UnwrapResponse(blob=blob, key_version=version)

        return await self._run(context, call)

    async def Rewrap(self, request: pb.RewrapRequest, context: Any) -> pb.RewrapResponse:
        async def call(caller: str) -> pb.RewrapResponse:
            r = await self.service.rewrap(caller, request.record_id, request.wrapped)
            return pb.RewrapResponse(wrapped=r.wrapped, key_version=r.key_version)

        return await self._run(context, call)


def _hash_response(r: HashResult) -> pb.HashResponse:
    a = r.attempt
    return pb.HashResponse(
        key_version=a.key_version,
        mac=r.mac,
        attempt_id=a.attempt_id,
        nonce=a.nonce,
        attempts_left=a.attempts_left,
    )


def _evaluate_response(r: EvaluationResult) -> pb.EvaluateResponse:
    a = r.attempt
    return pb.EvaluateResponse(
        key_version=a.key_version,
        evaluated_element=r.evaluated_element,
        proof=r.proof,
        attempt_id=a.attempt_id,
        nonce=a.nonce,
        attempts_left=a.attempts_left,
    )


def _lock_data_dir(data: DataDir) -> int:
    """One server per data directory: its budgets are counted in one process's memory
    and database connection, so a second server would double every user's budget."""
    fd = os.open(data.root / "serve.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreError(
            f"another hardener is already serving {data.root}: one server per data directory"
        ) from None
    return fd


class HardenerServer:
    """A running hardener over one data directory."""

    def __init__(
        self,
        root: Path,
        *,
        master_key: MasterKey | None = None,
        policy: Policy | None = None,
    ) -> None:
        self.data = DataDir(root)
        self.config = self.data.config()
        self.policy = policy or self.config.policy
        self._lock = _lock_data_dir(self.data)
        try:
            self.master = master_key or self.data.master_key(self.config)
            self.store = Store(self.data.db)
        except BaseException:
            os.close(self._lock)
            raise
        try:
            keys = KeyRing.load(self.store, self.master)
            attempts = attempt_key(self.store, self.master)
        except BaseException:
            self.store.close()
            os.close(self._lock)
            raise
        self.audit = AuditLog(self.data.audit_log)
        self.store.on_commit = self.audit.flush
        self.service = HardenerService(
            store=self.store,
            keys=keys,
            attempts=attempts,
            policy=self.policy,
            audit=self.audit,
            certificates=self.store.certificate_table(),
        )
        self._generation = self.store.generation()
        self._server: grpc.aio.Server | None = None
        self._poller: asyncio.Task[None] | None = None
        self.port = 0

    def reload(self) -> bool:
        """Pick up operator changes (keys, callers) if the generation moved."""
        gen = self.store.generation()
        if gen == self._generation:
            return False
        self.service.keys = KeyRing.load(self.store, self.master)
        self.service.certificates = self.store.certificate_table()
        self.store.invalidate()  # e.g. `hardener unlock` changed a user
        self._generation = gen
        log.info("reloaded keys and callers (generation %d)", gen)
        return True

    async def _poll(self) -> None:
        last_expiry = 0.0
        while True:
            await asyncio.sleep(POLL_S)
            try:
                await self.store.writable()
                self.reload()
                now = time.time()
                if now - last_expiry > 60:
                    last_expiry = now
                    self.store.begin()
                    self.store.expire_attempts(now - self.policy.attempt_ttl_s)
                    await self.store.durable()
            except HardenerError as e:
                log.error("could not reload keys and callers: %s", e)

    async def start(self, listen: str = "127.0.0.1:0") -> int:
        server = grpc.aio.server(
            options=[("grpc.max_receive_message_length", 1 << 20), ("grpc.so_reuseport", 0)]
        )
        pb_grpc.add_HardenerServicer_to_server(HardenerServicer(self.service), server)
        # grpc.health.v1 (same port, same mTLS): SERVING while the keys are loaded.
        self.health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        creds = grpc.ssl_server_credentials(
            [(self.data.server_key.read_bytes(), self.data.server_cert.read_bytes())],
            root_certificates=self.data.ca_cert.read_bytes(),
            require_client_auth=True,
        )
        self.port = server.add_secure_port(listen, creds)
        if not self.port:
            raise HardenerError(f"cannot listen on {listen}")
        await server.start()
        self._server = server
        self._poller = asyncio.create_task(self._poll())
        log.info("hardener listening on port %d", self.port)
        return self.port

    async def stop(self, grace: float | None = 0.5) -> None:
        if self._server is not None:
            await self.health.enter_graceful_shutdown()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._server is not None:
            await self._server.stop(grace)
        self.store.close()
        self.audit.close()
        close = getattr(self.master, "close", None)
        if close is not None:
            close()
        os.close(self._lock)

    async def wait(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()
