"""Python SDK for service providers: every SP API call, sync and async.

    from authnet.sdk import SPClient
    sp = SPClient.from_credentials("path/to/sp-folder")
    t = sp.get_ticket(auth_types="c")          # hand t.ticket to the browser
    ...                                        # the browser reports success
    who = sp.get_puid(t.ticket, finalize=True)  # who.puid, who.key_id

Failures raise the typed errors of `authnet.errors` (TicketExpired,
TicketNotFound, VersionConflict, NetworkUnavailable, ...), never grpc.RpcError.
Both clients share the request builders and response parsers below; they
differ only in how the call is awaited.

A cluster: pass every node's SP address (`addresses=[...]`, or a
comma-separated string); a call that fails with a retryable error is sent to
the next node (`authnet.sdk.failover`). `last_node` names the node that
gave the last answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import grpc

from authnet.sdk.credentials import SpCredentials
from authnet.sdk.failover import (
    REQUEST_ID_KEY,
    AsyncNodes,
    ReportsNodes,
    RetryPolicy,
    SyncNodes,
    addresses_of,
    new_request_id,
)
from authnet.v1 import sp_pb2, sp_pb2_grpc

DEFAULT_TIMEOUT_S = 10.0
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Ticket:
    ticket: str
    ttl_seconds: int
    expires_at_unix_ms: int
    gateway_url: str
    passkey_address: str
    auth_types: str
    # Every gateway of the network, gateway_url first (a browser resumes its
    # wait on the next one when a connection breaks).
    gateway_urls: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Ticket(ttl_seconds={self.ttl_seconds}, auth_types={self.auth_types!r}, <hidden>)"


@dataclass(frozen=True, kw_only=True)
class Identity:
    puid: str
    key_id: str
    auth_types: str


@dataclass(frozen=True, kw_only=True)
class Data:
    data: bytes
    version: int


@dataclass(frozen=True, kw_only=True)
class Lock:
    lock_id: str
    expires_at_unix_ms: int


def _ticket(r: sp_pb2.TicketResponse) -> Ticket:
    return Ticket(
        ticket=r.ticket,
        ttl_seconds=r.ttl_seconds,
        expires_at_unix_ms=r.expires_at_unix_ms,
        gateway_url=r.gateway_url,
        passkey_address=r.passkey_address,
        auth_types=r.auth_types,
        gateway_urls=tuple(r.gateway_urls) or (r.gateway_url,),
    )


@dataclass(frozen=True)
class _Call(Generic[T]):
    """One SP API call: method name, request message, response parser."""

    name: str
    request: Any
    parse: Callable[[Any], T]


def _get_ticket(ttl_seconds: int, auth_types: str) -> _Call[Ticket]:
    req = sp_pb2.GetTicketRequest(ttl_seconds=ttl_seconds, auth_types=auth_types)
    return _Call("GetTicket", req, _ticket)


def _put_ticket(ticket: str, ttl_seconds: int, auth_types: str) -> _Call[Ticket]:
    req = sp_pb2.PutTicketRequest(ticket=ticket, ttl_seconds=ttl_seconds, auth_types=auth_types)
    return _Call("PutTicket", req, _ticket)


def _get_puid(ticket: str, finalize: bool) -> _Call[Identity]:
    return _Call(
        "GetPUID",
        sp_pb2.GetPUIDRequest(ticket=ticket, finalize=finalize),
        lambda r: Identity(puid=r.puid, key_id=r.key_id, auth_types=r.auth_types),
    )


def _read_data(ticket: str, container: str) -> _Call[Data]:
    return _Call(
        "ReadData",
        sp_pb2.ReadDataRequest(ticket=ticket, container=container),
        lambda r: Data(data=r.data, version=r.version),
    )


def _write_data(ticket: str, data: bytes, expected_version: int, container: str) -> _Call[int]:
    req = sp_pb2.WriteDataRequest(
        ticket=ticket, container=container, data=data, expected_version=expected_version
    )
    return _Call("WriteData", req, lambda r: int(r.version))


def _lock(ticket: str, container: str, timeout_seconds: int) -> _Call[Lock]:
    req = sp_pb2.LockRequest(ticket=ticket, container=container, timeout_seconds=timeout_seconds)
    return _Call(
        "Lock", req, lambda r: Lock(lock_id=r.lock_id, expires_at_unix_ms=r.expires_at_unix_ms)
    )


def _unlock(ticket: str, lock_id: str, container: str) -> _Call[None]:
    req = sp_pb2.UnlockRequest(ticket=ticket, container=container, lock_id=lock_id)
    return _Call("Unlock", req, lambda r: None)


def _credentials(creds: SpCredentials) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=creds.ca_pem,
        private_key=creds.key_pem,
        certificate_chain=creds.certificate_pem,
    )


class _Base:
    def __init__(
        self, creds: SpCredentials, address: str | Sequence[str] | None, timeout: float
    ) -> None:
        self.credentials = creds
        self.addresses = addresses_of(address or creds.sp_address)
        self.address = self.addresses[0]
        self.timeout = timeout

    @property
    def spid(self) -> bytes:
        """This SP's SPID, as its certificate states it."""
        return self.credentials.spid


def _metadata() -> tuple[tuple[str, str], ...]:
    # One id per logical call, the same on each retry (GetPUID(finalize) uses it).
    return ((REQUEST_ID_KEY, new_request_id()),)


class SPClient(ReportsNodes[SyncNodes], _Base):
    """Blocking client. Thread-safe; keep one per process."""

    def __init__(
        self,
        creds: SpCredentials,
        *,
        address: str | Sequence[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(creds, address, timeout)
        channel_creds = _credentials(creds)
        self._nodes = SyncNodes(
            self.addresses,
            channel=lambda a: grpc.secure_channel(a, channel_creds),
            stub=sp_pb2_grpc.ServiceProviderStub,
            policy=retry,
        )

    @classmethod
    def from_credentials(cls, folder: Path | str, **kw: Any) -> SPClient:
        return cls(SpCredentials.load(folder), **kw)

    def _run(self, call: _Call[T]) -> T:
        return call.parse(
            self._nodes.call(call.name, call.request, deadline_s=self.timeout, metadata=_metadata())
        )

    def get_ticket(self, *, ttl_seconds: int = 0, auth_types: str = "c") -> Ticket:
        """A new ticket; `auth_types` "c" asks for a client key, "p" for the PIN."""
        return self._run(_get_ticket(ttl_seconds, auth_types))

    def put_ticket(self, ticket: str, *, ttl_seconds: int = 0, auth_types: str = "") -> Ticket:
        """Renew an authenticated ticket: returns a new one; the old one dies."""
        return self._run(_put_ticket(ticket, ttl_seconds, auth_types))

    def get_puid(self, ticket: str, *, finalize: bool = False) -> Identity:
        return self._run(_get_puid(ticket, finalize))

    def read_data(self, ticket: str, *, container: str = "") -> Data:
        return self._run(_read_data(ticket, container))

    def write_data(
        self, ticket: str, data: bytes, *, expected_version: int, container: str = ""
    ) -> int:
        return self._run(_write_data(ticket, data, expected_version, container))

    def lock(self, ticket: str, *, container: str = "", timeout_seconds: int = 0) -> Lock:
        return self._run(_lock(ticket, container, timeout_seconds))

    def unlock(self, ticket: str, lock_id: str, *, container: str = "") -> None:
        self._run(_unlock(ticket, lock_id, container))

    def close(self) -> None:
        self._nodes.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncSPClient(ReportsNodes[AsyncNodes], _Base):
    """asyncio client (grpc.aio). Create it inside the event loop that uses it."""

    def __init__(
        self,
        creds: SpCredentials,
        *,
        address: str | Sequence[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(creds, address, timeout)
        channel_creds = _credentials(creds)
        self._nodes = AsyncNodes(
            self.addresses,
            channel=lambda a: grpc.aio.secure_channel(a, channel_creds),
            stub=sp_pb2_grpc.ServiceProviderStub,
            policy=retry,
        )

    @classmethod
    def from_credentials(cls, folder: Path | str, **kw: Any) -> AsyncSPClient:
        return cls(SpCredentials.load(folder), **kw)

    async def _run(self, call: _Call[T]) -> T:
        return call.parse(
            await self._nodes.call(
                call.name, call.request, deadline_s=self.timeout, metadata=_metadata()
            )
        )

    async def get_ticket(self, *, ttl_seconds: int = 0, auth_types: str = "c") -> Ticket:
        return await self._run(_get_ticket(ttl_seconds, auth_types))

    async def put_ticket(
        self, ticket: str, *, ttl_seconds: int = 0, auth_types: str = ""
    ) -> Ticket:
        return await self._run(_put_ticket(ticket, ttl_seconds, auth_types))

    async def get_puid(self, ticket: str, *, finalize: bool = False) -> Identity:
        return await self._run(_get_puid(ticket, finalize))

    async def read_data(self, ticket: str, *, container: str = "") -> Data:
        return await self._run(_read_data(ticket, container))

    async def write_data(
        self, ticket: str, data: bytes, *, expected_version: int, container: str = ""
    ) -> int:
        return await self._run(_write_data(ticket, data, expected_version, container))

    async def lock(self, ticket: str, *, container: str = "", timeout_seconds: int = 0) -> Lock:
        return await self._run(_lock(ticket, container, timeout_seconds))

    async def unlock(self, ticket: str, lock_id: str, *, container: str = "") -> None:
        await self._run(_unlock(ticket, lock_id, container))

    async def close(self) -> None:
        await self._nodes.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
