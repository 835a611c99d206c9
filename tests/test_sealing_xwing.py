"""The X-Wing suite (MLKEM768-X25519, KEM 0x647a) and suite negotiation:
the cryptography library and our X-Wing code against the hpke-pq draft's
vectors, then seal/open, the offer, and every way to downgrade a dual offer."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.bindings._rust import openssl as rust_openssl
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from authnet.errors import BrowserKeyMismatch, MalformedInput, SealedKeyInvalid, SuiteDowngraded
from authnet.protocol import labels
from authnet.protocol.encoding import transcript
from authnet.protocol.ids import browser_key_hash, new_ticket, ticket_hash
from authnet.protocol.sealing import (
    BrowserKeys,
    SealedKey,
    open_kc,
    seal_info,
    seal_kc,
    seal_kc_to,
)
from authnet.protocol.suites import (
    XWING_ENC_BYTES,
    XWING_PUBLIC_KEY_BYTES,
    BrowserOffer,
    SealSuite,
    check_pq_key,
    choose_suite,
    pq_key_hash,
    suite_for_enc,
    xwing_key_pair,
    xwing_public_key,
)
from tests.vectorfiles import load

VECTORS = load("draft-ietf-hpke-pq.json")["vectors"]
assert len(VECTORS) >= 2, "draft-ietf-hpke-pq.json holds no X-Wing vectors"
KDF = {0x0001: hpke.KDF.HKDF_SHA256, 0x0011: hpke.KDF.SHAKE256}
AEAD = {0x0001: hpke.AEAD.AES_128_GCM, 0x0003: hpke.AEAD.CHACHA20_POLY1305}
XWING_LABEL = b"\\.//^\\"


def h(v: dict[str, Any], name: str) -> bytes:
    return bytes.fromhex(v[name])


def _labeled_derive_shake256(
    suite_id: bytes, ikm: bytes, label: bytes, context: bytes, n: int
) -> bytes:
    """The hpke-pq draft's single-stage LabeledDerive over SHAKE256."""
    labeled = ikm + b"HPKE-v1" + suite_id + len(label).to_bytes(2, "big") + label
    return hashlib.shake_256(labeled + n.to_bytes(2, "big") + context).digest(n)


def _extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def _expand(prk: bytes, info: bytes, length: int) -> bytes:
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


# --- the vectors ---------------------------------------------------------------------


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: f"kdf{v['kdf_id']:#06x}")
def test_vector_key_pair_from_its_seed_and_ikm(v: dict[str, Any]) -> None:
    """DeriveKeyPair(ikmR) = SHAKE256.LabeledDerive(ikm, "DeriveKeyPair", "", 32)
    is the seed skRm, and X-Wing's key generation from it gives pkRm."""
    assert (v["mode"], v["kem_id"]) == (0, 0x647A)
    kem = b"KEM" + (0x647A).to_bytes(2, "big")
    assert _labeled_derive_shake256(kem, h(v, "ikmR"), b"DeriveKeyPair", b"", 32) == h(v, "skRm")
    pair = xwing_key_pair(h(v, "skRm"))
    assert pair.public_bytes == h(v, "pkRm")
    assert len(pair.public_bytes) == XWING_PUBLIC_KEY_BYTES
    assert len(h(v, "enc")) == XWING_ENC_BYTES


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: f"kdf{v['kdf_id']:#06x}")
def test_vector_decapsulation_by_hand(v: dict[str, Any]) -> None:
    """X-Wing Decap from its parts: ML-KEM-768, X25519 and the SHA3-256 combiner."""
    expanded = hashlib.shake_256(h(v, "skRm")).digest(96)
    sk_m = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64])
    sk_x = x25519.X25519PrivateKey.from_private_bytes(expanded[64:])
    enc = h(v, "enc")
    ss_m = sk_m.decapsulate(enc[:1088])
    ct_x = enc[1088:]
    ss_x = sk_x.exchange(x25519.X25519PublicKey.from_public_bytes(ct_x))
    pk_x = h(v, "pkRm")[1184:]
    shared = hashlib.sha3_256(ss_m + ss_x + ct_x + pk_x + XWING_LABEL).digest()
    assert shared == h(v, "shared_secret")


def test_vector_key_schedule_hkdf_sha256() -> None:
    """RFC 9180's two-stage key schedule over the X-Wing shared secret."""
    (v,) = [v for v in VECTORS if v["kdf_id"] == 1]
    sid = b"HPKE" + b"".join(x.to_bytes(2, "big") for x in (0x647A, 1, v["aead_id"]))
    assert sid == h(v, "suite_id")

    def lx(salt: bytes, label: bytes, ikm: bytes) -> bytes:
        return _extract(salt, b"HPKE-v1" + sid + label + ikm)

    def le(prk: bytes, label: bytes, info: bytes, n: int) -> bytes:
        return _expand(prk, n.to_bytes(2, "big") + b"HPKE-v1" + sid + label + info, n)

    context = bytes([0]) + lx(b"", b"psk_id_hash", b"") + lx(b"", b"info_hash", h(v, "info"))
    secret = lx(h(v, "shared_secret"), b"secret", b"")
    assert le(secret, b"key", context, 32) == h(v, "key")
    assert le(secret, b"base_nonce", context, 12) == h(v, "base_nonce")
    exporter = le(secret, b"exp", context, 32)
    assert exporter == h(v, "exporter_secret")
    for e in v["exports"]:
        got = le(exporter, b"sec", bytes.fromhex(e["exporter_context"]), e["L"])
        assert got == bytes.fromhex(e["exported_value"])


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: f"kdf{v['kdf_id']:#06x}")
def test_library_opens_the_vector_ciphertext(v: dict[str, Any]) -> None:
    """cryptography's HPKE with KEM MLKEM768_X25519 opens the vector's first
    encryption (sequence 0) and refuses it with a changed info or aad."""
    suite = hpke.Suite(hpke.KEM.MLKEM768_X25519, KDF[v["kdf_id"]], AEAD[v["aead_id"]])
    sk = xwing_key_pair(h(v, "skRm")).private_key
    e = v["encryptions"][0]
    assert e["nonce"] == v["base_nonce"]
    blob = h(v, "enc") + bytes.fromhex(e["ct"])
    aad = bytes.fromhex(e["aad"])
    opened = rust_openssl.hpke._decrypt_with_aad(suite, blob, sk, h(v, "info"), aad)
    assert opened == bytes.fromhex(e["pt"])
    with pytest.raises(InvalidTag):
        rust_openssl.hpke._decrypt_with_aad(suite, blob, sk, h(v, "info") + b"!", aad)
    with pytest.raises(InvalidTag):
        rust_openssl.hpke._decrypt_with_aad(suite, blob, sk, h(v, "info"), aad + b"!")


def test_suite_ids() -> None:
    assert SealSuite.X25519.suite_id.hex() == "002000010001"
    assert SealSuite.XWING.suite_id.hex() == "647a00010002"
    assert suite_for_enc(32) is SealSuite.X25519
    assert suite_for_enc(1120) is SealSuite.XWING
    with pytest.raises(MalformedInput):
        suite_for_enc(33)


# --- seal and open ---------------------------------------------------------------------

KC = bytes(range(32))
SPID = bytes(range(16))
TH = ticket_hash(new_ticket())


def browser(pq: bool = True) -> BrowserKeys:
    return BrowserKeys(
        x25519_private=x25519.X25519PrivateKey.generate(),
        xwing=xwing_key_pair(bytes(32 * [7])) if pq else None,
    )


def seal_xwing(keys: BrowserKeys, **ctx: bytes) -> SealedKey:
    assert keys.xwing is not None
    return seal_kc_to(
        KC,
        keys.offer,
        suite=SealSuite.XWING,
        ticket_hash=ctx.get("th", TH),
        spid=ctx.get("spid", SPID),
        pq_key=keys.xwing.public_bytes,
    )


def test_xwing_seal_opens_for_its_context_only() -> None:
    keys = browser()
    sealed = seal_xwing(keys)
    assert sealed.suite is SealSuite.XWING
    assert len(sealed.enc) == XWING_ENC_BYTES
    assert len(sealed.ciphertext) == 48
    assert keys.open(sealed, ticket_hash=TH, spid=SPID) == KC
    with pytest.raises(SealedKeyInvalid):
        keys.open(sealed, ticket_hash=bytes(32), spid=SPID)
    with pytest.raises(SealedKeyInvalid):
        keys.open(sealed, ticket_hash=TH, spid=bytes(16))
    tampered = SealedKey(
        enc=sealed.enc[:-1] + bytes([sealed.enc[-1] ^ 1]), ciphertext=sealed.ciphertext
    )
    with pytest.raises(SealedKeyInvalid):
        keys.open(tampered, ticket_hash=TH, spid=SPID)
    # Two seals of one Kc differ (fresh encapsulation each time).
    assert seal_xwing(keys).enc != sealed.enc


def test_dual_offer_info_binds_offer_and_suite() -> None:
    keys = browser()
    offer = keys.offer
    assert seal_info(TH, SPID, offer=offer, suite=SealSuite.XWING) == transcript(
        labels.SEAL_INFO, TH, SPID, offer.digest(), bytes.fromhex("647a00010002")
    )
    assert seal_info(TH, SPID, offer=offer, suite=SealSuite.X25519) != seal_info(
        TH, SPID, offer=offer, suite=SealSuite.XWING
    )


def test_legacy_offer_is_v1_unchanged() -> None:
    """Old clients: an X25519-only offer hashes, binds and seals exactly as before."""
    keys = browser(pq=False)
    offer = keys.offer
    assert offer.legacy
    assert offer.suites == (SealSuite.X25519,)
    assert offer.digest() == browser_key_hash(keys.x25519_public)
    assert seal_info(TH, SPID, offer=offer) == transcript(labels.SEAL_INFO, TH, SPID)
    assert choose_suite(offer) is SealSuite.X25519
    sealed = seal_kc(KC, keys.x25519_public, ticket_hash=TH, spid=SPID)
    assert open_kc(sealed, keys.x25519_private, ticket_hash=TH, spid=SPID) == KC
    assert keys.open(sealed, ticket_hash=TH, spid=SPID) == KC


def test_offer_hash_covers_both_keys() -> None:
    keys = browser()
    offer = keys.offer
    assert offer.pq_key_hash == pq_key_hash(keys.xwing.public_bytes)  # type: ignore[union-attr]
    assert (
        offer.digest()
        == hashlib.sha256(
            transcript(labels.BROWSER_OFFER, keys.x25519_public, offer.pq_key_hash or b"")
        ).digest()
    )
    other = BrowserOffer(x25519_key=offer.x25519_key, pq_key_hash=bytes(32))
    assert len({offer.digest(), other.digest(), browser_key_hash(offer.x25519_key)}) == 3


def test_negotiation_picks_the_best_both_support() -> None:
    dual = browser().offer
    assert dual.suites == (SealSuite.XWING, SealSuite.X25519)
    assert choose_suite(dual) is SealSuite.XWING
    assert choose_suite(dual, (SealSuite.X25519,)) is SealSuite.X25519
    assert choose_suite(dual, (SealSuite.X25519, SealSuite.XWING)) is SealSuite.XWING
    with pytest.raises(MalformedInput, match="no suite"):
        choose_suite(browser(pq=False).offer, (SealSuite.XWING,))


# --- downgrades ------------------------------------------------------------------------


def test_browser_refuses_x25519_when_it_offered_xwing() -> None:
    """A token that ignores the X-Wing offer, or one that saw a stripped code
    (the v1 info): the browser knows it offered X-Wing and refuses both."""
    keys = browser()
    honest_binding = seal_kc_to(KC, keys.offer, suite=SealSuite.X25519, ticket_hash=TH, spid=SPID)
    stripped = seal_kc(KC, keys.x25519_public, ticket_hash=TH, spid=SPID)
    for sealed in (honest_binding, stripped):
        assert sealed.suite is SealSuite.X25519
        with pytest.raises(SuiteDowngraded):
            keys.open(sealed, ticket_hash=TH, spid=SPID)


def test_a_seal_for_another_offer_does_not_open() -> None:
    """X-Wing to the right key, but bound to an offer with another X25519 key
    (a relay that rewrote the code's `k`): the info differs."""
    keys = browser()
    assert keys.xwing is not None
    forged = BrowserOffer(
        x25519_key=x25519.X25519PrivateKey.generate().public_key().public_bytes_raw(),
        pq_key_hash=keys.offer.pq_key_hash,
    )
    sealed = seal_kc_to(
        KC, forged, suite=SealSuite.XWING, ticket_hash=TH, spid=SPID, pq_key=keys.xwing.public_bytes
    )
    with pytest.raises(SealedKeyInvalid):
        keys.open(sealed, ticket_hash=TH, spid=SPID)


def test_token_refuses_a_missing_or_swapped_xwing_key() -> None:
    keys = browser()
    offer = keys.offer
    other = xwing_key_pair(bytes(32)).public_bytes
    for relayed in (None, b"", other, other[:-1]):
        with pytest.raises(BrowserKeyMismatch):
            check_pq_key(offer, relayed)
        with pytest.raises(BrowserKeyMismatch):
            seal_kc_to(KC, offer, suite=SealSuite.XWING, ticket_hash=TH, spid=SPID, pq_key=relayed)
    assert keys.xwing is not None
    assert check_pq_key(offer, keys.xwing.public_bytes) == keys.xwing.public_bytes


def test_seal_refuses_a_suite_not_offered() -> None:
    keys = browser(pq=False)
    with pytest.raises(ValueError, match="did not offer"):
        seal_kc_to(KC, keys.offer, suite=SealSuite.XWING, ticket_hash=TH, spid=SPID)


# --- encodings -------------------------------------------------------------------------


def test_mailbox_bytes_round_trip_both_suites() -> None:
    keys = browser()
    for sealed in (seal_xwing(keys), seal_kc(KC, keys.x25519_public, ticket_hash=TH, spid=SPID)):
        assert SealedKey.from_bytes(sealed.to_bytes()) == sealed
    with pytest.raises(MalformedInput):
        SealedKey.from_bytes(bytes(100))
    with pytest.raises(MalformedInput):
        SealedKey(enc=bytes(1119), ciphertext=bytes(48))


def test_xwing_public_key_parse_refuses_bad_input() -> None:
    good = xwing_key_pair(bytes(32)).public_bytes
    assert isinstance(xwing_public_key(good), hpke.MLKEM768X25519PublicKey)
    with pytest.raises(MalformedInput, match="1216"):
        xwing_public_key(good[:-1])
    # An ML-KEM key with a coefficient >= q fails FIPS 203's modulus check.
    with pytest.raises(MalformedInput, match="not an X-Wing public key"):
        xwing_public_key(b"\xff" * XWING_PUBLIC_KEY_BYTES)
    with pytest.raises(MalformedInput):
        pq_key_hash(good + b"\x00")


def test_reprs_hold_no_keys() -> None:
    keys = browser()
    assert keys.xwing is not None
    assert "private" in repr(keys.xwing)
    assert keys.xwing.public_bytes.hex()[:16] not in repr(keys)
