"""Sealing Kc with HPKE (authnet.protocol.sealing): the cryptography library's
HPKE checked against RFC 9180 A.1.1, then our seal/open API."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from authnet.errors import MalformedInput, SealedKeyInvalid
from authnet.protocol import labels
from authnet.protocol.encoding import transcript
from authnet.protocol.ids import new_ticket, ticket_hash
from authnet.protocol.sealing import (
    CIPHERTEXT_BYTES,
    ENC_BYTES,
    SUITE,
    SealedKey,
    open_kc,
    seal_info,
    seal_kc,
)
from tests.vectorfiles import load

VECTORS = load("rfc9180-hpke.json")["vectors"]
assert VECTORS, "rfc9180-hpke.json holds no vectors"


def h(v: dict[str, Any], name: str) -> bytes:
    return bytes.fromhex(v[name])


def raw_public(private: x25519.X25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def nonce_for(base_nonce: bytes, seq: int) -> bytes:
    return bytes(
        a ^ b for a, b in zip(base_nonce, seq.to_bytes(len(base_nonce), "big"), strict=True)
    )


# --- an independent RFC 9180 for the vector file itself ---------------------------------


def _extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def _expand(prk: bytes, info: bytes, length: int) -> bytes:
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


def _labeled_extract(suite_id: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return _extract(salt, b"HPKE-v1" + suite_id + label + ikm)


def _labeled_expand(suite_id: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    return _expand(prk, length.to_bytes(2, "big") + b"HPKE-v1" + suite_id + label + info, length)


@pytest.mark.parametrize("v", VECTORS)
def test_vector_file_is_rfc9180_a11_and_self_consistent(v: dict[str, Any]) -> None:
    """Recompute the vector's intermediate values from its inputs (RFC 9180
    sections 4, 5.1, 7.1.3), so a corrupted file cannot pass for a good one."""
    assert (v["mode"], v["kem_id"], v["kdf_id"], v["aead_id"]) == (0, 0x20, 1, 1)
    kem = b"KEM" + (0x20).to_bytes(2, "big")
    hpke = b"HPKE" + b"".join(x.to_bytes(2, "big") for x in (0x20, 1, 1))
    # DeriveKeyPair (X25519): sk = LabeledExpand(LabeledExtract("", "dkp_prk", ikm), "sk", "", 32)
    for ikm, sk in (("ikmE", "skEm"), ("ikmR", "skRm")):
        dkp = _labeled_extract(kem, b"", b"dkp_prk", h(v, ikm))
        assert _labeled_expand(kem, dkp, b"sk", b"", 32) == h(v, sk)
    # Encap: shared_secret = ExtractAndExpand(DH(skE, pkR), enc || pkR)
    dh = x25519.X25519PrivateKey.from_private_bytes(h(v, "skEm")).exchange(
        x25519.X25519PublicKey.from_public_bytes(h(v, "pkRm"))
    )
    eae = _labeled_extract(kem, b"", b"eae_prk", dh)
    shared = _labeled_expand(kem, eae, b"shared_secret", h(v, "enc") + h(v, "pkRm"), 32)
    assert shared == h(v, "shared_secret")
    # Key schedule, base mode (no PSK).
    psk_id_hash = _labeled_extract(hpke, b"", b"psk_id_hash", b"")
    info_hash = _labeled_extract(hpke, b"", b"info_hash", h(v, "info"))
    context = bytes([0]) + psk_id_hash + info_hash
    assert context == h(v, "key_schedule_context")
    secret = _labeled_extract(hpke, shared, b"secret", b"")
    assert secret == h(v, "secret")
    assert _labeled_expand(hpke, secret, b"key", context, 16) == h(v, "key")
    assert _labeled_expand(hpke, secret, b"base_nonce", context, 12) == h(v, "base_nonce")
    exporter = _labeled_expand(hpke, secret, b"exp", context, 32)
    assert exporter == h(v, "exporter_secret")
    for e in v["exports"]:
        value = _labeled_expand(
            hpke, exporter, b"sec", bytes.fromhex(e["exporter_context"]), e["L"]
        )
        assert value == bytes.fromhex(e["exported_value"])


# --- the library against the vectors --------------------------------------------------


@pytest.mark.parametrize("v", VECTORS)
def test_library_derives_the_vector_key_pairs(v: dict[str, Any]) -> None:
    sk_r = x25519.X25519PrivateKey.from_private_bytes(h(v, "skRm"))
    sk_e = x25519.X25519PrivateKey.from_private_bytes(h(v, "skEm"))
    assert raw_public(sk_r) == h(v, "pkRm")
    assert raw_public(sk_e) == h(v, "pkEm")
    assert h(v, "enc") == h(v, "pkEm")


@pytest.mark.parametrize("v", VECTORS)
def test_library_kem_and_key_schedule_give_the_vector_key_and_nonce(v: dict[str, Any]) -> None:
    """Suite.decrypt(enc || ct, skR, info) opens exactly what AES-128-GCM under
    the vector's key at its base nonce (sequence 0, empty aad) sealed."""
    sk_r = x25519.X25519PrivateKey.from_private_bytes(h(v, "skRm"))
    enc, info, key, base = h(v, "enc"), h(v, "info"), h(v, "key"), h(v, "base_nonce")
    pt = b"authnet: the library derives the RFC 9180 key and nonce"
    ct = AESGCM(key).encrypt(base, pt, b"")
    assert SUITE.decrypt(enc + ct, sk_r, info) == pt

    wrong_key = bytes([key[0] ^ 1]) + key[1:]
    bad: dict[str, bytes] = {
        "wrong key": AESGCM(wrong_key).encrypt(base, pt, b""),
        "sequence 1": AESGCM(key).encrypt(nonce_for(base, 1), pt, b""),
        "non-empty aad": AESGCM(key).encrypt(base, pt, b"Count-0"),
    }
    for bad_ct in bad.values():
        with pytest.raises(InvalidTag):
            SUITE.decrypt(enc + bad_ct, sk_r, info)
    # Another info, or another recipient key, gives another key schedule.
    with pytest.raises(InvalidTag):
        SUITE.decrypt(enc + ct, sk_r, info + b"!")
    with pytest.raises(InvalidTag):
        SUITE.decrypt(enc + ct, x25519.X25519PrivateKey.generate(), info)


@pytest.mark.parametrize("v", VECTORS)
def test_vector_encryptions_under_the_vector_key(v: dict[str, Any]) -> None:
    key, base = h(v, "key"), h(v, "base_nonce")
    aead = AESGCM(key)
    assert len(v["encryptions"]) >= 2
    for e in v["encryptions"]:
        seq = e["sequence_number"]
        nonce = bytes.fromhex(e["nonce"])
        assert nonce == nonce_for(base, seq)
        pt, aad, ct = (bytes.fromhex(e[k]) for k in ("pt", "aad", "ct"))
        assert aead.decrypt(nonce, ct, aad) == pt
        assert aead.encrypt(nonce, pt, aad) == ct
        with pytest.raises(InvalidTag):
            aead.decrypt(nonce, ct, aad + b"x")


@pytest.mark.parametrize("v", VECTORS)
def test_vector_sequence_zero_opens_through_the_library_only_with_its_aad(
    v: dict[str, Any],
) -> None:
    # The listed sequence-0 message has aad "Count-0"; the single-shot API uses
    # empty aad, so it must refuse it (and does not silently ignore aad).
    sk_r = x25519.X25519PrivateKey.from_private_bytes(h(v, "skRm"))
    first = next(e for e in v["encryptions"] if e["sequence_number"] == 0)
    assert first["aad"]
    with pytest.raises(InvalidTag):
        SUITE.decrypt(h(v, "enc") + bytes.fromhex(first["ct"]), sk_r, h(v, "info"))


@pytest.mark.parametrize("v", VECTORS)
def test_library_round_trip_to_the_vector_recipient(v: dict[str, Any]) -> None:
    sk_r = x25519.X25519PrivateKey.from_private_bytes(h(v, "skRm"))
    out = SUITE.encrypt(b"hello", sk_r.public_key(), h(v, "info"))
    assert len(out) == ENC_BYTES + 5 + 16
    assert SUITE.decrypt(out, sk_r, h(v, "info")) == b"hello"


# --- seal_kc / open_kc --------------------------------------------------------------------

KC = hashlib.sha256(b"kc").digest()
SPID = bytes.fromhex("0123456789abcdef0123456789abcdef")
OTHER_SPID = bytes.fromhex("0123456789abcdef0123456789abcdee")
TICKET = new_ticket()
TH = ticket_hash(TICKET)


@pytest.fixture(scope="module")
def browser() -> x25519.X25519PrivateKey:
    return x25519.X25519PrivateKey.generate()


@pytest.fixture(scope="module")
def sealed(browser: x25519.X25519PrivateKey) -> SealedKey:
    return seal_kc(KC, raw_public(browser), ticket_hash=TH, spid=SPID)


def test_seal_info_is_the_documented_transcript() -> None:
    assert seal_info(TH, SPID) == transcript(labels.SEAL_INFO, TH, SPID)
    assert seal_info(TH, SPID) == (
        b"authnet/v1 sealed kc\x00" + b"\x00\x20" + TH + b"\x00\x10" + SPID
    )


def test_round_trip(browser: x25519.X25519PrivateKey, sealed: SealedKey) -> None:
    assert len(sealed.enc) == ENC_BYTES == 32
    assert len(sealed.ciphertext) == CIPHERTEXT_BYTES == 48
    assert open_kc(sealed, browser, ticket_hash=TH, spid=SPID) == KC
    # It is plain HPKE with the documented info: the library opens it directly.
    assert SUITE.decrypt(sealed.enc + sealed.ciphertext, browser, seal_info(TH, SPID)) == KC


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
@settings(max_examples=25)
def test_round_trip_any_kc_and_ticket_hash(kc: bytes, th: bytes) -> None:
    sk = x25519.X25519PrivateKey.generate()
    s = seal_kc(kc, raw_public(sk), ticket_hash=th, spid=SPID)
    assert open_kc(s, sk, ticket_hash=th, spid=SPID) == kc
    assert kc not in s.enc + s.ciphertext


def test_sealing_is_randomised(browser: x25519.X25519PrivateKey, sealed: SealedKey) -> None:
    again = seal_kc(KC, raw_public(browser), ticket_hash=TH, spid=SPID)
    assert again.enc != sealed.enc
    assert again.ciphertext != sealed.ciphertext
    assert again.digest() != sealed.digest()


@pytest.mark.parametrize("index", range(ENC_BYTES + CIPHERTEXT_BYTES))
def test_tampering_any_byte_is_detected(
    browser: x25519.X25519PrivateKey, sealed: SealedKey, index: int
) -> None:
    wire = bytearray(sealed.enc + sealed.ciphertext)
    wire[index] ^= 0x01
    tampered = SealedKey(enc=bytes(wire[:ENC_BYTES]), ciphertext=bytes(wire[ENC_BYTES:]))
    with pytest.raises(SealedKeyInvalid):
        open_kc(tampered, browser, ticket_hash=TH, spid=SPID)
    assert tampered.digest() != sealed.digest()


def test_tampered_enc_top_bit(browser: x25519.X25519PrivateKey, sealed: SealedKey) -> None:
    # X25519 ignores the top bit of a public key (RFC 7748), so flipping it
    # gives the same shared secret but a different enc in the KEM context:
    # the key schedule differs and opening must still fail.
    enc = bytearray(sealed.enc)
    enc[-1] ^= 0x80
    with pytest.raises(SealedKeyInvalid):
        open_kc(
            SealedKey(enc=bytes(enc), ciphertext=sealed.ciphertext),
            browser,
            ticket_hash=TH,
            spid=SPID,
        )


def test_low_order_enc_is_refused(browser: x25519.X25519PrivateKey, sealed: SealedKey) -> None:
    with pytest.raises(SealedKeyInvalid):
        open_kc(
            SealedKey(enc=bytes(32), ciphertext=sealed.ciphertext),
            browser,
            ticket_hash=TH,
            spid=SPID,
        )


def test_opens_only_for_its_ticket_sp_and_browser(
    browser: x25519.X25519PrivateKey, sealed: SealedKey
) -> None:
    with pytest.raises(SealedKeyInvalid):
        open_kc(sealed, browser, ticket_hash=ticket_hash(new_ticket()), spid=SPID)
    with pytest.raises(SealedKeyInvalid):
        open_kc(sealed, browser, ticket_hash=TH, spid=OTHER_SPID)
    with pytest.raises(SealedKeyInvalid):
        open_kc(sealed, x25519.X25519PrivateKey.generate(), ticket_hash=TH, spid=SPID)
    # Swapping the two context values does not open it either.
    with pytest.raises(SealedKeyInvalid):
        open_kc(sealed, browser, ticket_hash=SPID + SPID, spid=TH[:16])


def test_digest_is_the_documented_hash(sealed: SealedKey) -> None:
    expected = hashlib.sha256(
        b"authnet/v1 sealed kc digest\x00"
        + b"\x00\x20"
        + sealed.enc
        + b"\x00\x30"
        + sealed.ciphertext
    ).digest()
    assert sealed.digest() == expected


@given(st.integers(min_value=0, max_value=100), st.integers(min_value=0, max_value=100))
@settings(max_examples=60)
def test_sealed_key_lengths_are_checked(enc_len: int, ct_len: int) -> None:
    if (enc_len, ct_len) == (ENC_BYTES, CIPHERTEXT_BYTES):
        SealedKey(enc=bytes(enc_len), ciphertext=bytes(ct_len))
        return
    with pytest.raises(MalformedInput, match="sealed key"):
        SealedKey(enc=bytes(enc_len), ciphertext=bytes(ct_len))


@pytest.mark.parametrize(("enc", "ct"), [(31, 48), (33, 48), (32, 47), (32, 49), (0, 0)])
def test_sealed_key_wrong_lengths(enc: int, ct: int) -> None:
    with pytest.raises(MalformedInput):
        SealedKey(enc=bytes(enc), ciphertext=bytes(ct))


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_seal_refuses_a_kc_of_the_wrong_size(browser: x25519.X25519PrivateKey, size: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        seal_kc(bytes(size), raw_public(browser), ticket_hash=TH, spid=SPID)


@pytest.mark.parametrize(
    "key",
    [
        b"",
        bytes(31),
        bytes(33),
        # Low-order points (RFC 7748 / "May the Fourth" list): no shared secret.
        bytes(32),
        b"\x01" + bytes(31),
        bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
        bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
        bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    ],
)
def test_seal_refuses_unusable_browser_keys(key: bytes) -> None:
    # The browser key comes from a scanned QR code: hostile input, so a bad
    # one is MalformedInput, never a raw library error.
    with pytest.raises(MalformedInput, match="browser key"):
        seal_kc(KC, key, ticket_hash=TH, spid=SPID)
