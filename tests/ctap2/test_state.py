"""The JSON state file: created for a new device, resumed, written atomically
with mode 0600, never holding the PIN itself."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from fido2 import cbor
from fido2.ctap import CtapError
from fido2.ctap2 import Ctap2
from fido2.ctap2.pin import ClientPin

from simulators.ctap2 import Authenticator
from simulators.ctap2.device import SoftCtapDevice
from tests.ctap2.util import PIN, RP_ID, decoded, set_pin

CDH = b"\x44" * 32


def make_resident(auth: Authenticator, user: bytes) -> None:
    params = {
        1: CDH,
        2: {"id": RP_ID},
        3: {"id": user, "name": user.decode()},
        4: [{"type": "public-key", "alg": -7}],
        7: {"rk": True},
    }
    decoded(auth.process(0x01, cbor.encode(params)))


def test_new_device_is_saved_private(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "key.json"
    auth = Authenticator(path, aaguid=bytes(range(16)))
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["format"] == "authnet-soft-ctap2/1"
    assert data["aaguid"] == bytes(range(16)).hex()
    assert data["credentials"] == []
    assert data["pin_hash"] is None
    assert auth.state_path == str(path)
    assert [p.name for p in path.parent.iterdir()] == ["key.json"]  # no temporary left


def test_resume_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    first = Authenticator(path, aaguid=b"\x01" * 16)
    make_resident(first, b"alice")
    make_resident(first, b"bob")
    set_pin(SoftCtapDevice(first))
    raw = path.read_text()
    assert PIN not in raw  # only LEFT(SHA-256(PIN), 16) is kept
    second = Authenticator(path, aaguid=b"\x02" * 16)  # an existing file keeps its AAGUID
    assert second.aaguid == b"\x01" * 16
    assert second.pin_is_set
    assert second.pin_retries == 8
    assert second.sign_count == first.sign_count == 2
    assert [c.user_id for c in second.resident_credentials] == [b"bob", b"alice"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_counter_and_retries_are_persisted_at_once(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    auth = Authenticator(path)
    make_resident(auth, b"alice")
    decoded(auth.process(0x02, cbor.encode({1: RP_ID, 2: CDH})))
    assert Authenticator(path).sign_count == 2
    set_pin(SoftCtapDevice(auth))
    with pytest.raises(CtapError, match="PIN_INVALID"):
        ClientPin(Ctap2(SoftCtapDevice(auth))).get_pin_token("0000")
    assert Authenticator(path).pin_retries == 7  # unplugging does not undo a wrong PIN


def test_in_memory_device_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    auth = Authenticator(None)
    make_resident(auth, b"alice")
    assert auth.state_path is None
    assert list(tmp_path.iterdir()) == []


def test_clone(tmp_path: Path) -> None:
    original = Authenticator(None)
    make_resident(original, b"alice")
    twin = original.clone(tmp_path / "twin.json")
    assert twin.resident_credentials == original.resident_credentials
    make_resident(twin, b"bob")
    assert len(twin.resident_credentials) == 2
    assert len(original.resident_credentials) == 1
    assert len(Authenticator(tmp_path / "twin.json").resident_credentials) == 2


@pytest.mark.parametrize("content", ["not json", "{}", '{"format": "something else"}'])
def test_a_damaged_file_is_refused_not_replaced(tmp_path: Path, content: str) -> None:
    path = tmp_path / "key.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=r"Expecting value|state file"):
        Authenticator(path)
    assert path.read_text() == content


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="attestation"):
        Authenticator(None, attestation="basic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="16 bytes"):
        Authenticator(None, aaguid=b"short")
