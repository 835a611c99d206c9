"""The gRPC front (proto/keyproxy/v1/keyproxy.proto): the JSON front's three
operations with bytes as bytes, over the same ProxyService, plus
grpc.health.v1. Plain on the address it is given (localhost by custom).

A refusal aborts with the status code of its class; trailing metadata
`keyproxy-error` carries the stable code, and the details start with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, NoReturn, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from keyproxy import errors as e
from keyproxy.grants import b64u, unb64u
from keyproxy.service import ProxyService
from keyproxy.v1 import keyproxy_pb2 as pb
from keyproxy.v1 import keyproxy_pb2_grpc as pb_grpc

SERVICE_NAME: Final = "keyproxy.v1.KeyProxy"
CODE_KEY: Final = "keyproxy-error"
T = TypeVar("T")

STATUS: Final[dict[type[e.ProxyError], grpc.StatusCode]] = {
    e.NotFound: grpc.StatusCode.NOT_FOUND,
    e.Claimed: grpc.StatusCode.FAILED_PRECONDITION,
    e.Expired: grpc.StatusCode.FAILED_PRECONDITION,
    e.Burned: grpc.StatusCode.FAILED_PRECONDITION,
    e.ConditionFailed: grpc.StatusCode.PERMISSION_DENIED,
    e.TooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    e.RateLimited: grpc.StatusCode.RESOURCE_EXHAUSTED,
    e.Full: grpc.StatusCode.RESOURCE_EXHAUSTED,
    e.Invalid: grpc.StatusCode.INVALID_ARGUMENT,
    e.Malformed: grpc.StatusCode.INVALID_ARGUMENT,
    e.StoreUnavailable: grpc.StatusCode.UNAVAILABLE,
}

_KIND_TO_JSON: Final = {pb.CONDITION_KIND_SECRET: "secret", pb.CONDITION_KIND_GRANT: "grant"}
_KIND_FROM_JSON: Final = {v: k for k, v in _KIND_TO_JSON.items()}
_STATE: Final = {
    "waiting": pb.STATE_WAITING,
    "claimed": pb.STATE_CLAIMED,
    "expired": pb.STATE_EXPIRED,
    "burned": pb.STATE_BURNED,
}


def status_of(err: e.ProxyError) -> grpc.StatusCode:
    return STATUS.get(type(err), grpc.StatusCode.INTERNAL)


def _condition(c: pb.Condition) -> dict[str, Any]:
    kind = _KIND_TO_JSON.get(c.kind)
    if kind is None:
        raise e.Invalid("a condition's kind is CONDITION_KIND_SECRET or CONDITION_KIND_GRANT")
    if kind == "secret":
        return {"kind": "secret", "hash": b64u(c.hash)}
    return {"kind": "grant", "issuer": c.issuer, "subject": c.subject}


def _peer(context: Any) -> str:
    """The client's address without its port, as the JSON front keys limits."""
    peer: str = context.peer() or ""
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6"):
        host = rest.rpartition(":")[0]
        return host.strip("[]").replace("%5B", "").replace("%5D", "")
    return peer


class KeyProxyServicer(pb_grpc.KeyProxyServicer):
    def __init__(self, service: ProxyService) -> None:
        self.service = service

    async def _run(self, context: Any, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except e.ProxyError as err:
            await _abort(context, err)
        except (ConnectionError, OSError):
            await _abort(
                context, e.StoreUnavailable("the proxy's store cannot be reached; try again")
            )

    async def Deposit(self, request: pb.DepositRequest, context: Any) -> pb.DepositResponse:
        async def call() -> pb.DepositResponse:
            body: dict[str, Any] = {"blob": b64u(request.blob), "ttl_seconds": request.ttl_seconds}
            if request.conditions:
                body["conditions"] = [_condition(c) for c in request.conditions]
            out = await self.service.deposit(body, client=_peer(context))
            return pb.DepositResponse(token=out["token"], expires_ms=out["expires_ms"])

        return await self._run(context, call)

    async def Status(self, request: pb.StatusRequest, context: Any) -> pb.StatusResponse:
        async def call() -> pb.StatusResponse:
            out = await self.service.status(request.token)
            return pb.StatusResponse(
                state=_STATE[out["state"]],
                expires_ms=out["expires_ms"],
                claimed_ms=out["claimed_ms"] or 0,
                size=out["size"],
                conditions=[_KIND_FROM_JSON[k] for k in out["conditions"]],
            )

        return await self._run(context, call)

    async def Claim(self, request: pb.ClaimRequest, context: Any) -> pb.ClaimResponse:
        async def call() -> pb.ClaimResponse:
            body: Mapping[str, Any] = {
                **({"secret": b64u(request.secret)} if request.secret else {}),
                **({"grant": b64u(request.grant)} if request.grant else {}),
            }
            out = await self.service.claim(request.token, body, client=_peer(context))
            return pb.ClaimResponse(blob=unb64u(out["blob"]))

        return await self._run(context, call)


async def _abort(context: Any, err: e.ProxyError) -> NoReturn:
    metadata: list[tuple[str, str]] = [(CODE_KEY, err.code)]
    for fact in ("attempts_left", "retry_after_ms", "claimed_ms", "expires_ms", "limit"):
        value = err.facts.get(fact)
        if value is not None:
            metadata.append((f"keyproxy-{fact.replace('_', '-')}", str(value)))
    context.set_trailing_metadata(tuple(metadata))
    await context.abort(status_of(err), f"{err.code}: {err.message}")
    raise AssertionError("unreachable: context.abort raises")  # pragma: no cover


async def start_grpc(service: ProxyService, address: str) -> tuple[grpc.aio.Server, int]:
    """Serve `service` on `address` (HOST:PORT, port 0 for a free one),
    plain; returns the started server and its port."""
    limit = service.limits.max_blob_bytes + 64 * 1024
    server = grpc.aio.server(
        options=[("grpc.max_receive_message_length", limit), ("grpc.so_reuseport", 0)]
    )
    pb_grpc.add_KeyProxyServicer_to_server(KeyProxyServicer(service), server)
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    for name in ("", SERVICE_NAME):
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port(address)
    if not port:
        raise OSError(f"cannot listen for gRPC on {address}")
    await server.start()
    return server, port
