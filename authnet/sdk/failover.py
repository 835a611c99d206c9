"""Calls that fail over between the nodes of a network.

A client (the SP SDK, a token's PassKey API client) is given one address or
several: the nodes of a cluster, or one name that resolves to several
addresses (gRPC then spreads connections over them itself). A call goes to
the node that answered last; when it fails with a retryable error
(`is_retryable`: the node is unreachable, died mid-call, is overloaded, or
its Redis or PostgreSQL is) the call is sent again to the next node, after a
short pause once every node has been tried, up to `RetryPolicy.attempts`
tries. Only then does the caller see the error.

Retrying is safe because every call is safe to repeat (docs/protocol.md,
"Retries"): GetTicket makes another ticket, BeginAuth by the same token gets
a fresh nonce, a CompleteAuth whose answer already authenticated the ticket
succeeds again, and GetPUID(finalize) carries a request id (`authnet-request-id`,
the same on every try) so its retry gets the first try's answer. PutTicket is
the exception: a retry after a lost reply finds the old ticket consumed.

The schedule is a plain generator (`RetryPolicy.schedule`); the blocking and
the asyncio loops that follow it are the only I/O here.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import grpc

from authnet import errors
from authnet.rpc_status import NODE_KEY, REQUEST_ID_KEY, from_rpc_error


def is_retryable(err: errors.AuthnetError) -> bool:
    """Worth sending to another node: the network (or this node's view of its
    state store or directory) was unavailable, never a refusal."""
    return isinstance(err, errors.NetworkUnavailable)


def addresses_of(address: str | Sequence[str]) -> tuple[str, ...]:
    """One address, a comma-separated list, or a sequence of them."""
    items = address.split(",") if isinstance(address, str) else list(address)
    out = tuple(dict.fromkeys(a.strip() for a in items if a and a.strip()))
    if not out:
        raise errors.MalformedInput("no network address given")
    return out


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    # Tries in all, over all nodes (the first included).
    attempts: int = 6
    # Pause after each full round over the nodes, doubling, at most max_pause_s.
    pause_s: float = 0.05
    max_pause_s: float = 1.0

    def schedule(self, nodes: int, first: int) -> Iterator[tuple[int, float]]:
        """(node index, seconds to wait before trying it), for every try."""
        for n in range(max(1, self.attempts)):
            rounds, offset = divmod(n, nodes)
            pause = 0.0
            if n and offset == 0:
                pause = min(self.max_pause_s, self.pause_s * 2 ** (rounds - 1))
            yield (first + offset) % nodes, pause


def _node_of(metadata: Any) -> str:
    for key, value in metadata or ():
        if key == NODE_KEY:
            return str(value)
    return ""


def new_request_id() -> str:
    return secrets.token_hex(16)


class _Nodes:
    """The addresses and their stubs (made on first use), and which one is current."""

    def __init__(
        self,
        addresses: str | Sequence[str],
        *,
        channel: Callable[[str], Any],
        stub: Callable[[Any], Any],
        policy: RetryPolicy | None = None,
    ) -> None:
        self.addresses = addresses_of(addresses)
        self.policy = policy or RetryPolicy()
        self._make_channel = channel
        self._make_stub = stub
        self.channels: dict[int, Any] = {}
        self._stubs: dict[int, Any] = {}
        self.current = 0
        # The node id that gave the last answer (trailing metadata), for
        # operators and for `authnet demo --nodes`.
        self.last_node = ""
        self.retried = 0

    def stub(self, i: int) -> Any:
        stub = self._stubs.get(i)
        if stub is None:
            self.channels[i] = channel = self._make_channel(self.addresses[i])
            stub = self._stubs[i] = self._make_stub(channel)
        return stub

    def tries(self) -> Iterator[tuple[int, float]]:
        return self.policy.schedule(len(self.addresses), self.current)


NodesT = TypeVar("NodesT", bound="_Nodes")


class ReportsNodes(Generic[NodesT]):
    """For a client built on AsyncNodes or SyncNodes (its `_nodes`): which
    node answered last, and how many calls it sent again."""

    _nodes: NodesT

    @property
    def last_node(self) -> str:
        """The node that gave the last answer."""
        return self._nodes.last_node

    @property
    def retried(self) -> int:
        """How many calls were sent again to another node, so far."""
        return self._nodes.retried


class AsyncNodes(_Nodes):
    # `deadline_s` is each try's gRPC deadline, not a bound on the whole call.
    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()
        self.channels.clear()
        self._stubs.clear()

    async def call(
        self, name: str, request: Any, *, deadline_s: float, metadata: tuple[tuple[str, str], ...]
    ) -> Any:
        last: errors.AuthnetError | None = None
        for n, (i, pause) in enumerate(self.tries()):
            if pause:
                await asyncio.sleep(pause)
            if n:
                self.retried += 1
            call = getattr(self.stub(i), name)(request, timeout=deadline_s, metadata=metadata)
            try:
                response = await call
            except grpc.RpcError as rpc_err:
                err = from_rpc_error(rpc_err)
                self.last_node = _node_of(rpc_err.trailing_metadata())
                if not is_retryable(err):
                    raise err from None
                last = err
                continue
            self.current = i
            self.last_node = _node_of(await call.trailing_metadata())
            return response
        assert last is not None
        raise last


class SyncNodes(_Nodes):
    def close(self) -> None:
        for channel in self.channels.values():
            channel.close()
        self.channels.clear()
        self._stubs.clear()

    def call(
        self, name: str, request: Any, *, deadline_s: float, metadata: tuple[tuple[str, str], ...]
    ) -> Any:
        last: errors.AuthnetError | None = None
        for n, (i, pause) in enumerate(self.tries()):
            if pause:
                time.sleep(pause)
            if n:
                self.retried += 1
            try:
                response, call = getattr(self.stub(i), name).with_call(
                    request, timeout=deadline_s, metadata=metadata
                )
            except grpc.RpcError as rpc_err:
                err = from_rpc_error(rpc_err)
                self.last_node = _node_of(rpc_err.trailing_metadata())
                if not is_retryable(err):
                    raise err from None
                last = err
                continue
            self.current = i
            self.last_node = _node_of(call.trailing_metadata())
            return response
        assert last is not None
        raise last


__all__ = [
    "REQUEST_ID_KEY",
    "AsyncNodes",
    "ReportsNodes",
    "RetryPolicy",
    "SyncNodes",
    "addresses_of",
    "is_retryable",
    "new_request_id",
]
