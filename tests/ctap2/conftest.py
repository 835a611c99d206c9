"""Fixtures for the software CTAP2 authenticator tests.

`auth` is a new device on a state file in tmp_path; `open_device` opens a
python-fido2 `CtapDevice` on an Authenticator, once per transport: "cbor" (the
SoftCtapDevice, no framing) and "hid" (python-fido2's own CtapHidDevice over
the simulated CTAPHID device)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fido2.ctap import CtapDevice

from simulators.ctap2 import Authenticator, SoftCtapDevice, SoftCtapHidDevice


class DeviceOpener:
    def __init__(self, transport: str) -> None:
        self.transport = transport
        self.hids: list[SoftCtapHidDevice] = []

    def __call__(self, auth: Authenticator) -> CtapDevice:
        if self.transport == "cbor":
            return SoftCtapDevice(auth)
        hid = SoftCtapHidDevice(auth)
        self.hids.append(hid)
        return hid.open(read_timeout=15.0)

    def close(self) -> None:
        for hid in self.hids:
            hid.close()


@pytest.fixture
def auth(tmp_path: Path) -> Authenticator:
    return Authenticator(tmp_path / "key.json")


@pytest.fixture(params=["cbor", "hid"])
def open_device(request: pytest.FixtureRequest) -> Iterator[DeviceOpener]:
    opener = DeviceOpener(request.param)
    yield opener
    opener.close()


@pytest.fixture
def device(open_device: DeviceOpener, auth: Authenticator) -> CtapDevice:
    return open_device(auth)
