"""Persistent card state: atomic 0600 JSON, resumed by a new VirtualCard."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from simulators.smartcard import CardStateError, VirtualCard
from tests.smartcard.client import Client, cert_container, pad


def test_file_is_private_and_holds_no_pin(card: VirtualCard) -> None:
    assert card.path is not None
    assert stat.S_IMODE(card.path.stat().st_mode) == 0o600
    text = card.path.read_text()
    for secret in (b"123456", b"12345678"):
        assert secret.hex() not in text
        assert pad(secret).hex() not in text
    doc = json.loads(text)
    assert doc["format"] == "authnet-virtual-smartcard"
    assert doc["piv"]["pin"]["remaining"] == 3


def test_a_new_card_on_the_same_file_resumes(card: VirtualCard, client: Client) -> None:
    assert card.path is not None
    client.select_piv()
    client.authenticate()
    public = client.generate(0x9A)
    container = cert_container(b"\x30\x00")
    assert client.put_object(0x5FC105, container) == 0x9000
    assert client.send(0x24, 0x00, 0x80, pad(b"123456") + pad(b"777777"))[1] == 0x9000
    assert client.verify(b"000000") == 0x63C2
    assert not list(card.path.parent.glob(".*.tmp"))  # no temporary files left

    again = Client(VirtualCard.load(card.path).process)
    again.select_piv()
    assert again.send(0x20, 0x00, 0x80)[1] == 0x63C2  # the counter survived
    assert again.verify(b"777777") == 0x9000
    assert again.get_object(0x5FC105) == container
    digest = os.urandom(32)
    public.verify(again.sign(0x9A, digest), digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    again.select_otp()
    assert len(again.hmac_sha1(b"x")) == 20


def test_restarting_does_not_reset_the_pin_counter(card: VirtualCard, client: Client) -> None:
    assert card.path is not None
    path = card.path
    for _ in range(3):
        c = Client(VirtualCard.load(path).process)
        c.select_piv()
        c.verify(b"999999")
    c = Client(VirtualCard.load(path).process)
    c.select_piv()
    assert c.verify(b"123456") == 0x6983


def test_refuses_to_overwrite_and_reports_damage(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    VirtualCard.create(path)
    with pytest.raises(CardStateError, match="already exists"):
        VirtualCard.create(path)
    assert VirtualCard.load_or_create(path).serial == VirtualCard.load(path).serial
    with pytest.raises(CardStateError, match="no card state"):
        VirtualCard.load(tmp_path / "missing.json")
    doc = json.loads(path.read_text())
    doc["piv"]["pin"]["remaining"] = 9
    path.write_text(json.dumps(doc))
    with pytest.raises(CardStateError, match="more retries remaining"):
        VirtualCard.load(path)
    doc["piv"]["pin"]["remaining"] = 1
    doc["piv"]["keys"] = {"9a": {"algorithm": 17, "private_value": "00" * 32}}
    path.write_text(json.dumps(doc))
    with pytest.raises(CardStateError, match=r"pin_policy|private value"):
        VirtualCard.load(path)
    doc["piv"]["keys"] = {}
    doc["piv"]["objects"]["5fc1ff"] = "00"
    path.write_text(json.dumps(doc))
    with pytest.raises(CardStateError, match="not a PIV data object"):
        VirtualCard.load(path)
    path.write_text("{not json")
    with pytest.raises(CardStateError, match="not JSON"):
        VirtualCard.load(path)


def test_a_failed_write_undoes_the_command(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    card = VirtualCard(VirtualCard.create().snapshot(), blocker / "card.json")
    c = Client(card.process)
    c.select_piv()
    assert c.verify(b"000000") == 0x6581  # memory failure, not 63C2
    assert c.send(0x20, 0x00, 0x80)[1] == 0x6D00  # the card reset itself
    c.select_piv()
    assert c.send(0x20, 0x00, 0x80)[1] == 0x63C3  # the attempt did not count
    assert card.snapshot().pin.remaining == 3
