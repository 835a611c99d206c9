"""Prometheus metrics: a real node's /metrics, scraped over HTTP after real
logins, moves the counters each event should move, and only those."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from authnet import errors
from authnet.metrics import NodeMetrics, counts_login
from authnet.node import PASSKEY_SERVICE, SP_SERVICE
from authnet.sdk.browser import BrowserSession
from authnet.sdk.sp_client import AsyncSPClient
from authnet.state.memory import MemoryState
from authnet.testing import TestNetwork
from authnet.tickets import Ticket
from simulators.phone.app import PhoneApp
from tests.helpers import login, make_phone, scanned
from tokens import handshake
from tokens.phone import PhoneKeyStore

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(net: TestNetwork) -> Samples:
    url = net.addresses.metrics_url
    assert url.endswith("/metrics")
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        text = await r.text()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def rpc_count(samples: Samples, service: str, method: str, code: str = "OK") -> float:
    return value(
        samples,
        "authnet_rpc_duration_seconds_count",
        service=service,
        method=method,
        code=code,
    )


async def test_a_login_moves_the_login_and_rpc_metrics(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp
) -> None:
    before = await scrape(net)
    assert value(before, "authnet_logins_total", outcome="authenticated") == 0
    info = value(before, "authnet_node_info", node_id=net.node.node_id, version="0.1.0")
    assert info == 1

    run = await login(sp, phone)
    assert run.kc is not None
    after = await scrape(net)
    assert value(after, "authnet_logins_total", outcome="authenticated") == 1
    assert value(after, "authnet_logins_total", outcome="rejected") == 0
    for service, method in [
        (SP_SERVICE, "GetTicket"),
        (PASSKEY_SERVICE, "BeginAuth"),
        (PASSKEY_SERVICE, "CompleteAuth"),
    ]:
        assert rpc_count(after, service, method) == rpc_count(before, service, method) + 1
    # Durations are real: the sum is positive and below the test's own time.
    total = value(
        after,
        "authnet_rpc_duration_seconds_sum",
        service=PASSKEY_SERVICE,
        method="CompleteAuth",
        code="OK",
    )
    assert 0 < total < 10
    assert value(after, "authnet_state_errors_total") == 0
    assert value(after, "process_resident_memory_bytes") > 0


async def test_declined_and_forged_logins_count_by_outcome(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp, tmp_path: Path
) -> None:
    with pytest.raises(errors.TicketRejected):
        await login(sp, phone, accept=False)
    impostor = PhoneKeyStore.create(tmp_path / "impostor.json", label="x").unlock()
    async with aiohttp.ClientSession() as http, scanned(sp, phone, http) as (s, _wait):
        forged = handshake.respond(
            payload=s.payload, request=s.request, token=impostor, token_id=s.token_id
        )
        with pytest.raises(errors.SignatureInvalid):
            await s.api.complete_auth(forged)
    samples = await scrape(net)
    assert value(samples, "authnet_logins_total", outcome="rejected") == 1
    assert value(samples, "authnet_logins_total", outcome="signature_invalid") == 1
    assert value(samples, "authnet_logins_total", outcome="authenticated") == 0
    assert rpc_count(samples, PASSKEY_SERVICE, "CompleteAuth", "UNAUTHENTICATED") == 1
    assert rpc_count(samples, PASSKEY_SERVICE, "DeclineAuth") == 1


async def test_open_websockets_gauge_follows_waiting_browsers(
    net: TestNetwork, sp: AsyncSPClient
) -> None:
    ticket = await sp.get_ticket()
    session = BrowserSession.for_ticket(ticket, sp.spid)
    async with aiohttp.ClientSession() as http:
        async with session.waiting(http):
            assert value(await scrape(net), "authnet_gateway_websockets_open") == 1
        for _ in range(50):  # the server notices the close a moment later
            if value(await scrape(net), "authnet_gateway_websockets_open") == 0:
                break
            await asyncio.sleep(0.05)
    assert value(await scrape(net), "authnet_gateway_websockets_open") == 0


class UnreachableState(MemoryState):
    """Failure injection: ticket reads raise StateUnavailable while `down`."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def get_ticket(self, th: bytes) -> Ticket | None:
        if self.down:
            raise errors.StateUnavailable()
        return await super().get_ticket(th)


async def test_state_errors_are_counted_per_failed_call(tmp_path: Path) -> None:
    state = UnreachableState()
    async with TestNetwork(tmp_path, state=state) as net:
        creds = await net.add_sp()
        phone = await make_phone(net, tmp_path / "phone.json")
        async with net.sp_client(creds) as sp, aiohttp.ClientSession() as http:
            async with scanned(sp, phone, http) as (s, _wait):
                answer = handshake.respond(
                    payload=s.payload, request=s.request, token=s.token, token_id=s.token_id
                )
                state.down = True
                for _ in range(2):
                    with pytest.raises(errors.StateUnavailable):
                        await s.api.complete_auth(answer)
                state.down = False
            samples = await scrape(net)
    # The client retries a retryable error, so each of its calls is several RPCs.
    calls = rpc_count(samples, PASSKEY_SERVICE, "CompleteAuth", "UNAVAILABLE")
    assert calls >= 2
    assert value(samples, "authnet_state_errors_total") == calls
    assert value(samples, "authnet_directory_errors_total") == 0
    assert value(samples, "authnet_logins_total", outcome="state_unavailable") == calls


async def test_each_node_counts_only_its_own_calls(
    tmp_path: Path, net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp
) -> None:
    async with TestNetwork(tmp_path / "other") as other:
        assert other.addresses.metrics_url != net.addresses.metrics_url
        await login(sp, phone)
        mine, theirs = await scrape(net), await scrape(other)
    assert value(mine, "authnet_logins_total", outcome="authenticated") == 1
    assert value(theirs, "authnet_logins_total", outcome="authenticated") == 0
    assert rpc_count(theirs, SP_SERVICE, "GetTicket") == 0
    assert value(theirs, "authnet_node_info", node_id=other.node.node_id, version="0.1.0") == 1


async def test_unknown_methods_add_no_labels(net: TestNetwork) -> None:
    credentials = grpc.ssl_channel_credentials(net.ca_pem)
    async with grpc.aio.secure_channel(net.addresses.passkey, credentials) as channel:
        call = channel.unary_unary(f"/{PASSKEY_SERVICE}/NoSuchMethod")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(b"", timeout=5)
    assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
    samples = await scrape(net)
    assert not [k for k in samples if ("method", "NoSuchMethod") in k[1]]


async def test_metrics_can_be_turned_off(tmp_path: Path) -> None:
    async with TestNetwork(tmp_path, metrics_port=-1) as net:
        assert net.addresses.metrics_url == ""
        assert "Metrics" not in "\n".join(net.addresses.lines())


async def test_a_taken_metrics_port_says_how_to_fix_it(tmp_path: Path, net: TestNetwork) -> None:
    port = int(net.addresses.metrics_url.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(OSError, match=f"metrics port {port} .*-1 to turn metrics off"):
        async with TestNetwork(tmp_path / "second", metrics_port=port):
            pass


class _Counted:
    def __init__(self) -> None:
        self.metrics = NodeMetrics(node_id="n")

    @counts_login("authenticated")
    async def finish(self, fail: BaseException | None = None) -> int:
        if fail is not None:
            raise fail
        return 7


async def test_login_outcome_labels_are_bounded() -> None:
    class Unregistered(errors.TicketExpired):
        code = "made_up_by_a_plugin"

    c = _Counted()
    assert await c.finish() == 7
    for err in (errors.TicketExpired(), Unregistered(), RuntimeError("boom")):
        with pytest.raises(type(err)):
            await c.finish(err)
    with pytest.raises(asyncio.CancelledError):
        await c.finish(asyncio.CancelledError())
    counted = {
        s.labels["outcome"]: s.value
        for family in text_string_to_metric_families(c.metrics.exposition().decode())
        if family.name == "authnet_logins"
        for s in family.samples
        if s.name == "authnet_logins_total"
    }
    assert counted == {
        "authenticated": 1,
        "rejected": 0,
        "ticket_expired": 2,  # the unregistered subclass counts as its registered base
        "internal": 1,
    }


def test_count_error_sorts_unavailable_backends() -> None:
    """What the gateway calls on its error path (gRPC calls are counted by the
    interceptor): state and directory outages, subclasses included; others not."""
    m = NodeMetrics(node_id="n")
    for err in (
        errors.StateUnavailable(),
        errors.StateRecordUnreadable(),
        errors.DirectoryUnavailable(),
        errors.NetworkUnavailable(),
        errors.TicketExpired(),
        RuntimeError("x"),
    ):
        m.count_error(err)
    text = m.exposition().decode()
    assert "authnet_state_errors_total 2.0" in text
    assert "authnet_directory_errors_total 1.0" in text
