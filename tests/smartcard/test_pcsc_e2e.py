"""End to end through the real stack: pcscd + vsmartcard vpcd + the card program
+ pyscard (`readers()`, `createConnection()`), exactly as a PIV backend sees a
hardware token."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import NameOID
from smartcard.Exceptions import CardConnectionException, NoCardException
from smartcard.scard import SCARD_W_REMOVED_CARD
from smartcard.System import readers

from simulators.smartcard import (
    ATR,
    Pcscd,
    PcscError,
    ReaderSlot,
    VirtualCard,
    card_present,
    reader_name,
    virtual_card,
    wait_for_card,
)
from tests.smartcard.client import (
    Client,
    cert_container,
    pad,
    pyscard_connection,
    pyscard_transmit,
    uncompressed,
)
from tests.smartcard.conftest import OTP_SECRET

REPO = Path(__file__).resolve().parents[2]
ECDSA_PREHASHED = ec.ECDSA(Prehashed(hashes.SHA256()))


def test_pyscard_sees_the_card(slot: ReaderSlot) -> None:
    names = [str(r) for r in readers()]
    assert "Virtual PCD 00 00" in names
    assert "Virtual PCD 00 01" in names
    assert card_present(slot.reader)
    assert not card_present(reader_name(1))
    with pyscard_connection(slot.reader) as conn:
        assert bytes(conn.getATR()) == ATR
        apt = Client(pyscard_transmit(conn)).select_piv()
        assert apt.startswith(bytes.fromhex("61"))
        assert bytes.fromhex("000010000100") in apt


def test_pin_lifecycle(slot: ReaderSlot) -> None:
    with pyscard_connection(slot.reader) as conn:
        c = Client(pyscard_transmit(conn))
        c.select_piv()
        assert c.send(0x20, 0x00, 0x80)[1] == 0x63C3
        assert c.verify(b"123456") == 0x9000
        assert c.send(0x20, 0x00, 0x80)[1] == 0x9000
        assert [c.verify(b"000000") for _ in range(3)] == [0x63C2, 0x63C1, 0x63C0]
        assert c.verify(b"123456") == 0x6983
        assert c.send(0x2C, 0x00, 0x80, pad(b"00000000") + pad(b"112233"))[1] == 0x63C2
        assert c.send(0x2C, 0x00, 0x80, pad(b"12345678") + pad(b"112233"))[1] == 0x9000
        assert c.verify(b"112233") == 0x9000
        assert c.send(0x24, 0x00, 0x80, pad(b"112233") + pad(b"445566"))[1] == 0x9000
        assert c.verify(b"445566") == 0x9000


def test_keys_signatures_and_key_agreement(slot: ReaderSlot) -> None:
    with pyscard_connection(slot.reader) as conn:
        c = Client(pyscard_transmit(conn))
        c.select_piv()
        c.authenticate()
        auth_key = c.generate(0x9A)
        kmk = c.generate(0x9D)
        assert c.verify(b"123456") == 0x9000
        message = b"login challenge from the network"
        digest = hashlib.sha256(message).digest()
        signature = c.sign(0x9A, digest)
        auth_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        peer = ec.generate_private_key(ec.SECP256R1())
        point = uncompressed(peer.public_key())
        assert c.ecdh(0x9D, point) == peer.exchange(ec.ECDH(), kmk)
        off_curve = point[:-1] + bytes([point[-1] ^ 1])
        assert c.ecdh_sw(0x9D, off_curve) == 0x6A80


def test_certificates(slot: ReaderSlot) -> None:
    with pyscard_connection(slot.reader) as conn:
        c = Client(pyscard_transmit(conn))
        c.select_piv()
        c.authenticate()
        public = c.generate(0x9A)
        ca = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "PIV auth")]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")]))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(ca, hashes.SHA256())
        )
        der = cert.public_bytes(serialization.Encoding.DER)
        # long enough for chaining on the way in and GET RESPONSE on the way out
        assert len(cert_container(der)) > 255
        assert c.put_object(0x5FC105, cert_container(der)) == 0x9000
        assert c.put_object(0x5FC10B, cert_container(der)) == 0x9000
        for tag in (0x5FC105, 0x5FC10B):
            container = c.get_object(tag)
            assert container == cert_container(der)
            read = x509.load_der_x509_certificate(container[4 : 4 + len(der)])
            assert read == cert
        assert c.verify(b"123456") == 0x9000
        digest = os.urandom(32)
        read_key = read.public_key()
        assert isinstance(read_key, ec.EllipticCurvePublicKey)
        read_key.verify(c.sign(0x9A, digest), digest, ECDSA_PREHASHED)


def test_extended_apdus_pass_through_pcscd(slot: ReaderSlot) -> None:
    with pyscard_connection(slot.reader) as conn:
        c = Client(pyscard_transmit(conn))
        c.select_piv()
        c.authenticate()
        content = os.urandom(3000)
        data = bytes.fromhex("5C035FC105") + b"\x53\x82" + len(content).to_bytes(2, "big")
        assert c.send(0xDB, 0x3F, 0xFF, data + content, extended=True)[1] == 0x9000
        out, sw = c.send(0xCB, 0x3F, 0xFF, bytes.fromhex("5C035FC105"), le=65536)
        assert sw == 0x9000
        assert out.endswith(content)


def test_otp_challenge_response(slot: ReaderSlot) -> None:
    with pyscard_connection(slot.reader) as conn:
        c = Client(pyscard_transmit(conn))
        assert c.select_otp()[:3] == bytes([5, 7, 1])
        challenge = os.urandom(32)
        expected = hmac.new(OTP_SECRET, challenge, hashlib.sha1).digest()
        assert c.hmac_sha1(challenge) == expected
        padded = challenge.rstrip(b"\x20") + b"\x20" * (64 - len(challenge.rstrip(b"\x20")))
        assert (
            c.hmac_sha1(padded) == hmac.new(OTP_SECRET, challenge.rstrip(b"\x20"), "sha1").digest()
        )
        assert c.send(0x01, 0x30, 0x00, challenge)[1] == 0x6A88  # slot 1 is empty
        assert int.from_bytes(c.ok(0x01, 0x10), "big") == slot.card.serial


def test_card_pulled_mid_operation_and_reinserted(slot: ReaderSlot) -> None:
    digest = os.urandom(32)
    with pyscard_connection(slot.reader) as conn:
        c = Client(pyscard_transmit(conn))
        c.select_piv()
        c.authenticate()
        public = c.generate(0x9A)
        assert c.verify(b"123456") == 0x9000
        slot.link.remove_during(lambda apdu: apdu[1] == 0x87)
        started = time.monotonic()
        with pytest.raises(CardConnectionException):
            c.sign(0x9A, digest)
        assert time.monotonic() - started < 5, "a pulled card must fail fast, not hang"
        wait_for_card(slot.reader, present=False, timeout=5)
        with pytest.raises(CardConnectionException) as e:
            c.select_piv()
        assert e.value.hresult == SCARD_W_REMOVED_CARD
    with pytest.raises(NoCardException), pyscard_connection(slot.reader):
        pass

    slot.insert()
    with pyscard_connection(slot.reader) as conn:
        c = Client(pyscard_transmit(conn))
        c.select_piv()
        assert c.send(0x20, 0x00, 0x80)[1] == 0x63C3  # power was lost: PIN again
        assert c.verify(b"123456") == 0x9000
        public.verify(c.sign(0x9A, digest), digest, ECDSA_PREHASHED)  # the key stayed

    # removal between commands
    with pyscard_connection(slot.reader) as conn:
        c = Client(pyscard_transmit(conn))
        c.select_piv()
        slot.remove()
        with pytest.raises(CardConnectionException):
            c.select_piv()
    slot.insert()
    with pyscard_connection(slot.reader) as conn:
        assert Client(pyscard_transmit(conn)).select_piv()


def test_swapping_in_the_reloaded_card(slot: ReaderSlot) -> None:
    assert slot.card.path is not None
    with pyscard_connection(slot.reader) as conn:
        c = Client(pyscard_transmit(conn))
        c.select_piv()
        c.authenticate()
        public = c.generate(0x9D)
    slot.swap(VirtualCard.load(slot.card.path))
    with pyscard_connection(slot.reader) as conn:
        c = Client(pyscard_transmit(conn))
        c.select_piv()
        c.authenticate()
        meta = c.ok(0xF7, 0x00, 0x9D)
        assert uncompressed(public) in meta


def _start_card_program(state: Path, reader: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulators.smartcard",
            "--state",
            str(state),
            "--reader",
            str(reader),
            "--otp-secret",
            OTP_SECRET.hex(),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("inserted"):
        proc.kill()
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"the card program did not start: {line!r} {err}")
    wait_for_card(reader_name(reader), present=True, timeout=10)
    return proc


def _stop_card_program(proc: subprocess.Popen[str], reader: int) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.close()
    proc.stderr.close()
    wait_for_card(reader_name(reader), present=False, timeout=10)


def test_persistence_across_card_program_restart(pcscd: Pcscd, tmp_path: Path) -> None:
    state = tmp_path / "card.json"
    reader = reader_name(1)
    proc = _start_card_program(state, 1)
    try:
        with pyscard_connection(reader) as conn:
            c = Client(pyscard_transmit(conn))
            c.select_piv()
            serial = int.from_bytes(c.ok(0xF8), "big")
            c.authenticate()
            public = c.generate(0x9A)
            assert c.put_object(0x5FC105, cert_container(b"\x30\x03\x02\x01\x07")) == 0x9000
            assert c.send(0x24, 0x00, 0x80, pad(b"123456") + pad(b"97531086"))[1] == 0x9000
            assert c.verify(b"000000") == 0x63C2
    finally:
        _stop_card_program(proc, 1)
    assert not card_present(reader)

    proc = _start_card_program(state, 1)
    try:
        with pyscard_connection(reader) as conn:
            c = Client(pyscard_transmit(conn))
            c.select_piv()
            assert int.from_bytes(c.ok(0xF8), "big") == serial
            assert c.send(0x20, 0x00, 0x80)[1] == 0x63C2  # the failed try is remembered
            assert c.verify(b"97531086") == 0x9000
            digest = os.urandom(32)
            public.verify(c.sign(0x9A, digest), digest, ECDSA_PREHASHED)
            assert c.get_object(0x5FC105) == cert_container(b"\x30\x03\x02\x01\x07")
            c.select_otp()
            assert c.hmac_sha1(b"abc") == hmac.new(OTP_SECRET, b"abc", hashlib.sha1).digest()
    finally:
        _stop_card_program(proc, 1)


def test_pcsc_helper_reuses_and_guards(pcscd: Pcscd, slot: ReaderSlot) -> None:
    again = Pcscd.ensure()
    assert not again.started
    again.stop()  # leaves the running daemon alone
    assert card_present(slot.reader)
    with pytest.raises(PcscError, match="in use"), virtual_card(reader=0, pcscd=pcscd, timeout=0.3):
        pass
    with pytest.raises(PcscError, match="timed out"):
        wait_for_card(reader_name(1), present=True, timeout=0.3)
    with pytest.raises(PcscError, match="no reader"):
        wait_for_card("Virtual PCD 00 07", timeout=1)
