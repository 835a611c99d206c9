"""The PIV application, APDU by APDU through `VirtualCard.process`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import pkcs7

from simulators.smartcard import CardState, VirtualCard, tlv
from tests.smartcard.client import (
    DEFAULT_MGMT,
    CardError,
    Client,
    aes_ecb,
    pad,
    tdes_ecb,
    uncompressed,
)

FASCN_NON_FEDERAL = bytes.fromhex("d4e739da739ced39ce739d836858210842108421c84210c3eb")
SIGN_OR_ECDH = (0x9A, 0x9C, 0x9D, 0x9E)


@pytest.fixture
def piv(client: Client) -> Client:
    client.select_piv()
    return client


def test_application_property_template(client: Client) -> None:
    apt = client.select_piv()
    tag, value, end = tlv.parse_one(apt)
    assert (tag, end) == (0x61, len(apt))
    items = tlv.parse(value)
    assert tlv.find(items, 0x4F) == bytes.fromhex("000010000100")
    assert tlv.find(items, 0x79) == tlv.tlv(0x4F, bytes.fromhex("A000000308"))
    algorithms = tlv.parse(tlv.find(items, 0xAC) or b"")
    assert (0x80, b"\x11") in algorithms
    assert (0x80, b"\x0a") in algorithms


# --- data objects ------------------------------------------------------------------


def _openssl_cms_verify(signature: bytes, content: bytes, tmp_path: Path) -> int:
    (tmp_path / "sig.der").write_bytes(signature)
    (tmp_path / "content").write_bytes(content)
    done = subprocess.run(
        [
            *("openssl", "cms", "-verify", "-inform", "DER", "-in", str(tmp_path / "sig.der")),
            *("-content", str(tmp_path / "content"), "-binary", "-noverify", "-out", os.devnull),
        ],
        capture_output=True,
        check=False,
        timeout=60,
    )
    return done.returncode


def test_the_chuid_is_signed(piv: Client, tmp_path: Path) -> None:
    # SP 800-73-4 part 1 3.1.2: tag 3E is a CMS SignedData over the CHUID's TLVs
    # before it, content detached, eContentType id-PIV-CHUIDSecurityObject, with
    # the signer's certificate; checked here by OpenSSL, not by our own parser.
    items = tlv.parse(piv.get_object(0x5FC102))
    signed = b"".join(tlv.tlv(tag, value) for tag, value in items[:3])
    signature = tlv.find(items, 0x3E) or b""
    assert _openssl_cms_verify(signature, signed, tmp_path) == 0
    forged = signed.replace(FASCN_NON_FEDERAL, bytes(len(FASCN_NON_FEDERAL)))
    assert _openssl_cms_verify(signature, forged, tmp_path) != 0
    # encapContentInfo: eContentType id-PIV-CHUIDSecurityObject, no eContent
    assert bytes.fromhex("300A06086086480165030601") in signature
    (cert,) = pkcs7.load_der_pkcs7_certificates(signature)  # the content signer
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert [o.dotted_string for o in eku] == ["2.16.840.1.101.3.6.7"]


def test_personalized_objects(piv: Client) -> None:
    chuid = tlv.parse(piv.get_object(0x5FC102))
    assert [t for t, _ in chuid] == [0x30, 0x34, 0x35, 0x3E, 0xFE]
    assert tlv.find(chuid, 0x30) == FASCN_NON_FEDERAL
    assert len(tlv.find(chuid, 0x34) or b"") == 16  # GUID
    assert tlv.find(chuid, 0x35) == b"20300101"

    ccc = tlv.parse(piv.get_object(0x5FC107))
    card_id = tlv.find(ccc, 0xF0) or b""
    assert len(card_id) == 21
    assert card_id.startswith(bytes.fromhex("A000000116"))
    assert [t for t, _ in ccc][-1] == 0xFE

    discovery = piv.get_object(0x7E)
    assert discovery == bytes.fromhex("4F0BA0000003080000100001005F2F024000")
    assert tlv.parse(piv.get_object(0x5FC10C)) == [(0xC1, b"\x00"), (0xC2, b"\x00"), (0xFE, b"")]


def test_get_data_errors(piv: Client) -> None:
    assert piv.send(0xCB, 0x3F, 0xFF, tlv.tlv(0x5C, bytes.fromhex("5FC105")))[1] == 0x6A82
    assert piv.send(0xCB, 0x3F, 0xFF, tlv.tlv(0x5C, bytes.fromhex("5FC1FF")))[1] == 0x6A80
    assert piv.send(0xCB, 0x3F, 0xFE, tlv.tlv(0x5C, bytes.fromhex("5FC102")))[1] == 0x6A86
    assert piv.send(0xCB, 0x3F, 0xFF, bytes.fromhex("5C055FC1"))[1] == 0x6A80
    assert piv.send(0xCB, 0x3F, 0xFF, tlv.tlv(0x5D, bytes.fromhex("5FC102")))[1] == 0x6A80
    # PIN-protected objects: printed information needs the PIN even to learn it is absent
    printed = tlv.tlv(0x5C, bytes.fromhex("5FC109"))
    assert piv.send(0xCB, 0x3F, 0xFF, printed)[1] == 0x6982
    assert piv.verify(b"123456") == 0x9000
    assert piv.send(0xCB, 0x3F, 0xFF, printed)[1] == 0x6A82


def test_put_data(piv: Client) -> None:
    container = tlv.tlv(0x70, b"\x30\x03\x02\x01\x00") + tlv.tlv(0x71, b"\x00") + tlv.tlv(0xFE)
    assert piv.put_object(0x5FC105, container) == 0x6982  # needs the management key
    piv.authenticate()
    assert piv.put_object(0x5FC105, container) == 0x9000
    assert piv.get_object(0x5FC105) == container
    assert piv.put_object(0x5FC105, b"") == 0x9000  # empty deletes
    assert piv.send(0xCB, 0x3F, 0xFF, tlv.tlv(0x5C, bytes.fromhex("5FC105")))[1] == 0x6A82
    assert piv.put_object(0x5FC1FF, b"x") == 0x6A80
    assert piv.put_object(0x5FFF00, b"yubikey vendor object") == 0x9000
    discovery = tlv.tlv(0x7E, tlv.tlv(0x4F, bytes.fromhex("A000000308000010000100")))
    assert piv.send(0xDB, 0x3F, 0xFF, discovery)[1] == 0x6A81
    bit_group = tlv.tlv(0x7F61, tlv.tlv(0x02, b"\x00"))
    assert piv.send(0xDB, 0x3F, 0xFF, bit_group)[1] == 0x9000
    assert piv.get_object(0x7F61) == tlv.tlv(0x02, b"\x00")
    assert piv.put_object(0x7F61, b"x") == 0x6A80  # not in the 5C/53 form
    assert piv.send(0xDB, 0x3F, 0xFF, tlv.tlv(0x53, b"x"))[1] == 0x6A80
    assert piv.send(0xDB, 0x3F, 0xFE, tlv.tlv(0x5C, bytes.fromhex("5FC105")))[1] == 0x6A86


# --- PIN and PUK ---------------------------------------------------------------------


def test_verify_pin(piv: Client) -> None:
    assert piv.send(0x20, 0x00, 0x80)[1] == 0x63C3  # not verified: tries left
    assert piv.verify(b"123456") == 0x9000
    assert piv.send(0x20, 0x00, 0x80)[1] == 0x9000  # verified
    assert piv.send(0x20, 0xFF, 0x80)[1] == 0x9000  # reset the security status
    assert piv.send(0x20, 0x00, 0x80)[1] == 0x63C3
    assert piv.send(0x20, 0x00, 0x80, b"123456")[1] == 0x6A80  # not padded: not counted
    assert piv.send(0x20, 0x00, 0x81, pad(b"12345678"))[1] == 0x6A88
    assert piv.send(0x20, 0x01, 0x80, pad(b"123456"))[1] == 0x6A86
    assert piv.send(0x20, 0xFF, 0x80, pad(b"123456"))[1] == 0x6700
    assert piv.send(0x20, 0x00, 0x80)[1] == 0x63C3


def test_wrong_pin_counts_down_and_blocks(piv: Client) -> None:
    assert piv.verify(b"111111") == 0x63C2
    assert piv.verify(b"222222") == 0x63C1
    assert piv.verify(b"123456") == 0x9000  # right PIN: counter back to 3
    assert piv.send(0x20, 0x00, 0x80, b"")[1] == 0x9000
    assert [piv.verify(b"000000") for _ in range(3)] == [0x63C2, 0x63C1, 0x63C0]
    assert piv.send(0x20, 0x00, 0x80)[1] == 0x6983
    assert piv.verify(b"123456") == 0x6983  # blocked: even the right PIN
    # the PUK unblocks and sets a new PIN
    assert piv.send(0x2C, 0x00, 0x80, pad(b"00000000") + pad(b"654321"))[1] == 0x63C2
    assert piv.send(0x2C, 0x00, 0x80, pad(b"12345678") + pad(b"12"))[1] == 0x6A80
    assert piv.send(0x2C, 0x00, 0x80, pad(b"12345678") + pad(b"654321"))[1] == 0x9000
    assert piv.send(0x20, 0x00, 0x80)[1] == 0x63C3
    assert piv.verify(b"123456") == 0x63C2
    assert piv.verify(b"654321") == 0x9000


def test_puk_blocks(piv: Client) -> None:
    wrong = pad(b"87654321") + pad(b"654321")
    assert [piv.send(0x2C, 0x00, 0x80, wrong)[1] for _ in range(4)] == [
        0x63C2,
        0x63C1,
        0x63C0,
        0x6983,
    ]
    assert piv.send(0x2C, 0x00, 0x80, pad(b"12345678") + pad(b"654321"))[1] == 0x6983
    assert piv.send(0x24, 0x00, 0x81, pad(b"12345678") + pad(b"87654321"))[1] == 0x6983
    assert piv.send(0x2C, 0x00, 0x81, wrong)[1] == 0x6A88
    assert piv.verify(b"123456") == 0x9000  # the PIN is unaffected


def test_change_reference_data(piv: Client) -> None:
    change = pad(b"123456") + pad(b"24681357")
    assert piv.send(0x24, 0x00, 0x80, pad(b"999999") + pad(b"24681357"))[1] == 0x63C2
    assert piv.send(0x24, 0x00, 0x80, pad(b"123456") + pad(b"1234"))[1] == 0x6A80
    assert piv.send(0x24, 0x00, 0x80, pad(b"123456") + b"12\xff45678")[1] == 0x6A80
    assert piv.send(0x24, 0x00, 0x80, change[:8])[1] == 0x6A80
    assert piv.send(0x24, 0x00, 0x80, change)[1] == 0x9000
    assert piv.verify(b"123456") == 0x63C2
    assert piv.verify(b"24681357") == 0x9000
    assert piv.send(0x24, 0x00, 0x81, pad(b"12345678") + pad(b"abcdefgh"))[1] == 0x9000
    assert piv.send(0x2C, 0x00, 0x80, pad(b"12345678") + pad(b"111111"))[1] == 0x63C2
    assert piv.send(0x2C, 0x00, 0x80, pad(b"abcdefgh") + pad(b"111111"))[1] == 0x9000
    assert piv.send(0x24, 0x00, 0x9B, change)[1] == 0x6A88


def test_configurable_pin_and_retries() -> None:
    card = VirtualCard.create(pin=b"24680000", puk=b"13579111", pin_retries=5, puk_retries=2)
    c = Client(card.process)
    c.select_piv()
    assert c.send(0x20, 0x00, 0x80)[1] == 0x63C5
    assert c.verify(b"123456") == 0x63C4
    assert c.verify(b"24680000") == 0x9000
    wrong = pad(b"12345678") + pad(b"111111")
    assert [c.send(0x2C, 0x00, 0x80, wrong)[1] for _ in range(3)] == [0x63C1, 0x63C0, 0x6983]
    with pytest.raises(ValueError, match="6 to 8"):
        VirtualCard.create(pin=b"12345")
    with pytest.raises(ValueError, match="retries"):
        VirtualCard.create(pin_retries=0)


# --- card management key ------------------------------------------------------------------


def test_mutual_authentication(piv: Client) -> None:
    piv.authenticate()  # checks the card's answer to our challenge too
    assert piv.generate(0x9A) is not None


def test_external_authentication(piv: Client) -> None:
    out = piv.ok(0x87, 0x0A, 0x9B, tlv.tlv(0x7C, tlv.tlv(0x81)))
    challenge = tlv.find(tlv.parse(tlv.parse_one(out)[1]), 0x81) or b""
    assert len(challenge) == 16
    response = tlv.tlv(0x7C, tlv.tlv(0x82, aes_ecb(DEFAULT_MGMT, challenge)))
    assert piv.send(0x87, 0x0A, 0x9B, response)[1] == 0x9000
    piv.generate(0x9D)


def test_wrong_management_key(piv: Client) -> None:
    with pytest.raises(CardError) as e:
        piv.authenticate(bytes(24))
    assert e.value.sw == 0x6982
    assert piv.send(0x47, 0x00, 0x9A, bytes.fromhex("AC03800111"))[1] == 0x6982
    # the algorithm must match the key: P1=03 (TDES) is not this card's key
    assert piv.send(0x87, 0x03, 0x9B, tlv.tlv(0x7C, tlv.tlv(0x80)))[1] == 0x6A86
    # a response without a pending challenge, or after another command, fails
    stray = tlv.tlv(0x7C, tlv.tlv(0x82, bytes(16)))
    assert piv.send(0x87, 0x0A, 0x9B, stray)[1] == 0x6982
    out = piv.ok(0x87, 0x0A, 0x9B, tlv.tlv(0x7C, tlv.tlv(0x81)))
    challenge = tlv.find(tlv.parse(tlv.parse_one(out)[1]), 0x81) or b""
    piv.send(0xFD)
    good = tlv.tlv(0x7C, tlv.tlv(0x82, aes_ecb(DEFAULT_MGMT, challenge)))
    assert piv.send(0x87, 0x0A, 0x9B, good)[1] == 0x6982
    assert piv.send(0x87, 0x0A, 0x9B, tlv.tlv(0x7C, tlv.tlv(0x83)))[1] == 0x6A80


@pytest.mark.parametrize(
    ("alg", "size", "firmware"),
    [(0x03, 24, (5, 2, 7)), (0x08, 16, (5, 7, 1)), (0x0A, 24, (5, 4, 3)), (0x0C, 32, (5, 7, 1))],
)
def test_management_key_algorithms(alg: int, size: int, firmware: tuple[int, int, int]) -> None:
    key = os.urandom(size)
    card = VirtualCard.create(management_key=key, management_algorithm=alg, firmware=firmware)
    c = Client(card.process)
    c.select_piv()
    wrong_alg = 0x0A if alg == 0x03 else 0x03
    assert c.send(0x87, wrong_alg, 0x9B, tlv.tlv(0x7C, tlv.tlv(0x80)))[1] == 0x6A86
    with pytest.raises(CardError) as e:
        c.authenticate(os.urandom(size), alg=alg)
    assert e.value.sw == 0x6982
    c.authenticate(key, alg=alg)
    c.generate(0x9A)
    # external authentication too: the challenge is one block of the cipher
    out = c.ok(0x87, alg, 0x9B, tlv.tlv(0x7C, tlv.tlv(0x81)))
    challenge = tlv.find(tlv.parse(tlv.parse_one(out)[1]), 0x81) or b""
    assert len(challenge) == (8 if alg == 0x03 else 16)
    ecb = tdes_ecb if alg == 0x03 else aes_ecb
    assert c.send(0x87, alg, 0x9B, tlv.tlv(0x7C, tlv.tlv(0x82, ecb(key, challenge))))[1] == 0x9000
    # the algorithm survives a restart of the card program
    assert CardState.loads(card.snapshot().dumps()).management_key.algorithm == alg


def test_algorithm_00_is_triple_des() -> None:
    # SP 800-78-4 table 6-2: '00' and '03' are both three-key Triple DES - ECB.
    # OpenSC's GET CHALLENGE sends exactly this APDU (card-piv.c piv_get_challenge).
    card = VirtualCard.create(firmware=(5, 4, 3))  # factory key: Triple DES
    c = Client(card.process)
    c.select_piv()
    out, sw = c.raw(bytes.fromhex("0087009B047C028100"))
    assert sw == 0x9000
    assert out[:4] == bytes.fromhex("7C0A8108")
    challenge = out[4:]
    # ...and answering it under 00 is an external authentication
    response = tlv.tlv(0x7C, tlv.tlv(0x82, tdes_ecb(DEFAULT_MGMT, challenge)))
    assert c.send(0x87, 0x00, 0x9B, response)[1] == 0x9000
    c.generate(0x9A)
    # mutual authentication under 00, and 03 then 00 (the same algorithm)
    for first, second in ((0x00, 0x00), (0x03, 0x00), (0x00, 0x03)):
        c.select_otp()
        c.select_piv()
        assert c.send(0x47, 0x00, 0x9C, bytes.fromhex("AC03800111"))[1] == 0x6982
        witness = c.ok(0x87, first, 0x9B, tlv.tlv(0x7C, tlv.tlv(0x80)))[4:]
        host = os.urandom(8)
        step2 = tlv.tlv(
            0x7C,
            tlv.tlv(0x80, tdes_ecb(DEFAULT_MGMT, witness, decrypt=True)) + tlv.tlv(0x81, host),
        )
        answer = c.ok(0x87, second, 0x9B, step2)
        assert answer == tlv.tlv(0x7C, tlv.tlv(0x82, tdes_ecb(DEFAULT_MGMT, host)))
        c.generate(0x9C)
    # a wrong key under 00 is refused like under 03
    out = c.ok(0x87, 0x00, 0x9B, tlv.tlv(0x7C, tlv.tlv(0x81)))
    bad = tlv.tlv(0x7C, tlv.tlv(0x82, tdes_ecb(bytes(range(24)), out[4:])))
    assert c.send(0x87, 0x00, 0x9B, bad)[1] == 0x6982


def test_algorithm_00_is_not_an_aes_key() -> None:
    # 00 names Triple DES, not "the card's algorithm": an AES-192 card (YubiKey 5.7's
    # default) refuses it as it refuses 03, and OpenSC then reports that the card
    # has no random number generator (it retries once on 6A86, then gives up).
    card = VirtualCard.create()
    c = Client(card.process)
    c.select_piv()
    for _ in range(2):
        assert c.raw(bytes.fromhex("0087009B047C028100"))[1] == 0x6A86
    assert c.send(0x87, 0x00, 0x9B, tlv.tlv(0x7C, tlv.tlv(0x80)))[1] == 0x6A86
    c.authenticate()  # the refusals left nothing behind
    c.generate(0x9A)
    # and a slot key's algorithm is never 00
    assert c.verify(b"123456") == 0x9000
    digest = os.urandom(32)
    request = tlv.tlv(0x7C, tlv.tlv(0x82) + tlv.tlv(0x81, digest))
    assert c.send(0x87, 0x00, 0x9A, request)[1] == 0x6A86


def test_default_management_key_follows_the_firmware() -> None:
    for firmware, alg in (((5, 7, 1), 0x0A), ((5, 7, 0), 0x0A), ((5, 4, 3), 0x03)):
        c = Client(VirtualCard.create(firmware=firmware).process)
        c.select_piv()
        c.authenticate(DEFAULT_MGMT, alg=alg)  # the same bytes, as 3DES before 5.7
        meta = tlv.parse(c.ok(0xF7, 0x00, 0x9B))
        assert tlv.find(meta, 0x01) == bytes([alg])
        assert tlv.find(meta, 0x05) == b"\x01"


def test_old_firmware_has_no_metadata_and_no_aes_management_keys() -> None:
    card = VirtualCard.create(firmware=(5, 2, 7))
    c = Client(card.process)
    c.select_piv()
    assert c.send(0xF7, 0x00, 0x9B)[1] == 0x6D00  # GET METADATA came with 5.3
    c.authenticate(DEFAULT_MGMT, alg=0x03)
    assert c.send(0xFF, 0xFF, 0xFF, b"\x0a" + tlv.tlv(0x9B, os.urandom(24)))[1] == 0x6A80
    new_key = os.urandom(24)
    assert c.send(0xFF, 0xFF, 0xFF, b"\x03" + tlv.tlv(0x9B, new_key))[1] == 0x9000
    c.authenticate(new_key, alg=0x03)
    with pytest.raises(ValueError, match=r"firmware 5\.4"):
        VirtualCard.create(firmware=(5, 2, 7), management_algorithm=0x0A)


def test_failed_authentication_revokes(piv: Client) -> None:
    piv.authenticate()
    with pytest.raises(CardError):
        piv.authenticate(bytes(24))
    assert piv.send(0x47, 0x00, 0x9A, bytes.fromhex("AC03800111"))[1] == 0x6982


def test_set_management_key(piv: Client) -> None:
    new_key = os.urandom(32)
    data = b"\x0c" + tlv.tlv(0x9B, new_key)
    assert piv.send(0xFF, 0xFF, 0xFF, data)[1] == 0x6982
    piv.authenticate()
    assert piv.send(0xFF, 0xFF, 0xFF, b"\x0c" + tlv.tlv(0x9B, new_key[:24]))[1] == 0x6A80
    assert piv.send(0xFF, 0xFF, 0xFF, b"\x03" + tlv.tlv(0x9B, new_key[:16]))[1] == 0x6A80
    assert piv.send(0xFF, 0xFF, 0xFF, b"\x07" + tlv.tlv(0x9B, new_key[:16]))[1] == 0x6A80
    assert piv.send(0xFF, 0xFF, 0xFF, data)[1] == 0x9000
    piv.authenticate(new_key, alg=0x0C)
    with pytest.raises(CardError):
        piv.authenticate(DEFAULT_MGMT, alg=0x0A)


# --- keys -------------------------------------------------------------------------------


def test_generate_needs_management_key_and_valid_input(piv: Client) -> None:
    assert piv.send(0x47, 0x00, 0x9A, bytes.fromhex("AC03800111"))[1] == 0x6982
    piv.authenticate()
    assert piv.send(0x47, 0x00, 0x9B, bytes.fromhex("AC03800111"))[1] == 0x6A86
    assert piv.send(0x47, 0x01, 0x9A, bytes.fromhex("AC03800111"))[1] == 0x6A86
    assert piv.send(0x47, 0x00, 0x9A, bytes.fromhex("AC03800107"))[1] == 0x6A80  # RSA
    assert piv.send(0x47, 0x00, 0x9A, bytes.fromhex("AC0380011100"))[1] == 0x6A80
    assert piv.send(0x47, 0x00, 0x9A, bytes.fromhex("AC06800111AB0102"))[1] == 0x6A80  # touch
    first, second = piv.generate(0x9A), piv.generate(0x9A)
    assert uncompressed(first) != uncompressed(second)  # regenerating replaces the key


@pytest.mark.parametrize("slot", SIGN_OR_ECDH)
def test_sign(piv: Client, slot: int) -> None:
    piv.authenticate()
    public = piv.generate(slot, pin_policy=0x02)  # PIN once (9C and 9E default otherwise)
    digest = os.urandom(32)
    request = tlv.tlv(0x7C, tlv.tlv(0x82) + tlv.tlv(0x81, digest))
    assert piv.send(0x87, 0x11, slot, request)[1] == 0x6982  # PIN first
    assert piv.verify(b"123456") == 0x9000
    signature = piv.sign(slot, digest)
    public.verify(signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    with pytest.raises(InvalidSignature):
        public.verify(signature, os.urandom(32), ec.ECDSA(Prehashed(hashes.SHA256())))
    # the host hashes: a SHA-256 digest of a message verifies as a signature of it
    message = b"authnet signs this"
    h = hashes.Hash(hashes.SHA256())
    h.update(message)
    public.verify(piv.sign(slot, h.finalize()), message, ec.ECDSA(hashes.SHA256()))


def test_sign_errors(piv: Client) -> None:
    piv.authenticate()
    assert piv.verify(b"123456") == 0x9000
    digest = os.urandom(32)

    def sign(p1: int, p2: int, body: bytes) -> int:
        return piv.send(0x87, p1, p2, tlv.tlv(0x7C, body))[1]

    assert sign(0x11, 0x9A, tlv.tlv(0x82) + tlv.tlv(0x81, digest)) == 0x6A88  # empty slot
    piv.generate(0x9A)
    assert sign(0x11, 0x9F, tlv.tlv(0x82) + tlv.tlv(0x81, digest)) == 0x6A86  # no such slot
    assert sign(0x11, 0x9C, tlv.tlv(0x82) + tlv.tlv(0x81, digest)) == 0x6A88  # empty 9C
    assert sign(0x07, 0x9A, tlv.tlv(0x82) + tlv.tlv(0x81, digest)) == 0x6A86
    assert sign(0x11, 0x9A, tlv.tlv(0x82) + tlv.tlv(0x81, digest[:20])) == 0x6A80
    assert sign(0x11, 0x9A, tlv.tlv(0x81, digest)) == 0x6A80
    assert sign(0x11, 0x9A, tlv.tlv(0x82, b"x") + tlv.tlv(0x81, digest)) == 0x6A80
    assert piv.send(0x87, 0x11, 0x9A, b"\x7c\x05\x82")[1] == 0x6A80


@pytest.mark.parametrize("slot", SIGN_OR_ECDH)
def test_ecdh(piv: Client, slot: int) -> None:
    piv.authenticate()
    public = piv.generate(slot, pin_policy=0x02)
    peer = ec.generate_private_key(ec.SECP256R1())
    point = uncompressed(peer.public_key())
    assert piv.ecdh_sw(slot, point) == 0x6982  # PIN first
    assert piv.verify(b"123456") == 0x9000
    shared = piv.ecdh(slot, point)
    assert len(shared) == 32
    assert shared == peer.exchange(ec.ECDH(), public)


def test_ecdh_rejects_bad_points(piv: Client) -> None:
    piv.authenticate()
    piv.generate(0x9D)
    assert piv.verify(b"123456") == 0x9000
    peer = uncompressed(ec.generate_private_key(ec.SECP256R1()).public_key())
    off_curve = peer[:-1] + bytes([peer[-1] ^ 1])
    compressed = bytes([2 + (peer[-1] & 1)]) + peer[1:33]
    for bad in (off_curve, compressed, peer[:-1], b"\x00", b"\x04" + bytes(64), b""):
        assert piv.ecdh_sw(0x9D, bad) == 0x6A80, bad.hex()
    assert len(piv.ecdh(0x9D, peer)) == 32  # and it still works


def test_pin_policy_always(piv: Client) -> None:
    piv.authenticate()
    public = piv.generate(0x9A, pin_policy=0x03)
    digest = os.urandom(32)
    assert piv.verify(b"123456") == 0x9000
    public.verify(piv.sign(0x9A, digest), digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    request = tlv.tlv(0x7C, tlv.tlv(0x82) + tlv.tlv(0x81, digest))
    assert piv.send(0x87, 0x11, 0x9A, request)[1] == 0x6982  # once per verification
    assert piv.verify(b"123456") == 0x9000
    assert piv.send(0x87, 0x11, 0x9A, request)[1] == 0x9000


@pytest.mark.parametrize(
    ("slot", "policy"), [(0x9A, 0x02), (0x9C, 0x03), (0x9D, 0x02), (0x9E, 0x01)]
)
def test_default_pin_policies_are_a_yubikeys(piv: Client, slot: int, policy: int) -> None:
    piv.authenticate()
    piv.generate(slot)
    assert tlv.find(tlv.parse(piv.ok(0xF7, 0x00, slot)), 0x02) == bytes([policy, 0x01])


def test_signature_key_9c_needs_the_pin_right_before_each_use(piv: Client) -> None:
    piv.authenticate()
    public = piv.generate(0x9C)  # PIN policy "always" by default, as on a YubiKey
    digest = os.urandom(32)
    request = tlv.tlv(0x7C, tlv.tlv(0x82) + tlv.tlv(0x81, digest))
    assert piv.verify(b"123456") == 0x9000
    public.verify(piv.sign(0x9C, digest), digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    assert piv.send(0x87, 0x11, 0x9C, request)[1] == 0x6982  # spent by the signature
    # another command between VERIFY and the signature spends it too
    assert piv.verify(b"123456") == 0x9000
    piv.get_object(0x5FC102)
    assert piv.send(0x87, 0x11, 0x9C, request)[1] == 0x6982
    # ... but the PIN stays verified for the PIN-once keys
    assert piv.send(0x20, 0x00, 0x80)[1] == 0x9000
    assert piv.verify(b"123456") == 0x9000
    assert piv.send(0x20, 0x00, 0x80)[1] == 0x9000  # a status query keeps it fresh
    assert piv.send(0x87, 0x11, 0x9C, request)[1] == 0x9000


def test_pin_policy_never(piv: Client) -> None:
    piv.authenticate()
    piv.generate(0x9D, pin_policy=0x01)
    peer = uncompressed(ec.generate_private_key(ec.SECP256R1()).public_key())
    assert len(piv.ecdh(0x9D, peer)) == 32


# --- security status lifetime -----------------------------------------------------------


def test_reselecting_piv_keeps_the_security_status(card: VirtualCard, piv: Client) -> None:
    # SP 800-73-4 part 2 3.1.1: SELECT of the PIV application while it is selected
    # (full or right-truncated AID) leaves every security status indicator unchanged;
    # SELECT of an AID the card does not have leaves PIV selected and unchanged.
    # A YubiKey 5 does the same (yubico-piv-tool NEWS 1.7.0: "just re-selecting PIV
    # is a no-op on YK5"). VERIFY without data then answers 9000, not 63Cx.
    piv.authenticate()
    piv.generate(0x9A)
    assert piv.verify(b"123456") == 0x9000
    for aid in ("A000000308000010000100", "A0000003080000100001", "A000000308"):
        assert piv.send(0xA4, 0x04, 0x00, bytes.fromhex(aid))[1] == 0x9000
        assert piv.send(0x20, 0x00, 0x80)[1] == 0x9000  # "verification not needed"
    assert piv.send(0xA4, 0x04, 0x00, bytes.fromhex("A000000527471117"))[1] == 0x6A82
    assert piv.send(0x20, 0x00, 0x80)[1] == 0x9000
    assert len(piv.sign(0x9A, os.urandom(32))) > 64  # the PIN still counts
    piv.generate(0x9E)  # and so does the management key
    # P1=FF resets the PIN status; then the empty VERIFY reports the tries left
    assert piv.send(0x20, 0xFF, 0x80)[1] == 0x9000
    piv.select_piv()
    assert piv.send(0x20, 0x00, 0x80)[1] == 0x63C3
    assert piv.verify(b"000000") == 0x63C2
    piv.select_piv()
    assert piv.send(0x20, 0x00, 0x80)[1] == 0x63C2  # the count, not a reset
    assert piv.verify(b"123456") == 0x9000
    piv.select_piv()
    assert piv.send(0x20, 0x00, 0x80)[1] == 0x9000


def test_security_status_follows_selection_and_power(card: VirtualCard, piv: Client) -> None:
    piv.authenticate()
    piv.generate(0x9A)
    assert piv.verify(b"123456") == 0x9000
    piv.select_piv()  # re-selecting PIV keeps its status
    assert piv.send(0x20, 0x00, 0x80)[1] == 0x9000
    piv.select_otp()  # selecting another application clears it
    piv.select_piv()
    assert piv.send(0x20, 0x00, 0x80)[1] == 0x63C3
    assert piv.send(0x47, 0x00, 0x9A, bytes.fromhex("AC03800111"))[1] == 0x6982
    assert piv.verify(b"123456") == 0x9000
    card.reset()  # power cycle: nothing selected, status cleared
    assert piv.send(0x20, 0x00, 0x80)[1] == 0x6D00
    piv.select_piv()
    assert piv.send(0x20, 0x00, 0x80)[1] == 0x63C3


# --- YubiKey extensions -------------------------------------------------------------------


def test_version_serial_metadata(card: VirtualCard, piv: Client) -> None:
    assert piv.ok(0xFD) == bytes([5, 7, 1])
    assert int.from_bytes(piv.ok(0xF8), "big") == card.serial
    assert piv.send(0xFD, 0x01, 0x00)[1] == 0x6A86
    pin_meta = tlv.parse(piv.ok(0xF7, 0x00, 0x80))
    assert tlv.find(pin_meta, 0x05) == b"\x01"  # default value
    assert tlv.find(pin_meta, 0x06) == b"\x03\x03"
    assert piv.verify(b"000000") == 0x63C2
    assert tlv.find(tlv.parse(piv.ok(0xF7, 0x00, 0x80)), 0x06) == b"\x03\x02"
    mgmt_meta = tlv.parse(piv.ok(0xF7, 0x00, 0x9B))
    assert tlv.find(mgmt_meta, 0x01) == b"\x0a"
    assert tlv.find(mgmt_meta, 0x05) == b"\x01"
    assert piv.send(0xF7, 0x00, 0x9A)[1] == 0x6A88
    piv.authenticate()
    public = piv.generate(0x9A)
    key_meta = tlv.parse(piv.ok(0xF7, 0x00, 0x9A))
    assert tlv.find(key_meta, 0x01) == b"\x11"
    assert tlv.find(key_meta, 0x02) == b"\x02\x01"  # PIN once, no touch
    assert tlv.find(key_meta, 0x04) == tlv.tlv(0x86, uncompressed(public))


def test_reset_only_when_blocked(piv: Client) -> None:
    piv.authenticate()
    piv.generate(0x9A)
    assert piv.send(0xFB)[1] == 0x6985
    for _ in range(3):
        piv.verify(b"000000")
    for _ in range(3):
        piv.send(0x2C, 0x00, 0x80, pad(b"00000000") + pad(b"111111"))
    assert piv.send(0xFB)[1] == 0x9000
    assert piv.verify(b"123456") == 0x9000
    assert piv.send(0xF7, 0x00, 0x9A)[1] == 0x6A88  # the key is gone
    piv.authenticate()  # default management key again


def test_reset_restores_the_firmwares_default_management_key() -> None:
    c = Client(VirtualCard.create(firmware=(5, 4, 3)).process)
    c.select_piv()
    c.authenticate(DEFAULT_MGMT, alg=0x03)
    assert c.send(0xFF, 0xFF, 0xFF, b"\x0c" + tlv.tlv(0x9B, os.urandom(32)))[1] == 0x9000
    for _ in range(3):
        c.verify(b"000000")
    for _ in range(3):
        c.send(0x2C, 0x00, 0x80, pad(b"00000000") + pad(b"111111"))
    assert c.send(0xFB)[1] == 0x9000
    c.authenticate(DEFAULT_MGMT, alg=0x03)  # Triple DES again, as the factory left it


def test_set_pin_retries(piv: Client) -> None:
    assert piv.send(0xFA, 0x05, 0x04)[1] == 0x6982
    piv.authenticate()
    assert piv.send(0xFA, 0x05, 0x04)[1] == 0x6982  # the PIN too
    assert piv.verify(b"123456") == 0x9000
    assert piv.send(0xFA, 0x00, 0x04)[1] == 0x6A86
    assert piv.send(0xFA, 0x05, 0x04)[1] == 0x9000
    assert piv.send(0x20, 0x00, 0x80)[1] == 0x63C5
    assert tlv.find(tlv.parse(piv.ok(0xF7, 0x00, 0x81)), 0x06) == b"\x04\x04"
