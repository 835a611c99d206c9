"""The one wrapper every servicer method goes through: domain errors become
gRPC statuses (via authnet.rpc_status), anything unexpected becomes INTERNAL
with a reference number and a logged traceback, never the exception text."""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from authnet.errors import AuthnetError
from authnet.rpc_status import NODE_KEY, abort_with

log = logging.getLogger("authnet.rpc")

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Method = Callable[[Any, Req, Any], Awaitable[Resp]]


def rpc(method: Method[Req, Resp]) -> Method[Req, Resp]:
    """Every answer, success or error, names the node that gave it (trailing
    metadata `authnet-node`), so clients and operators can tell which node of
    a cluster served a call."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Req, context: Any) -> Resp:
        node = ((NODE_KEY, self.network.node_id),)
        try:
            response = await method(self, request, context)
        except AuthnetError as err:
            log.info("%s refused: %s", method.__name__, err.code)
            await abort_with(context, err, extra=node)
        except grpc.aio.AbortError:
            raise
        except Exception:
            ref = secrets.token_hex(4)
            log.exception("%s failed (ref %s)", method.__name__, ref)
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error (ref {ref})")
        else:
            context.set_trailing_metadata(node)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    return wrapper
