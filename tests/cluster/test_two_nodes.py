"""A login whose steps land on different nodes of one cluster.

Two in-process nodes share one data directory, one directory database and
one state store; every step of the login (GetTicket, the browser's wait,
BeginAuth, CompleteAuth, GetPUID) is sent to a chosen node, in several
combinations, and every answer must name the node that gave it. Also: a
CompleteAuth retried on the other node after its first reply was lost
succeeds, and so does a retried GetPUID(finalize) with the same request id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import pytest
import pytest_asyncio

from authnet import errors
from authnet.protocol.ids import browser_key_hash
from authnet.protocol.kc import kc_fingerprint
from authnet.rpc_status import REQUEST_ID_KEY
from authnet.sdk import AsyncSPClient, BrowserSession
from authnet.sdk.credentials import SpCredentials
from authnet.sdk.sp_client import _credentials
from authnet.testing import TestCluster, TestNetwork
from authnet.v1 import sp_pb2, sp_pb2_grpc
from tests.cluster.stores import cluster_kwargs
from tests.helpers import login_with
from tokens import handshake
from tokens import login as flow
from tokens.api import PassKeyApi
from tokens.phone import PhoneKeyStore, PhonePassKey


@pytest_asyncio.fixture(params=["redis", "memory"])
async def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TestCluster]:
    async with cluster_kwargs(request.param) as kwargs, TestCluster(tmp_path, **kwargs) as c:
        yield c


async def _phone(c: TestCluster, tmp_path: Path) -> tuple[PhonePassKey, bytes]:
    token = PhoneKeyStore.create(tmp_path / "phone.json", label="p").unlock()
    async with PassKeyApi(c.passkey_addresses, ca_pem=c.ca_pem) as api:
        token_id, _, _ = await flow.enrol(api, token, label="p")
    return token, token_id


# (GetTicket, browser wait, BeginAuth, CompleteAuth, GetPUID): which node serves each.
ROUTES = [
    (0, 1, 0, 1, 0),
    (1, 0, 1, 0, 1),
    (0, 0, 1, 1, 0),
    (1, 1, 0, 0, 1),
    (0, 1, 1, 0, 1),
]


@pytest.mark.parametrize("route", ROUTES, ids=["-".join(map(str, r)) for r in ROUTES])
async def test_steps_on_different_nodes(
    cluster: TestCluster, tmp_path: Path, route: tuple[int, ...]
) -> None:
    c = cluster
    creds = await c.add_sp("hello", "Hello SP")
    token, token_id = await _phone(c, tmp_path)
    ticket_node, wait_node, begin_node, complete_node, puid_node = route
    ids = [n.network.node_id for n in c.nodes]
    assert len(set(ids)) == 2
    sps = [AsyncSPClient(creds, address=n.addresses.sp) for n in c.nodes]
    apis = [PassKeyApi(n.addresses.passkey, ca_pem=c.ca_pem) for n in c.nodes]
    try:
        t = await sps[ticket_node].get_ticket(auth_types="c")
        assert sps[ticket_node].last_node == ids[ticket_node]
        assert len(t.gateway_urls) == 2
        assert t.gateway_urls[0] == t.gateway_url
        session = BrowserSession(
            ticket=t.ticket,
            spid=creds.spid,
            gateway_url=c.nodes[wait_node].addresses.gateway_url,
            passkey_address=t.passkey_address,
            gateway_urls=t.gateway_urls,
        )
        async with aiohttp.ClientSession() as http, session.waiting(http) as wait:
            assert wait.nodes == [ids[wait_node]]
            payload = session.payload()
            req = await apis[begin_node].begin_auth(
                ticket=t.ticket,
                token_id=token_id,
                browser_key_hash=browser_key_hash(payload.browser_key),
            )
            assert apis[begin_node].last_node == ids[begin_node]
            answer = handshake.respond(payload=payload, request=req, token=token, token_id=token_id)
            await apis[complete_node].complete_auth(answer)
            assert apis[complete_node].last_node == ids[complete_node]
            outcome = await wait.result()
        assert outcome.kc is not None
        assert kc_fingerprint(outcome.kc) == answer.kc_fingerprint
        who = await sps[puid_node].get_puid(t.ticket, finalize=True)
        assert sps[puid_node].last_node == ids[puid_node]
        record = await c.nodes[0].network.directory.get_token(token_id)
        assert record is not None
        assert who.puid == c.nodes[1].network.identity.puid(record.user_id, creds.spid)
        with pytest.raises(errors.TicketConsumed):
            await sps[1 - puid_node].get_puid(t.ticket)
    finally:
        for x in sps:
            await x.close()
        for a in apis:
            await a.close()


async def test_retried_answers_succeed_on_the_other_node(
    cluster: TestCluster, tmp_path: Path
) -> None:
    """The first reply of CompleteAuth and of GetPUID(finalize) is lost (the
    node died after committing): the same request sent to the other node
    succeeds with the same outcome; a different request does not."""
    c = cluster
    creds = await c.add_sp("hello", "Hello SP")
    token, token_id = await _phone(c, tmp_path)
    async with (
        AsyncSPClient(creds, address=c.sp_addresses) as sp,
        PassKeyApi(c.nodes[0].addresses.passkey, ca_pem=c.ca_pem) as api0,
        PassKeyApi(c.nodes[1].addresses.passkey, ca_pem=c.ca_pem) as api1,
        aiohttp.ClientSession() as http,
    ):
        t = await sp.get_ticket(auth_types="c")
        session = BrowserSession.for_ticket(t, creds.spid)
        async with session.waiting(http) as wait:
            payload = session.payload()
            req = await api0.begin_auth(
                ticket=t.ticket,
                token_id=token_id,
                browser_key_hash=browser_key_hash(payload.browser_key),
            )
            answer = handshake.respond(payload=payload, request=req, token=token, token_id=token_id)
            await api0.complete_auth(answer)
            await api1.complete_auth(answer)  # the retry: success, nothing changes
            outcome = await wait.result()
        assert outcome.kc is not None
        assert kc_fingerprint(outcome.kc) == answer.kc_fingerprint

        # A GetPUID(finalize) and its retry, with the same request id, on each node.
        raw = [sp_pb2_stub(n, creds) for n in c.nodes]
        rid = ((REQUEST_ID_KEY, "a" * 32),)
        request = sp_pb2.GetPUIDRequest(ticket=t.ticket, finalize=True)
        first = await raw[0].GetPUID(request, metadata=rid, timeout=5)
        again = await raw[1].GetPUID(request, metadata=rid, timeout=5)
        assert (first.puid, first.key_id) == (again.puid, again.key_id)
        with pytest.raises(errors.TicketConsumed):
            await sp.get_puid(t.ticket, finalize=True)  # another request: consumed
        # The CompleteAuth retry still succeeds once the SP consumed the ticket...
        await api1.complete_auth(answer)
        # ...but another answer for the same ticket does not.
        forged = handshake.respond(payload=payload, request=req, token=token, token_id=token_id)
        assert forged.proof.signature != answer.proof.signature  # ECDSA is randomised
        with pytest.raises(errors.TicketConsumed):
            await api0.complete_auth(forged)
        for stub in raw:
            await stub.channel.close()


class _StoreLosesNewTickets:
    """A node's state store that fails every create_ticket (the node dies
    between PutTicket's two writes); everything else goes through."""

    def __init__(self, inner: object) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    async def create_ticket(self, *_: object, **__: object) -> None:
        raise errors.StateUnavailable("the node went away before storing the new ticket")


async def test_a_retried_put_ticket_gets_the_same_new_ticket_on_the_other_node(
    cluster: TestCluster, tmp_path: Path
) -> None:
    """PutTicket's first reply is lost: the same request (same request id) on
    the other node gets the same new ticket, which works; it is made there if
    the first node died before storing it. Another request is refused."""
    c = cluster
    creds = await c.add_sp("hello", "Hello SP")
    token, token_id = await _phone(c, tmp_path)
    raw = [sp_pb2_stub(n, creds) for n in c.nodes]
    async with (
        AsyncSPClient(creds, address=c.sp_addresses) as sp,
        PassKeyApi(c.passkey_addresses, ca_pem=c.ca_pem) as api,
    ):
        first_login = await login_with(sp, api, token, token_id)
        rid = ((REQUEST_ID_KEY, "r" * 32),)
        request = sp_pb2.PutTicketRequest(
            ticket=first_login.ticket.ticket, ttl_seconds=300, auth_types="c"
        )
        first = await raw[0].PutTicket(request, metadata=rid, timeout=5)
        again = await raw[1].PutTicket(request, metadata=rid, timeout=5)
        assert again.ticket == first.ticket != first_login.ticket.ticket
        assert again.expires_at_unix_ms == first.expires_at_unix_ms
        with pytest.raises(errors.TicketConsumed):  # another request
            await sp.put_ticket(first_login.ticket.ticket)
        with pytest.raises(grpc.aio.AioRpcError) as no_id:  # no request id: not recognised
            await raw[1].PutTicket(request, timeout=5)
        assert no_id.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        who = await sp.get_puid(first.ticket)  # the renewed ticket is the same login's
        record = await c.nodes[0].network.directory.get_token(token_id)
        assert record is not None
        assert who.puid == c.nodes[1].network.identity.puid(record.user_id, creds.spid)

        # The first node consumes the old ticket and dies before storing the new one.
        second_login = await login_with(sp, api, token, token_id)
        request = sp_pb2.PutTicketRequest(ticket=second_login.ticket.ticket, ttl_seconds=300)
        state = c.nodes[0].network.state
        c.nodes[0].network.state = _StoreLosesNewTickets(state)  # type: ignore[assignment]
        try:
            with pytest.raises(grpc.aio.AioRpcError) as lost:
                await raw[0].PutTicket(request, metadata=rid, timeout=5)
            assert lost.value.code() is grpc.StatusCode.UNAVAILABLE
        finally:
            c.nodes[0].network.state = state
        made = await raw[1].PutTicket(request, metadata=rid, timeout=5)
        assert (await sp.get_puid(made.ticket)).puid == who.puid
        assert (await raw[0].PutTicket(request, metadata=rid, timeout=5)).ticket == made.ticket
    for stub in raw:
        await stub.channel.close()


def sp_pb2_stub(net: TestNetwork, creds: SpCredentials) -> _Stub:
    """A bare gRPC stub to one node, to send a request with a chosen request id."""
    channel = grpc.aio.secure_channel(net.addresses.sp, _credentials(creds))
    return _Stub(channel, sp_pb2_grpc.ServiceProviderStub(channel))


class _Stub:
    def __init__(self, channel: grpc.aio.Channel, stub: sp_pb2_grpc.ServiceProviderStub) -> None:
        self.channel = channel
        self.GetPUID = stub.GetPUID
        self.PutTicket = stub.PutTicket
