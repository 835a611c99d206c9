"""ISO 7816-4 framing of the virtual card: APDU cases, CLA/INS errors, SELECT,
command chaining, GET RESPONSE, the ATR."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from smartcard.ATR import ATR as PyscardATR

from simulators.smartcard import ATR, VirtualCard, tlv
from simulators.smartcard.apdu import CommandApdu, SwError
from tests.smartcard.client import PIV_AID, Client

# --- parsing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("00A40400", CommandApdu(0, 0xA4, 4, 0)),
        ("00CA000005", CommandApdu(0, 0xCA, 0, 0, le=5)),
        ("00CA000000", CommandApdu(0, 0xCA, 0, 0, le=256)),
        ("00A4040002AABB", CommandApdu(0, 0xA4, 4, 0, b"\xaa\xbb")),
        ("00A4040002AABB00", CommandApdu(0, 0xA4, 4, 0, b"\xaa\xbb", 256)),
        ("00CA0000000102", CommandApdu(0, 0xCA, 0, 0, le=258, extended=True)),
        ("00CA0000000000", CommandApdu(0, 0xCA, 0, 0, le=65536, extended=True)),
        ("00DB3FFF000002AABB", CommandApdu(0, 0xDB, 0x3F, 0xFF, b"\xaa\xbb", extended=True)),
        (
            "00DB3FFF000002AABB0000",
            CommandApdu(0, 0xDB, 0x3F, 0xFF, b"\xaa\xbb", 65536, extended=True),
        ),
    ],
)
def test_parse_iso_cases(raw: str, expected: CommandApdu) -> None:
    assert CommandApdu.parse(bytes.fromhex(raw)) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "00A404",  # shorter than a header
        "00A4040003AABB",  # Lc says 3, 2 follow
        "00A4040001AABBCC",  # Lc says 1, 3 follow
        "00A404000000",  # 00 then one byte: neither short nor extended
        "00DB3FFF000000AA",  # extended Lc of zero
        "00DB3FFF000003AABB",  # extended Lc too long
        "00DB3FFF000001AABBCCDD",  # extended, stray bytes
    ],
)
def test_parse_rejects_wrong_lengths(raw: str) -> None:
    with pytest.raises(SwError) as e:
        CommandApdu.parse(bytes.fromhex(raw))
    assert e.value.sw == 0x6700
    assert VirtualCard.create().process(bytes.fromhex(raw)) == b"\x67\x00"


@given(
    st.builds(
        CommandApdu,
        cla=st.integers(0, 255),
        ins=st.integers(0, 255),
        p1=st.integers(0, 255),
        p2=st.integers(0, 255),
        data=st.binary(max_size=300),
        le=st.none() | st.integers(1, 65536),
        extended=st.booleans(),
    )
)
def test_encode_parse_round_trip(apdu: CommandApdu) -> None:
    parsed = CommandApdu.parse(apdu.to_bytes())
    assert (parsed.cla, parsed.ins, parsed.p1, parsed.p2, parsed.data, parsed.le) == (
        apdu.cla,
        apdu.ins,
        apdu.p1,
        apdu.p2,
        apdu.data,
        apdu.le,
    )


# --- card-level errors ------------------------------------------------------------


def test_class_and_instruction_errors(client: Client) -> None:
    assert client.raw(bytes.fromhex("80A4040005A000000308"))[1] == 0x6E00
    assert client.raw(bytes.fromhex("0CA4040005A000000308"))[1] == 0x6E00
    assert client.raw(bytes.fromhex("00FD0000"))[1] == 0x6D00  # nothing selected yet
    client.select_piv()
    assert client.raw(bytes.fromhex("00EE0000"))[1] == 0x6D00
    assert client.raw(bytes.fromhex("00FD0000"))[1] == 0x9000
    assert client.raw(b"\x00")[1] == 0x6700


def test_select(client: Client) -> None:
    apt = client.select_piv()
    # the right-truncated AID selects too, and P2=0C asks for no data
    assert client.send(0xA4, 0x04, 0x00, PIV_AID[:5]) == (apt, 0x9000)
    assert client.send(0xA4, 0x04, 0x0C, PIV_AID) == (b"", 0x9000)
    assert client.send(0xA4, 0x04, 0x00, bytes.fromhex("A000000527471117"))[1] == 0x6A82
    assert client.send(0xA4, 0x00, 0x00, PIV_AID)[1] == 0x6A86
    # a failed SELECT leaves the PIV application selected
    assert client.send(0xFD)[1] == 0x9000


# --- chaining and GET RESPONSE ------------------------------------------------------


def test_long_response_through_get_response(client: Client) -> None:
    client.select_piv()
    client.authenticate()
    content = bytes(range(256)) * 4
    assert client.put_object(0x5FC105, content) == 0x9000
    request = tlv.tlv(0x5C, bytes.fromhex("5FC105"))
    first, sw = client.raw(CommandApdu(0, 0xCB, 0x3F, 0xFF, request, 256).to_bytes())
    assert len(first) == 256
    assert sw >> 8 == 0x61
    collected = first
    while sw >> 8 == 0x61:
        more, sw = client.raw(bytes([0, 0xC0, 0, 0, sw & 0xFF]))
        collected += more
    assert sw == 0x9000
    assert collected == tlv.tlv(0x53, content)
    # an extended Le gets it in one piece
    whole, sw = client.raw(CommandApdu(0, 0xCB, 0x3F, 0xFF, request, 65536).to_bytes())
    assert (whole, sw) == (collected, 0x9000)
    # a short Le smaller than the response: Le bytes, then 61xx for the rest
    part, sw = client.raw(CommandApdu(0, 0xCB, 0x3F, 0xFF, request, 16).to_bytes())
    assert part == collected[:16]
    assert sw == 0x6100
    # any other command drops what was pending
    assert client.send(0xFD)[1] == 0x9000
    assert client.raw(bytes.fromhex("00C0000000"))[1] == 0x6985


def test_chaining(client: Client) -> None:
    client.select_piv()
    client.authenticate()
    content = b"\x30" + bytes(range(200)) * 5
    assert client.put_object(0x5FC10B, content) == 0x9000
    assert client.get_object(0x5FC10B) == content
    data = tlv.tlv(0x5C, bytes.fromhex("5FC10B")) + tlv.tlv(0x53, b"x" * 300)
    # a chain interrupted by another command
    assert client.send(0xDB, 0x3F, 0xFF, data[:100], cla=0x10)[1] == 0x9000
    assert client.send(0xFD)[1] == 0x6883
    assert client.send(0xFD)[1] == 0x9000  # and the chain is gone
    # chaining where PIV does not allow it
    assert client.send(0x20, 0x00, 0x80, b"123456\xff\xff", cla=0x10)[1] == 0x6884
    # a chain longer than the card's buffer
    for _ in range(20):
        _, sw = client.send(0xDB, 0x3F, 0xFF, b"\x00" * 255, cla=0x10)
        if sw != 0x9000:
            break
    assert sw == 0x6A84
    assert client.get_object(0x5FC10B) == content


def test_extended_put_data_in_one_apdu(client: Client) -> None:
    client.select_piv()
    client.authenticate()
    content = b"c" * 3000
    data = tlv.tlv(0x5C, bytes.fromhex("5FC105")) + tlv.tlv(0x53, content)
    assert client.send(0xDB, 0x3F, 0xFF, data, extended=True)[1] == 0x9000
    assert client.get_object(0x5FC105) == content
    too_big = tlv.tlv(0x5C, bytes.fromhex("5FC105")) + tlv.tlv(0x53, b"c" * 3053)
    assert client.send(0xDB, 0x3F, 0xFF, too_big, extended=True)[1] == 0x6A84


def test_atr_is_well_formed() -> None:
    checksum = 0
    for b in ATR[1:]:
        checksum ^= b
    assert checksum == 0  # TCK
    parsed = PyscardATR(list(ATR))
    assert parsed.isT1Supported()
    assert not parsed.isT0Supported()
    assert bytes(parsed.getHistoricalBytes())[6:] == b"authnet"
