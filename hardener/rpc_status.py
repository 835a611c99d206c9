"""Hardener errors <-> gRPC statuses: the one place either direction is translated.

Server side, `abort_with` turns a HardenerError into a status code, its
message, and trailing metadata `hardener-error` (the stable code) plus
`hardener-error-detail-bin` (a serialized hardener.v1.ErrorDetail). Client
side, `from_rpc_error` rebuilds the same HardenerError subclass.
"""

from __future__ import annotations

from typing import Any, NoReturn

import grpc
from google.protobuf.message import DecodeError

from hardener import errors as e
from hardener.v1 import hardener_pb2 as pb

CODE_KEY = "hardener-error"
DETAIL_KEY = "hardener-error-detail-bin"

_STATUS: dict[type[e.HardenerError], grpc.StatusCode] = {
    e.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    e.CallerUnknown: grpc.StatusCode.UNAUTHENTICATED,
    e.CallerRevoked: grpc.StatusCode.PERMISSION_DENIED,
    e.UserLocked: grpc.StatusCode.FAILED_PRECONDITION,
    e.UserBackoff: grpc.StatusCode.RESOURCE_EXHAUSTED,
    e.RateLimited: grpc.StatusCode.RESOURCE_EXHAUSTED,
    e.KeyVersionUnknown: grpc.StatusCode.NOT_FOUND,
    e.KeyVersionRetired: grpc.StatusCode.FAILED_PRECONDITION,
    e.AttemptUnknown: grpc.StatusCode.NOT_FOUND,
    e.AttemptUsed: grpc.StatusCode.FAILED_PRECONDITION,
    e.AttemptExpired: grpc.StatusCode.FAILED_PRECONDITION,
    e.SignatureInvalid: grpc.StatusCode.PERMISSION_DENIED,
    e.NotEnrolled: grpc.StatusCode.FAILED_PRECONDITION,
    e.AlreadyEnrolled: grpc.StatusCode.FAILED_PRECONDITION,
    e.UnwrapFailed: grpc.StatusCode.INVALID_ARGUMENT,
    e.StoreError: grpc.StatusCode.UNAVAILABLE,
    e.KeystoreError: grpc.StatusCode.UNAVAILABLE,
}


def status_of(err: e.HardenerError) -> grpc.StatusCode:
    for cls in type(err).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return grpc.StatusCode.INTERNAL


def detail_of(err: e.HardenerError) -> pb.ErrorDetail:
    return pb.ErrorDetail(
        code=err.code,
        message=err.message,
        hint=err.hint,
        attempts_left=err.attempts_left,
        retry_after_ms=err.retry_after_ms,
        key_version=err.key_version,
    )


def error_from_detail(d: pb.ErrorDetail) -> e.HardenerError:
    cls = e.BY_CODE.get(d.code, e.HardenerError)
    return cls(
        d.message or None,
        hint=d.hint,
        attempts_left=d.attempts_left,
        retry_after_ms=d.retry_after_ms,
        key_version=d.key_version,
    )


async def abort_with(context: Any, err: e.HardenerError) -> NoReturn:
    """Abort the current RPC (grpc.aio servicer context) with `err`."""
    context.set_trailing_metadata(
        ((CODE_KEY, err.code), (DETAIL_KEY, detail_of(err).SerializeToString()))
    )
    await context.abort(status_of(err), err.message)
    raise AssertionError("unreachable: context.abort raises")  # pragma: no cover


_TRANSPORT = {
    grpc.StatusCode.UNAVAILABLE: "the hardener could not be reached",
    grpc.StatusCode.DEADLINE_EXCEEDED: "the hardener did not answer in time",
}
_REACH_HINT = (
    "is the hardener running at this address? If it is, it refused the TLS handshake:"
    " the caller's certificate must be one this hardener's CA issued"
    " (`hardener caller add NAME --out DIR`), and ca.pem this hardener's CA"
)


def from_rpc_error(err: grpc.RpcError) -> e.HardenerError:
    """The HardenerError a failed call stands for (clients only)."""
    code: grpc.StatusCode = err.code()
    details: str = err.details() or ""
    for key, value in err.trailing_metadata() or ():
        if key == DETAIL_KEY and isinstance(value, bytes):
            d = pb.ErrorDetail()
            try:
                d.ParseFromString(value)
            except DecodeError:  # a damaged detail: fall back to the status
                break
            return error_from_detail(d)
    if code in _TRANSPORT:
        return e.HardenerUnavailable(
            _TRANSPORT[code] + (f" ({details})" if details else ""),
            hint=_REACH_HINT if code is grpc.StatusCode.UNAVAILABLE else "",
        )
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        return e.RateLimited(details or None)
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        return e.InvalidArgument(details or None)
    return e.HardenerError(f"{code.name}: {details}" if details else code.name)
