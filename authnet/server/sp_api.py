"""ServiceProvider gRPC service (mTLS only). The caller's SP comes from the
verified client certificate in the TLS auth context, never from a field."""

from __future__ import annotations

from typing import Any

from authnet.directory import ServiceProvider
from authnet.network import IssuedTicket, Network
from authnet.protocol.factors import format_factors
from authnet.rpc_status import REQUEST_ID_KEY
from authnet.server.guard import rpc
from authnet.v1 import sp_pb2, sp_pb2_grpc


def _request_id(context: Any) -> bytes:
    """The client's id for this logical call (same on retries), if it sent one."""
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_KEY and isinstance(value, str) and 16 <= len(value) <= 64:
            return value.encode()
    return b""


class SpServicer(sp_pb2_grpc.ServiceProviderServicer):
    def __init__(self, network: Network) -> None:
        self.network = network

    async def _caller(self, context: Any) -> ServiceProvider:
        pems = context.auth_context().get("x509_pem_cert") or [None]
        return await self.network.sp_for_certificate(pems[0])

    def _ticket(self, it: IssuedTicket) -> sp_pb2.TicketResponse:
        return sp_pb2.TicketResponse(
            ticket=it.ticket,
            ttl_seconds=it.ttl_s,
            expires_at_unix_ms=it.expires_ms,
            gateway_url=self.network.gateway_url,
            passkey_address=self.network.passkey_address,
            auth_types=format_factors(it.factors),
            gateway_urls=self.network.gateway_urls,
        )

    @rpc
    async def GetTicket(self, request: sp_pb2.GetTicketRequest, context: Any) -> Any:
        sp = await self._caller(context)
        return self._ticket(
            await self.network.get_ticket(sp, request.ttl_seconds, request.auth_types)
        )

    @rpc
    async def PutTicket(self, request: sp_pb2.PutTicketRequest, context: Any) -> Any:
        sp = await self._caller(context)
        return self._ticket(
            await self.network.put_ticket(
                sp,
                request.ticket,
                request.ttl_seconds,
                request.auth_types,
                request_id=_request_id(context),
            )
        )

    @rpc
    async def GetPUID(self, request: sp_pb2.GetPUIDRequest, context: Any) -> Any:
        sp = await self._caller(context)
        r = await self.network.get_puid(
            sp, request.ticket, request.finalize, request_id=_request_id(context)
        )
        return sp_pb2.GetPUIDResponse(
            puid=r.puid, key_id=r.key_id, auth_types=format_factors(r.proven)
        )

    @rpc
    async def ReadData(self, request: sp_pb2.ReadDataRequest, context: Any) -> Any:
        sp = await self._caller(context)
        c = await self.network.read_data(sp, request.ticket, request.container)
        return sp_pb2.ReadDataResponse(data=c.data, version=c.version)

    @rpc
    async def WriteData(self, request: sp_pb2.WriteDataRequest, context: Any) -> Any:
        sp = await self._caller(context)
        version = await self.network.write_data(
            sp, request.ticket, request.container, request.data, request.expected_version
        )
        return sp_pb2.WriteDataResponse(version=version)

    @rpc
    async def Lock(self, request: sp_pb2.LockRequest, context: Any) -> Any:
        sp = await self._caller(context)
        lock_id, until = await self.network.lock(
            sp, request.ticket, request.container, request.timeout_seconds
        )
        return sp_pb2.LockResponse(lock_id=lock_id, expires_at_unix_ms=until)

    @rpc
    async def Unlock(self, request: sp_pb2.UnlockRequest, context: Any) -> Any:
        sp = await self._caller(context)
        await self.network.unlock(sp, request.ticket, request.container, request.lock_id)
        return sp_pb2.UnlockResponse()
