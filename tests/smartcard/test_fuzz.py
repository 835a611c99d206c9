"""Random APDUs never crash the card and never corrupt its state."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulators.smartcard import CardState, VirtualCard, tlv
from tests.smartcard.client import OTP_AID, PIV_AID, Client

PIN = b"80417325"
VALID_SW1 = {0x61, 0x63, 0x65, 0x67, 0x68, 0x69, 0x6A, 0x6D, 0x6E, 0x90}
INTERESTING_INS = [0xA4, 0xC0, 0x20, 0x24, 0x2C, 0x47, 0x87, 0xCB, 0xDB, 0xF7, 0xF8, 0xFA, 0xFB]
INTERESTING_INS += [0xFD, 0xFF, 0x01, 0x03]
INTERESTING_P = [0x00, 0x01, 0x04, 0x0A, 0x0C, 0x10, 0x11, 0x30, 0x38, 0x3F, 0x80, 0x81]
INTERESTING_P += [0x9A, 0x9B, 0x9C, 0x9D, 0xFF]

tags = st.sampled_from([0x5C, 0x53, 0x7C, 0x80, 0x81, 0x82, 0x85, 0xAC, 0xAA, 0x9B, 0x7E])
leaf = st.builds(lambda t, v: tlv.tlv(t, v), tags, st.binary(max_size=70))
nested = st.builds(lambda t, vs: tlv.tlv(t, b"".join(vs)), tags, st.lists(leaf, max_size=3))
data_fields = st.one_of(
    st.binary(max_size=80),
    leaf,
    nested,
    st.sampled_from([PIV_AID, OTP_AID, PIV_AID[:5], b"\x5c\x03\x5f\xc1\x02", b"\xff" * 8]),
)


def _templates(with_pin: bool) -> list[bytes]:
    digest = bytes(range(32))
    point = bytes.fromhex(
        "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
        "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"
    )  # the P-256 generator
    out = [
        bytes.fromhex("00A4040005A000000308"),
        bytes.fromhex("00A4040007A0000005272001"),
        bytes.fromhex("00CB3FFF055C035FC10200"),
        bytes.fromhex("00CB3FFF035C017E00"),
        bytes.fromhex("00C0000000"),
        bytes.fromhex("00200080"),
        bytes.fromhex("00DB3FFF0C5C035FC1055305700130FE00"),
        bytes.fromhex("0047009A05AC03800111"),
        bytes.fromhex("0087119A")
        + bytes([38])
        + tlv.tlv(0x7C, tlv.tlv(0x82) + tlv.tlv(0x81, digest)),
        bytes.fromhex("0087119D")
        + bytes([71])
        + tlv.tlv(0x7C, tlv.tlv(0x82) + tlv.tlv(0x85, point)),
        bytes.fromhex("00870A9B047C028000"),
        bytes.fromhex("00870A9B047C028100"),
        bytes.fromhex("00F700809A"),
        bytes.fromhex("0001380003616263"),
        bytes.fromhex("00FD0000"),
    ]
    if with_pin:
        out.append(bytes.fromhex("0020008008") + PIN)
    return out


def _mutate(draw: st.DrawFn, template: bytes) -> bytes:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return template
    if kind == 1:
        i = draw(st.integers(0, len(template) - 1))
        return template[:i] + bytes([draw(st.integers(0, 255))]) + template[i + 1 :]
    if kind == 2:
        return template[: draw(st.integers(0, len(template)))]
    return template + draw(st.binary(min_size=1, max_size=4))


@st.composite
def apdus(draw: st.DrawFn, with_pin: bool = False) -> bytes:
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return draw(st.binary(max_size=40))  # anything at all
    if choice <= 4:
        return _mutate(draw, draw(st.sampled_from(_templates(with_pin))))
    cla = draw(st.sampled_from([0x00, 0x00, 0x10, 0x80, 0xFF]))
    ins = draw(st.sampled_from(INTERESTING_INS) | st.integers(0, 255))
    p1 = draw(st.sampled_from(INTERESTING_P) | st.integers(0, 255))
    p2 = draw(st.sampled_from(INTERESTING_P) | st.integers(0, 255))
    data = draw(data_fields)
    header = bytes([cla, ins, p1, p2])
    form = draw(st.integers(0, 3))
    if form == 0 or not data:
        tail = draw(st.sampled_from([b"", b"\x00", b"\x10", b"\x00\x00\x00"]))
        return header + tail
    if form == 1:
        return header + bytes([min(len(data), 255)]) + data[:255]
    if form == 2:
        return header + bytes([min(len(data), 255)]) + data[:255] + b"\x00"
    return header + b"\x00" + len(data).to_bytes(2, "big") + data + b"\x00\x00"


# A command stream: APDUs, with an occasional power cycle (None).
streams = st.lists(st.one_of(apdus(), st.none()), min_size=1, max_size=40)
streams_with_pin = st.lists(st.one_of(apdus(True), st.none()), min_size=1, max_size=40)


def check_response(card: VirtualCard, response: bytes) -> None:
    assert isinstance(response, bytes)
    assert len(response) >= 2
    sw = int.from_bytes(response[-2:], "big")
    assert response[-2] in VALID_SW1, f"unexpected SW {sw:04X}"
    assert sw != 0x6F00
    assert card.internal_errors == 0
    if response[-2] not in (0x90, 0x61):
        assert len(response) == 2, "errors carry no data"


def run(card: VirtualCard, stream: list[bytes | None]) -> None:
    for item in stream:
        if item is None:
            card.reset()
            continue
        check_response(card, card.process(item))


def assert_persisted(card: VirtualCard) -> CardState:
    assert card.path is not None
    on_disk = CardState.load(card.path)
    assert on_disk.to_json() == card.snapshot().to_json()
    return on_disk


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=streams)
def test_random_apdus_without_credentials(stream: list[bytes | None]) -> None:
    """Without the management key or PIN nothing but the retry counters may change."""
    with tempfile.TemporaryDirectory() as tmp:
        card = VirtualCard.create(Path(tmp) / "card.json", pin=PIN, otp_slot2_secret=b"k" * 20)
        before = card.snapshot()
        run(card, stream)
        after = assert_persisted(card)
        assert after.keys == before.keys
        assert after.objects == before.objects
        assert after.management_key == before.management_key
        assert after.otp_slots == before.otp_slots
        for old, new in ((before.pin, after.pin), (before.puk, after.puk)):
            assert (new.salt, new.digest, new.max_retries) == (
                old.salt,
                old.digest,
                old.max_retries,
            )
            assert 0 <= new.remaining <= old.remaining
        # and the card still works
        card.reset()
        c = Client(card.process)
        c.select_piv()
        assert c.get_object(0x5FC102) == before.objects[0x5FC102]
        expected = 0x9000 if after.pin.remaining else 0x6983
        assert c.verify(PIN) == expected


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=streams_with_pin)
def test_random_apdus_in_an_authenticated_session(stream: list[bytes | None]) -> None:
    """With management key and PIN verified, random commands may change the card,
    but what is on disk is always exactly what the card holds, and it reloads."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "card.json"
        card = VirtualCard.create(path, pin=PIN)
        c = Client(card.process)
        c.select_piv()
        c.authenticate()
        assert c.verify(PIN) == 0x9000
        c.generate(0x9A)
        run(card, stream)
        assert_persisted(card)
        reloaded = VirtualCard.load(path)
        r = Client(reloaded.process)
        r.select_piv()
        for tag in reloaded.snapshot().objects:
            if tag not in (0x5FC103, 0x5FC108, 0x5FC109, 0x5FC121, 0x5FC123):
                assert r.get_object(tag) == reloaded.snapshot().objects[tag]
        r.select_otp()
