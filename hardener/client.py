"""Typed clients for the hardener's gRPC API (mTLS with caller credentials).

`HardenerClient` is asyncio (the network and the vault server are);
`SyncHardenerClient` has the same methods for synchronous code. Both raise
`hardener.errors` classes (`UserLocked`, `RateLimited`, `HardenerUnavailable`,
...), never `grpc.RpcError`.

    async with HardenerClient(address, CallerCredentials.load(path)) as h:
        keys = await h.get_keys()                 # pin keys.public_key(v) per version
        ev = await h.evaluate(user_id, blinded)   # relay a client's blinded element
        ...
        await h.report_success(user_id, ev.attempt_id, signature)

`harden()` runs the whole POPRF client side (blind, evaluate, finalize against
a pinned key) for callers that hold the input themselves, and tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from hardener import labels, oprf
from hardener.credentials import CallerCredentials
from hardener.errors import HardenerError, ProtocolMismatch
from hardener.rpc_status import error_from_detail, from_rpc_error
from hardener.v1 import hardener_pb2 as pb
from hardener.v1 import hardener_pb2_grpc as pb_grpc

_STATES = {pb.KEY_STATE_ACTIVE: "active", pb.KEY_STATE_OLD: "old", pb.KEY_STATE_RETIRED: "retired"}


@dataclass(frozen=True, kw_only=True)
class KeyInfo:
    version: int
    public_key: bytes
    state: str


@dataclass(frozen=True, kw_only=True)
class Keys:
    caller: str
    current_version: int
    keys: tuple[KeyInfo, ...]

    def public_key(self, version: int = 0) -> bytes:
        v = version or self.current_version
        for k in self.keys:
            if k.version == v and k.public_key:
                return k.public_key
        raise HardenerError(f"the hardener published no usable key version {v}")


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    key_version: int
    evaluated_element: bytes
    proof: bytes
    attempt_id: bytes
    nonce: bytes
    attempts_left: int


@dataclass(frozen=True, kw_only=True)
class HashOutput:
    key_version: int
    mac: bytes = field(repr=False)
    attempt_id: bytes
    nonce: bytes
    attempts_left: int


@dataclass(frozen=True, kw_only=True)
class Wrapped:
    wrapped: bytes = field(repr=False)
    key_version: int


@dataclass(frozen=True, kw_only=True)
class Hardened:
    """The finalized POPRF output (64 bytes) and the evaluation it came from."""

    output: bytes = field(repr=False)
    evaluation: Evaluation


def _keys(r: pb.GetKeysResponse) -> Keys:
    return Keys(
        caller=r.caller,
        current_version=r.current_version,
        keys=tuple(
            KeyInfo(version=k.version, public_key=k.public_key, state=_STATES.get(k.state, "?"))
            for k in r.keys
        ),
    )


def _evaluation(r: pb.EvaluateResponse) -> Evaluation:
    return Evaluation(
        key_version=r.key_version,
        evaluated_element=r.evaluated_element,
        proof=r.proof,
        attempt_id=r.attempt_id,
        nonce=r.nonce,
        attempts_left=r.attempts_left,
    )


def _batch(r: pb.EvaluateBatchResponse, n: int) -> list[Evaluation | HardenerError]:
    if len(r.results) != n:
        raise ProtocolMismatch(f"asked for {n} evaluations, got {len(r.results)} results")
    return [
        _evaluation(x.response) if x.HasField("response") else error_from_detail(x.error)
        for x in r.results
    ]


def _hash(r: pb.HashResponse) -> HashOutput:
    return HashOutput(
        key_version=r.key_version,
        mac=r.mac,
        attempt_id=r.attempt_id,
        nonce=r.nonce,
        attempts_left=r.attempts_left,
    )


def _hash_batch(r: pb.HashBatchResponse, n: int) -> list[HashOutput | HardenerError]:
    if len(r.results) != n:
        raise ProtocolMismatch(f"asked for {n} hashes, got {len(r.results)} results")
    return [
        _hash(x.response) if x.HasField("response") else error_from_detail(x.error)
        for x in r.results
    ]


def _hash_batch_request(items: Sequence[tuple[str, bytes, int]]) -> pb.HashBatchRequest:
    return pb.HashBatchRequest(
        requests=[pb.HashRequest(user_id=u, digest=d, key_version=v) for u, d, v in items]
    )


def _channel_credentials(creds: CallerCredentials) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(creds.ca_pem, creds.key_pem, creds.certificate_pem)


def _options(server_name: str | None) -> list[tuple[str, Any]]:
    opts: list[tuple[str, Any]] = [("grpc.max_receive_message_length", 8 << 20)]
    if server_name:
        opts.append(("grpc.ssl_target_name_override", server_name))
    return opts


def _evaluate_request(user_id: str, blinded: bytes, version: int) -> pb.EvaluateRequest:
    return pb.EvaluateRequest(user_id=user_id, blinded_element=blinded, key_version=version)


def finalize(
    input: bytes, user_id: str, caller: str, blinded: oprf.Blinded, ev: Evaluation
) -> Hardened:
    """Unblind and verify the proof against the key pinned in `blinded` (ProofInvalid if not)."""
    out = oprf.poprf_finalize(
        input,
        blinded.blind,
        ev.evaluated_element,
        blinded.blinded_element,
        ev.proof,
        labels.poprf_info(caller, user_id),
        blinded.tweaked_key,
    )
    return Hardened(output=out, evaluation=ev)


class HardenerClient:
    """Asyncio client. One channel, reused; close() or use `async with`."""

    def __init__(
        self,
        address: str,
        credentials: CallerCredentials,
        *,
        timeout: float = 10.0,
        server_name: str | None = None,
    ) -> None:
        self.address = address
        self.caller = credentials.name
        self.timeout = timeout
        self._channel = grpc.aio.secure_channel(
            address, _channel_credentials(credentials), options=_options(server_name)
        )
        self._stub = pb_grpc.HardenerStub(self._channel)

    async def __aenter__(self) -> HardenerClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def _call(self, method: str, request: Any) -> Any:
        try:
            return await getattr(self._stub, method)(request, timeout=self.timeout)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    async def get_keys(self) -> Keys:
        return _keys(await self._call("GetKeys", pb.GetKeysRequest()))

    async def evaluate(
        self, user_id: str, blinded_element: bytes, key_version: int = 0
    ) -> Evaluation:
        return _evaluation(
            await self._call("Evaluate", _evaluate_request(user_id, blinded_element, key_version))
        )

    async def evaluate_batch(
        self, items: Sequence[tuple[str, bytes, int]]
    ) -> list[Evaluation | HardenerError]:
        req = pb.EvaluateBatchRequest(requests=[_evaluate_request(*i) for i in items])
        return _batch(await self._call("EvaluateBatch", req), len(items))

    async def hash(self, user_id: str, digest: bytes, key_version: int = 0) -> HashOutput:
        req = pb.HashRequest(user_id=user_id, digest=digest, key_version=key_version)
        return _hash(await self._call("Hash", req))

    async def hash_batch(
        self, items: Sequence[tuple[str, bytes, int]]
    ) -> list[HashOutput | HardenerError]:
        """Many (user_id, digest, key_version) in one call; each result or error in order."""
        return _hash_batch(await self._call("HashBatch", _hash_batch_request(items)), len(items))

    async def enrol(
        self,
        user_id: str,
        success_public_key: bytes,
        *,
        attempt_id: bytes = b"",
        signature: bytes = b"",
    ) -> bool:
        req = pb.EnrolRequest(
            user_id=user_id,
            success_public_key=success_public_key,
            attempt_id=attempt_id,
            signature=signature,
        )
        r: pb.EnrolResponse = await self._call("Enrol", req)
        return r.replaced

    async def report_success(self, user_id: str, attempt_id: bytes, signature: bytes) -> int:
        req = pb.ReportSuccessRequest(user_id=user_id, attempt_id=attempt_id, signature=signature)
        r: pb.ReportSuccessResponse = await self._call("ReportSuccess", req)
        return r.key_version_recorded

    async def wrap(self, record_id: str, blob: bytes) -> Wrapped:
        r: pb.WrapResponse = await self._call(
            "Wrap", pb.WrapRequest(record_id=record_id, blob=blob)
        )
        return Wrapped(wrapped=r.wrapped, key_version=r.key_version)

    async def unwrap(self, record_id: str, wrapped: bytes) -> bytes:
        req = pb.UnwrapRequest(record_id=record_id, wrapped=wrapped)
        r: pb.UnwrapResponse = await self._call("Unwrap", req)
        return r.blob

    async def rewrap(self, record_id: str, wrapped: bytes) -> Wrapped:
        req = pb.RewrapRequest(record_id=record_id, wrapped=wrapped)
        r: pb.RewrapResponse = await self._call("Rewrap", req)
        return Wrapped(wrapped=r.wrapped, key_version=r.key_version)

    async def harden(
        self, user_id: str, input: bytes, public_key: bytes, key_version: int = 0
    ) -> Hardened:
        """Blind `input`, evaluate, and finalize against the pinned `public_key`."""
        info = labels.poprf_info(self.caller, user_id)
        blinded = oprf.poprf_blind(input, info, public_key)
        ev = await self.evaluate(user_id, blinded.blinded_element, key_version)
        return finalize(input, user_id, self.caller, blinded, ev)


class SyncHardenerClient:
    """The same API for synchronous callers (a blocking gRPC channel)."""

    def __init__(
        self,
        address: str,
        credentials: CallerCredentials,
        *,
        timeout: float = 10.0,
        server_name: str | None = None,
    ) -> None:
        self.address = address
        self.caller = credentials.name
        self.timeout = timeout
        self._channel = grpc.secure_channel(
            address, _channel_credentials(credentials), options=_options(server_name)
        )
        self._stub = pb_grpc.HardenerStub(self._channel)

    def __enter__(self) -> SyncHardenerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: str, request: Any) -> Any:
        try:
            return getattr(self._stub, method)(request, timeout=self.timeout)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    def get_keys(self) -> Keys:
        return _keys(self._call("GetKeys", pb.GetKeysRequest()))

    def evaluate(self, user_id: str, blinded_element: bytes, key_version: int = 0) -> Evaluation:
        return _evaluation(
            self._call("Evaluate", _evaluate_request(user_id, blinded_element, key_version))
        )

    def evaluate_batch(
        self, items: Sequence[tuple[str, bytes, int]]
    ) -> list[Evaluation | HardenerError]:
        req = pb.EvaluateBatchRequest(requests=[_evaluate_request(*i) for i in items])
        return _batch(self._call("EvaluateBatch", req), len(items))

    def hash(self, user_id: str, digest: bytes, key_version: int = 0) -> HashOutput:
        req = pb.HashRequest(user_id=user_id, digest=digest, key_version=key_version)
        return _hash(self._call("Hash", req))

    def hash_batch(
        self, items: Sequence[tuple[str, bytes, int]]
    ) -> list[HashOutput | HardenerError]:
        return _hash_batch(self._call("HashBatch", _hash_batch_request(items)), len(items))

    def enrol(
        self,
        user_id: str,
        success_public_key: bytes,
        *,
        attempt_id: bytes = b"",
        signature: bytes = b"",
    ) -> bool:
        req = pb.EnrolRequest(
            user_id=user_id,
            success_public_key=success_public_key,
            attempt_id=attempt_id,
            signature=signature,
        )
        r: pb.EnrolResponse = self._call("Enrol", req)
        return r.replaced

    def report_success(self, user_id: str, attempt_id: bytes, signature: bytes) -> int:
        req = pb.ReportSuccessRequest(user_id=user_id, attempt_id=attempt_id, signature=signature)
        r: pb.ReportSuccessResponse = self._call("ReportSuccess", req)
        return r.key_version_recorded

    def wrap(self, record_id: str, blob: bytes) -> Wrapped:
        r: pb.WrapResponse = self._call("Wrap", pb.WrapRequest(record_id=record_id, blob=blob))
        return Wrapped(wrapped=r.wrapped, key_version=r.key_version)

    def unwrap(self, record_id: str, wrapped: bytes) -> bytes:
        r: pb.UnwrapResponse = self._call(
            "Unwrap", pb.UnwrapRequest(record_id=record_id, wrapped=wrapped)
        )
        return r.blob

    def rewrap(self, record_id: str, wrapped: bytes) -> Wrapped:
        r: pb.RewrapResponse = self._call(
            "Rewrap", pb.RewrapRequest(record_id=record_id, wrapped=wrapped)
        )
        return Wrapped(wrapped=r.wrapped, key_version=r.key_version)

    def harden(
        self, user_id: str, input: bytes, public_key: bytes, key_version: int = 0
    ) -> Hardened:
        info = labels.poprf_info(self.caller, user_id)
        blinded = oprf.poprf_blind(input, info, public_key)
        ev = self.evaluate(user_id, blinded.blinded_element, key_version)
        return finalize(input, user_id, self.caller, blinded, ev)
