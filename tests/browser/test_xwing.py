"""X-Wing in Chromium: xwing.js (on @noble/post-quantum, vendored) against the
hpke-pq draft's vectors, Python seals -> the page opens, the page refuses a
downgrade, and a phone-QR login that negotiates X-Wing end to end."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import x25519
from playwright.async_api import Page, WebSocketRoute

from authnet.errors import BrowserKeyMismatch
from authnet.protocol.encoding import b64u_decode, b64u_encode
from authnet.protocol.ids import new_ticket, ticket_hash
from authnet.protocol.kc import kc_fingerprint
from authnet.protocol.payload import parse_payload
from authnet.protocol.sealing import SealedKey, seal_info, seal_kc, seal_kc_to
from authnet.protocol.suites import BrowserOffer, SealSuite, pq_key_hash
from authnet.sdk.sp_client import AsyncSPClient
from authnet.testing import TestNetwork
from simulators.phone.app import PhoneApp
from tests.browser.site import Site, events, open_site, outcome, scan_screen, wait_state
from tests.helpers import mailbox_sizes
from tests.vectorfiles import load
from tokens import handshake

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

VECTORS = load("draft-ietf-hpke-pq.json")["vectors"]

RUN_VECTOR = """
async (v) => {
  const x = await authnet.loadXWing();
  const pair = x.keyPairFromSeed(unhex(v.skRm));
  const shared = x.decap(unhex(v.enc), pair.secretKey);
  const out = { pk: hex(pair.publicKey), shared: hex(shared) };
  if (v.kdf_id === 1) {  // RFC 9180's two-stage key schedule (hpke.js)
    const suiteId = hpke.hpkeSuiteId(v.kem_id, v.kdf_id, v.aead_id);
    const ks = await hpke.keySchedule(shared, unhex(v.info), { suiteId, nk: 32 });
    out.suiteId = hex(suiteId);
    out.key = hex(ks.key);
    out.baseNonce = hex(ks.baseNonce);
    out.exporter = hex(ks.exporterSecret);
    out.exports = [];
    for (const e of v.exports) {
      out.exports.push(hex(await hpke.labeledExpand(
        suiteId, ks.exporterSecret, "sec", unhex(e.exporter_context), e.L)));
    }
  }
  const otherEnc = unhex(v.enc);
  otherEnc[3] ^= 1;  // ML-KEM's implicit rejection: another secret, no error
  out.otherShared = hex(x.decap(otherEnc, pair.secretKey));
  out.shortEnc = (await errorOf((async () => x.decap(unhex(v.enc).slice(1), pair.secretKey))()))
    ?.name;
  return out;
}
"""

NEW_KEYS = """
async () => {
  const { keyPair, publicKey } = await authnet.generateBrowserKey();
  const xwing = await authnet.generateXWingKey();
  window.keyPair = keyPair;
  window.xwing = xwing;
  return { x25519: hex(publicKey), xwing: hex(xwing.publicKey), keyHash: hex(xwing.keyHash),
           seedLength: xwing.secretKey.length };
}
"""

OPEN = """
async ([sealed, ticket, spid]) => {
  try {
    const kc = await authnet.openSealedKc(sealed, window.keyPair, ticket, spid,
                                          { xwing: window.xwing });
    return { fingerprint: await kc.fingerprint(), extractable: kc.key.extractable };
  } catch (e) {
    return { error: e.code ?? e.name, message: e.message };
  }
}
"""


def _json(s: SealedKey) -> dict[str, str]:
    return {"enc": b64u_encode(s.enc), "ciphertext": b64u_encode(s.ciphertext)}


@pytest_asyncio.fixture(loop_scope="session")
async def pq_page(bare_page: Page, site: Site) -> Page:
    await open_site(bare_page, site, "/pq")
    return bare_page


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: f"kdf{v['kdf_id']:#06x}")
async def test_xwing_js_against_the_draft_vectors(pq_page: Page, v: dict[str, Any]) -> None:
    got = await pq_page.evaluate(RUN_VECTOR, v)
    assert got["pk"] == v["pkRm"]
    assert got["shared"] == v["shared_secret"]
    assert got["otherShared"] != v["shared_secret"]
    assert got["shortEnc"] == "InvalidInputError"
    if v["kdf_id"] == 1:
        assert got["suiteId"] == v["suite_id"]
        assert got["key"] == v["key"]
        assert got["baseNonce"] == v["base_nonce"]
        assert got["exporter"] == v["exporter_secret"]
        assert got["exports"] == [e["exported_value"] for e in v["exports"]]


async def _offer(page: Page) -> tuple[BrowserOffer, bytes]:
    got = await page.evaluate(NEW_KEYS)
    assert got["seedLength"] == 32
    xwing_pk = bytes.fromhex(got["xwing"])
    offer = BrowserOffer(x25519_key=bytes.fromhex(got["x25519"]), pq_key_hash=pq_key_hash(xwing_pk))
    assert offer.pq_key_hash is not None
    assert offer.pq_key_hash.hex() == got["keyHash"]
    return offer, xwing_pk


async def test_python_seals_with_xwing_and_the_page_opens(pq_page: Page) -> None:
    offer, xwing_pk = await _offer(pq_page)
    kc, ticket, spid = secrets.token_bytes(32), new_ticket(), secrets.token_bytes(16)
    th = ticket_hash(ticket)
    sealed = seal_kc_to(
        kc, offer, suite=SealSuite.XWING, ticket_hash=th, spid=spid, pq_key=xwing_pk
    )
    got = await pq_page.evaluate(OPEN, [_json(sealed), ticket, spid.hex()])
    assert got == {"fingerprint": kc_fingerprint(kc), "extractable": False}
    # The info the page computes is Python's (offer hash and suite id bound).
    info = await pq_page.evaluate(
        """async ([ticket, spid, x25519, keyHash]) => hex(authnet.sealInfo(
             await authnet.ticketHash(ticket), authnet.parseSpid(spid),
             { offerHash: await authnet.offerHash(unhex(x25519), unhex(keyHash)),
               suiteId: Uint8Array.of(0x64, 0x7a, 0, 1, 0, 2) }))""",
        [ticket, spid.hex(), offer.x25519_key.hex(), (offer.pq_key_hash or b"").hex()],
    )
    assert info == seal_info(th, spid, offer=offer, suite=SealSuite.XWING).hex()

    flipped = bytearray(sealed.enc)
    flipped[100] ^= 1
    cases = {
        "tampered enc": ({**_json(sealed), "enc": b64u_encode(bytes(flipped))}, ticket),
        "wrong ticket": (_json(sealed), new_ticket()),
    }
    for name, (sealed_json, t) in cases.items():
        bad = await pq_page.evaluate(OPEN, [sealed_json, t, spid.hex()])
        assert bad.get("error") == "sealed_key_invalid", name
    # Sealed for an offer with another X25519 key (a rewritten code): does not open.
    forged = BrowserOffer(
        x25519_key=x25519.X25519PrivateKey.generate().public_key().public_bytes_raw(),
        pq_key_hash=offer.pq_key_hash,
    )
    other = seal_kc_to(
        kc, forged, suite=SealSuite.XWING, ticket_hash=th, spid=spid, pq_key=xwing_pk
    )
    bad = await pq_page.evaluate(OPEN, [_json(other), ticket, spid.hex()])
    assert bad.get("error") == "sealed_key_invalid"


async def test_the_page_refuses_x25519_after_offering_xwing(pq_page: Page) -> None:
    offer, _ = await _offer(pq_page)
    kc, ticket, spid = secrets.token_bytes(32), new_ticket(), secrets.token_bytes(16)
    th = ticket_hash(ticket)
    for sealed in (
        seal_kc_to(kc, offer, suite=SealSuite.X25519, ticket_hash=th, spid=spid),
        seal_kc(kc, offer.x25519_key, ticket_hash=th, spid=spid),  # a stripped offer
    ):
        got = await pq_page.evaluate(OPEN, [_json(sealed), ticket, spid.hex()])
        assert got.get("error") == "suite_downgraded", got


async def test_without_the_import_map_the_page_offers_x25519_only(page: Page) -> None:
    got = await page.evaluate(
        "async () => ({ module: await authnet.loadXWing(), key: await authnet.generateXWingKey() })"
    )
    assert got == {"module": None, "key": None}


async def test_phone_qr_login_negotiates_xwing(
    pq_page: Page, site: Site, sp: AsyncSPClient, phone: PhoneApp, net: TestNetwork
) -> None:
    with mailbox_sizes(net) as sizes:
        await pq_page.evaluate("startLogin()")
        await wait_state(pq_page, "waiting")
        text = await scan_screen(pq_page)
        payload = parse_payload(text)
        assert payload.pq_key_hash is not None
        report = await phone.scan(text, confirm=lambda _: True)
        assert report.accepted
        got = await outcome(pq_page)
    assert sizes == [SealSuite.XWING.enc_bytes + 48]
    assert got["fingerprint"] == report.kc_fingerprint
    assert got["extractable"] is False
    who = await sp.get_puid(got["ticket"], finalize=True)
    assert len(who.puid) == 22
    assert b64u_decode(who.puid, field="puid", length=16)


async def test_a_relay_stripping_the_registration_fails_the_scan(
    pq_page: Page, net: TestNetwork, phone: PhoneApp
) -> None:
    """Between page and gateway, pkX is removed from the hello: the ticket binds
    an X25519-only offer, the code still offers X-Wing, the token is refused."""
    hellos: list[dict[str, Any]] = []

    def relay(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def to_server(message: str | bytes) -> None:
            assert isinstance(message, str)
            frame = json.loads(message)
            if frame.get("type") == "hello":
                hellos.append(dict(frame))
                frame.pop("browser_pq_key", None)
            server.send(json.dumps(frame))

        ws.on_message(to_server)
        server.on_message(ws.send)

    ws_url = net.addresses.gateway_url.replace("http://", "ws://", 1) + "/v1/wait"
    await pq_page.route_web_socket(ws_url, relay)
    await pq_page.evaluate("startLogin()")
    await wait_state(pq_page, "waiting")
    text = await scan_screen(pq_page)
    assert len(b64u_decode(hellos[0]["browser_pq_key"], field="pk")) == 1216
    with pytest.raises(BrowserKeyMismatch):
        await phone.scan(text, confirm=lambda _: True)
    assert await pq_page.evaluate("window.outcome") is None


async def test_the_widget_refuses_a_token_that_seals_x25519(pq_page: Page, phone: PhoneApp) -> None:
    """A token that ignores the X-Wing offer (the network accepts its signed
    answer): the page refuses the weaker seal and says so."""
    await pq_page.evaluate("startLogin()")
    await wait_state(pq_page, "waiting")
    payload = parse_payload(await scan_screen(pq_page))
    enrolment = phone.enrolment(None)
    async with phone.api(enrolment) as api:
        request = await api.begin_auth(
            ticket=payload.ticket,
            token_id=enrolment.token_id,
            browser_key_hash=payload.offer.digest(),
        )
        r = handshake.respond(
            payload=payload,
            request=request,
            token=phone.token,
            token_id=enrolment.token_id,
            suites=(SealSuite.X25519,),
        )
        await api.complete_auth(r)
    await wait_state(pq_page, "error")
    evs = await events(pq_page)
    assert evs[-1]["code"] == "suite_downgraded"
    assert "less strongly" in await pq_page.locator(".authnet-status").inner_text()
    assert await pq_page.evaluate("window.outcome") is None  # no Kc: the page may try again
