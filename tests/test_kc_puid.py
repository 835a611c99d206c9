"""The client key Kc (authnet.protocol.kc) and directed identity (authnet.puid):
each checked against an independent implementation of its documented formula,
and for the separations it promises."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authnet.protocol import labels
from authnet.protocol.encoding import b64u_decode, b64u_encode
from authnet.protocol.ids import check_ticket
from authnet.protocol.kc import FINGERPRINT_BYTES, KC_BYTES, derive_kc, kc_fingerprint
from authnet.puid import DirectedIdentity

IKM = hashlib.sha256(b"device secret").digest()
SPID_A = bytes.fromhex("00112233445566778899aabbccddeeff")
SPID_B = bytes.fromhex("00112233445566778899aabbccddeefe")
MASTER = hashlib.sha256(b"network master").digest()
USER_A = b"A" * 16
USER_B = b"B" * 16
TOKEN_A = b"a" * 16
TOKEN_B = b"b" * 16

ikms = st.binary(min_size=32, max_size=64)
spids = st.binary(min_size=16, max_size=16)
ids16 = st.binary(min_size=16, max_size=16)


def rfc5869(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 written out from RFC 5869, independent of `cryptography`."""
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


# --- Kc -------------------------------------------------------------------------


def test_derive_kc_matches_the_documented_formula() -> None:
    kc = derive_kc(IKM, SPID_A, salt=labels.KC_PHONE_SALT)
    assert kc == rfc5869(IKM, labels.KC_PHONE_SALT, b"authnet/v1 kc\x00" + SPID_A, 32)


@given(ikms, spids)
@settings(max_examples=50)
def test_derive_kc_is_deterministic_and_32_bytes(ikm: bytes, spid: bytes) -> None:
    kc = derive_kc(ikm, spid, salt=labels.KC_PHONE_SALT)
    assert len(kc) == KC_BYTES == 32
    assert derive_kc(ikm, spid, salt=labels.KC_PHONE_SALT) == kc
    assert kc != ikm[:32]


@given(ikms, spids, spids)
@settings(max_examples=50)
def test_different_spids_give_different_kc(ikm: bytes, a: bytes, b: bytes) -> None:
    if a == b:
        return
    assert derive_kc(ikm, a, salt=labels.KC_PHONE_SALT) != derive_kc(
        ikm, b, salt=labels.KC_PHONE_SALT
    )


@given(ikms, ikms, spids)
@settings(max_examples=50)
def test_different_device_secrets_give_different_kc(a: bytes, b: bytes, spid: bytes) -> None:
    if a == b:
        return
    assert derive_kc(a, spid, salt=labels.KC_PHONE_SALT) != derive_kc(
        b, spid, salt=labels.KC_PHONE_SALT
    )


def test_different_token_kinds_give_different_kc() -> None:
    # The salt names the token kind: the same secret in two kinds of token
    # must not yield the same Kc.
    salts = [labels.KC_PHONE_SALT, b"authnet/v1 fido2 kc", b"authnet/v1 piv kc", b""]
    kcs = {derive_kc(IKM, SPID_A, salt=s) for s in salts}
    assert len(kcs) == len(salts)


@pytest.mark.parametrize("size", [0, 1, 16, 19])
def test_short_ikm_is_refused(size: int) -> None:
    with pytest.raises(ValueError, match="160 bits"):
        derive_kc(bytes(size), SPID_A, salt=labels.KC_PHONE_SALT)


def test_hmac_sha1_length_ikm_is_the_minimum() -> None:
    """The OTP applet's HMAC-SHA1 output (20 bytes) is the shortest Kc source."""
    assert len(derive_kc(bytes(20), SPID_A, salt=labels.KC_OTP_SALT)) == 32


@pytest.mark.parametrize("size", [0, 15, 17, 32])
def test_spid_must_be_16_bytes(size: int) -> None:
    with pytest.raises(ValueError, match="SPID"):
        derive_kc(IKM, bytes(size), salt=labels.KC_PHONE_SALT)


# --- fingerprint ----------------------------------------------------------------

FP_RE = re.compile(r"[0-9a-f]{8}(?:-[0-9a-f]{8}){3}")


def test_fingerprint_matches_the_documented_formula() -> None:
    kc = derive_kc(IKM, SPID_A, salt=labels.KC_PHONE_SALT)
    raw = rfc5869(kc, b"", b"authnet/v1 kc fingerprint", FINGERPRINT_BYTES)
    h = raw.hex()
    assert kc_fingerprint(kc) == f"{h[0:8]}-{h[8:16]}-{h[16:24]}-{h[24:32]}"


@given(st.binary(min_size=32, max_size=32))
@settings(max_examples=100)
def test_fingerprint_format_and_independence_from_kc(kc: bytes) -> None:
    fp = kc_fingerprint(kc)
    assert FP_RE.fullmatch(fp)
    assert kc_fingerprint(kc) == fp
    raw = bytes.fromhex(fp.replace("-", ""))
    assert len(raw) == FINGERPRINT_BYTES
    # No part of Kc shows through: no 4-byte window of the fingerprint occurs in Kc.
    for i in range(len(raw) - 3):
        assert raw[i : i + 4] not in kc
    assert fp.replace("-", "") not in kc.hex()


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
@settings(max_examples=50)
def test_different_kc_give_different_fingerprints(a: bytes, b: bytes) -> None:
    if a != b:
        assert kc_fingerprint(a) != kc_fingerprint(b)


def test_fingerprint_differs_per_sp() -> None:
    fa = kc_fingerprint(derive_kc(IKM, SPID_A, salt=labels.KC_PHONE_SALT))
    fb = kc_fingerprint(derive_kc(IKM, SPID_B, salt=labels.KC_PHONE_SALT))
    assert fa != fb


# --- directed identity ---------------------------------------------------------


@pytest.fixture(scope="module")
def ident() -> DirectedIdentity:
    return DirectedIdentity.from_master(MASTER)


def documented(master: bytes, key_label: bytes, label: bytes, a: bytes, spid: bytes) -> str:
    key = rfc5869(master, labels.NETWORK_SALT, key_label, 32)
    mac = hmac.new(key, label + b"\x00" + a + spid, hashlib.sha256).digest()
    return b64u_encode(mac[:16])


def test_puid_and_key_id_match_the_documented_formula(ident: DirectedIdentity) -> None:
    assert ident.puid(USER_A, SPID_A) == documented(
        MASTER, b"authnet/v1 puid key", b"authnet/v1 puid", USER_A, SPID_A
    )
    assert ident.key_id(TOKEN_A, SPID_A) == documented(
        MASTER, b"authnet/v1 key id key", b"authnet/v1 key id", TOKEN_A, SPID_A
    )


def test_a_renewed_ticket_matches_the_documented_formula(ident: DirectedIdentity) -> None:
    old_th, digest = hashlib.sha256(b"old").digest(), hashlib.sha256(b"request").digest()
    key = rfc5869(MASTER, labels.NETWORK_SALT, b"authnet/v1 renew key", 32)
    data = b"authnet/v1 renewed ticket\x00" + old_th + digest
    mac = hmac.new(key, data, hashlib.sha256).digest()
    ticket = ident.renewed_ticket(old_th, digest)
    assert ticket == "at1_" + b64u_encode(mac[:16])
    assert check_ticket(ticket) == ticket
    assert ident.renewed_ticket(old_th, bytes(32)) != ticket
    with pytest.raises(ValueError, match="32 bytes"):
        ident.renewed_ticket(old_th[:16], digest)


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_master_must_be_32_bytes(size: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        DirectedIdentity.from_master(bytes(size))


def test_puid_is_stable_and_well_formed(ident: DirectedIdentity) -> None:
    p = ident.puid(USER_A, SPID_A)
    assert p == ident.puid(USER_A, SPID_A)
    assert p == DirectedIdentity.from_master(MASTER).puid(USER_A, SPID_A)
    assert len(p) == 22
    assert len(b64u_decode(p, field="puid", length=16)) == 16


@given(ids16, ids16, spids, spids)
@settings(max_examples=100)
def test_puids_separate_users_and_sps(u1: bytes, u2: bytes, s1: bytes, s2: bytes) -> None:
    ident = DirectedIdentity.from_master(MASTER)
    assert (ident.puid(u1, s1) == ident.puid(u2, s2)) == ((u1, s1) == (u2, s2))
    assert (ident.key_id(u1, s1) == ident.key_id(u2, s2)) == ((u1, s1) == (u2, s2))


def test_puid_differs_across_sps_and_users(ident: DirectedIdentity) -> None:
    puids = {
        ident.puid(USER_A, SPID_A),
        ident.puid(USER_A, SPID_B),
        ident.puid(USER_B, SPID_A),
        ident.puid(USER_B, SPID_B),
    }
    assert len(puids) == 4


def test_key_id_differs_across_tokens_and_sps(ident: DirectedIdentity) -> None:
    ids = {
        ident.key_id(TOKEN_A, SPID_A),
        ident.key_id(TOKEN_A, SPID_B),
        ident.key_id(TOKEN_B, SPID_A),
        ident.key_id(TOKEN_B, SPID_B),
    }
    assert len(ids) == 4
    assert ident.key_id(TOKEN_A, SPID_A) == ident.key_id(TOKEN_A, SPID_A)


def test_puid_and_key_id_are_separated(ident: DirectedIdentity) -> None:
    # The same 16 bytes as user id and as token id give unrelated values.
    same = b"S" * 16
    assert ident.puid(same, SPID_A) != ident.key_id(same, SPID_A)


def test_different_masters_give_different_identities() -> None:
    a = DirectedIdentity.from_master(MASTER)
    b = DirectedIdentity.from_master(hashlib.sha256(b"another network").digest())
    assert a.puid(USER_A, SPID_A) != b.puid(USER_A, SPID_A)
    assert a.key_id(TOKEN_A, SPID_A) != b.key_id(TOKEN_A, SPID_A)


def test_puid_is_not_computable_without_the_master(ident: DirectedIdentity) -> None:
    p = ident.puid(USER_A, SPID_A)
    data = USER_A + SPID_A
    labelled = b"authnet/v1 puid\x00" + data
    guesses = {
        hashlib.sha256(data).digest(),
        hashlib.sha256(labelled).digest(),
        hashlib.sha256(SPID_A + USER_A).digest(),
        hmac.new(b"", labelled, hashlib.sha256).digest(),
        hmac.new(bytes(32), labelled, hashlib.sha256).digest(),
        hmac.new(labels.PUID_KEY, labelled, hashlib.sha256).digest(),
        hmac.new(MASTER, labelled, hashlib.sha256).digest(),  # not keyed by the raw master
        rfc5869(data, labels.NETWORK_SALT, labels.PUID, 32),
    }
    for g in guesses:
        assert p != b64u_encode(g[:16])
        assert p != b64u_encode(g[-16:])


def test_repr_hides_the_derived_keys(ident: DirectedIdentity) -> None:
    key = rfc5869(MASTER, labels.NETWORK_SALT, labels.PUID_KEY, 32)
    r = repr(ident)
    assert key.hex() not in r
    assert repr(key) not in r
    assert "DirectedIdentity" in r
