"""authenticatorClientPIN driven by python-fido2's ClientPin, over both
transports and both PIN/UV auth protocols."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fido2.ctap import CtapDevice, CtapError
from fido2.ctap2 import Ctap2
from fido2.ctap2.pin import ClientPin, PinProtocol, PinProtocolV1, PinProtocolV2

from simulators.ctap2 import Authenticator, VerificationRequest, deny
from tests.ctap2.conftest import DeviceOpener
from tests.ctap2.test_client import FakeClock
from tests.ctap2.util import PIN, RP_ID, set_pin

ERR = CtapError.ERR
MC = ClientPin.PERMISSION.MAKE_CREDENTIAL
GA = ClientPin.PERMISSION.GET_ASSERTION

PROTOCOLS = [PinProtocolV1, PinProtocolV2]


def make_credential(
    ctap: Ctap2, protocol: PinProtocol, token: bytes, rp_id: str = RP_ID, rk: bool = False
) -> int:
    """makeCredential authorised by `token`; returns the UV flag."""
    cdh = os.urandom(32)
    response = ctap.make_credential(
        cdh,
        {"id": rp_id, "name": rp_id},
        {"id": b"user", "name": "user"},
        [{"type": "public-key", "alg": -7}],
        options={"rk": True} if rk else None,
        pin_uv_param=protocol.authenticate(token, cdh),
        pin_uv_protocol=protocol.VERSION,
    )
    return response.auth_data.flags & 0x04


def pin_error(call: object, *args: object) -> CtapError.ERR:
    with pytest.raises(CtapError) as e:
        call(*args)  # type: ignore[operator]
    return e.value.code


@pytest.mark.parametrize("protocol_cls", PROTOCOLS)
def test_set_change_and_use_pin(
    device: CtapDevice, auth: Authenticator, protocol_cls: type[PinProtocol]
) -> None:
    ctap = Ctap2(device)
    protocol = protocol_cls()
    pin = ClientPin(ctap, protocol)
    assert pin.get_pin_retries() == (8, False)
    assert pin_error(pin.get_pin_token, PIN) == ERR.PIN_NOT_SET
    pin.set_pin(PIN)
    assert auth.pin_is_set
    assert pin_error(pin.set_pin, "5678") == ERR.PIN_AUTH_INVALID  # already set
    token = pin.get_pin_token(PIN, MC, RP_ID)
    assert len(token) == 32
    assert make_credential(ctap, protocol, token)

    old_token = pin.get_pin_token(PIN, MC, RP_ID)
    pin.change_pin(PIN, "new pin ✓")
    assert pin_error(make_credential, ctap, protocol, old_token) == ERR.PIN_AUTH_INVALID
    assert pin_error(pin.get_pin_token, PIN, MC, RP_ID) == ERR.PIN_INVALID
    assert pin_error(pin.change_pin, PIN, "other") == ERR.PIN_INVALID
    assert pin.get_pin_retries()[0] == 6
    token = pin.get_pin_token("new pin ✓", MC, RP_ID)
    assert pin.get_pin_retries()[0] == 8
    assert make_credential(ctap, protocol, token, rk=True)


def test_wrong_pin_decrements_and_three_mismatches_block(
    device: CtapDevice, auth: Authenticator
) -> None:
    set_pin(device)
    pin = ClientPin(Ctap2(device))
    assert pin_error(pin.get_pin_token, "0000") == ERR.PIN_INVALID
    assert pin.get_pin_retries() == (7, False)
    assert pin_error(pin.get_pin_token, "0000") == ERR.PIN_INVALID
    assert pin_error(pin.get_pin_token, "0000") == ERR.PIN_AUTH_BLOCKED
    assert pin.get_pin_retries() == (5, True)
    # Even the right PIN is refused until the key is unplugged, and costs nothing.
    assert pin_error(pin.get_pin_token, PIN) == ERR.PIN_AUTH_BLOCKED
    assert pin_error(pin.change_pin, PIN, "9876") == ERR.PIN_AUTH_BLOCKED
    assert pin.get_pin_retries() == (5, True)
    auth.power_cycle()
    assert pin.get_pin_retries() == (5, False)
    pin.get_pin_token(PIN)
    assert pin.get_pin_retries() == (8, False)


def test_eight_wrong_pins_lock_the_key(device: CtapDevice, auth: Authenticator) -> None:
    set_pin(device)
    pin = ClientPin(Ctap2(device))
    for attempt in range(1, 9):
        if attempt in (4, 7):
            auth.power_cycle()
        code = pin_error(pin.get_pin_token, "0000")
        expected = (
            ERR.PIN_BLOCKED
            if attempt == 8
            else ERR.PIN_AUTH_BLOCKED
            if attempt in (3, 6)
            else ERR.PIN_INVALID
        )
        assert code == expected, attempt
    assert auth.pin_retries == 0
    auth.power_cycle()
    assert pin_error(pin.get_pin_token, PIN) == ERR.PIN_BLOCKED
    assert pin_error(pin.change_pin, PIN, "5678") == ERR.PIN_BLOCKED
    assert pin.get_pin_retries()[0] == 0
    Ctap2(device).reset()  # the only way out
    set_pin(device)
    pin.get_pin_token(PIN)


@pytest.mark.parametrize("protocol_cls", PROTOCOLS)
def test_token_permissions_and_rp_binding(
    device: CtapDevice, protocol_cls: type[PinProtocol]
) -> None:
    ctap = Ctap2(device)
    protocol = protocol_cls()
    pin = ClientPin(ctap, protocol)
    pin.set_pin(PIN)

    token = pin.get_pin_token(PIN, GA, RP_ID)  # no mc permission
    assert pin_error(make_credential, ctap, protocol, token) == ERR.PIN_AUTH_INVALID

    token = pin.get_pin_token(PIN, MC, "other.example")
    assert pin_error(make_credential, ctap, protocol, token) == ERR.PIN_AUTH_INVALID

    token = pin.get_pin_token(PIN, MC)  # no RP ID yet: bound by its first use
    make_credential(ctap, protocol, token)
    token = pin.get_pin_token(PIN, MC | GA)
    make_credential(ctap, protocol, token)
    # User presence was collected: the token's mc/ga permissions are used up.
    assert pin_error(make_credential, ctap, protocol, token) == ERR.PIN_AUTH_INVALID

    token = pin.get_pin_token(PIN, MC, RP_ID)
    other = protocol_cls()
    wrong = PinProtocolV2() if protocol.VERSION == 1 else PinProtocolV1()
    cdh = os.urandom(32)
    with pytest.raises(CtapError) as e:  # right token, other protocol's MAC
        ctap.make_credential(
            cdh,
            {"id": RP_ID},
            {"id": b"user"},
            [{"type": "public-key", "alg": -7}],
            pin_uv_param=wrong.authenticate(token, cdh),
            pin_uv_protocol=wrong.VERSION,
        )
    assert e.value.code == ERR.PIN_AUTH_INVALID
    assert make_credential(ctap, other, token)

    for unsupported in (
        ClientPin.PERMISSION.CREDENTIAL_MGMT,
        ClientPin.PERMISSION.BIO_ENROLL,
        ClientPin.PERMISSION.LARGE_BLOB_WRITE,
        ClientPin.PERMISSION.AUTHENTICATOR_CFG,
    ):
        assert pin_error(pin.get_pin_token, PIN, unsupported) == ERR.UNAUTHORIZED_PERMISSION


def test_legacy_get_pin_token(device: CtapDevice) -> None:
    ctap = Ctap2(device)
    set_pin(device)
    protocol = PinProtocolV1()
    token = ClientPin(ctap, protocol).get_pin_token(PIN)  # subcommand 0x05
    cdh = os.urandom(32)
    assertion_rp = "legacy.example"
    make_credential(ctap, protocol, token, rp_id=assertion_rp)
    with pytest.raises(CtapError) as e:  # still has ga, but now bound to the first RP ID
        ctap.get_assertion(
            RP_ID, cdh, None, None, {"up": False}, protocol.authenticate(token, cdh), 1
        )
    assert e.value.code == ERR.PIN_AUTH_INVALID


def test_token_expires_unused(open_device: DeviceOpener, tmp_path: Path) -> None:
    clock = FakeClock()
    auth = Authenticator(tmp_path / "key.json", clock=clock)
    device = open_device(auth)
    ctap = Ctap2(device)
    set_pin(device)
    pin = ClientPin(ctap)
    token = pin.get_pin_token(PIN, MC)
    clock.now += 31  # initial usage time limit
    assert pin_error(make_credential, ctap, pin.protocol, token) == ERR.PIN_AUTH_INVALID
    token = pin.get_pin_token(PIN, MC)
    clock.now += 29
    make_credential(ctap, pin.protocol, token)


def test_power_cycle_invalidates_tokens(device: CtapDevice, auth: Authenticator) -> None:
    set_pin(device)
    pin = ClientPin(Ctap2(device))
    token = pin.get_pin_token(PIN, MC)
    auth.power_cycle()
    assert pin_error(make_credential, Ctap2(device), pin.protocol, token) == ERR.PIN_AUTH_INVALID


def test_verification_callback(device: CtapDevice, auth: Authenticator) -> None:
    set_pin(device)
    pin = ClientPin(Ctap2(device))
    seen: list[VerificationRequest] = []

    def confirm(request: VerificationRequest) -> bool:
        seen.append(request)
        return True

    auth.verification = confirm
    pin.get_pin_token(PIN, MC | GA, RP_ID)
    assert [(r.permissions, r.rp_id) for r in seen] == [(3, RP_ID)]
    auth.verification = deny
    assert pin_error(pin.get_pin_token, PIN, MC, RP_ID) == ERR.OPERATION_DENIED
    assert auth.pin_retries == 8  # refusing costs no retry


def test_key_agreement_is_stable_until_a_mismatch(device: CtapDevice, auth: Authenticator) -> None:
    set_pin(device)
    ctap = Ctap2(device)

    def key(version: int) -> object:
        return ctap.client_pin(version, ClientPin.CMD.GET_KEY_AGREEMENT)[1]

    k2, k1 = key(2), key(1)
    assert k2 == key(2)
    assert k1 == key(1)
    assert k1 != k2
    assert k2[3] == -25
    assert k2[1] == 2
    assert k2[-1] == 1
    ClientPin(ctap, PinProtocolV2()).get_pin_token(PIN)
    assert key(2) == k2
    pin_error(ClientPin(ctap, PinProtocolV2()).get_pin_token, "0000")
    assert key(2) != k2  # regenerated after the mismatch
    assert key(1) == k1
    auth.power_cycle()
    assert key(1) != k1
