"""The login widget resumes its wait on another node of a cluster.

Two in-process nodes share one data directory, directory database and state
store (Redis, or one MemoryState object to compare). The page gets its ticket
through node A, so it waits at A's gateway first; the ticket lists both
gateways (`gateway_urls`). When A goes away, or a frame is lost on the way,
the page sends the same hello to B, and the login ends there with the phone's
Kc, delivered to the page once.

The suite's fixtures (conftest.py) run against node A here: `net` is A, so
`site`, `sp`, `phone` and `page` are the usual ones. Which gateway each of the
page's connections went to, and what it carried, is read from Chromium itself
(`page.on("websocket")`), or from a relay Playwright puts in the middle when a
test has to lose a frame.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, Page, Route, WebSocket, WebSocketRoute

from authnet.protocol.ids import ticket_hash
from authnet.protocol.payload import parse_payload
from authnet.sdk.browser import websocket_url
from authnet.sdk.credentials import SpCredentials
from authnet.sdk.sp_client import AsyncSPClient
from authnet.testing import TestCluster, TestNetwork
from simulators.phone.app import PhoneApp
from tests.browser.security_key import attach_virtual_key, enrol_on_gateway
from tests.browser.site import Site, events, open_site, outcome, scan_screen, wait_state
from tests.cluster.stores import cluster_kwargs
from tokens import login as flow
from tokens.api import PassKeyApi
from tokens.handshake import AuthRequest
from tokens.login import LoginReport

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


@pytest_asyncio.fixture(loop_scope="session", params=["redis", "memory"])
async def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TestCluster]:
    async with cluster_kwargs(request.param) as kwargs, TestCluster(tmp_path, **kwargs) as c:
        yield c


@pytest_asyncio.fixture(loop_scope="session")
async def net(cluster: TestCluster) -> TestNetwork:
    """Node A, for the conftest's fixtures (the SP client and the site use it)."""
    return cluster.nodes[0]


async def stop(node: TestNetwork) -> None:
    """The node goes away: its gateway closes every websocket (going away)."""
    await node.__aexit__(None, None, None)


def ws_url(node: TestNetwork) -> str:
    return websocket_url(node.addresses.gateway_url)


def kinds(frames: list[str]) -> list[str]:
    return [json.loads(f)["type"] for f in frames]


def text_of(payload: str | bytes) -> str:
    return payload if isinstance(payload, str) else payload.decode()


async def until(what: Callable[[], bool], *, timeout_s: float = 5.0) -> None:
    """Poll: the frames come in on Playwright's callbacks."""
    deadline = time.monotonic() + timeout_s
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s")
        await asyncio.sleep(0.02)


@dataclass
class Conn:
    """One websocket the page opened: where to, and the frames each way."""

    url: str
    sent: list[str] = field(default_factory=list)  # page -> gateway
    received: list[str] = field(default_factory=list)  # gateway -> page

    def waiting_nodes(self) -> list[str]:
        return [e["node"] for e in map(json.loads, self.received) if e["type"] == "waiting"]


def watch(page: Page) -> list[Conn]:
    """Every websocket the page opens from now on, as Chromium saw it."""
    conns: list[Conn] = []

    def opened(ws: WebSocket) -> None:
        conn = Conn(ws.url)
        conns.append(conn)
        ws.on("framesent", lambda p: conn.sent.append(text_of(p)))
        ws.on("framereceived", lambda p: conn.received.append(text_of(p)))

    page.on("websocket", opened)
    return conns


class Relay:
    """Playwright carries the page's websockets to the gateways and records
    each frame. `lose(conn, way, frame)` picks frames that are lost, after
    which the connection is cut at both ends (as when a node or a proxy dies
    mid-frame); `repeat(conn, frame)` picks gateway frames the page gets twice."""

    def __init__(
        self,
        *,
        lose: Callable[[Conn, str, str], bool] = lambda conn, way, frame: False,
        repeat: Callable[[Conn, str], bool] = lambda conn, frame: False,
    ) -> None:
        self.conns: list[Conn] = []
        self.lost: list[tuple[str, str]] = []  # (way, frame type)
        self._lose = lose
        self._repeat = repeat
        self._tasks: set[asyncio.Future[None]] = set()

    async def install(self, page: Page, *nodes: TestNetwork) -> None:
        for node in nodes:
            await page.route_web_socket(ws_url(node), self._relay)

    def _relay(self, page_end: WebSocketRoute) -> None:
        gateway_end = page_end.connect_to_server()
        conn = Conn(page_end.url)
        self.conns.append(conn)

        def cut() -> None:
            async def both() -> None:
                # A client may close only with 1000; the page sees an abnormal end.
                await gateway_end.close(code=1000, reason="relay lost a frame")
                await page_end.close(code=1011, reason="relay lost a frame")

            task = asyncio.ensure_future(both())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        def up(message: str | bytes) -> None:
            frame = text_of(message)
            if self._lose(conn, "up", frame):
                self.lost.append(("up", json.loads(frame)["type"]))
                cut()
                return
            conn.sent.append(frame)
            gateway_end.send(frame)

        def down(message: str | bytes) -> None:
            frame = text_of(message)
            if self._lose(conn, "down", frame):
                self.lost.append(("down", json.loads(frame)["type"]))
                cut()
                return
            for _ in range(2 if self._repeat(conn, frame) else 1):
                conn.received.append(frame)
                page_end.send(frame)

        page_end.on_message(up)
        gateway_end.on_message(down)


async def mailbox_empties(node: TestNetwork, ticket: str) -> None:
    """The gateway had the page's ack: the sealed Kc left the mailbox."""
    th = ticket_hash(ticket)
    deadline = time.monotonic() + 5
    while await node.network.peek_sealed_kc(th) is not None:
        assert time.monotonic() < deadline, "the sealed Kc is still in the mailbox"
        await asyncio.sleep(0.02)


async def phone_login(
    cluster: TestCluster,
    node: TestNetwork,
    phone: PhoneApp,
    text: str,
    confirm: flow.Confirm = lambda _: True,
) -> LoginReport:
    """The phone answers the QR code through `node` (BeginAuth, CompleteAuth)."""
    token_id = phone.store.enrolment_for(cluster.nodes[0].addresses.passkey).token_id
    async with PassKeyApi(node.addresses.passkey, ca_pem=cluster.ca_pem) as api:
        return await flow.login(api, phone.token, token_id, parse_payload(text), confirm=confirm)


async def status(page: Page) -> str:
    return (await page.locator(".authnet-status").inner_text()).strip()


async def test_wait_moves_to_the_other_node_when_its_node_stops(
    page: Page,
    site: Site,
    cluster: TestCluster,
    sp_creds: SpCredentials,
    phone: PhoneApp,
) -> None:
    a, b = cluster.nodes
    conns = watch(page)
    await page.evaluate("startLogin()")
    await wait_state(page, "waiting")
    text = await scan_screen(page)
    ticket = site.issued[0]
    assert ticket.gateway_urls == (a.addresses.gateway_url, b.addresses.gateway_url)
    assert [c.url for c in conns] == [ws_url(a)]
    assert conns[0].waiting_nodes() == [a.network.node_id]

    seen: dict[str, Any] = {}

    async def confirm(_: AuthRequest) -> bool:
        # BeginAuth went to B; the page, still on A, shows "scanned".
        await wait_state(page, "scanned")
        await stop(a)
        await until(lambda: len(conns) == 2 and conns[1].waiting_nodes() == [b.network.node_id])
        await until(lambda: kinds(conns[1].received) == ["waiting", "scanned"])
        # The resumed "waiting" did not take the page back to the QR code.
        seen["state"] = await page.evaluate("login.state")
        seen["status"] = await status(page)
        seen["qr_hidden"] = await page.locator(".authnet-qr").is_hidden()
        return True

    report = await phone_login(cluster, b, phone, text, confirm)
    got = await outcome(page)
    assert report.accepted
    assert report.kc_fingerprint is not None
    assert got["fingerprint"] == report.kc_fingerprint
    assert got["ticket"] == ticket.ticket
    assert seen == {
        "state": "scanned",
        "status": "Scanned: confirm on your phone.",
        "qr_hidden": True,
    }
    evs = await events(page)
    assert [e["type"] for e in evs] == ["waiting", "scanned", "authenticated"]

    # One resume, to B, with the same hello (ticket, key, wait secret).
    assert [c.url for c in conns] == [ws_url(a), ws_url(b)]
    assert kinds(conns[0].received) == ["waiting", "scanned"]
    assert kinds(conns[1].received) == ["waiting", "scanned", "authenticated"]
    assert conns[1].sent[0] == conns[0].sent[0]
    assert kinds(conns[1].sent) == ["hello", "ack"]
    await mailbox_empties(b, ticket.ticket)
    # The socket the page closed itself after success did not resume anywhere.
    await asyncio.sleep(0.5)
    assert len(conns) == 2

    async with cluster.sp_client(sp_creds) as sp:  # A is gone: GetPUID lands on B
        who = await sp.get_puid(ticket.ticket, finalize=True)
    assert len(who.puid) == 22


async def test_authenticated_lost_on_the_way_is_delivered_by_the_other_node(
    page: Page, site: Site, cluster: TestCluster, phone: PhoneApp
) -> None:
    a, b = cluster.nodes
    relay = Relay(
        lose=lambda conn, way, frame: (
            way == "down" and conn.url == ws_url(a) and '"authenticated"' in frame
        )
    )
    await relay.install(page, a, b)
    await page.evaluate("startLogin()")
    await wait_state(page, "waiting")
    text = await scan_screen(page)

    report = await phone_login(cluster, a, phone, text)
    got = await outcome(page)
    assert got["fingerprint"] == report.kc_fingerprint
    assert relay.lost == [("down", "authenticated")]
    assert [e["type"] for e in await events(page)] == ["waiting", "scanned", "authenticated"]
    # A sent the sealed Kc but never had the ack, so it stayed in the mailbox;
    # B delivered it at once on the resumed connection, and had it acked.
    assert [c.url for c in relay.conns] == [ws_url(a), ws_url(b)]
    assert kinds(relay.conns[0].received) == ["waiting", "scanned"]
    assert kinds(relay.conns[1].received) == ["authenticated"]
    assert relay.conns[1].sent == [relay.conns[0].sent[0], '{"type":"ack"}']
    await mailbox_empties(b, site.issued[0].ticket)


async def test_kc_is_delivered_once_though_the_ack_is_lost(
    page: Page, site: Site, cluster: TestCluster, phone: PhoneApp
) -> None:
    a, b = cluster.nodes
    # The page gets the sealed Kc twice in a row; its ack is lost and the
    # connection cut.
    relay = Relay(
        lose=lambda conn, way, frame: way == "up" and '"ack"' in frame,
        repeat=lambda conn, frame: '"authenticated"' in frame,
    )
    await relay.install(page, a, b)
    await page.evaluate("startLogin()")
    await wait_state(page, "waiting")
    text = await scan_screen(page)

    report = await phone_login(cluster, a, phone, text)
    got = await outcome(page)
    assert got["fingerprint"] == report.kc_fingerprint
    assert kinds(relay.conns[0].received) == [
        "waiting",
        "scanned",
        "authenticated",
        "authenticated",
    ]
    assert relay.lost == [("up", "ack")]
    evs = await events(page)
    assert [e["type"] for e in evs] == ["waiting", "scanned", "authenticated"]
    # Done: the page closed its socket and resumed nowhere, though no gateway
    # had its ack (the sealed Kc waits in the mailbox until the ticket ends,
    # for the holder of the wait secret only).
    await asyncio.sleep(0.7)
    assert [c.url for c in relay.conns] == [ws_url(a)]
    assert await a.network.peek_sealed_kc(ticket_hash(site.issued[0].ticket)) is not None
    assert await page.evaluate("window.loginEvents.length") == 3


async def test_a_node_that_cannot_serve_now_sends_the_wait_to_the_next(
    page: Page, site: Site, cluster: TestCluster, phone: PhoneApp
) -> None:
    a, b = cluster.nodes
    conns = watch(page)
    refused: list[str] = []

    # A's gateway, as when its Redis is unreachable: it answers the hello with a
    # retryable error (the frame the real gateway sends then) and closes.
    def unavailable(ws: WebSocketRoute) -> None:
        def hello(message: str | bytes) -> None:
            refused.append(json.loads(text_of(message))["ticket"])
            error = {"type": "error", "code": "state_unavailable", "message": "try again"}
            ws.send(json.dumps(error))
            task = asyncio.ensure_future(ws.close(code=1000, reason="bye"))
            tasks.add(task)

        ws.on_message(hello)

    tasks: set[asyncio.Future[None]] = set()
    await page.route_web_socket(ws_url(a), unavailable)
    await page.evaluate("startLogin()")
    await wait_state(page, "waiting")
    text = await scan_screen(page)
    assert refused == [site.issued[0].ticket]
    b_conns = [c for c in conns if c.url == ws_url(b)]
    assert len(b_conns) == 1
    assert b_conns[0].waiting_nodes() == [b.network.node_id]

    report = await phone_login(cluster, b, phone, text)
    got = await outcome(page)
    assert got["fingerprint"] == report.kc_fingerprint
    assert [e["type"] for e in await events(page)] == ["waiting", "scanned", "authenticated"]
    await asyncio.gather(*tasks)


async def test_no_gateway_answers_fails_with_gateway_unavailable(
    page: Page, site: Site, cluster: TestCluster
) -> None:
    a, b = cluster.nodes
    conns = watch(page)
    await page.evaluate("startLogin()")
    await wait_state(page, "waiting")
    first = await scan_screen(page)
    await stop(b)
    await asyncio.sleep(0.2)
    assert await scan_screen(page) == first  # B's going is nothing to a page on A
    began = time.monotonic()
    await stop(a)
    await wait_state(page, "error", timeout_ms=15000)
    took = time.monotonic() - began

    evs = await events(page)
    assert [(e["type"], e["code"]) for e in evs] == [
        ("waiting", None),
        ("error", "gateway_unavailable"),
    ]
    assert "could not reconnect" in await status(page)
    assert await page.get_by_role("button", name="Try again").is_visible()
    assert await page.locator(".authnet-qr").is_hidden()
    # Eight connections after the break, each to the next gateway in turn,
    # with pauses of 100, 200 and 400 ms after each round of two.
    assert [c.url for c in conns] == [ws_url(a)] + [ws_url(b), ws_url(a)] * 4
    assert all(c.sent == [] for c in conns[1:])
    assert took >= 0.7
    await asyncio.sleep(1.2)
    assert len(conns) == 9  # and then no more


BAD_GATEWAY_URLS = [
    ["ftp://gateway.example"],
    ["javascript:alert(1)"],
    "http://gateway.example",
    [42],
    ["http://gateway.example"] * 65,
]


async def test_gateway_urls_are_checked_and_an_empty_list_is_ignored(
    page: Page, site: Site, cluster: TestCluster
) -> None:
    a = cluster.nodes[0]
    conns = watch(page)
    start = """(urls) => startLogin({
        getTicket: async () => {
          const json = await (await fetch("/ticket", { method: "POST" })).json();
          if (urls === "absent") delete json.gateway_urls;
          else json.gateway_urls = urls;
          return json;
        },
      })"""
    for urls in BAD_GATEWAY_URLS:
        await page.evaluate(start, urls)
        await wait_state(page, "error")
        evs = await events(page)
        assert [(e["type"], e["code"]) for e in evs] == [("error", "ticket_unavailable")], urls
        assert "gateway" in evs[0]["message"], urls
    assert conns == []

    fine_urls: list[object] = [[], None, "absent"]
    for n, fine in enumerate(fine_urls, start=1):
        await page.evaluate(start, fine)
        await wait_state(page, "waiting")
        assert [c.url for c in conns] == [ws_url(a)] * n
        await until(lambda: len(conns[-1].received) == 1)
        # Cancelled: the widget closes its socket, and that close resumes nothing.
        await page.evaluate("login.cancel()")
        await wait_state(page, "cancelled")
    await asyncio.sleep(0.5)
    assert len(conns) == 3


async def test_a_security_key_login_fails_over_and_a_lost_reply_is_the_same_login(
    bare_page: Page,
    context: BrowserContext,
    site: Site,
    cluster: TestCluster,
    sp: AsyncSPClient,
) -> None:
    """The page's own WebAuthn login (docs/protocol.md 9.1) goes to the ticket's
    gateways in turn: A cannot be reached for the options, so B answers them;
    A then commits the login but its reply is lost, and the same request sent
    to B is the same login, not a refusal."""
    a, b = cluster.nodes
    cdp = await context.new_cdp_session(bare_page)
    await attach_virtual_key(cdp)
    try:
        await enrol_on_gateway(bare_page, a.addresses.gateway_url)
        calls: list[tuple[str, str, int | str]] = []  # (node, endpoint, status or fate)

        def on(node: TestNetwork) -> Callable[[str], bool]:
            base = node.addresses.gateway_url.rstrip("/") + "/v1/webauthn/login"
            return lambda url: url.startswith(base)

        async def at_a(route: Route) -> None:
            if route.request.method == "OPTIONS":  # CORS preflight
                await route.continue_()
            elif route.request.url.endswith("/options"):
                calls.append(("A", "options", "unreachable"))
                await route.abort("connectionrefused")
            else:
                reply = await route.fetch()  # A runs the login ...
                calls.append(("A", "login", reply.status))
                await route.abort("connectionreset")  # ... and its reply is lost

        async def at_b(route: Route) -> None:
            if route.request.method == "OPTIONS":
                await route.continue_()
                return
            reply = await route.fetch()
            calls.append(("B", route.request.url.rsplit("/", 1)[-1], reply.status))
            await route.fulfill(response=reply)

        await bare_page.route(on(a), at_a)
        await bare_page.route(on(b), at_b)
        await open_site(bare_page, site)
        await bare_page.evaluate("startLogin({ agentUrl: null })")
        await wait_state(bare_page, "waiting")
        await bare_page.get_by_role("button", name="Use a security key in this browser").click()
        got = await outcome(bare_page, timeout_ms=15000)
        await wait_state(bare_page, "authenticated")
        assert calls == [
            ("A", "options", "unreachable"),
            ("B", "options", 200),
            ("A", "login", 200),
            ("B", "login", 200),
        ]
        assert got["fingerprint"] is not None
        assert [e["type"] for e in await events(bare_page)] == ["waiting", "authenticated"]
        who = await sp.get_puid(got["ticket"], finalize=True)
        assert {"c", "p"} <= set(who.auth_types)
    finally:
        await cdp.send("WebAuthn.disable")
