"""Byte encodings (authnet.protocol.encoding), the label registry
(authnet.protocol.labels) and the text forms of identifiers (authnet.protocol.ids)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authnet.errors import MalformedInput
from authnet.protocol import labels
from authnet.protocol.encoding import b64u_decode, b64u_encode, transcript
from authnet.protocol.factors import Factor, format_factors, parse_factors
from authnet.protocol.ids import (
    browser_key_hash,
    check_id,
    check_ticket,
    new_id,
    new_ticket,
    parse_spid,
    parse_token_id,
    spid_text,
    ticket_hash,
    ticket_tag,
    token_id_text,
)

# --- base64url ------------------------------------------------------------------


@given(st.binary(max_size=200))
@settings(max_examples=200)
def test_b64u_round_trip(data: bytes) -> None:
    text = b64u_encode(data)
    assert "=" not in text
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert text == base64.urlsafe_b64encode(data).decode().rstrip("=")
    assert b64u_decode(text, field="f") == data
    assert b64u_decode(text, field="f", length=len(data)) == data


@given(st.text(max_size=60))
@settings(max_examples=300)
def test_b64u_decode_accepts_only_canonical_text(text: str) -> None:
    try:
        data = b64u_decode(text, field="the field")
    except MalformedInput as e:
        error = e
    else:
        assert b64u_encode(data) == text
        return
    assert str(error).startswith("the field ")


@given(st.binary(min_size=1, max_size=64), st.integers(min_value=1, max_value=3))
@settings(max_examples=100)
def test_b64u_stray_low_bits_are_rejected(data: bytes, bump: int) -> None:
    text = b64u_encode(data)
    if len(data) % 3 == 0:
        return  # no spare bits in the last character
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(text[-1])
    spare = 0b1111 if len(data) % 3 == 1 else 0b11
    bumped = text[:-1] + alphabet[(last & ~spare) | bump]
    with pytest.raises(MalformedInput, match="field x is not canonical base64url"):
        b64u_decode(bumped, field="field x")


@pytest.mark.parametrize(
    "text",
    [
        "AA==",  # padded
        "AAA=",
        "AA=",
        "A",  # a length no encoding has
        "AAAAA",
        "+/8",  # standard alphabet
        "ab/c",
        "ab+c",
        "AA AA",
        " AAAA",
        "AAAA\n",
        "AAAA\r\n",
        "AAA\t",
        "AA.A",
        "AA%3D",
        "\u0661\u0662\u0663\u0664",
        "AAAÀ",
        "AB",  # non-canonical: stray low bits
        "AAB",
        "_x",  # 0xff is "_w"; "_x" has stray bits
    ],
)
def test_b64u_rejects(text: str) -> None:
    with pytest.raises(MalformedInput) as info:
        b64u_decode(text, field="browser key")
    assert str(info.value).startswith("browser key is not ")


@pytest.mark.parametrize("value", [None, b"AAAA", 1234, ["AAAA"]])
def test_b64u_rejects_non_text(value: object) -> None:
    with pytest.raises(MalformedInput, match="nonce is not base64url"):
        b64u_decode(value, field="nonce")  # type: ignore[arg-type]


def test_b64u_length_is_checked_and_named() -> None:
    text = b64u_encode(bytes(31))
    with pytest.raises(MalformedInput, match=r"^token id must be 32 bytes, got 31$"):
        b64u_decode(text, field="token id", length=32)
    assert b64u_decode("", field="x") == b""
    with pytest.raises(MalformedInput, match="got 0"):
        b64u_decode("", field="x", length=1)


def test_b64u_known_values() -> None:
    assert b64u_encode(b"\xfb\xff") == "-_8"
    assert b64u_decode("-_8", field="f") == b"\xfb\xff"
    assert b64u_encode(b"") == ""


# --- transcript ---------------------------------------------------------------------

label_st = st.binary(max_size=24).filter(lambda b: b"\x00" not in b)
fields_st = st.lists(st.binary(max_size=40), max_size=6)


def test_transcript_layout() -> None:
    assert transcript(b"L") == b"L\x00"
    assert transcript(b"L", b"") == b"L\x00\x00\x00"
    assert transcript(b"ab", b"x", b"yz") == b"ab\x00\x00\x01x\x00\x02yz"
    big = bytes(0x0102)
    assert transcript(b"", big) == b"\x00\x01\x02" + big


@given(label_st, fields_st, label_st, fields_st)
@settings(max_examples=300)
def test_transcript_is_injective(la: bytes, fa: list[bytes], lb: bytes, fb: list[bytes]) -> None:
    if (la, fa) != (lb, fb):
        assert transcript(la, *fa) != transcript(lb, *fb)
    else:
        assert transcript(la, *fa) == transcript(lb, *fb)


@given(label_st, fields_st, st.integers(min_value=0, max_value=5))
@settings(max_examples=100)
def test_transcript_splitting_or_joining_fields_changes_it(
    label: bytes, fields: list[bytes], at: int
) -> None:
    # The attack length prefixes stop: moving bytes across a field boundary.
    if len(fields) < 2:
        return
    i = at % (len(fields) - 1)
    joined = [*fields[:i], fields[i] + fields[i + 1], *fields[i + 2 :]]
    assert transcript(label, *fields) != transcript(label, *joined)
    assert transcript(label, *fields) != transcript(label, *fields, b"")


@given(st.binary(max_size=10), st.binary(max_size=10))
@settings(max_examples=50)
def test_transcript_refuses_labels_with_nul(a: bytes, b: bytes) -> None:
    with pytest.raises(ValueError, match="NUL"):
        transcript(a + b"\x00" + b, b"field")


def test_transcript_field_size_limit() -> None:
    assert len(transcript(b"L", bytes(0xFFFF))) == 2 + 2 + 0xFFFF
    with pytest.raises(ValueError, match="65535"):
        transcript(b"L", bytes(0x10000))
    with pytest.raises(ValueError, match="65535"):
        transcript(b"L", b"ok", bytes(0x10000))


# --- labels -----------------------------------------------------------------------------


def test_labels_registry_is_complete() -> None:
    constants = {
        name: value
        for name, value in vars(labels).items()
        if name.isupper() and isinstance(value, bytes)
    }
    assert constants == labels.ALL
    # Protocol version 1 pinned: changing any of these is a new version.
    assert labels.ALL == {
        "TICKET_HASH": b"authnet/v1 ticket",
        "BROWSER_KEY_HASH": b"authnet/v1 browser key",
        "SEALED_KC_HASH": b"authnet/v1 sealed kc digest",
        "BROWSER_PQ_KEY_HASH": b"authnet/v1 browser pq key",
        "BROWSER_OFFER": b"authnet/v1 browser offer",
        "AUTH_RESPONSE": b"authnet/v1 auth response",
        "AUTH_DECLINE": b"authnet/v1 auth decline",
        "ENROL": b"authnet/v1 enrol",
        "ADD_TOKEN": b"authnet/v1 add token",
        "LIST_TOKENS": b"authnet/v1 list tokens",
        "REVOKE_TOKEN": b"authnet/v1 revoke token",
        "WEBAUTHN_LOGIN": b"authnet/v1 webauthn login",
        "KC_PHONE_SALT": b"authnet/v1 phone kc",
        "KC_FIDO2_SALT": b"authnet/v1 fido2 kc",
        "KC_PIV_SALT": b"authnet/v1 piv kc",
        "KC_PKCS11_SALT": b"authnet/v1 pkcs11 kc",
        "KC_OTP_SALT": b"authnet/v1 otp kc",
        "FIDO2_PRF_INPUT": b"authnet/v1 fido2 prf",
        "PIV_KC_POINT_DST": b"authnet/v1 piv kc point P256_XMD:SHA-256_SSWU_RO_",
        "PKCS11_HMAC_INPUT": b"authnet/v1 pkcs11 hmac",
        "OTP_CHALLENGE": b"authnet/v1 otp challenge",
        "KC_INFO": b"authnet/v1 kc",
        "KC_FINGERPRINT": b"authnet/v1 kc fingerprint",
        "SEAL_INFO": b"authnet/v1 sealed kc",
        "NETWORK_SALT": b"authnet/v1 network",
        "PUID_KEY": b"authnet/v1 puid key",
        "KEY_ID_KEY": b"authnet/v1 key id key",
        "RENEW_KEY": b"authnet/v1 renew key",
        "RENEWED_TICKET": b"authnet/v1 renewed ticket",
        "PUID": b"authnet/v1 puid",
        "KEY_ID": b"authnet/v1 key id",
        "PHONE_KEYSTORE": b"authnet/v1 phone keystore",
        "PHONE_KEYSTORE_KEY": b"authnet/v1 phone keystore key",
        "ENROL_PIN": b"authnet/v1 enrol pin",
    }


def test_labels_are_distinct_prefixed_and_nul_free() -> None:
    values = list(labels.ALL.values())
    assert len(set(values)) == len(values)
    for name, value in labels.ALL.items():
        assert value.startswith(b"authnet/v1 "), name
        assert b"\x00" not in value, name
        assert value.isascii(), name
        assert value == value.strip(), name
        assert len(value) > len(b"authnet/v1 "), name


def test_every_label_is_a_valid_transcript_label() -> None:
    outs = {transcript(v, b"x") for v in labels.ALL.values()}
    assert len(outs) == len(labels.ALL)


# --- identifiers ------------------------------------------------------------------------


def test_new_ticket_is_well_formed_and_fresh() -> None:
    seen = {new_ticket() for _ in range(50)}
    assert len(seen) == 50
    for t in seen:
        assert check_ticket(t) == t
        assert len(t) == 26


@given(st.text(max_size=40))
@settings(max_examples=200)
def test_check_ticket_fuzz(text: str) -> None:
    try:
        check_ticket(text)
    except MalformedInput as e:
        error = str(e)
    else:
        assert text.startswith("at1_")
        assert b64u_encode(b64u_decode(text[4:], field="t", length=16)) == text[4:]
        return
    assert len(text) < 8 or text not in error


@pytest.mark.parametrize(
    "suffix",
    ["\n", "=", " ", "A"],
)
def test_check_ticket_rejects_near_misses(suffix: str) -> None:
    t = new_ticket()
    for bad in (t + suffix, t[:-1], t.replace("at1_", "at2_"), t.replace("at1_", "AT1_")):
        with pytest.raises(MalformedInput) as info:
            check_ticket(bad)
        assert t[4:] not in str(info.value)
    # Non-canonical last character (its four low bits must be zero).
    body = t[4:]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    bumped = alphabet[alphabet.index(body[-1]) ^ 1]
    with pytest.raises(MalformedInput):
        check_ticket("at1_" + body[:-1] + bumped)


def test_ticket_hash_and_tag() -> None:
    t = "at1_" + b64u_encode(bytes(16))
    th = ticket_hash(t)
    assert th == hashlib.sha256(b"authnet/v1 ticket\x00" + t.encode()).digest()
    assert ticket_tag(th) == th[:4].hex()
    assert ticket_hash(new_ticket()) != th


@given(st.binary(min_size=16, max_size=16))
@settings(max_examples=50)
def test_spid_text_round_trip(spid: bytes) -> None:
    text = spid_text(spid)
    assert len(text) == 32
    assert parse_spid(text) == spid


@pytest.mark.parametrize(
    "text",
    [
        "0" * 31,
        "0" * 33,
        "A" * 32,  # upper case is not the canonical form
        "g" * 32,
        "0" * 32 + "\n",
        "0" * 32 + " ",
        " " + "0" * 31,
        "00 " + "0" * 29,
        "",
    ],
)
def test_parse_spid_is_strict(text: str) -> None:
    with pytest.raises(MalformedInput, match="SPID"):
        parse_spid(text)


@given(st.binary(min_size=16, max_size=16))
@settings(max_examples=50)
def test_token_id_text_round_trip(token_id: bytes) -> None:
    assert parse_token_id(token_id_text(token_id)) == token_id


def test_token_id_and_check_id() -> None:
    with pytest.raises(MalformedInput, match="token id"):
        parse_token_id(token_id_text(bytes(15)))
    with pytest.raises(MalformedInput, match="token id"):
        parse_token_id(token_id_text(bytes(16)) + "\n")
    assert len(new_id()) == 16
    assert new_id() != new_id()
    assert check_id(bytes(16), field="user id") == bytes(16)
    for bad in (bytes(15), bytes(17), "x" * 16, None):
        with pytest.raises(MalformedInput, match=r"^user id must be 16 bytes$"):
            check_id(bad, field="user id")  # type: ignore[arg-type]


def test_browser_key_hash() -> None:
    key = bytes(range(32))
    assert browser_key_hash(key) == hashlib.sha256(b"authnet/v1 browser key\x00" + key).digest()
    for bad in (bytes(31), bytes(33), b""):
        with pytest.raises(MalformedInput, match="browser key must be 32 bytes"):
            browser_key_hash(bad)


# --- factors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "factors"),
    [
        ("", frozenset()),
        ("p", {Factor.PIN}),
        ("c", {Factor.CLIENT_KEY}),
        ("pc", {Factor.PIN, Factor.CLIENT_KEY}),
        ("cp", {Factor.PIN, Factor.CLIENT_KEY}),
        ("ccpp", {Factor.PIN, Factor.CLIENT_KEY}),
    ],
)
def test_parse_factors(text: str, factors: set[Factor]) -> None:
    assert parse_factors(text) == frozenset(factors)
    assert parse_factors(format_factors(factors)) == frozenset(factors)


def test_format_factors_is_canonical() -> None:
    assert format_factors([Factor.CLIENT_KEY, Factor.PIN, Factor.PIN]) == "pc"
    assert format_factors([]) == ""


@pytest.mark.parametrize("text", ["x", "P", "pcx", "p c", "ppppppppp", None, b"p"])
def test_parse_factors_rejects(text: object) -> None:
    with pytest.raises(MalformedInput):
        parse_factors(text)  # type: ignore[arg-type]
