"""The virtual PIV card under standard middleware, after `passkey`'s provisioning
(tokens.piv): OpenSC's PKCS#11 module (Debian's `opensc`, opensc-pkcs11.so)
through python-pkcs11, and Yubico's yubico-piv-tool, on pcscd + vpcd.

The packages are installed by scripts/install-system-deps.sh test when missing;
OPENSC_PKCS11_MODULE names another module file."""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pkcs11
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import KDF, Attribute, KeyType, Mechanism, ObjectClass

from authnet.protocol import labels
from authnet.protocol.kc import derive_kc, piv_peer_point
from simulators.smartcard import (
    CardState,
    Pcscd,
    ReaderSlot,
    VirtualCard,
    reader_name,
    virtual_card,
    wait_for_card,
)
from simulators.smartcard.__main__ import main as card_program
from tests.smartcard.client import DEFAULT_MGMT, Client
from tokens.piv import PivPassKey, SmartcardConfig

REPO = Path(__file__).resolve().parents[2]
PIN = "123456"
# OpenSC's PKCS#11 object ids for the PIV key slots (card-piv.c / pkcs15-piv.c)
ID_9A, ID_9C, ID_9D = b"\x01", b"\x02", b"\x03"


def _find_module() -> str | None:
    named = os.environ.get("OPENSC_PKCS11_MODULE")
    if named:
        return named
    found = sorted(
        glob.glob("/usr/lib/*/opensc-pkcs11.so") + glob.glob("/usr/lib/opensc-pkcs11.so")
    )
    return sorted(found)[0] if found else None


@pytest.fixture(scope="session")
def opensc_module() -> str:
    module = _find_module()
    if module is None or shutil.which("yubico-piv-tool") is None:
        done = subprocess.run(
            [str(REPO / "scripts" / "install-system-deps.sh"), "test"],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert done.returncode == 0, f"installing opensc failed: {done.stderr[-2000:]}"
        module = _find_module()
    assert module is not None, "opensc is installed but opensc-pkcs11.so was not found"
    return module


@pytest.fixture
def provisioned(slot: ReaderSlot) -> tuple[ReaderSlot, bytes]:
    """The card in reader 0 after `passkey provision --token piv`, and the SPKI of
    its authentication key as passkey reads it."""
    token = PivPassKey.provision(SmartcardConfig(reader=slot.reader), pin=PIN)
    try:
        public = token.description.public_key
    finally:
        token.close()
    return slot, public


def _token_in(module: str, reader: str) -> Any:
    lib = pkcs11.lib(module)
    for s in lib.get_slots(token_present=True):
        if s.slot_description.strip().startswith(reader):
            return s.get_token()
    raise AssertionError(f"OpenSC shows no token in {reader!r}")


def _by_id(session: Any, cls: ObjectClass, *attributes: Attribute) -> dict[bytes, dict[Any, Any]]:
    """The session's objects of class `cls`, by CKA_ID, with the attributes read
    while the session is open."""
    return {
        bytes(o[Attribute.ID]): {a: o[a] for a in attributes}
        for o in session.get_objects({Attribute.CLASS: cls})
    }


def _ec_point(point_attr: bytes) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING around the uncompressed point."""
    assert point_attr[:2] == b"\x04\x41"
    return point_attr[2:]


def test_opensc_lists_a_certificate_and_a_key_for_every_slot(
    opensc_module: str, provisioned: tuple[ReaderSlot, bytes], card: VirtualCard
) -> None:
    slot, auth_spki = provisioned
    token = _token_in(opensc_module, slot.reader)
    with token.open(user_pin=PIN) as session:
        certs = _by_id(session, ObjectClass.CERTIFICATE, Attribute.LABEL, Attribute.VALUE)
        keys = _by_id(session, ObjectClass.PRIVATE_KEY, Attribute.SIGN, Attribute.DERIVE)
        publics = _by_id(session, ObjectClass.PUBLIC_KEY, Attribute.EC_POINT)
    assert set(certs) == set(keys) == set(publics) == {ID_9A, ID_9D}
    assert certs[ID_9A][Attribute.LABEL] == "Certificate for PIV Authentication"
    assert certs[ID_9D][Attribute.LABEL] == "Certificate for Key Management"
    assert (keys[ID_9A][Attribute.SIGN], keys[ID_9A][Attribute.DERIVE]) == (True, False)
    assert (keys[ID_9D][Attribute.SIGN], keys[ID_9D][Attribute.DERIVE]) == (False, True)

    state = card.snapshot()
    for key_id, piv_slot, usage in (
        (ID_9A, 0x9A, "digital_signature"),
        (ID_9D, 0x9D, "key_agreement"),
    ):
        cert = x509.load_der_x509_certificate(bytes(certs[key_id][Attribute.VALUE]))
        public = cert.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        # the certificate names the key the card holds in that slot...
        scalar = int.from_bytes(state.keys[piv_slot].private_value, "big")
        held = ec.derive_private_key(scalar, ec.SECP256R1()).public_key()
        assert public.public_numbers() == held.public_numbers()
        point = public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        assert _ec_point(bytes(publics[key_id][Attribute.EC_POINT])) == point
        # ...is self-signed by it, with the one key usage a PIV issuer gives the slot
        public.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
        assert cert.issuer == cert.subject
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
        assert ku.critical
        flags = {
            name
            for name in ("digital_signature", "content_commitment", "key_agreement")
            if getattr(ku.value, name)
        }
        assert flags == {usage}
    first = x509.load_der_x509_certificate(bytes(certs[ID_9A][Attribute.VALUE]))
    assert (
        first.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == auth_spki
    )


def test_opensc_signs_with_9a(opensc_module: str, provisioned: tuple[ReaderSlot, bytes]) -> None:
    slot, auth_spki = provisioned
    public = serialization.load_der_public_key(auth_spki)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    message = os.urandom(100)
    token = _token_in(opensc_module, slot.reader)
    with token.open(user_pin=PIN) as session:
        key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=ID_9A)
        raw = key.sign(hashlib.sha256(message).digest(), mechanism=Mechanism.ECDSA)
        hashed = key.sign(message, mechanism=Mechanism.ECDSA_SHA256)
    for signature in (raw, hashed):
        assert len(signature) == 64  # PKCS#11: r || s
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        public.verify(der, message, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        public.verify(der, message + b"x", ec.ECDSA(hashes.SHA256()))


def test_opensc_derives_with_9d_what_passkey_derives(
    opensc_module: str, provisioned: tuple[ReaderSlot, bytes], card: VirtualCard
) -> None:
    slot, _ = provisioned
    spid = os.urandom(16)
    peer = piv_peer_point(spid)  # RFC 9380 hash_to_curve(SPID)
    point = peer.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    token = _token_in(opensc_module, slot.reader)
    with token.open(user_pin=PIN) as session:
        key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=ID_9D)
        secret = key.derive_key(
            KeyType.GENERIC_SECRET,
            256,
            mechanism=Mechanism.ECDH1_DERIVE,
            mechanism_param=(KDF.NULL, None, point),
            template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True},
        )
        shared = bytes(secret[Attribute.VALUE])
    assert len(shared) == 32
    # the card's ECDH, independently: its 9D scalar times H
    scalar = int.from_bytes(card.snapshot().keys[0x9D].private_value, "big")
    own = ec.derive_private_key(scalar, ec.SECP256R1())
    assert shared == own.exchange(ec.ECDH(), peer)
    # and passkey's Kc is HKDF over exactly this input
    passkey = PivPassKey(SmartcardConfig(reader=slot.reader))
    try:
        passkey.verify_pin(PIN)
        kc = passkey.derive_kc(spid)
    finally:
        passkey.close()
    assert kc == derive_kc(shared, spid, salt=labels.KC_PIV_SALT)
    assert kc != derive_kc(shared, os.urandom(16), salt=labels.KC_PIV_SALT)


def test_a_card_provisioned_before_9d_had_a_certificate_keeps_working(
    opensc_module: str, tmp_path: Path
) -> None:
    card = VirtualCard.create(tmp_path / "old.json")
    with virtual_card(card, reader=0) as slot:
        PivPassKey.provision(SmartcardConfig(reader=slot.reader), pin=PIN).close()
    # what provisioning left before: no certificate for 9D
    c = Client(card.process)
    c.select_piv()
    c.authenticate()
    assert c.put_object(0x5FC10B, b"") == 0x9000
    spid = os.urandom(16)
    with virtual_card(card, reader=0) as slot:
        passkey = PivPassKey(SmartcardConfig(reader=slot.reader))
        try:
            passkey.verify_pin(PIN)
            public = serialization.load_der_public_key(passkey.description.public_key)
            assert isinstance(public, ec.EllipticCurvePublicKey)
            public.verify(passkey.sign(b"hello"), b"hello", ec.ECDSA(hashes.SHA256()))
            kc = passkey.derive_kc(spid)
        finally:
            passkey.close()
        with _token_in(opensc_module, slot.reader).open(user_pin=PIN) as session:
            ids = set(_by_id(session, ObjectClass.PRIVATE_KEY))
    assert ids == {ID_9A}  # why every slot needs its certificate: OpenSC hides 9D
    scalar = int.from_bytes(card.snapshot().keys[0x9D].private_value, "big")
    shared = ec.derive_private_key(scalar, ec.SECP256R1()).exchange(ec.ECDH(), piv_peer_point(spid))
    assert kc == derive_kc(shared, spid, salt=labels.KC_PIV_SALT)


class KeyAgreementOnlyCard(VirtualCard):
    """A PIV card that keeps its ECC key-management key (9D) to key agreement, as
    SP 800-73-4 does: it refuses to sign with it (6A80)."""

    def process(self, apdu: bytes) -> bytes:
        # tokens.piv's signature request: 00 87 11 9D Lc 7C 24 82 00 81 20 <digest>
        if apdu[1:4] == bytes.fromhex("87119D") and apdu[5:11] == bytes.fromhex("7C2482008120"):
            return bytes.fromhex("6A80")
        return super().process(apdu)


def test_a_card_that_will_not_sign_with_9d_gets_its_certificate_from_9a(
    opensc_module: str, tmp_path: Path
) -> None:
    card = KeyAgreementOnlyCard.create(tmp_path / "strict.json")
    with virtual_card(card, reader=0) as slot:
        PivPassKey.provision(SmartcardConfig(reader=slot.reader), pin=PIN).close()
        with _token_in(opensc_module, slot.reader).open(user_pin=PIN) as session:
            certs = _by_id(session, ObjectClass.CERTIFICATE, Attribute.VALUE)
    assert set(certs) == {ID_9A, ID_9D}
    auth = x509.load_der_x509_certificate(bytes(certs[ID_9A][Attribute.VALUE]))
    kc = x509.load_der_x509_certificate(bytes(certs[ID_9D][Attribute.VALUE]))
    assert kc.issuer == auth.subject != kc.subject
    issuer_key = auth.public_key()
    assert isinstance(issuer_key, ec.EllipticCurvePublicKey)
    issuer_key.verify(kc.signature, kc.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    assert kc.extensions.get_extension_for_class(x509.KeyUsage).value.key_agreement


@pytest.mark.parametrize(("algorithm", "works"), [(0x03, True), (0x0A, False)])
def test_opensc_get_challenge_uses_algorithm_00(
    opensc_module: str, tmp_path: Path, algorithm: int, works: bool
) -> None:
    # C_GenerateRandom is OpenSC's GET CHALLENGE: 00 87 00 9B 7C 02 81 00. Algorithm
    # 00 is Triple DES (SP 800-78-4), so a Triple-DES card answers and an AES-192
    # one (a YubiKey 5.7's default) does not.
    card = VirtualCard.create(tmp_path / "c.json", management_algorithm=algorithm)
    with virtual_card(card, reader=0) as slot:
        token = _token_in(opensc_module, slot.reader)
        with token.open() as session:
            if works:
                assert len({session.generate_random(64) for _ in range(3)}) == 3
            else:
                with pytest.raises(pkcs11.PKCS11Error):
                    session.generate_random(64)


def _piv_tool(reader: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["yubico-piv-tool", "-r", reader, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_yubico_piv_tool_status(opensc_module: str, provisioned: tuple[ReaderSlot, bytes]) -> None:
    slot, _ = provisioned
    status = _piv_tool(slot.reader, "-a", "status")
    assert status.returncode == 0, status.stderr
    assert "Version:\t5.7.1" in status.stdout
    assert "Slot 9a:" in status.stdout
    assert "Slot 9d:" in status.stdout
    assert "PIN tries left:\t3" in status.stdout
    # In the same session after a VERIFY the card answers the empty VERIFY with
    # 9000 ("verification not needed", SP 800-73-4 part 2 3.2.1), which
    # yubico-piv-tool prints as -1: a YubiKey 5 answers the same.
    verified = _piv_tool(slot.reader, "-a", "verify-pin", "-P", PIN, "-a", "status")
    assert verified.returncode == 0, verified.stderr
    assert "PIN tries left:\t-1" in verified.stdout
    wrong = _piv_tool(slot.reader, "-a", "verify-pin", "-P", "000000")
    assert wrong.returncode != 0
    assert "PIN tries left:\t2" in _piv_tool(slot.reader, "-a", "status").stdout


@pytest.mark.parametrize(("algorithm", "administers"), [(0x03, True), (0x0A, False)])
def test_yubico_piv_tool_2_2_administers_only_triple_des_cards(
    opensc_module: str, tmp_path: Path, algorithm: int, administers: bool
) -> None:
    card = VirtualCard.create(tmp_path / "c.json", management_algorithm=algorithm)
    with virtual_card(card, reader=0) as slot:
        key = DEFAULT_MGMT.hex()
        done = _piv_tool(slot.reader, f"--key={key}", "-a", "generate", "-s", "9e", "-A", "ECCP256")
    if administers:
        assert done.returncode == 0, done.stderr
        pem = serialization.load_pem_public_key(done.stdout.encode())
        scalar = int.from_bytes(card.snapshot().keys[0x9E].private_value, "big")
        held = ec.derive_private_key(scalar, ec.SECP256R1()).public_key()
        assert isinstance(pem, ec.EllipticCurvePublicKey)
        assert pem.public_numbers() == held.public_numbers()
    else:
        assert done.returncode != 0
        assert "authentication" in done.stderr.lower()
        assert 0x9E not in card.snapshot().keys


def test_card_program_with_a_triple_des_management_key(
    opensc_module: str, pcscd: Pcscd, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # what docs/tokens.md shows for yubico-piv-tool 2.2: a 5.7 card program whose
    # default management key is Triple DES
    state_file = str(tmp_path / "c.json")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "simulators.smartcard", "--state", state_file),
            *("--reader", "1", "--management-algorithm", "3des"),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("inserted")
        wait_for_card(reader_name(1), present=True, timeout=10)
        key = f"--key={DEFAULT_MGMT.hex()}"
        done = _piv_tool(reader_name(1), key, "-a", "generate", "-s", "9a", "-A", "ECCP256")
        assert done.returncode == 0, done.stderr
        assert "BEGIN PUBLIC KEY" in done.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        for stream in (proc.stdout, proc.stderr):
            assert stream is not None
            stream.close()
        wait_for_card(reader_name(1), present=False, timeout=10)
    state = CardState.load(tmp_path / "c.json")
    assert (state.firmware, state.management_key.algorithm) == ((5, 7, 1), 0x03)
    assert 0x9A in state.keys
    # an impossible combination is refused before any reader is touched
    assert card_program(["--management-algorithm", "aes192", "--firmware", "5.2.7"]) == 2
    assert "firmware 5.4" in capsys.readouterr().err
