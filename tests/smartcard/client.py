"""A small host-side PIV/OTP client for the tests: the same code drives the
card directly (`VirtualCard.process`) and through pcscd (a pyscard connection),
so the end-to-end tests check the real stack, not a second implementation."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from smartcard.Exceptions import CardConnectionException
from smartcard.System import readers

from simulators.smartcard import tlv
from simulators.smartcard.apdu import CommandApdu

Transmit = Callable[[bytes], bytes]

PIV_AID = bytes.fromhex("A000000308000010000100")
OTP_AID = bytes.fromhex("A0000005272001")
DEFAULT_MGMT = bytes.fromhex("010203040506070801020304050607080102030405060708")


def pad(pin: bytes) -> bytes:
    return pin + b"\xff" * (8 - len(pin))


def pyscard_transmit(conn: Any) -> Transmit:
    def transmit(apdu: bytes) -> bytes:
        data, sw1, sw2 = conn.transmit(list(apdu))
        return bytes(data) + bytes([sw1, sw2])

    return transmit


@contextlib.contextmanager
def pyscard_connection(reader_name: str) -> Iterator[Any]:
    """readers() / createConnection() / connect(), released on exit."""
    found = [r for r in readers() if str(r) == reader_name]
    assert found, f"{reader_name} not in {readers()}"
    conn = found[0].createConnection()
    try:
        conn.connect()
        yield conn
    finally:
        with contextlib.suppress(CardConnectionException):
            conn.disconnect()
        with contextlib.suppress(CardConnectionException):
            conn.release()


def aes_ecb(key: bytes, block: bytes, *, decrypt: bool = False) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.ECB())  # PIV's one-block form
    ctx = cipher.decryptor() if decrypt else cipher.encryptor()
    return ctx.update(block) + ctx.finalize()


def tdes_ecb(key: bytes, block: bytes, *, decrypt: bool = False) -> bytes:
    cipher = Cipher(TripleDES(key), modes.ECB())  # PIV's one-block form, 8-byte blocks
    ctx = cipher.decryptor() if decrypt else cipher.encryptor()
    return ctx.update(block) + ctx.finalize()


class CardError(Exception):
    def __init__(self, sw: int) -> None:
        super().__init__(f"SW {sw:04X}")
        self.sw = sw


class Client:
    def __init__(self, transmit: Transmit) -> None:
        self.transmit = transmit

    def raw(self, apdu: bytes) -> tuple[bytes, int]:
        r = self.transmit(apdu)
        assert len(r) >= 2
        return r[:-2], int.from_bytes(r[-2:], "big")

    def send(
        self,
        ins: int,
        p1: int = 0,
        p2: int = 0,
        data: bytes = b"",
        *,
        cla: int = 0,
        le: int | None = None,
        extended: bool = False,
    ) -> tuple[bytes, int]:
        """One command; collects 61xx continuations with GET RESPONSE."""
        out, sw = self.raw(CommandApdu(cla, ins, p1, p2, data, le, extended).to_bytes())
        while sw >> 8 == 0x61:
            more, sw = self.raw(bytes([0x00, 0xC0, 0x00, 0x00, sw & 0xFF]))
            out += more
        return out, sw

    def ok(self, ins: int, p1: int = 0, p2: int = 0, data: bytes = b"", **kw: Any) -> bytes:
        out, sw = self.send(ins, p1, p2, data, **kw)
        if sw != 0x9000:
            raise CardError(sw)
        return out

    def chained(self, ins: int, p1: int, p2: int, data: bytes) -> tuple[bytes, int]:
        """Command chaining in 255-byte parts (CLA 10 on all but the last)."""
        parts = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
        for part in parts[:-1]:
            _, sw = self.send(ins, p1, p2, part, cla=0x10)
            if sw != 0x9000:
                return b"", sw
        return self.send(ins, p1, p2, parts[-1])

    # --- PIV ---------------------------------------------------------------------

    def select_piv(self) -> bytes:
        return self.ok(0xA4, 0x04, 0x00, PIV_AID)

    def verify(self, pin: bytes) -> int:
        return self.send(0x20, 0x00, 0x80, pad(pin))[1]

    def authenticate(self, key: bytes = DEFAULT_MGMT, alg: int = 0x0A) -> None:
        """Mutual authentication with the card management key (SP 800-73-4 A.2):
        alg 03 is Triple DES (8-byte blocks), 08/0A/0C AES (16-byte blocks)."""
        ecb = tdes_ecb if alg == 0x03 else aes_ecb
        resp = self.ok(0x87, alg, 0x9B, tlv.tlv(0x7C, tlv.tlv(0x80)))
        witness = _dyn(resp, 0x80)
        assert len(witness) == (8 if alg == 0x03 else 16)
        challenge = os.urandom(len(witness))
        data = tlv.tlv(
            0x7C,
            tlv.tlv(0x80, ecb(key, witness, decrypt=True)) + tlv.tlv(0x81, challenge),
        )
        out, sw = self.send(0x87, alg, 0x9B, data)
        if sw != 0x9000:
            raise CardError(sw)
        assert _dyn(out, 0x82) == ecb(key, challenge), "the card failed to authenticate"

    def generate(self, slot: int, *, pin_policy: int | None = None) -> ec.EllipticCurvePublicKey:
        control = tlv.tlv(0x80, b"\x11")
        if pin_policy is not None:
            control += tlv.tlv(0xAA, bytes([pin_policy]))
        out = self.ok(0x47, 0x00, slot, tlv.tlv(0xAC, control))
        tag, value, end = tlv.parse_one(out)
        assert tag == 0x7F49
        assert end == len(out)
        point = tlv.find(tlv.parse(value), 0x86)
        assert point is not None
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)

    def sign(self, slot: int, digest: bytes) -> bytes:
        data = tlv.tlv(0x7C, tlv.tlv(0x82) + tlv.tlv(0x81, digest))
        return _dyn(self.ok(0x87, 0x11, slot, data), 0x82)

    def ecdh(self, slot: int, point: bytes) -> bytes:
        data = tlv.tlv(0x7C, tlv.tlv(0x82) + tlv.tlv(0x85, point))
        return _dyn(self.ok(0x87, 0x11, slot, data), 0x82)

    def ecdh_sw(self, slot: int, point: bytes) -> int:
        data = tlv.tlv(0x7C, tlv.tlv(0x82) + tlv.tlv(0x85, point))
        return self.send(0x87, 0x11, slot, data)[1]

    def get_object(self, tag: int) -> bytes:
        tag_bytes = tag.to_bytes((tag.bit_length() + 7) // 8, "big")
        out = self.ok(0xCB, 0x3F, 0xFF, tlv.tlv(0x5C, tag_bytes), le=256)
        t, value, end = tlv.parse_one(out)
        assert end == len(out)
        assert t == (tag if tag in (0x7E, 0x7F61) else 0x53)
        return value

    def put_object(self, tag: int, content: bytes) -> int:
        tag_bytes = tag.to_bytes((tag.bit_length() + 7) // 8, "big")
        data = tlv.tlv(0x5C, tag_bytes) + tlv.tlv(0x53, content)
        return self.chained(0xDB, 0x3F, 0xFF, data)[1]

    # --- OTP ----------------------------------------------------------------------

    def select_otp(self) -> bytes:
        return self.ok(0xA4, 0x04, 0x00, OTP_AID)

    def hmac_sha1(self, challenge: bytes, slot: int = 2) -> bytes:
        return self.ok(0x01, 0x38 if slot == 2 else 0x30, 0x00, challenge)


def _dyn(response: bytes, tag: int) -> bytes:
    t, value, end = tlv.parse_one(response)
    assert t == 0x7C, response.hex()
    assert end == len(response), response.hex()
    found = tlv.find(tlv.parse(value), tag)
    assert found is not None, response.hex()
    return found


def uncompressed(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def cert_container(cert_der: bytes) -> bytes:
    """SP 800-73-4 certificate container: 70 cert, 71 CertInfo (uncompressed), FE LRC."""
    return tlv.tlv(0x70, cert_der) + tlv.tlv(0x71, b"\x00") + tlv.tlv(0xFE)
