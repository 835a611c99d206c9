"""Domain errors <-> gRPC statuses: the one place either direction is translated.

Server side, `abort_with` turns an AuthnetError into a status code, its message,
and trailing metadata `authnet-error` (the stable code) plus
`authnet-error-detail` (JSON of public facts such as a current version). Client
side, `from_rpc_error` rebuilds the same AuthnetError subclass, so SDK users
catch `TicketExpired`, not `grpc.RpcError`.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

import grpc

from authnet import errors as e

CODE_KEY = "authnet-error"
DETAIL_KEY = "authnet-error-detail"
# Which node of the network answered (every answer carries it).
NODE_KEY = "authnet-node"
# The client's id for one logical call, the same on every retry: lets the
# network answer a retried GetPUID(finalize) as it answered the first try.
REQUEST_ID_KEY = "authnet-request-id"

_STATUS: dict[type[e.AuthnetError], grpc.StatusCode] = {
    e.MalformedInput: grpc.StatusCode.INVALID_ARGUMENT,
    e.NotAuthenticated: grpc.StatusCode.UNAUTHENTICATED,
    e.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    e.TicketNotFound: grpc.StatusCode.NOT_FOUND,
    e.TicketExpired: grpc.StatusCode.FAILED_PRECONDITION,
    e.TicketConsumed: grpc.StatusCode.FAILED_PRECONDITION,
    e.TicketRejected: grpc.StatusCode.FAILED_PRECONDITION,
    e.TicketNotAuthenticated: grpc.StatusCode.FAILED_PRECONDITION,
    e.TicketStateInvalid: grpc.StatusCode.FAILED_PRECONDITION,
    e.BrowserNotWaiting: grpc.StatusCode.FAILED_PRECONDITION,
    e.BrowserKeyMismatch: grpc.StatusCode.FAILED_PRECONDITION,
    e.FactorNotProven: grpc.StatusCode.FAILED_PRECONDITION,
    e.ChallengeInvalid: grpc.StatusCode.FAILED_PRECONDITION,
    e.SignatureInvalid: grpc.StatusCode.UNAUTHENTICATED,
    e.TokenUnknown: grpc.StatusCode.NOT_FOUND,
    e.TokenRevoked: grpc.StatusCode.PERMISSION_DENIED,
    e.LastToken: grpc.StatusCode.FAILED_PRECONDITION,
    e.VersionConflict: grpc.StatusCode.ABORTED,
    e.LockHeld: grpc.StatusCode.ABORTED,
    e.LockNotHeld: grpc.StatusCode.FAILED_PRECONDITION,
    e.NetworkUnavailable: grpc.StatusCode.UNAVAILABLE,
    e.DirectoryUnavailable: grpc.StatusCode.UNAVAILABLE,
    e.StateUnavailable: grpc.StatusCode.UNAVAILABLE,
    e.RateLimited: grpc.StatusCode.RESOURCE_EXHAUSTED,
    e.PinLocked: grpc.StatusCode.FAILED_PRECONDITION,
    e.HardenerNotConfigured: grpc.StatusCode.FAILED_PRECONDITION,
    e.HardenerRefused: grpc.StatusCode.FAILED_PRECONDITION,
    e.HardenerUnavailable: grpc.StatusCode.UNAVAILABLE,
}


def status_of(err: e.AuthnetError) -> grpc.StatusCode:
    for cls in type(err).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return grpc.StatusCode.UNKNOWN


def trailing_metadata(err: e.AuthnetError) -> tuple[tuple[str, str], ...]:
    md: list[tuple[str, str]] = [(CODE_KEY, err.code)]
    if err.detail:
        md.append((DETAIL_KEY, json.dumps(err.detail, separators=(",", ":"))))
    return tuple(md)


async def abort_with(
    context: Any, err: e.AuthnetError, *, extra: tuple[tuple[str, str], ...] = ()
) -> NoReturn:
    """Abort the current RPC (grpc.aio servicer context) with `err`."""
    context.set_trailing_metadata(trailing_metadata(err) + extra)
    await context.abort(status_of(err), err.message)
    raise AssertionError("unreachable: context.abort raises")  # pragma: no cover


_TRANSPORT = {
    grpc.StatusCode.UNAVAILABLE: "the authnet network could not be reached",
    grpc.StatusCode.DEADLINE_EXCEEDED: "the authnet network did not answer in time",
}


_OVERLOAD = {
    grpc.StatusCode.CANCELLED: (
        "the network node dropped the call before answering it (overloaded, or"
        " shutting down): retry shortly, or on another node"
    ),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (
        "the network node is out of capacity for this call: retry shortly, or on another node"
    ),
}


def from_rpc_error(err: grpc.RpcError) -> e.AuthnetError:
    """The AuthnetError a failed call stands for (clients only)."""
    code: grpc.StatusCode = err.code()
    details: str = err.details() or ""
    md = dict(err.trailing_metadata() or ())
    error_code = md.get(CODE_KEY)
    detail: dict[str, Any] = {}
    if DETAIL_KEY in md:
        try:
            detail = json.loads(md[DETAIL_KEY])
        except ValueError:
            detail = {}
    if isinstance(error_code, str) and error_code in e.BY_CODE:
        return e.BY_CODE[error_code](details or None, **detail)
    hint = f" ({details})" if details else ""
    if code in _TRANSPORT:
        return e.NetworkUnavailable(_TRANSPORT[code] + hint)
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details:
        return e.PayloadTooLarge(f"the message is larger than the network accepts{hint}")
    if code in _OVERLOAD:
        # Statuses with no authnet code come from gRPC itself. A call the
        # caller did not cancel comes back CANCELLED when the server's gRPC
        # backlog is full (grpc.server.max_pending_requests: it drops calls
        # the node has not picked up yet) or the node is shutting down.
        return e.Overloaded(_OVERLOAD[code] + hint)
    if code is grpc.StatusCode.UNAUTHENTICATED:
        return e.NotAuthenticated(details or None)
    return e.AuthnetError(f"{code.name}: {details}" if details else code.name)
