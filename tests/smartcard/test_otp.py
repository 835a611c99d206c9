"""The YubiKey OTP application: HMAC-SHA1 challenge-response as KeePassXC uses it."""

from __future__ import annotations

import hashlib
import hmac
import os

import pytest

from simulators.smartcard import VirtualCard
from tests.smartcard.client import Client
from tests.smartcard.conftest import OTP_SECRET


def expected(challenge: bytes, secret: bytes = OTP_SECRET) -> bytes:
    return hmac.new(secret, challenge, hashlib.sha1).digest()


def keepassxc_pad(challenge: bytes) -> bytes:
    """KeePassXC pads to 64 bytes with PKCS#7-style bytes (value 64 - len)."""
    n = 64 - len(challenge)
    return challenge + bytes([n]) * n


def test_select_reports_version_and_configured_slots(card: VirtualCard, client: Client) -> None:
    status = client.select_otp()
    assert status == bytes([5, 7, 1, 1, 0x02, 0x00])  # slot 2 configured
    assert client.ok(0x03) == status
    card.configure_otp_hmac(1, os.urandom(20))
    assert client.ok(0x03) == bytes([5, 7, 1, 2, 0x03, 0x00])  # program sequence bumped


@pytest.mark.parametrize("size", [0, 1, 6, 20, 32, 63])
def test_hmac_sha1_short_challenges(client: Client, size: int) -> None:
    client.select_otp()
    challenge = os.urandom(size)
    assert client.hmac_sha1(challenge) == expected(challenge)


def test_hmac_sha1_padded_challenges(client: Client) -> None:
    client.select_otp()
    seed = os.urandom(32)
    # KeePassXC's database challenge: the 32-byte seed, padded to 64
    assert client.hmac_sha1(keepassxc_pad(seed)) == expected(seed.rstrip(b"\x20"))
    # a full 64-byte challenge ending in a run of equal bytes is shortened by that run
    raw = os.urandom(60) + b"\x07" * 4
    assert client.hmac_sha1(raw) == expected(raw.rstrip(b"\x07"))


def test_without_lt64_the_challenge_is_64_bytes(card: VirtualCard, client: Client) -> None:
    card.configure_otp_hmac(2, OTP_SECRET, lt64=False)
    client.select_otp()
    raw = os.urandom(63) + b"\x00"
    assert client.hmac_sha1(raw) == expected(raw)
    assert client.send(0x01, 0x38, 0x00, raw[:32])[1] == 0x6700


def test_slot_not_configured(card: VirtualCard, client: Client) -> None:
    client.select_otp()
    assert client.send(0x01, 0x30, 0x00, b"challenge")[1] == 0x6A88
    secret = os.urandom(20)
    card.configure_otp_hmac(1, secret)
    assert client.hmac_sha1(b"challenge", slot=1) == expected(b"challenge", secret)
    card.configure_otp_hmac(2, None)
    assert client.send(0x01, 0x38, 0x00, b"challenge")[1] == 0x6A88


def test_short_secret_is_zero_padded(client: Client, card: VirtualCard) -> None:
    card.configure_otp_hmac(2, b"short")
    client.select_otp()
    assert client.hmac_sha1(b"x") == expected(b"x", b"short")


def test_other_commands(card: VirtualCard, client: Client) -> None:
    client.select_otp()
    assert int.from_bytes(client.ok(0x01, 0x10), "big") == card.serial
    assert client.send(0x01, 0x38, 0x00, os.urandom(65))[1] == 0x6700
    assert client.send(0x01, 0x38, 0x01, b"x")[1] == 0x6A86
    assert client.send(0x01, 0x99, 0x00)[1] == 0x6A86
    assert client.send(0x20, 0x00, 0x80)[1] == 0x6D00  # no PIV commands here
    assert client.send(0x01, 0x38, 0x00, b"x", cla=0x10)[1] == 0x6884
    with pytest.raises(ValueError, match="1 to 20"):
        card.configure_otp_hmac(2, os.urandom(21))
    with pytest.raises(ValueError, match="slots"):
        card.configure_otp_hmac(3, os.urandom(20))
