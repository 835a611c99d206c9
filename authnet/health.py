"""Health that follows the node's dependencies: the state store and the directory.

A node without its Redis or its database cannot serve a login, yet its ports
still accept connections. Load balancers and clients ask grpc.health.v1 (or
/readyz) which nodes to use, so the answer must follow what the node can
reach: a `HealthWatcher` pings each dependency every `interval_s` with a
short timeout, sets every registered health service to NOT_SERVING while any
ping fails or times out, and back to SERVING once all answer.

A dependency without a `ping()` method (an older store) counts as always up.
Pings return bool; one that raises counts as down. Only the exception's type
is logged: driver messages can name hosts and, in URLs, credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

from authnet.metrics import NodeMetrics

log = logging.getLogger("authnet.health")

Probe = Callable[[], Awaitable[bool]]

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def probe_of(dependency: object) -> Probe:
    """`dependency.ping`, or a probe that always answers True when it has none."""
    ping = getattr(dependency, "ping", None)
    if callable(ping):
        return ping  # type: ignore[no-any-return]

    async def always() -> bool:
        return True

    return always


class HealthWatcher:
    """Pings `probes` every `interval_s` and sets each (servicer, service name)
    in `targets` to SERVING or NOT_SERVING accordingly."""

    def __init__(
        self,
        probes: Mapping[str, Probe],
        targets: Sequence[tuple[HealthServicer, str]],
        *,
        interval_s: float = 1.0,
        timeout_s: float = 0.5,
        metrics: NodeMetrics | None = None,
    ) -> None:
        if interval_s <= 0 or timeout_s <= 0:
            raise ValueError("health interval and timeout must be positive")
        self.probes = dict(probes)
        self.targets = list(targets)
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.metrics = metrics
        # Until the first check: serving, as the node is when it starts.
        self._up: dict[str, bool] = dict.fromkeys(self.probes, True)
        self._serving = True
        self._task: asyncio.Task[None] | None = None
        # Pings that timed out and have not finished yet, by dependency.
        self._pending: dict[str, asyncio.Future[bool]] = {}

    def is_serving(self) -> bool:
        return self._serving

    def status(self) -> dict[str, bool]:
        """Each dependency's last answer (True: reachable)."""
        return dict(self._up)

    def describe(self) -> tuple[bool, str]:
        """(serving, why): for /readyz."""
        down = sorted(name for name, up in self._up.items() if not up)
        if not down:
            return True, "ok"
        return False, "unreachable: " + ", ".join(down)

    async def _ask(self, name: str, probe: Probe) -> bool:
        """One ping in its own task. A ping that times out is cancelled but not
        awaited: a driver cleaning up a stalled connection can ignore the
        cancellation for as long as the stall lasts, and the watcher must keep
        reporting meanwhile. Until that ping ends, the dependency counts as
        down and no second ping piles up behind it."""
        previous = self._pending.get(name)
        if previous is not None:
            if not previous.done():
                return False
            del self._pending[name]
            if not previous.cancelled():
                previous.exception()  # retrieved: the outcome is stale, not reported
        task = asyncio.ensure_future(probe())
        done, _ = await asyncio.wait({task}, timeout=self.timeout_s)
        if not done:
            task.cancel()
            self._pending[name] = task
            if self._up.get(name, True):
                log.warning("%s ping timed out after %g s", name, self.timeout_s)
            return False
        err = None if task.cancelled() else task.exception()
        if err is not None:
            if self._up.get(name, True):
                log.warning("%s ping failed (%s)", name, type(err).__name__)
            return False
        return bool(task.result())

    async def check(self) -> bool:
        """Ping every dependency once, apply the result; True when serving."""
        names = list(self.probes)
        answers = await asyncio.gather(*(self._ask(n, self.probes[n]) for n in names))
        self._up = dict(zip(names, answers, strict=True))
        if self.metrics is not None:
            for name, up in self._up.items():
                self.metrics.set_dependency(name, up)
        serving = all(answers)
        if serving != self._serving:
            self._serving = serving
            if serving:
                log.info("dependencies reachable again: SERVING")
            else:
                log.warning("%s: NOT_SERVING", self.describe()[1])
            await self._apply()
        return serving

    async def _apply(self) -> None:
        status = SERVING if self._serving else NOT_SERVING
        for servicer, service in self.targets:
            await servicer.set(service, status)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.check()
            except Exception:
                log.exception("health check failed")

    async def start(self) -> None:
        """Check once now (so a node that starts without its Redis never says
        SERVING for long), then every interval in the background."""
        await self.check()
        self._task = asyncio.create_task(self._run(), name="authnet-health")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        stuck = list(self._pending.values())
        self._pending.clear()
        if stuck:
            # Closing the store and the directory (the node does, next) ends them.
            await asyncio.wait(stuck, timeout=self.timeout_s)
            for each in stuck:
                if each.done() and not each.cancelled():
                    each.exception()
