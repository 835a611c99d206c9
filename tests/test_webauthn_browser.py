"""A page's own security-key login (WebAuthn in the browser, PRF), at the
network and its gateway. python-fido2's client plays the browser's WebAuthn
(origin = the page), the software CTAP2 key is the security key, and the page
derives Kc from the PRF output itself: the network never has it, not even
sealed. The real-browser version of these flows is tests/browser/test_webauthn.py.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from fido2.client import DefaultClientDataCollector, Fido2Client, UserInteraction
from fido2.ctap2.base import Ctap2
from fido2.ctap2.pin import ClientPin
from fido2.webauthn import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialCreationOptions,
    PublicKeyCredentialParameters,
    PublicKeyCredentialRequestOptions,
    PublicKeyCredentialRpEntity,
    PublicKeyCredentialType,
    PublicKeyCredentialUserEntity,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from authnet.errors import TicketConsumed
from authnet.protocol import labels
from authnet.protocol.encoding import b64u_decode as _b64u_decode
from authnet.protocol.encoding import b64u_encode
from authnet.protocol.ids import ticket_hash
from authnet.protocol.kc import derive_kc, fido2_prf_input, kc_fingerprint
from authnet.sdk.browser import BrowserSession
from authnet.sdk.sp_client import AsyncSPClient
from authnet.testing import TestNetwork
from authnet.tickets import TicketState
from simulators.ctap2 import Authenticator, SoftCtapDevice
from tests.helpers import login_with
from tokens import login as flow
from tokens.api import PassKeyApi
from tokens.fido2 import Fido2PassKey

PAGE = "http://localhost:5555"
PIN = "1234"


def b64u_decode(text: str) -> bytes:
    return _b64u_decode(text, field="test value")


class _Pin(UserInteraction):
    def request_pin(self, permissions: Any, rp_id: str | None) -> str | None:
        return PIN

    def request_uv(self, permissions: Any, rp_id: str | None) -> bool:
        return True


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


async def post(http: aiohttp.ClientSession, url: str, body: Any, *, origin: str | None) -> Reply:
    headers = {"Content-Type": "application/json"}
    if origin is not None:
        headers["Origin"] = origin
    async with http.post(url, data=json.dumps(body), headers=headers) as r:
        return Reply(r.status, await r.json(), dict(r.headers))


class BrowserWithKey:
    """A browser with a security key plugged in: python-fido2's Fido2Client is
    its WebAuthn (it checks the RP id against the page origin as browsers do)."""

    def __init__(self, path: Path, http: aiohttp.ClientSession, gateway: str) -> None:
        self.path = path
        self.device = SoftCtapDevice(Authenticator(path))
        self.http = http
        self.gateway = gateway

    def client(self, origin: str) -> Fido2Client:
        return Fido2Client(self.device, DefaultClientDataCollector(origin), _Pin())

    async def enrol(
        self,
        label: str = "my key",
        *,
        origin: str | None = None,
        post_from: str | None = None,
        finish: bool = True,
    ) -> Reply:
        """What the gateway's /v1/enrol page does (at `origin`; its final post
        from `post_from`, normally the same page)."""
        origin = origin or self.gateway
        options = await post(
            self.http, f"{self.gateway}/v1/webauthn/enrol/options", {"label": label}, origin=origin
        )
        assert options.status == 200, options.body
        o = options.body
        made = await asyncio.to_thread(
            self.client(origin).make_credential,
            PublicKeyCredentialCreationOptions(
                rp=PublicKeyCredentialRpEntity(id=o["rp"]["id"], name=o["rp"]["name"]),
                user=PublicKeyCredentialUserEntity(
                    id=b64u_decode(o["user"]["id"]), name=label, display_name=label
                ),
                challenge=b64u_decode(o["webauthn_challenge"]),
                pub_key_cred_params=[
                    PublicKeyCredentialParameters(type=PublicKeyCredentialType.PUBLIC_KEY, alg=-7)
                ],
                authenticator_selection=AuthenticatorSelectionCriteria(
                    resident_key=ResidentKeyRequirement.REQUIRED,
                    user_verification=UserVerificationRequirement.REQUIRED,
                ),
                extensions={"prf": {}},
            ),
        )
        if not finish:  # the key keeps a credential the network never hears of
            return options
        return await post(
            self.http,
            f"{self.gateway}/v1/webauthn/enrol",
            {
                "challenge": o["challenge"],
                "label": label,
                "client_data_json": b64u_encode(bytes(made.response.client_data)),
                "attestation_object": b64u_encode(bytes(made.response.attestation_object)),
            },
            origin=post_from or origin,
        )

    async def options(self, session: BrowserSession, *, origin: str = PAGE) -> Reply:
        return await post(
            self.http,
            f"{self.gateway}/v1/webauthn/login/options",
            {"ticket": session.ticket, "wait_secret": b64u_encode(session.wait_secret)},
            origin=origin,
        )

    async def sign(
        self,
        session: BrowserSession,
        options: dict[str, Any],
        *,
        origin: str = PAGE,
        prf: bool = True,
    ) -> tuple[dict[str, Any], bytes | None]:
        """The assertion the page would post, and the PRF output it keeps."""
        extensions = {"prf": {"eval": {"first": fido2_prf_input(session.spid)}}} if prf else None
        got = await asyncio.to_thread(
            self.client(origin).get_assertion,
            PublicKeyCredentialRequestOptions(
                challenge=b64u_decode(options["challenge"]),
                rp_id=options["rp_id"],
                allow_credentials=[],
                user_verification=UserVerificationRequirement.REQUIRED,
                extensions=extensions,
            ),
        )
        response = got.get_response(0)
        results = response.client_extension_results.prf
        first = None if results is None or results.results is None else results.results.first
        r = response.response
        body = {
            "ticket": session.ticket,
            "wait_secret": b64u_encode(session.wait_secret),
            "nonce": options["nonce"],
            "credential_id": b64u_encode(bytes(response.raw_id)),
            "authenticator_data": b64u_encode(bytes(r.authenticator_data)),
            "client_data_json": b64u_encode(bytes(r.client_data)),
            "signature": b64u_encode(bytes(r.signature)),
            # As the page does: it says it holds Kc only when the PRF answered.
            "client_key": first is not None,
        }
        return body, None if first is None else bytes(first)

    async def finish(self, body: dict[str, Any], *, origin: str = PAGE) -> Reply:
        return await post(self.http, f"{self.gateway}/v1/webauthn/login", body, origin=origin)

    async def login(self, session: BrowserSession) -> bytes:
        """The whole page-side login; returns Kc as the page derives it."""
        options = await self.options(session)
        assert options.status == 200, options.body
        body, prf = await self.sign(session, options.body)
        reply = await self.finish(body)
        assert reply.status == 200, reply.body
        assert prf is not None
        return derive_kc(prf, session.spid, salt=labels.KC_FIDO2_SALT)


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def new_browser(net: TestNetwork, http: aiohttp.ClientSession, path: Path) -> BrowserWithKey:
    browser = BrowserWithKey(path, http, net.addresses.gateway_url)
    ClientPin(Ctap2(browser.device)).set_pin(PIN)
    return browser


@pytest.fixture
def browser(net: TestNetwork, http: aiohttp.ClientSession, tmp_path: Path) -> BrowserWithKey:
    return new_browser(net, http, tmp_path / "key.json")


@pytest_asyncio.fixture
async def shop(net: TestNetwork) -> AsyncIterator[AsyncSPClient]:
    creds = await net.add_sp("shop", "Example Shop", origins=[PAGE])
    async with net.sp_client(creds) as sp:
        yield sp


async def waiting(
    sp: AsyncSPClient, http: aiohttp.ClientSession, *, auth_types: str = "pc", origin: str = PAGE
) -> tuple[BrowserSession, Any, Any]:
    ticket = await sp.get_ticket(auth_types=auth_types)
    session = BrowserSession.for_ticket(ticket, sp.spid)
    ctx = session.waiting(http, origin=origin)
    return session, ctx, await ctx.__aenter__()


async def state_of(net: TestNetwork, session: BrowserSession) -> TicketState:
    t = await net.network.state.get_ticket(ticket_hash(session.ticket))
    assert t is not None
    return t.state


# --- the login ----------------------------------------------------------------


async def test_enrol_in_the_browser_then_log_in_with_kc_derived_in_the_page(
    net: TestNetwork, shop: AsyncSPClient, browser: BrowserWithKey, http: aiohttp.ClientSession
) -> None:
    enrolled = await browser.enrol("my key")
    assert enrolled.status == 200, enrolled.body
    assert enrolled.body["network_name"] == net.network.network_name
    token_id = b64u_decode(enrolled.body["token_id"])

    session, ctx, wait = await waiting(shop, http)
    try:
        kc = await browser.login(session)
        outcome = await asyncio.wait_for(wait.result(), 10)
    finally:
        await ctx.__aexit__(None, None, None)
    # The gateway delivered no key at all: the page has it from the PRF.
    assert outcome.kc is None
    assert outcome.kc_in_browser is True
    assert await net.network.state.get_mail(ticket_hash(session.ticket)) is None

    who = await shop.get_puid(session.ticket, finalize=True)
    assert who.auth_types == "pc"  # UV (the key's PIN) and the client key

    # Stable: a second login derives the same Kc and gets the same PUID.
    session, ctx, wait = await waiting(shop, http)
    try:
        assert await browser.login(session) == kc
        await asyncio.wait_for(wait.result(), 10)
    finally:
        await ctx.__aexit__(None, None, None)
    assert (await shop.get_puid(session.ticket, finalize=True)).puid == who.puid

    # The same key through `passkey` / the agent (tokens.fido2) derives the same
    # Kc for the SP, and the network sees the same account.
    record = await net.network.directory.get_token(token_id)
    assert record is not None
    key = Fido2PassKey(browser.device, rp_id="localhost", credential=record.public_key)
    key.verify_pin(PIN)
    async with PassKeyApi(net.addresses.passkey, ca_pem=net.ca_pem) as api:
        run = await login_with(shop, api, key, token_id, auth_types="pc")
    assert run.kc == kc
    assert (await shop.get_puid(run.ticket.ticket, finalize=True)).puid == who.puid
    # Kc appears nowhere the network keeps things.
    assert kc.hex() not in net.log_path.read_text()
    assert kc_fingerprint(kc) not in net.log_path.read_text()


async def test_a_key_enrolled_with_passkey_also_logs_in_from_the_page(
    net: TestNetwork, shop: AsyncSPClient, browser: BrowserWithKey, http: aiohttp.ClientSession
) -> None:
    key = Fido2PassKey(browser.device, rp_id="localhost", label="cli key")
    key.verify_pin(PIN)
    async with PassKeyApi(net.addresses.passkey, ca_pem=net.ca_pem) as api:
        await flow.enrol(api, key, label="cli key")
    session, ctx, wait = await waiting(shop, http)
    try:
        kc = await browser.login(session)
        await asyncio.wait_for(wait.result(), 10)
    finally:
        await ctx.__aexit__(None, None, None)
    assert kc == key.derive_kc(shop.spid)


async def test_without_prf_there_is_no_client_key(
    net: TestNetwork, shop: AsyncSPClient, browser: BrowserWithKey, http: aiohttp.ClientSession
) -> None:
    assert (await browser.enrol()).status == 200
    session, ctx, _ = await waiting(shop, http, auth_types="c")
    try:
        options = await browser.options(session)
        body, prf = await browser.sign(session, options.body, prf=False)
        assert prf is None
        reply = await browser.finish(body)
        assert reply.status == 403
        assert reply.body["code"] == "factor_not_proven"
        assert "client key" in reply.body["message"]
        assert await state_of(net, session) is TicketState.ISSUED
    finally:
        await ctx.__aexit__(None, None, None)
    # An SP that asked only for the PIN gets its login without one.
    session, ctx, wait = await waiting(shop, http, auth_types="p")
    try:
        options = await browser.options(session)
        body, _ = await browser.sign(session, options.body, prf=False)
        assert (await browser.finish(body)).status == 200
        assert (await asyncio.wait_for(wait.result(), 10)).kc_in_browser
    finally:
        await ctx.__aexit__(None, None, None)
    assert (await shop.get_puid(session.ticket, finalize=True)).auth_types == "p"


# --- refusals: each says why and leaves the ticket waiting ----------------------


async def test_only_the_waiting_page_at_its_origin_may_log_in(
    net: TestNetwork, shop: AsyncSPClient, browser: BrowserWithKey, http: aiohttp.ClientSession
) -> None:
    assert (await browser.enrol()).status == 200
    session, ctx, _ = await waiting(shop, http)
    try:
        url = f"{browser.gateway}/v1/webauthn/login/options"
        # Someone who saw the QR code (ticket, public key) but not the wait secret.
        stranger = await post(
            http,
            url,
            {"ticket": session.ticket, "wait_secret": b64u_encode(bytes(32))},
            origin=PAGE,
        )
        assert (stranger.status, stranger.body["code"]) == (403, "browser_key_mismatch")
        # The right secret from another origin than the waiting page's.
        elsewhere = await browser.options(session, origin="http://localhost:6666")
        assert (elsewhere.status, elsewhere.body["code"]) == (403, "permission_denied")
        assert "register the page's origin" in elsewhere.body["message"]
        # No Origin at all (not a browser).
        bare = await post(
            http,
            url,
            {"ticket": session.ticket, "wait_secret": b64u_encode(session.wait_secret)},
            origin=None,
        )
        assert (bare.status, bare.body["code"]) == (403, "permission_denied")
        assert await state_of(net, session) is TicketState.ISSUED
        # And the page itself still can.
        await browser.login(session)
    finally:
        await ctx.__aexit__(None, None, None)


async def test_an_sp_without_registered_origins_allows_only_pages_on_the_rp_id(
    net: TestNetwork, browser: BrowserWithKey, http: aiohttp.ClientSession
) -> None:
    assert (await browser.enrol()).status == 200
    creds = await net.add_sp("open", "Open SP")
    async with net.sp_client(creds) as sp:
        # The websocket lets any page wait (the phone shows its origin)...
        session, ctx, _ = await waiting(sp, http, origin="https://evil.example")
        try:
            reply = await browser.options(session, origin="https://evil.example")
            # ...but only pages on the network's RP id may use its keys.
            assert (reply.status, reply.body["code"]) == (403, "permission_denied")
        finally:
            await ctx.__aexit__(None, None, None)
        session, ctx, wait = await waiting(sp, http)
        try:
            await browser.login(session)
            assert (await asyncio.wait_for(wait.result(), 10)).kc_in_browser
        finally:
            await ctx.__aexit__(None, None, None)


async def test_a_bad_or_replayed_assertion_is_refused(
    net: TestNetwork, shop: AsyncSPClient, browser: BrowserWithKey, http: aiohttp.ClientSession
) -> None:
    assert (await browser.enrol()).status == 200
    session, ctx, wait = await waiting(shop, http)
    other, other_ctx, _ = await waiting(shop, http)
    try:
        options = await browser.options(session)
        body, _ = await browser.sign(session, options.body)
        # Altered signature.
        sig = bytearray(b64u_decode(body["signature"]))
        sig[-1] ^= 1
        reply = await browser.finish({**body, "signature": b64u_encode(bytes(sig))})
        assert (reply.status, reply.body["code"]) == (400, "signature_invalid")
        # The nonce died with that attempt: the genuine assertion is now a replay.
        reply = await browser.finish(body)
        assert (reply.status, reply.body["code"]) == (400, "challenge_invalid")
        assert await state_of(net, session) is TicketState.ISSUED

        # An assertion made for one ticket does not log in another.
        options = await browser.options(session)
        body, _ = await browser.sign(session, options.body)
        theirs = await browser.options(other)
        swapped = {
            **body,
            "ticket": other.ticket,
            "wait_secret": b64u_encode(other.wait_secret),
            "nonce": theirs.body["nonce"],
        }
        reply = await browser.finish(swapped)
        assert (reply.status, reply.body["code"]) == (400, "signature_invalid")
        assert "challenge" in reply.body["message"].lower()
        assert await state_of(net, other) is TicketState.ISSUED

        # Made on another page (client data origin) than the one posting it.
        options = await browser.options(session)
        body, _ = await browser.sign(session, options.body, origin="http://localhost:7777")
        reply = await browser.finish(body)
        assert (reply.status, reply.body["code"]) == (400, "signature_invalid")
        assert "origin" in reply.body["message"].lower()

        # Malformed requests.
        reply = await browser.finish({**body, "authenticator_data": "not base64!"})
        assert (reply.status, reply.body["code"]) == (400, "malformed")
        async with http.post(
            f"{browser.gateway}/v1/webauthn/login",
            data="{",
            headers={"Content-Type": "application/json", "Origin": PAGE},
        ) as r:
            assert (r.status, (await r.json())["code"]) == (400, "malformed")
        assert await state_of(net, session) is TicketState.ISSUED

        # After all that, the genuine page still logs in.
        await browser.login(session)
        assert (await asyncio.wait_for(wait.result(), 10)).kc_in_browser
    finally:
        await other_ctx.__aexit__(None, None, None)
        await ctx.__aexit__(None, None, None)


async def test_unknown_revoked_and_cloned_keys_are_refused(
    net: TestNetwork,
    shop: AsyncSPClient,
    browser: BrowserWithKey,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    # A key whose credential the network never heard of.
    stranger = new_browser(net, http, tmp_path / "stranger.json")
    await stranger.enrol(finish=False)
    session, ctx, _ = await waiting(shop, http)
    try:
        options = await stranger.options(session)
        body, _ = await stranger.sign(session, options.body)
        reply = await stranger.finish(body)
        assert (reply.status, reply.body["code"]) == (404, "token_unknown")
        assert await state_of(net, session) is TicketState.ISSUED
    finally:
        await ctx.__aexit__(None, None, None)

    assert (await browser.enrol("main")).status == 200
    # A clone: the key's state copied now, used after the original moved on.
    shutil.copy(browser.path, tmp_path / "clone.json")
    session, ctx, wait = await waiting(shop, http)
    try:
        await browser.login(session)
        await asyncio.wait_for(wait.result(), 10)
    finally:
        await ctx.__aexit__(None, None, None)
    clone = BrowserWithKey(tmp_path / "clone.json", http, browser.gateway)
    session, ctx, _ = await waiting(shop, http)
    try:
        options = await clone.options(session)
        body, _ = await clone.sign(session, options.body)
        reply = await clone.finish(body)
        assert (reply.status, reply.body["code"]) == (400, "signature_invalid")
        assert "cloned" in reply.body["message"]
        assert await state_of(net, session) is TicketState.ISSUED
    finally:
        await ctx.__aexit__(None, None, None)


async def test_a_revoked_key_is_refused(
    net: TestNetwork, shop: AsyncSPClient, browser: BrowserWithKey, http: aiohttp.ClientSession
) -> None:
    enrolled = await browser.enrol("first")
    token_id = b64u_decode(enrolled.body["token_id"])
    # A second token in the account (the directory refuses to revoke the last one).
    spare = Fido2PassKey(
        new_browser(net, http, browser.path.with_name("spare.json")).device, rp_id="localhost"
    )
    spare.verify_pin(PIN)
    record = await net.network.directory.get_token(token_id)
    assert record is not None
    main = Fido2PassKey(browser.device, rp_id="localhost", credential=record.public_key)
    main.verify_pin(PIN)
    async with PassKeyApi(net.addresses.passkey, ca_pem=net.ca_pem) as api:
        spare_id, _, _ = await flow.enrol(api, spare, label="spare", existing=(main, token_id))
        await flow.revoke_token(api, spare, spare_id, token_id)
    session, ctx, _ = await waiting(shop, http)
    try:
        options = await browser.options(session)
        body, _ = await browser.sign(session, options.body)
        reply = await browser.finish(body)
        assert (reply.status, reply.body["code"]) == (403, "token_revoked")
        assert await state_of(net, session) is TicketState.ISSUED
    finally:
        await ctx.__aexit__(None, None, None)


async def test_an_answered_ticket_takes_no_second_login(
    net: TestNetwork,
    shop: AsyncSPClient,
    browser: BrowserWithKey,
    http: aiohttp.ClientSession,
) -> None:
    assert (await browser.enrol()).status == 200
    session, ctx, wait = await waiting(shop, http)
    try:
        options = await browser.options(session)
        body, _ = await browser.sign(session, options.body)
        late = await browser.options(session)  # asked before the first completed
        assert (await browser.finish(body)).status == 200
        await asyncio.wait_for(wait.result(), 10)
        body, _ = await browser.sign(session, late.body)
        reply = await browser.finish(body)
        assert (reply.status, reply.body["code"]) == (409, "ticket_state")
        reply = await browser.options(session)
        assert (reply.status, reply.body["code"]) == (409, "ticket_state")
    finally:
        await ctx.__aexit__(None, None, None)


async def test_a_repeated_login_request_succeeds_and_changes_nothing(
    net: TestNetwork,
    shop: AsyncSPClient,
    browser: BrowserWithKey,
    http: aiohttp.ClientSession,
) -> None:
    """A page whose first reply was lost sends the same request again (to
    another gateway of a cluster): the same login, once (docs/protocol.md 16.2)."""
    assert (await browser.enrol()).status == 200
    session, ctx, wait = await waiting(shop, http)
    try:
        options = await browser.options(session)
        body, _ = await browser.sign(session, options.body)
        assert (await browser.finish(body)).status == 200
        result = await asyncio.wait_for(wait.result(), 10)
        assert result.kc_in_browser
        before = await net.network.state.get_ticket(ticket_hash(session.ticket))
        again = await browser.finish(body)
        assert (again.status, again.body) == (200, {"ok": True})
        assert await net.network.state.get_ticket(ticket_hash(session.ticket)) == before
        # Not the same request: any changed field is a second login, refused.
        for field, value in (
            ("client_key", not body["client_key"]),
            ("signature", b64u_encode(b64u_decode(body["signature"])[:-1] + b"\x00")),
        ):
            reply = await browser.finish({**body, field: value})
            assert (reply.status, reply.body["code"]) == (409, "ticket_state"), field
        # Nor from a page without the wait secret.
        reply = await browser.finish({**body, "wait_secret": b64u_encode(bytes(32))})
        assert (reply.status, reply.body["code"]) == (403, "browser_key_mismatch")
        # Once the SP consumed the ticket, the repeat still succeeds.
        who = await shop.get_puid(session.ticket, finalize=True)
        again = await browser.finish(body)
        assert (again.status, again.body) == (200, {"ok": True})
        assert await state_of(net, session) is TicketState.CONSUMED
        assert len(who.puid) == 22
        # ... and reopens nothing: the ticket stays used.
        with pytest.raises(TicketConsumed):
            await shop.get_puid(session.ticket, finalize=True)
    finally:
        await ctx.__aexit__(None, None, None)


# --- enrolment and the gateway's pages ----------------------------------------


async def test_enrolment_only_from_the_networks_own_pages(
    net: TestNetwork, browser: BrowserWithKey, http: aiohttp.ClientSession
) -> None:
    url = f"{browser.gateway}/v1/webauthn/enrol/options"
    reply = await post(http, url, {"label": "k"}, origin="https://evil.example")
    assert (reply.status, reply.body["code"]) == (403, "permission_denied")
    reply = await post(http, url, {"label": "bad\nlabel"}, origin=browser.gateway)
    assert (reply.status, reply.body["code"]) == (400, "malformed")
    # A registration made on another page than the one posting it.
    reply = await browser.enrol(origin="http://localhost:4444", post_from=browser.gateway)
    assert (reply.status, reply.body["code"]) == (400, "signature_invalid")
    assert "origin" in reply.body["message"].lower()
    assert (await browser.enrol()).status == 200


async def test_the_enrol_page_and_related_origins(
    net: TestNetwork, shop: AsyncSPClient, http: aiohttp.ClientSession
) -> None:
    gateway = net.addresses.gateway_url
    async with http.get(f"{gateway}/v1/enrol") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/html")
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert 'src="/v1/enrol.js"' in await r.text()
    async with http.get(f"{gateway}/v1/enrol.js") as r:
        assert r.status == 200
        assert "enrolSecurityKey" in await r.text()
    async with http.get(f"{gateway}/.well-known/webauthn") as r:
        assert (await r.json()) == {"origins": [PAGE]}
    # Cross-origin pages may call the login endpoints (after a preflight).
    async with http.options(
        f"{gateway}/v1/webauthn/login",
        headers={"Origin": PAGE, "Access-Control-Request-Method": "POST"},
    ) as r:
        assert r.status == 204
        assert r.headers["Access-Control-Allow-Origin"] == PAGE
