"""Python seals, JavaScript opens: authnet.js against authnet.protocol, in Chromium."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from playwright.async_api import Page

from authnet.protocol.encoding import b64u_decode, b64u_encode, transcript
from authnet.protocol.ids import new_ticket, ticket_hash
from authnet.protocol.kc import kc_fingerprint
from authnet.protocol.payload import LoginPayload, parse_address
from authnet.protocol.sealing import SealedKey, seal_info, seal_kc
from authnet.sdk.browser import websocket_url

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

NEW_KEY_PAIR = """
async () => {
  const { keyPair, publicKey } = await authnet.generateBrowserKey();
  window.keyPair = keyPair;
  return {
    publicKey: authnet.b64uEncode(publicKey),
    privateExtractable: keyPair.privateKey.extractable,
    privateExport: await errorOf(crypto.subtle.exportKey("pkcs8", keyPair.privateKey)),
  };
}
"""

OPEN = """
async ([sealed, ticket, spid]) => {
  const kc = await authnet.openSealedKc(sealed, window.keyPair, ticket, spid);
  window.kc = kc;
  return {
    isClientKey: kc instanceof authnet.ClientKey,
    fingerprint: await kc.fingerprint(),
    algorithm: kc.key.algorithm.name,
    usages: [...kc.key.usages].sort(),
    extractable: kc.key.extractable,
    exportRaw: await errorOf(crypto.subtle.exportKey("raw", kc.key)),
    exportJwk: await errorOf(crypto.subtle.exportKey("jwk", kc.key)),
  };
}
"""

OPEN_ERROR = """
async ([sealed, ticket, spid]) =>
  errorOf(authnet.openSealedKc(sealed, window.keyPair, ticket, spid))
"""


def _sealed_json(s: SealedKey) -> dict[str, str]:
    return {"enc": b64u_encode(s.enc), "ciphertext": b64u_encode(s.ciphertext)}


def _flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


async def _page_key(page: Page) -> bytes:
    got = await page.evaluate(NEW_KEY_PAIR)
    assert got["privateExtractable"] is False
    assert got["privateExport"]["name"] == "InvalidAccessError"
    return b64u_decode(got["publicKey"], field="browser key", length=32)


async def test_python_sealed_kc_opens_in_the_page_as_a_non_extractable_key(page: Page) -> None:
    browser_key = await _page_key(page)
    kc = secrets.token_bytes(32)
    ticket = new_ticket()
    spid = secrets.token_bytes(16)
    sealed = seal_kc(kc, browser_key, ticket_hash=ticket_hash(ticket), spid=spid)

    got = await page.evaluate(OPEN, [_sealed_json(sealed), ticket, spid.hex()])

    assert got["isClientKey"] is True
    assert got["fingerprint"] == kc_fingerprint(kc)
    assert got["algorithm"] == "HKDF"
    assert got["usages"] == ["deriveBits", "deriveKey"]
    assert got["extractable"] is False
    # exportKey rejects: WebCrypto has no export for HKDF keys at all (NotSupportedError,
    # checked before extractability), and the key is not extractable either.
    for exported in (got["exportRaw"], got["exportJwk"]):
        assert exported is not None
        assert exported["name"] in ("NotSupportedError", "InvalidAccessError")


async def test_altered_or_misdirected_sealed_kc_is_sealed_key_invalid(page: Page) -> None:
    browser_key = await _page_key(page)
    kc = secrets.token_bytes(32)
    ticket = new_ticket()
    spid = secrets.token_bytes(16)
    sealed = seal_kc(kc, browser_key, ticket_hash=ticket_hash(ticket), spid=spid)
    good = _sealed_json(sealed)
    other_browser = x25519.X25519PrivateKey.generate().public_key().public_bytes_raw()
    for_other_browser = seal_kc(kc, other_browser, ticket_hash=ticket_hash(ticket), spid=spid)

    cases: dict[str, tuple[dict[str, str], str, str]] = {
        "tampered enc": (
            {**good, "enc": b64u_encode(_flip(sealed.enc, 7))},
            ticket,
            spid.hex(),
        ),
        "tampered ciphertext": (
            {**good, "ciphertext": b64u_encode(_flip(sealed.ciphertext, 3))},
            ticket,
            spid.hex(),
        ),
        "tampered tag": (
            {**good, "ciphertext": b64u_encode(_flip(sealed.ciphertext, 47))},
            ticket,
            spid.hex(),
        ),
        "wrong ticket": (good, new_ticket(), spid.hex()),
        "wrong SPID": (good, ticket, secrets.token_bytes(16).hex()),
        "sealed to another browser": (_sealed_json(for_other_browser), ticket, spid.hex()),
        "swapped halves": (
            {"enc": good["enc"], "ciphertext": _sealed_json(for_other_browser)["ciphertext"]},
            ticket,
            spid.hex(),
        ),
        "short ciphertext": (
            {**good, "ciphertext": b64u_encode(sealed.ciphertext[:-1])},
            ticket,
            spid.hex(),
        ),
        "enc not base64url": ({**good, "enc": good["enc"][:-1] + "+"}, ticket, spid.hex()),
        "missing ciphertext": ({"enc": good["enc"]}, ticket, spid.hex()),
    }
    results: dict[str, Any] = {}
    for name, args in cases.items():
        results[name] = await page.evaluate(OPEN_ERROR, list(args))

    for name, err in results.items():
        assert err is not None, f"{name}: opened"
        assert (err["name"], err["code"]) == ("AuthnetError", "sealed_key_invalid"), name
        assert "does not open" in err["message"], name
    # The untouched sealed key still opens (the cases above really were the changes).
    got = await page.evaluate(OPEN, [good, ticket, spid.hex()])
    assert got["fingerprint"] == kc_fingerprint(kc)


async def test_protocol_helpers_match_python(page: Page) -> None:
    ticket = new_ticket()
    spid = secrets.token_bytes(16)
    key = secrets.token_bytes(32)
    fields = [b"", b"\x00\x01", secrets.token_bytes(300)]
    got = await page.evaluate(
        """
        async ([ticket, spid, key, fields]) => ({
          ticketHash: hex(await authnet.ticketHash(ticket)),
          transcript: hex(authnet.transcript("authnet/v1 test", ...fields.map(unhex))),
          sealInfo: hex(
            authnet.sealInfo(await authnet.ticketHash(ticket), authnet.parseSpid(spid))),
          payload: authnet.buildPayload({
            ticket, browserKey: unhex(key), passkeyAddress: "localhost:7443" }),
          payloadV6: authnet.buildPayload({
            ticket, browserKey: unhex(key), passkeyAddress: "[::1]:7443" }),
          ws: authnet.websocketUrl("http://localhost:8080"),
          wss: authnet.websocketUrl("https://gw.example:443/"),
          badTicket: (await errorOf((async () => authnet.checkTicket(ticket.slice(0, -1) + "B"))()))
            ?.code,
          nonCanonical: (await errorOf((async () => authnet.b64uDecode("AB"))()))?.code,
          badSpid: (await errorOf((async () => authnet.parseSpid(spid.toUpperCase()))()))?.code,
        })
        """,
        [ticket, spid.hex(), key.hex(), [f.hex() for f in fields]],
    )
    assert got["ticketHash"] == ticket_hash(ticket).hex()
    assert got["transcript"] == transcript(b"authnet/v1 test", *fields).hex()
    assert got["sealInfo"] == seal_info(ticket_hash(ticket), spid).hex()
    for field, address in (("payload", "localhost:7443"), ("payloadV6", "[::1]:7443")):
        expected = LoginPayload(ticket=ticket, browser_key=key, network=parse_address(address))
        assert got[field] == expected.encode()
    assert got["ws"] == websocket_url("http://localhost:8080")
    assert got["wss"] == websocket_url("https://gw.example:443/")
    # A ticket whose last character carries stray low bits is not canonical.
    assert got["badTicket"] == "malformed"
    assert got["nonCanonical"] == "malformed"
    assert got["badSpid"] == "malformed"


async def test_keys_derived_from_kc_match_python_hkdf(page: Page) -> None:
    browser_key = await _page_key(page)
    kc = secrets.token_bytes(32)
    ticket = new_ticket()
    spid = secrets.token_bytes(16)
    sealed = seal_kc(kc, browser_key, ticket_hash=ticket_hash(ticket), spid=spid)
    await page.evaluate(OPEN, [_sealed_json(sealed), ticket, spid.hex()])
    iv = secrets.token_bytes(12)

    got = await page.evaluate(
        """
        async ([iv]) => {
          const k = await window.kc.deriveAesGcmKey("example/v1 vault");
          const k128 = await window.kc.deriveAesGcmKey(new TextEncoder().encode("example/v1 short"),
            { length: 128 });
          const msg = new TextEncoder().encode("hello vault");
          const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv: unhex(iv) }, k, msg);
          const ct128 = await crypto.subtle.encrypt({ name: "AES-GCM", iv: unhex(iv) }, k128, msg);
          return {
            ct: hex(new Uint8Array(ct)),
            ct128: hex(new Uint8Array(ct128)),
            extractable: k.extractable,
            exportError: (await errorOf(crypto.subtle.exportKey("raw", k)))?.name,
            reserved: await errorOf(window.kc.deriveAesGcmKey("authnet/v1 kc fingerprint")),
            empty: await errorOf(window.kc.deriveAesGcmKey("")),
          };
        }
        """,
        [iv.hex()],
    )

    def derive(label: bytes, length: int) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=label).derive(kc)

    key = derive(b"example/v1 vault", 32)
    assert AESGCM(key).decrypt(iv, bytes.fromhex(got["ct"]), None) == b"hello vault"
    key128 = derive(b"example/v1 short", 16)
    assert AESGCM(key128).decrypt(iv, bytes.fromhex(got["ct128"]), None) == b"hello vault"
    assert got["extractable"] is False
    assert got["exportError"] == "InvalidAccessError"
    # Labels under authnet/ are the protocol's: the fingerprint's label would
    # otherwise give an "application key" equal to the public fingerprint.
    assert got["reserved"]["name"] == "TypeError"
    assert got["empty"]["name"] == "TypeError"
