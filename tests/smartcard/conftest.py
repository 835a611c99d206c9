"""Fixtures for the virtual smartcard: `card` is a fresh VirtualCard with a
state file; `pcscd` the real PC/SC daemon (started here, or reused), shared by
the session; `slot` the card inserted in vpcd reader 0."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.smartcard import Pcscd, ReaderSlot, VirtualCard, virtual_card
from tests.smartcard.client import Client

OTP_SECRET = bytes.fromhex("00112233445566778899aabbccddeeff01234567")


@pytest.fixture
def card(tmp_path: Path) -> VirtualCard:
    return VirtualCard.create(tmp_path / "card.json", otp_slot2_secret=OTP_SECRET)


@pytest.fixture
def client(card: VirtualCard) -> Client:
    return Client(card.process)


@pytest.fixture(scope="session")
def pcscd() -> Iterator[Pcscd]:
    with Pcscd.ensure() as daemon:
        yield daemon


@pytest.fixture
def slot(pcscd: Pcscd, card: VirtualCard) -> Iterator[ReaderSlot]:
    # virtual_card() checks for pcscd itself (cheap when it runs), so a daemon
    # that went away mid-session is replaced instead of failing every test after
    with virtual_card(card, reader=0) as s:
        yield s
