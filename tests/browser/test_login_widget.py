"""The login widget end to end: a page on an SP site, a real network, the phone
simulator reading the QR code off a screenshot."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from playwright.async_api import Page, WebSocketRoute

from authnet.protocol.encoding import b64u_decode, b64u_encode
from authnet.protocol.ids import ticket_hash
from authnet.protocol.payload import parse_payload
from authnet.sdk.sp_client import AsyncSPClient
from authnet.state.memory import MemoryState
from authnet.testing import TestNetwork
from simulators.phone.app import PhoneApp
from tests.browser.site import (
    Site,
    events,
    open_site,
    outcome,
    scan_screen,
    wait_events,
    wait_state,
)

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


def _kinds(evs: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in evs]


async def _status(page: Page) -> str:
    return (await page.locator(".authnet-status").inner_text()).strip()


async def test_login_ends_with_the_phones_kc_and_a_puid(
    page: Page, site: Site, sp: AsyncSPClient, phone: PhoneApp
) -> None:
    await page.evaluate("startLogin()")
    await wait_state(page, "waiting")

    # Accessible: the QR code has a name, the status is announced.
    qr = page.get_by_role("img", name="Login QR code: scan it with the authnet app on your phone")
    assert await qr.count() == 1
    status = page.locator(".authnet-status")
    assert await status.get_attribute("aria-live") == "polite"
    assert await status.get_attribute("role") == "status"
    assert "Scan this code" in await _status(page)
    assert await page.locator(".authnet-retry").is_hidden()

    text = await scan_screen(page)
    payload = parse_payload(text)
    assert [t.ticket for t in site.issued] == [payload.ticket]
    assert payload.network.port > 0
    assert (await events(page))[0]["payload"] == text

    seen_while_confirming: dict[str, Any] = {}

    async def confirm(_: object) -> bool:
        # The phone asks its owner; meanwhile the page shows the scanned state.
        await wait_state(page, "scanned")
        seen_while_confirming["status"] = await _status(page)
        seen_while_confirming["qr_hidden"] = await page.locator(".authnet-qr").is_hidden()
        return True

    report = await phone.scan(text, confirm=confirm)
    assert report.accepted
    got = await outcome(page)

    assert seen_while_confirming == {"status": "Scanned: confirm on your phone.", "qr_hidden": True}
    assert got["ticket"] == payload.ticket
    assert report.kc_fingerprint is not None
    assert got["fingerprint"] == report.kc_fingerprint
    assert got["extractable"] is False
    assert got["exportError"] is not None
    await wait_state(page, "authenticated")
    evs = await events(page)
    assert _kinds(evs) == ["waiting", "scanned", "authenticated"]
    assert evs[-1]["ticket"] == payload.ticket
    assert evs[-1]["kcIsClientKey"] is True

    who = await sp.get_puid(got["ticket"], finalize=True)
    assert who.auth_types == "c"
    assert len(who.puid) == 22


async def test_declined_on_the_phone_then_try_again(
    page: Page, site: Site, phone: PhoneApp
) -> None:
    await page.evaluate("startLogin()")
    await wait_state(page, "waiting")
    first = await scan_screen(page)

    report = await phone.scan(first, confirm=lambda _: False)
    assert not report.accepted
    await wait_state(page, "rejected")
    assert await _status(page) == "The login was declined on the phone."
    retry = page.get_by_role("button", name="Try again")
    assert await retry.is_visible()
    assert await page.locator(".authnet-qr").is_hidden()
    evs = await events(page)
    assert _kinds(evs) == ["waiting", "scanned", "rejected"]
    assert evs[-1]["code"] == "ticket_rejected"

    await retry.click()
    await wait_events(page, "waiting", 2)
    await wait_state(page, "waiting")
    second = await scan_screen(page)
    assert second != first
    one, two = parse_payload(first), parse_payload(second)
    assert one.ticket != two.ticket
    assert one.browser_key != two.browser_key  # a new key pair per ticket
    assert [t.ticket for t in site.issued] == [one.ticket, two.ticket]
    assert await retry.is_hidden()

    report = await phone.scan(second, confirm=lambda _: True)
    got = await outcome(page)
    assert got["ticket"] == two.ticket
    assert got["fingerprint"] == report.kc_fingerprint


async def test_tampered_sealed_kc_is_reported_then_try_again_succeeds(
    page: Page, net: TestNetwork, phone: PhoneApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A malicious relay: the network alters the sealed Kc between CompleteAuth
    # (which verified the phone's signature over it) and delivery to the browser.
    state = net.network.state
    assert isinstance(state, MemoryState)
    genuine_put_mail = state.put_mail
    tampered: list[bytes] = []

    async def put_mail(th: bytes, sealed: bytes, *, keep_until_ms: int) -> None:
        if not tampered:
            tampered.append(th)
            sealed = sealed[:40] + bytes([sealed[40] ^ 0x20]) + sealed[41:]
        await genuine_put_mail(th, sealed, keep_until_ms=keep_until_ms)

    monkeypatch.setattr(state, "put_mail", put_mail)

    await page.evaluate("startLogin()")
    await wait_state(page, "waiting")
    first = await scan_screen(page)
    report = await phone.scan(first, confirm=lambda _: True)
    assert report.accepted

    await wait_state(page, "error")
    assert tampered == [ticket_hash(parse_payload(first).ticket)]
    evs = await events(page)
    assert _kinds(evs) == ["waiting", "scanned", "error"]
    assert evs[-1]["code"] == "sealed_key_invalid"
    assert "does not open" in evs[-1]["message"]
    assert "could not be opened" in await _status(page)
    assert await page.evaluate("window.outcome") is None

    await page.get_by_role("button", name="Try again").click()
    await wait_events(page, "waiting", 2)
    second = await scan_screen(page)
    assert parse_payload(second).ticket != parse_payload(first).ticket
    report = await phone.scan(second, confirm=lambda _: True)
    got = await outcome(page)
    assert got["ticket"] == parse_payload(second).ticket
    assert got["fingerprint"] == report.kc_fingerprint


async def test_qr_refreshes_at_nine_tenths_of_the_ttl_until_scanned(
    bare_page: Page, site: Site, net: TestNetwork, phone: PhoneApp
) -> None:
    page = bare_page
    site.ttl_seconds = 10  # the shortest a ticket may live
    # The page's timers run on Playwright's clock, stopped here and moved by hand;
    # tickets expire in real time at the network.
    await page.clock.install()
    await open_site(page, site)
    # pause_at takes seconds, and a time ahead of the (still running) page clock.
    await page.clock.pause_at(await page.evaluate("Date.now()") / 1000 + 5)
    await page.evaluate("startLogin()")
    await wait_state(page, "waiting")
    first = await scan_screen(page)

    await page.clock.fast_forward(8_999)
    assert await scan_screen(page) == first
    assert len(site.issued) == 1

    await page.clock.fast_forward(1)  # 0.9 x 10 s after the ticket arrived
    await wait_events(page, "waiting", 2)
    await wait_state(page, "waiting")
    second = await scan_screen(page)
    one, two = parse_payload(first), parse_payload(second)
    assert two.ticket != one.ticket
    assert two.browser_key != one.browser_key
    assert [t.ticket for t in site.issued] == [one.ticket, two.ticket]
    # ...before the first ticket expired (real time, at the network).
    old = await net.network.state.get_ticket(ticket_hash(one.ticket))
    assert old is not None
    assert net.network.clock() < old.expires_ms
    assert _kinds(await events(page)) == ["waiting", "waiting"]

    async def confirm(_: object) -> bool:
        # Scanned: no more refreshes, however long the person takes.
        await wait_state(page, "scanned")
        await page.clock.fast_forward(20_000)
        assert len(site.issued) == 2
        return True

    report = await phone.scan(second, confirm=confirm)
    got = await outcome(page)
    assert got["ticket"] == two.ticket
    assert got["fingerprint"] == report.kc_fingerprint
    assert len(site.issued) == 2


async def test_dropped_connection_resumes_with_the_same_ticket(
    page: Page, net: TestNetwork, phone: PhoneApp
) -> None:
    # Playwright relays the page's websocket, so the test can cut it.
    hellos: list[str] = []
    relays: list[tuple[WebSocketRoute, WebSocketRoute]] = []
    second_hello = asyncio.Event()

    def relay(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        relays.append((ws, server))

        def to_server(message: str | bytes) -> None:
            assert isinstance(message, str)
            hellos.append(message)
            if len(hellos) == 2:
                second_hello.set()
            server.send(message)

        ws.on_message(to_server)
        server.on_message(ws.send)

    ws_url = net.addresses.gateway_url.replace("http://", "ws://", 1) + "/v1/wait"
    await page.route_web_socket(ws_url, relay)
    await page.evaluate("startLogin()")
    await wait_state(page, "waiting")
    first = await scan_screen(page)
    assert len(relays) == 1

    # Both ends see the connection go. (Were the gateway's end left half-open, its
    # stale waiter could take the sealed Kc: the page would get already_delivered.)
    page_end, gateway_end = relays[0]
    await gateway_end.close(code=1000, reason="relay restarted")  # a client may send only 1000
    await page_end.close(code=1011, reason="relay restarted")
    # The client reconnects with the same hello (ticket, key, wait secret).
    async with asyncio.timeout(5):
        await second_hello.wait()
    assert len(relays) == 2
    assert len(hellos) == 2
    assert hellos[0] == hellos[1]
    hello = json.loads(hellos[0])
    assert set(hello) == {"type", "v", "ticket", "browser_key", "wait_secret"}
    assert (hello["type"], hello["v"]) == ("hello", 1)
    assert hello["ticket"] == parse_payload(first).ticket
    assert hello["browser_key"] == b64u_encode(parse_payload(first).browser_key)
    assert len(b64u_decode(hello["wait_secret"], field="wait secret")) == 32
    await wait_state(page, "waiting")
    assert await scan_screen(page) == first

    report = await phone.scan(first, confirm=lambda _: True)
    got = await outcome(page)
    assert got["fingerprint"] == report.kc_fingerprint
    assert _kinds(await events(page)) == ["waiting", "scanned", "authenticated"]


async def test_ticket_endpoint_failure_then_cancel(page: Page, site: Site) -> None:
    site.fail_next_ticket = True
    await page.evaluate("startLogin()")
    await wait_state(page, "error")
    evs = await events(page)
    assert [(e["type"], e["code"]) for e in evs] == [("error", "ticket_unavailable")]
    assert await _status(page) == "Could not get a login code from this site."
    assert site.issued == []

    await page.get_by_role("button", name="Try again").click()
    await wait_state(page, "waiting")
    assert len(site.issued) == 1

    await page.evaluate("login.cancel()")
    got = await outcome(page)
    assert got == {"error": "cancelled", "name": "AuthnetError"}
    await wait_state(page, "cancelled")
    assert await page.locator(".authnet-qr").is_hidden()
    assert await page.locator(".authnet-retry").is_hidden()
