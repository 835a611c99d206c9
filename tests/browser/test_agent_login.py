"""The smartcard path end to end: a page in headless Chromium offers "use security
key / smartcard", the local agent (`passkey agent`) answers the login with a PIV
card in a virtual reader of the real PC/SC stack (pcscd + vpcd), and the page
opens the card's Kc. A page from another origin cannot use the agent."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import Page

from authnet.protocol.kc import kc_fingerprint
from authnet.sdk.sp_client import AsyncSPClient
from authnet.testing import TestNetwork
from simulators.smartcard import VirtualCard, reader_name, virtual_card
from tests.browser.site import Site, events, outcome, wait_events, wait_state
from tests.conformance.backends import READERS
from tokens import login as flow
from tokens.agent import Agent
from tokens.api import PassKeyApi
from tokens.devices import TokenOptions
from tokens.enrolments import Enrolment, EnrolmentBook
from tokens.handshake import AuthRequest
from tokens.phone import now_ms
from tokens.piv import PivPassKey, SmartcardConfig

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

PIN = "123456"  # a fresh card's default


@pytest.fixture
def reader(tmp_path: Path) -> Iterator[str]:
    """A provisioned PIV card in one of vpcd's readers."""
    pcscd = READERS.start()
    index = READERS.free.pop(0)
    try:
        card = VirtualCard.create(tmp_path / "card.json")
        with virtual_card(card, reader=index, pcscd=pcscd):
            config = SmartcardConfig(reader=reader_name(index), label="browser test card")
            PivPassKey.provision(config, pin=PIN).close()
            yield reader_name(index)
    finally:
        READERS.free.append(index)


@dataclass
class RunningAgent:
    agent: Agent
    url: str
    confirmations: list[AuthRequest]


@pytest_asyncio.fixture(loop_scope="session")
async def agent(
    net: TestNetwork, site: Site, reader: str, tmp_path: Path
) -> AsyncIterator[RunningAgent]:
    config = SmartcardConfig(reader=reader, label="browser test card")
    token = PivPassKey(config)
    try:
        token.verify_pin(PIN)
        async with PassKeyApi(net.addresses.passkey, ca_pem=net.ca_pem) as api:
            token_id, _, name = await flow.enrol(api, token, label="my card")
        public_key = token.description.public_key
    finally:
        token.close()
    book = EnrolmentBook(tmp_path / "tokens.json")
    book.add(
        public_key,
        Enrolment(
            network=net.addresses.passkey,
            network_name=name,
            ca_pem=net.ca_pem.decode(),
            token_id=token_id,
            enrolled_ms=now_ms(),
        ),
        kind=3,
    )
    confirmations: list[AuthRequest] = []

    def confirm(request: AuthRequest) -> bool:
        confirmations.append(request)
        return True

    origin = site.url.rstrip("/")
    running = Agent(
        options=TokenOptions(kind="piv", reader=reader),
        book=book,
        allowed_origins=(origin,),
        confirm=confirm,
        ask_pin=lambda _: PIN,
    )
    runner = web.AppRunner(running.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    running.port = runner.addresses[0][1]
    try:
        yield RunningAgent(running, f"http://127.0.0.1:{running.port}", confirmations)
    finally:
        await runner.cleanup()


def card_kc_fingerprint(reader: str, spid: bytes) -> str:
    token = PivPassKey(SmartcardConfig(reader=reader))
    try:
        token.verify_pin(PIN)
        return kc_fingerprint(token.derive_kc(spid))
    finally:
        token.close()


async def test_the_page_logs_in_with_the_smartcard_through_the_agent(
    page: Page, site: Site, sp: AsyncSPClient, agent: RunningAgent, reader: str
) -> None:
    await page.evaluate(f"startLogin({{ agentUrl: {agent.url!r} }})")
    await wait_state(page, "waiting")
    await wait_events(page, "agent", 1)
    assert [e["token"] for e in await events(page) if e["type"] == "agent"] == ["piv"]
    button = page.get_by_role("button", name="Use my security key or smartcard")
    assert await button.is_visible()
    assert agent.confirmations == []  # finding the agent touches no token

    await button.click()
    got = await outcome(page, timeout_ms=20000)
    await wait_state(page, "authenticated")
    # The button goes with the QR code once the login is done.
    assert await button.is_hidden()

    assert got["fingerprint"] == card_kc_fingerprint(reader, sp.spid)
    assert got["extractable"] is False
    (request,) = agent.confirmations
    # The person confirming at the agent sees the page that asked, as the network saw it.
    assert request.browser_origin == site.url.rstrip("/")
    assert "Chrome" in request.browser_user_agent
    who = await sp.get_puid(got["ticket"], finalize=True)
    assert len(who.puid) == 22
    # The agent is found while the first ticket loads, in either order.
    kinds = [e["type"] for e in await events(page)]
    assert kinds.count("agent") == 1
    assert [k for k in kinds if k != "agent"] == ["waiting", "scanned", "authenticated"]


async def test_a_page_from_another_origin_cannot_use_the_agent(
    page: Page, site: Site, agent: RunningAgent
) -> None:
    # The same site under another name is another origin, not on the agent's list.
    other = site.url.replace("localhost", "127.0.0.1")
    await page.goto(other)
    await page.wait_for_function("window.authnetReady === true", timeout=5000)
    await page.evaluate(f"startLogin({{ agentUrl: {agent.url!r} }})")
    await wait_state(page, "waiting")
    payload = await page.evaluate("window.login.payload")

    # A drive-by script posts the login code itself: the browser's CORS check
    # (the agent answers 403 without CORS headers) stops it at the preflight.
    error = await page.evaluate(
        """([url, payload]) => window.errorOf(fetch(`${url}/v1/login`, {
             method: "POST",
             headers: { "Content-Type": "application/json", "X-Authnet-Agent": "1" },
             body: JSON.stringify({ payload }),
           }))""",
        [agent.url, payload],
    )
    assert error is not None
    assert error["name"] == "TypeError"
    # Even a no-cors "simple" request (which the page cannot read) is refused.
    await page.evaluate(
        """([url, payload]) => fetch(`${url}/v1/login`, {
             method: "POST", mode: "no-cors", body: JSON.stringify({ payload }),
           }).catch(() => null)""",
        [agent.url, payload],
    )
    assert agent.confirmations == []
    assert "agent" not in [e["type"] for e in await events(page)]
    assert await page.locator(".authnet-agent").is_hidden()
    with contextlib.suppress(Exception):
        await page.evaluate("window.login.cancel()")


async def test_a_wrong_pin_at_the_agent_is_shown_and_the_page_can_try_again(
    page: Page, site: Site, agent: RunningAgent
) -> None:
    agent.agent.ask_pin = lambda _: "000000"
    await page.evaluate(f"startLogin({{ agentUrl: {agent.url!r} }})")
    await wait_state(page, "waiting")
    await wait_events(page, "agent", 1)
    await page.get_by_role("button", name="Use my security key or smartcard").click()
    # The agent's BeginAuth took the ticket for its card; the wrong PIN ends it.
    await wait_events(page, "agentfailed", 1, timeout_ms=20000)
    (failed,) = [e for e in await events(page) if e["type"] == "agentfailed"]
    assert failed["code"] == "pin_invalid"
    assert "tries left" in failed["message"]
    await wait_state(page, "error")
    assert (await page.locator(".authnet-status").inner_text()).strip() == failed["message"]
    retry = page.get_by_role("button", name="Try again")
    assert await retry.is_visible()

    # With the right PIN, a new code logs in through the agent.
    agent.agent.ask_pin = lambda _: PIN
    await retry.click()
    await wait_events(page, "waiting", 2)
    await wait_state(page, "waiting")
    await page.get_by_role("button", name="Use my security key or smartcard").click()
    got = await outcome(page, timeout_ms=20000)
    assert got["fingerprint"] is not None


async def test_declining_at_the_agent_rejects_the_login(
    page: Page, site: Site, agent: RunningAgent
) -> None:
    agent.agent.confirm = lambda _: False
    await page.evaluate(f"startLogin({{ agentUrl: {agent.url!r} }})")
    await wait_state(page, "waiting")
    await wait_events(page, "agent", 1)
    await page.get_by_role("button", name="Use my security key or smartcard").click()
    await wait_state(page, "rejected", timeout_ms=20000)
    status = (await page.locator(".authnet-status").inner_text()).strip()
    assert status == "The login was declined on this computer."
    assert await page.get_by_role("button", name="Try again").is_visible()
