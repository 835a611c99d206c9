"""The PIV Security Object (SP 800-73-4 part 1, 5FC106), read by Yubico's
yubico-piv-tool through pcscd + vpcd, checked by OpenSSL's CMS verifier and by
`cryptography` against the content signer certificate the CHUID carries, hash
by hash against the objects the same tool reads from the card."""

from __future__ import annotations

import datetime as dt
import glob
import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from simulators.smartcard import (
    CardState,
    CardStateError,
    Pcscd,
    ReaderSlot,
    VirtualCard,
    tlv,
    virtual_card,
)
from tests.smartcard.client import DEFAULT_MGMT, Client, pad

PIN = "123456"
ID_SHA256 = bytes.fromhex("0609608648016503040201")
ID_LDS_SECURITY_OBJECT = bytes.fromhex("0606678108010101")  # 2.23.136.1.1.1
ID_SIGNED_DATA = bytes.fromhex("06092a864886f70d010702")
ID_CONTENT_TYPE = bytes.fromhex("06092a864886f70d010903")
ID_MESSAGE_DIGEST = bytes.fromhex("06092a864886f70d010904")
# SP 800-73-4 part 1 appendix A: ContainerID -> the tag yubico-piv-tool reads it by
CONTAINERS = {
    0xDB00: 0x5FC107,  # CCC
    0x3000: 0x5FC102,  # CHUID
    0x6010: 0x5FC103,  # fingerprints
    0x6030: 0x5FC108,  # facial image
    0x3001: 0x5FC109,  # printed information
    0x6050: 0x7E,  # Discovery object
    0x6060: 0x5FC10C,  # key history
}
CERTIFICATE_CONTAINERS = {0x0101, 0x0100, 0x0102, 0x0500, *range(0x1001, 0x1015)}
PIN_PROTECTED = {0x5FC103, 0x5FC108, 0x5FC109}


def _piv_tool(reader: str, *args: str) -> bytes:
    done = subprocess.run(
        ["yubico-piv-tool", "-r", reader, *args], capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def _read(reader: str, tag: int) -> bytes:
    """The object's value as yubico-piv-tool prints it (53's content; 7E's for 7E)."""
    pin = ("-a", "verify-pin", "-P", PIN) if tag in PIN_PROTECTED else ()
    return _piv_tool(reader, *pin, "-a", "read-object", "--id", hex(tag), "-f", "binary")


def _write(reader: str, tag: int, value: bytes, tmp: Path) -> None:
    """PUT DATA through yubico-piv-tool, with the default (Triple-DES) key."""
    (tmp / "object.bin").write_bytes(value)
    _piv_tool(
        *(reader, f"--key={DEFAULT_MGMT.hex()}", "-a", "write-object", "--id", hex(tag)),
        *("-f", "binary", "-i", str(tmp / "object.bin")),
    )


@dataclass
class SecurityObject:
    mapping: dict[int, int]  # DG number -> ContainerID (tag BA)
    signed_data: bytes  # tag BB: ContentInfo(SignedData)

    @classmethod
    def parse(cls, value: bytes) -> SecurityObject:
        items = tlv.parse(value)
        assert [t for t, _ in items] == [0xBA, 0xBB, 0xFE]  # in that order
        assert items[2][1] == b""
        ba = items[0][1]
        assert len(ba) % 3 == 0
        assert len(ba) <= 30  # SP 800-73-4 table 12's maximum
        mapping = {ba[i]: int.from_bytes(ba[i + 1 : i + 3], "big") for i in range(0, len(ba), 3)}
        assert len(mapping) == len(ba) // 3  # no DG number twice
        return cls(mapping, items[1][1])


def _one(data: bytes, tag: int) -> bytes:
    t, value, end = tlv.parse_one(data)
    assert (t, end) == (tag, len(data)), data[:8].hex()
    return value


def _der(tag: int, value: bytes) -> bytes:
    return tlv.tlv(tag, value)


class NotSignedBy(Exception):
    """The SignedData does not name the signer, or its message digest is wrong."""


def verify_with_cryptography(signed_data: bytes, signer: x509.Certificate) -> bytes:
    """Walk the CMS ContentInfo by hand, check content type and message digest
    attributes, verify the ECDSA signature over the signed attributes with the
    certificate's key; the encapsulated LDSSecurityObject if all holds."""
    oid, content = tlv.parse(_one(signed_data, 0x30))
    assert _der(*oid) == ID_SIGNED_DATA
    assert content[0] == 0xA0
    version, _digest_algorithms, encap, *rest = tlv.parse(_one(content[1], 0x30))
    assert _der(*version) == bytes.fromhex("020103")
    assert len(rest) == 1, "certificates or CRLs present (SP 800-73-4: none in tag BB)"
    econtent_type, econtent = tlv.parse(encap[1])
    assert _der(*econtent_type) == ID_LDS_SECURITY_OBJECT
    assert econtent[0] == 0xA0  # eContent [0] EXPLICIT OCTET STRING: encapsulated
    lds = _one(econtent[1], 0x04)
    (signer_info,) = tlv.parse(rest[0][1])
    si = tlv.parse(signer_info[1])
    assert [t for t, _ in si] == [0x02, 0x30, 0x30, 0xA0, 0x30, 0x04]
    issuer, serial = tlv.parse(si[1][1])
    if (_der(*issuer), int.from_bytes(serial[1], "big")) != (
        signer.issuer.public_bytes(),
        signer.serial_number,
    ):
        raise NotSignedBy("issuerAndSerialNumber names another certificate")
    assert _der(*si[2]) == _der(0x30, ID_SHA256)
    attributes: dict[bytes, bytes] = {}
    for _, attribute in tlv.parse(si[3][1]):
        kind, values = tlv.parse(attribute)
        attributes[_der(*kind)] = values[1]
    assert attributes[ID_CONTENT_TYPE] == ID_LDS_SECURITY_OBJECT
    if attributes[ID_MESSAGE_DIGEST] != _der(0x04, hashlib.sha256(lds).digest()):
        raise NotSignedBy("the message digest attribute is not the content's")
    public = signer.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    # RFC 5652 §5.4: the signature is over the DER SET OF, tag 31, not [0]
    public.verify(si[5][1], _der(0x31, si[3][1]), ec.ECDSA(hashes.SHA256()))
    return lds


def verify_with_openssl(signed_data: bytes, signer: x509.Certificate, tmp: Path) -> bytes | None:
    """`openssl cms -verify` with the signer certificate supplied (the Security
    Object carries none); the verified eContent, or None if verification fails."""
    (tmp / "so.der").write_bytes(signed_data)
    (tmp / "signer.pem").write_bytes(signer.public_bytes(serialization.Encoding.PEM))
    (tmp / "lds.der").unlink(missing_ok=True)
    done = subprocess.run(
        [
            *("openssl", "cms", "-verify", "-inform", "DER", "-in", str(tmp / "so.der")),
            *("-certfile", str(tmp / "signer.pem"), "-noverify", "-binary"),
            *("-out", str(tmp / "lds.der")),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    return (tmp / "lds.der").read_bytes() if done.returncode == 0 else None


def lds_hashes(lds: bytes) -> dict[int, bytes]:
    """LDSSecurityObject (ICAO 9303 part 10): v0, SHA-256, DG number -> hash."""
    version, algorithm, groups = tlv.parse(_one(lds, 0x30))
    assert _der(*version) == bytes.fromhex("020100")
    assert _der(*algorithm) == _der(0x30, ID_SHA256)
    out: dict[int, bytes] = {}
    for tag, group in tlv.parse(groups[1]):
        assert tag == 0x30
        number, digest = tlv.parse(group)
        assert number[0] == 0x02
        assert digest[0] == 0x04
        out[int.from_bytes(number[1], "big")] = digest[1]
    assert 2 <= len(out) <= 16
    return out


def chuid_signer(chuid: bytes) -> x509.Certificate:
    (cert,) = pkcs7.load_der_pkcs7_certificates(tlv.find(tlv.parse(chuid), 0x3E) or b"")
    return cert


def check_security_object(reader: str, tmp: Path) -> tuple[SecurityObject, dict[int, bytes]]:
    """Read 5FC106 and the CHUID with yubico-piv-tool, verify the signature both
    ways, and check every hash against the object as the tool reads it; the
    Security Object and its hashes by container ID."""
    so = SecurityObject.parse(_read(reader, 0x5FC106))
    signer = chuid_signer(_read(reader, 0x5FC102))
    with pytest.raises(ValueError, match="no certificate"):  # SP 800-73-4: it is in the CHUID
        pkcs7.load_der_pkcs7_certificates(so.signed_data)
    lds = verify_with_cryptography(so.signed_data, signer)
    assert verify_with_openssl(so.signed_data, signer, tmp) == lds
    by_dg = lds_hashes(lds)
    assert set(by_dg) == set(so.mapping)
    assert not set(so.mapping.values()) & CERTIFICATE_CONTAINERS  # the spec leaves them out
    by_container: dict[int, bytes] = {}
    for dg, container in so.mapping.items():
        value = _read(reader, CONTAINERS[container])
        assert by_dg[dg] == hashlib.sha256(value).digest(), f"DG {dg} ({container:04X})"
        by_container[container] = by_dg[dg]
    return so, by_container


def test_a_new_card_has_a_valid_security_object(slot: ReaderSlot, tmp_path: Path) -> None:
    so, hashes_by_container = check_security_object(slot.reader, tmp_path)
    # what a new card holds, less the Security Object itself
    assert set(hashes_by_container) == {0xDB00, 0x3000, 0x6050, 0x6060}
    # the same key signed both: the Security Object names the CHUID's certificate
    signer = chuid_signer(_read(slot.reader, 0x5FC102))
    assert signer.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "PIV content signer (throwaway)"
    )
    # and status still reads the card as before
    assert b"CHUID:" in _piv_tool(slot.reader, "-a", "status")
    assert len(so.mapping) == 4


def test_opensc_serves_the_same_object(slot: ReaderSlot, tmp_path: Path) -> None:
    # OpenSC 0.23 lists every PIV container as a PKCS#11 data object; its value
    # is the whole object, 53 template included. It does not check the signature.
    modules = sorted(glob.glob("/usr/lib/*/opensc-pkcs11.so"))
    assert modules, "OpenSC is missing: scripts/install-system-deps.sh test installs it"
    out = tmp_path / "p11.bin"
    done = subprocess.run(
        [
            *("pkcs11-tool", "--module", modules[0], "--slot-description", slot.reader),
            *("--read-object", "--type", "data"),
            *("--label", "Security Object", "-o", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    value = _one(out.read_bytes(), 0x53)
    assert value == _read(slot.reader, 0x5FC106)
    signer = chuid_signer(_read(slot.reader, 0x5FC102))
    verify_with_cryptography(SecurityObject.parse(value).signed_data, signer)


def _self_signed(common_name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


PRINTED = (
    tlv.tlv(0x01, b"Alice Example")
    + tlv.tlv(0x02, b"Employee")
    + tlv.tlv(0x04, b"2030JAN01")
    + tlv.tlv(0x05, b"0001")
    + tlv.tlv(0x06, b"authnet test")
    + tlv.tlv(0xFE)
)


def test_writes_keep_the_security_object_valid(tmp_path: Path, pcscd: Pcscd) -> None:
    # yubico-piv-tool 2.2 authenticates only with Triple-DES management keys
    card = VirtualCard.create(tmp_path / "card.json", management_algorithm=0x03)
    key = f"--key={DEFAULT_MGMT.hex()}"
    with virtual_card(card, reader=0) as slot:
        before, hashes_before = check_security_object(slot.reader, tmp_path)

        # A certificate (9A): SP 800-73-4 recommends covering every object but the
        # X.509 certificates, so the Security Object stays as it was, and valid.
        cert = tmp_path / "cert.pem"
        cert.write_bytes(_self_signed("new 9A certificate"))
        _piv_tool(slot.reader, key, "-a", "import-certificate", "-s", "9a", "-i", str(cert))
        assert 0x5FC105 in card.snapshot().objects
        after_cert, hashes_after_cert = check_security_object(slot.reader, tmp_path)
        assert after_cert == before
        assert hashes_after_cert == hashes_before

        # Printed Information, an unsigned object the spec requires it to cover:
        # it is re-signed with the new object's hash under its container ID 3001.
        _write(slot.reader, 0x5FC109, PRINTED, tmp_path)
        after, hashes_after = check_security_object(slot.reader, tmp_path)
        assert after.signed_data != before.signed_data
        assert hashes_after == {**hashes_before, 0x3001: hashlib.sha256(PRINTED).digest()}
        assert _read(slot.reader, 0x5FC109) == PRINTED

        # A new key history: its new hash replaces the old one.
        history = tlv.tlv(0xC1, b"\x01") + tlv.tlv(0xC2, b"\x00") + tlv.tlv(0xFE)
        _write(slot.reader, 0x5FC10C, history, tmp_path)
        _, hashes_history = check_security_object(slot.reader, tmp_path)
        assert hashes_history == {**hashes_after, 0x6060: hashlib.sha256(history).digest()}
    # the card program restarted from its state file still serves the same object
    again = VirtualCard.load(tmp_path / "card.json")
    assert again.snapshot().objects[0x5FC106] == card.snapshot().objects[0x5FC106]


def test_a_flipped_byte_fails_verification(slot: ReaderSlot, tmp_path: Path) -> None:
    so = SecurityObject.parse(_read(slot.reader, 0x5FC106))
    signer = chuid_signer(_read(slot.reader, 0x5FC102))
    lds = verify_with_cryptography(so.signed_data, signer)
    # a flipped bit in a data group hash (inside the signed eContent)...
    at = so.signed_data.index(lds) + len(lds) - 1
    forged = bytearray(so.signed_data)
    forged[at] ^= 0x01
    with pytest.raises(NotSignedBy, match="message digest"):
        verify_with_cryptography(bytes(forged), signer)
    assert verify_with_openssl(bytes(forged), signer, tmp_path) is None
    # ...or in the signature itself (its last byte, inside the final OCTET STRING)
    forged = bytearray(so.signed_data)
    forged[-1] ^= 0x01
    with pytest.raises(InvalidSignature):
        verify_with_cryptography(bytes(forged), signer)
    assert verify_with_openssl(bytes(forged), signer, tmp_path) is None
    # ...and another signer's certificate does not verify the genuine one
    other = x509.load_pem_x509_certificate(_self_signed("PIV content signer (throwaway)"))
    with pytest.raises(NotSignedBy, match="another certificate"):
        verify_with_cryptography(so.signed_data, other)
    assert verify_with_openssl(so.signed_data, other, tmp_path) is None
    assert verify_with_openssl(so.signed_data, signer, tmp_path) == lds


def test_an_object_changed_behind_the_issuer_fails_its_hash(tmp_path: Path) -> None:
    # The state file edited directly (no PUT DATA, so nothing re-signs): the
    # signature still verifies, but the CCC's hash no longer matches the CCC.
    path = tmp_path / "card.json"
    VirtualCard.create(path)
    doc = json.loads(path.read_text())
    ccc = bytes.fromhex(doc["piv"]["objects"]["5fc107"])
    doc["piv"]["objects"]["5fc107"] = (ccc[:-3] + bytes([ccc[-3] ^ 1]) + ccc[-2:]).hex()
    path.write_text(json.dumps(doc))
    client = Client(VirtualCard.load(path).process)
    client.select_piv()
    so = SecurityObject.parse(client.get_object(0x5FC106))
    lds = verify_with_cryptography(so.signed_data, chuid_signer(client.get_object(0x5FC102)))
    (ccc_dg,) = [dg for dg, container in so.mapping.items() if container == 0xDB00]
    assert lds_hashes(lds)[ccc_dg] != hashlib.sha256(client.get_object(0x5FC107)).digest()


def test_reset_and_blank_cards(tmp_path: Path) -> None:
    # RESET (PIN and PUK blocked) personalizes anew: a new content signer signs
    # the new CHUID and the new Security Object.
    card = VirtualCard.create()
    c = Client(card.process)
    c.select_piv()
    old_signer = chuid_signer(c.get_object(0x5FC102))
    for _ in range(3):
        c.verify(b"000000")
        c.send(0x2C, 0x00, 0x80, pad(b"00000000") + pad(b"654321"))  # a wrong PUK
    assert c.send(0xFB, 0x00, 0x00)[1] == 0x9000
    signer = chuid_signer(c.get_object(0x5FC102))
    assert signer.serial_number != old_signer.serial_number
    so = SecurityObject.parse(c.get_object(0x5FC106))
    assert len(lds_hashes(verify_with_cryptography(so.signed_data, signer))) == 4

    # a blank card (no issuer) has none; nor a card whose CHUID an issuer
    # replaced: the card does not sign for another issuer
    blank = Client(VirtualCard.create(personalize=False).process)
    blank.select_piv()
    assert blank.send(0xCB, 0x3F, 0xFF, tlv.tlv(0x5C, bytes.fromhex("5FC106")))[1] == 0x6A82
    card = VirtualCard.create()
    c = Client(card.process)
    c.select_piv()
    c.authenticate()
    own = c.get_object(0x5FC106)
    foreign = tlv.tlv(0x30, bytes(25)) + tlv.tlv(0x34, bytes(16)) + tlv.tlv(0x3E) + tlv.tlv(0xFE)
    assert c.put_object(0x5FC102, foreign) == 0x9000
    assert c.put_object(0x5FC10C, tlv.tlv(0xC1, b"\x01") + tlv.tlv(0xFE)) == 0x9000
    assert c.get_object(0x5FC106) == own  # left as it was


def test_the_content_signer_is_kept_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    card = VirtualCard.create(path)
    signer = card.snapshot().content_signer
    assert signer is not None
    assert CardState.load(path).content_signer == signer
    assert (
        chuid_signer(card.snapshot().objects[0x5FC102]).public_bytes(serialization.Encoding.DER)
        == signer.certificate
    )
    doc = json.loads(path.read_text())
    other = VirtualCard.create().snapshot().content_signer
    assert other is not None
    doc["piv"]["content_signer"]["certificate"] = other.certificate.hex()
    path.write_text(json.dumps(doc))
    with pytest.raises(CardStateError, match="not the key's"):
        VirtualCard.load(path)
    doc["piv"]["content_signer"]["certificate"] = "3000"
    path.write_text(json.dumps(doc))
    with pytest.raises(CardStateError, match="DER certificate"):
        VirtualCard.load(path)
    # a card made before the Security Object existed (no signer kept) still loads
    del doc["piv"]["content_signer"]
    path.write_text(json.dumps(doc))
    assert VirtualCard.load(path).snapshot().content_signer is None
