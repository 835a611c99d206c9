"""Prometheus metrics of one node, served on their own port at /metrics.

Each node owns a `CollectorRegistry` (not prometheus-client's global one):
tests and `authnet demo --nodes 2` run several nodes in one process, and each
must report only its own calls. The endpoint is a second aiohttp application
in the node's event loop, not prometheus-client's thread server, so a scrape
costs no thread and sees the loop as the calls do.

What is counted, and where:

- `authnet_logins_total{outcome}`: every end of a login (`counts_login` on the
  Network methods that finish one): "authenticated", "rejected", or the
  error code that failed it (codes come from `authnet.errors.BY_CODE`, so the
  label's values are bounded; anything else is "internal").
- `authnet_rpc_duration_seconds{service,method,code}`: every unary gRPC call,
  by a server interceptor (`RpcMetrics`); streaming calls (health Watch,
  reflection) are not timed. Unknown methods are not recorded, so a client
  cannot grow the label set.
- `authnet_state_errors_total`, `authnet_directory_errors_total`: calls that
  failed because the state store or the directory was unreachable.
- `authnet_gateway_websockets_open`, `authnet_dependency_up{dependency}`,
  `authnet_node_info{node_id,version}`, and the process_* collector.

Label values never carry a ticket, key, SP name or address.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.metadata
import time
from collections.abc import Awaitable, Callable, Sized
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import grpc
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    generate_latest,
)

from authnet import errors
from authnet.rpc_status import CODE_KEY

# Seconds. A login's calls take 1-20 ms on one core; the tail reaches seconds
# only when the state store or the directory stalls.
RPC_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
AUTHENTICATED = "authenticated"
REJECTED = "rejected"
INTERNAL = "internal"


def _version() -> str:
    try:
        return importlib.metadata.version("authnet")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _unavailable_codes(name: str, fallback: str) -> frozenset[str]:
    """The error codes that mean "this backend was unreachable": `name`
    (errors.StateUnavailable / DirectoryUnavailable) and its subclasses. Before
    those classes exist, any NetworkUnavailable whose code mentions `fallback`."""
    base = getattr(errors, name, None)
    if isinstance(base, type) and issubclass(base, errors.AuthnetError):
        return frozenset(c.code for c in errors.ALL_ERRORS if issubclass(c, base))
    return frozenset(
        c.code
        for c in errors.ALL_ERRORS
        if issubclass(c, errors.NetworkUnavailable) and fallback in c.code
    )


STATE_UNAVAILABLE_CODES = _unavailable_codes("StateUnavailable", "state")
DIRECTORY_UNAVAILABLE_CODES = _unavailable_codes("DirectoryUnavailable", "directory")


class NodeMetrics:
    """One node's metrics and the registry they live in."""

    def __init__(self, *, node_id: str, version: str | None = None) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.logins = Counter(
            "authnet_logins",
            "Logins that ended, by outcome: authenticated, rejected, or the error code.",
            ["outcome"],
            registry=reg,
        )
        for outcome in (AUTHENTICATED, REJECTED):
            self.logins.labels(outcome)
        self.rpc_duration = Histogram(
            "authnet_rpc_duration_seconds",
            "Server time of unary gRPC calls, by service, method and status code.",
            ["service", "method", "code"],
            buckets=RPC_BUCKETS,
            registry=reg,
        )
        self.websockets_open = Gauge(
            "authnet_gateway_websockets_open",
            "Browser websockets open on this node's gateway.",
            registry=reg,
        )
        self.state_errors = Counter(
            "authnet_state_errors",
            "Calls that failed because the state store (Redis) was unreachable.",
            registry=reg,
        )
        self.directory_errors = Counter(
            "authnet_directory_errors",
            "Calls that failed because the directory (SQL database) was unreachable.",
            registry=reg,
        )
        self.dependency_up = Gauge(
            "authnet_dependency_up",
            "1 while the health watcher's last ping of a dependency answered, else 0.",
            ["dependency"],
            registry=reg,
        )
        Info("authnet_node", "This node.", registry=reg).info(
            {"node_id": node_id, "version": version or _version()}
        )
        ProcessCollector(registry=reg)
        # Children by label tuple: labels() takes a lock and builds a key each call.
        self._rpc_children: dict[tuple[str, str, str], Any] = {}

    # --- counting ----------------------------------------------------------

    def login(self, outcome: str) -> None:
        self.logins.labels(outcome).inc()

    def login_failed(self, err: BaseException) -> None:
        # Not count_error: the call's boundary (RpcMetrics, the gateway) counts
        # state and directory errors once, for every method.
        self.logins.labels(_outcome_of(err)).inc()

    def count_error(self, err: BaseException) -> None:
        """Count `err` as a state / directory error when it is one (the gateway's
        error path calls this; gRPC calls are counted by RpcMetrics)."""
        if isinstance(err, errors.AuthnetError):
            self.count_error_code(err.code)

    def count_error_code(self, code: str) -> None:
        if code in STATE_UNAVAILABLE_CODES:
            self.state_errors.inc()
        elif code in DIRECTORY_UNAVAILABLE_CODES:
            self.directory_errors.inc()

    def observe_rpc(self, service: str, method: str, code: str, seconds: float) -> None:
        key = (service, method, code)
        child = self._rpc_children.get(key)
        if child is None:
            child = self._rpc_children[key] = self.rpc_duration.labels(*key)
        child.observe(seconds)

    def watch_websockets(self, sockets: Sized) -> None:
        """Report len(sockets) at each scrape (the gateway's set of open sockets)."""
        self.websockets_open.set_function(lambda: float(len(sockets)))

    def set_dependency(self, name: str, up: bool) -> None:
        self.dependency_up.labels(name).set(1.0 if up else 0.0)

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)


def _outcome_of(err: BaseException) -> str:
    """The login outcome label for `err`: the code of the nearest class registered
    in authnet.errors (a bounded set), else "internal"."""
    if isinstance(err, errors.AuthnetError):
        for cls in type(err).__mro__:
            code = cls.__dict__.get("code")
            if isinstance(code, str) and errors.BY_CODE.get(code) is cls:
                return code
    return INTERNAL


# --- logins, counted on the Network methods that end one -----------------------


class _HasMetrics(Protocol):
    metrics: NodeMetrics


S = TypeVar("S", bound=_HasMetrics)
P = ParamSpec("P")
R = TypeVar("R")
_Method = Callable[Concatenate[S, P], Awaitable[R]]


def counts_login(success: str) -> Callable[[_Method[S, P, R]], _Method[S, P, R]]:
    """Count a login outcome for each call of the decorated method: `success`
    when it returns, the error's code when it raises (cancellation is not an
    outcome: the caller went away)."""

    def decorate(method: _Method[S, P, R]) -> _Method[S, P, R]:
        @functools.wraps(method)
        async def counted(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
            try:
                result = await method(self, *args, **kwargs)
            except Exception as err:
                self.metrics.login_failed(err)
                raise
            self.metrics.login(success)
            return result

        return counted

    return decorate


# --- gRPC: every unary call timed ---------------------------------------------------


def _status_name(code: object, default: str) -> str:
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    if isinstance(code, int):
        for each in grpc.StatusCode:
            if each.value[0] == code:
                return str(each.name)
    return default


class RpcMetrics(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Times every unary call and counts the state / directory errors it ended
    with (read from the `authnet-error` trailing metadata the servicers set)."""

    def __init__(self, metrics: NodeMetrics) -> None:
        self.metrics = metrics
        # method path -> (the servicer's handler, its timed wrapper): built once
        # per method, not per call (the login path makes four calls).
        self._wrapped: dict[str, tuple[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[Any]],
        handler_call_details: Any,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        full: str = handler_call_details.method
        cached = self._wrapped.get(full)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._timed(full, handler)
        self._wrapped[full] = (handler, wrapped)
        return wrapped

    def _timed(self, full: str, handler: Any) -> Any:
        service, _, method = full.lstrip("/").rpartition("/")
        inner = handler.unary_unary
        metrics = self.metrics

        async def timed(request: Any, context: Any) -> Any:
            started = time.perf_counter()
            default = "UNKNOWN"
            try:
                response = await inner(request, context)
                default = "OK"
                return response
            except grpc.aio.AbortError:
                raise
            except asyncio.CancelledError:
                default = "CANCELLED"
                raise
            finally:
                metrics.observe_rpc(
                    service,
                    method,
                    _status_name(context.code(), default),
                    time.perf_counter() - started,
                )
                for key, value in context.trailing_metadata() or ():
                    if key == CODE_KEY and isinstance(value, str):
                        metrics.count_error_code(value)

        return grpc.unary_unary_rpc_method_handler(
            timed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


# --- the endpoint ------------------------------------------------------------------


def make_app(
    metrics: NodeMetrics, *, ready: Callable[[], tuple[bool, str]] | None = None
) -> web.Application:
    """GET /metrics (Prometheus text format) and GET /readyz (200 while the
    node's dependencies answer, 503 with what is unreachable otherwise)."""
    app = web.Application()

    async def scrape(_: web.Request) -> web.Response:
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def readyz(_: web.Request) -> web.Response:
        ok, why = ready() if ready is not None else (True, "ok")
        return web.Response(status=200 if ok else 503, text=why + "\n")

    app.router.add_get("/metrics", scrape)
    app.router.add_get("/readyz", readyz)
    return app
