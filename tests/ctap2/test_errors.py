"""Status codes at the CBOR level (Authenticator.process), for malformed,
incomplete, ill-typed and out-of-order requests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from fido2 import cbor
from fido2.ctap import CtapError
from fido2.ctap2.pin import PinProtocolV1, PinProtocolV2

from simulators.ctap2 import Authenticator, PresenceRequest, deny, no_touch
from simulators.ctap2.device import SoftCtapDevice
from tests.ctap2.test_client import FakeClock
from tests.ctap2.util import PIN, RP_ID, call, decoded, set_pin, status

ERR = CtapError.ERR
MC, GA, INFO, PIN_CMD, RESET, NEXT, SELECTION = 0x01, 0x02, 0x04, 0x06, 0x07, 0x08, 0x0B
CDH = b"\x11" * 32
ES256 = [{"type": "public-key", "alg": -7}]


def mc_params(**overrides: Any) -> dict[int, Any]:
    params: dict[int, Any] = {
        1: CDH,
        2: {"id": RP_ID, "name": "Example"},
        3: {"id": b"user-id", "name": "alice", "displayName": "Alice"},
        4: ES256,
    }
    for key, value in overrides.items():
        index = int(key[1:])
        if value is None:
            params.pop(index, None)
        else:
            params[index] = value
    return params


def make(auth: Authenticator, **options: Any) -> bytes:
    """A credential id (options such as rk=True, extensions via ext=)."""
    extensions = options.pop("ext", None)
    params = mc_params(p7=options or None, p6=extensions)
    response = decoded(call(auth, MC, params))
    auth_data = response[2]
    length = int.from_bytes(auth_data[53:55], "big")
    return bytes(auth_data[55 : 55 + length])


def ga(auth: Authenticator, *cred_ids: bytes, rp_id: str = RP_ID, **extra: Any) -> bytes:
    params: dict[int, Any] = {1: rp_id, 2: CDH}
    if cred_ids:
        params[3] = [{"type": "public-key", "id": c} for c in cred_ids]
    for key, value in extra.items():
        params[int(key[1:])] = value
    return call(auth, GA, params)


@pytest.fixture
def mem() -> Authenticator:
    return Authenticator(None)


# ------------------------------------------------------------ command level


@pytest.mark.parametrize("command", [0x00, 0x03, 0x05, 0x09, 0x0A, 0x0C, 0x0D, 0x40, 0x41, 0xFF])
def test_unknown_command(mem: Authenticator, command: int) -> None:
    assert mem.process(command, b"") == bytes([ERR.INVALID_COMMAND])
    assert mem.process(command, b"\xa0") == bytes([ERR.INVALID_COMMAND])


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"\xa1", ERR.INVALID_CBOR),  # truncated map
        (b"\xa1\x01", ERR.INVALID_CBOR),  # key without value
        (b"\xa1\x01\x58\x20" + b"\x00" * 31, ERR.INVALID_CBOR),  # short byte string
        (cbor.encode({1: CDH}) + b"\x00", ERR.INVALID_CBOR),  # trailing byte
        (b"\xa1\x18\x01\x40", ERR.INVALID_CBOR),  # key 1 encoded in two bytes
        (b"\xa1\x01\x59\x00\x01\x00", ERR.INVALID_CBOR),  # length 1 in three bytes
        (b"\xa2\x02\x40\x01\x40", ERR.INVALID_CBOR),  # keys out of order
        (b"\xa2\x01\x40\x01\x40", ERR.INVALID_CBOR),  # duplicate key
        (b"\xbf\x01\x40\xff", ERR.INVALID_CBOR),  # indefinite-length map
        (b"\xa1\x01\x5f\x41\x00\xff", ERR.INVALID_CBOR),  # indefinite byte string
        (b"\xa1\x01\x62\xc3\x28", ERR.INVALID_CBOR),  # invalid UTF-8
        (b"\xa1\x01\x1c", ERR.INVALID_CBOR),  # reserved additional information
        (b"\xa1\x01\xf8\x10", ERR.INVALID_CBOR),  # two-byte simple value < 32
        (b"\xa1\x01" + b"\x81" * 4 + b"\x00", ERR.INVALID_CBOR),  # five levels deep
        (b"\xa1\x81\x00\x01", ERR.CBOR_UNEXPECTED_TYPE),  # array as a map key
        (b"\x80", ERR.CBOR_UNEXPECTED_TYPE),  # parameters not a map
        (b"\x01", ERR.CBOR_UNEXPECTED_TYPE),
    ],
)
def test_malformed_cbor(mem: Authenticator, payload: bytes, expected: int) -> None:
    for command in (MC, GA, PIN_CMD):
        assert mem.process(command, payload) == bytes([expected])


def test_four_levels_are_fine(mem: Authenticator) -> None:
    # request map > excludeList > descriptor > transports: the deepest CTAP uses.
    exclude = [{"type": "public-key", "id": b"x" * 16, "transports": ["usb"]}]
    assert status(mem, MC, mc_params(p5=exclude)) == 0


@pytest.mark.parametrize("drop", [1, 2, 3, 4])
def test_make_credential_missing_parameter(mem: Authenticator, drop: int) -> None:
    params = mc_params()
    del params[drop]
    assert status(mem, MC, params) == ERR.MISSING_PARAMETER
    assert mem.process(MC, b"") == bytes([ERR.MISSING_PARAMETER])


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"p1": "text"}, ERR.CBOR_UNEXPECTED_TYPE),
        ({"p1": b"\x00" * 31}, ERR.INVALID_LENGTH),
        ({"p2": ["example.com"]}, ERR.CBOR_UNEXPECTED_TYPE),
        ({"p2": {"name": "no id"}}, ERR.MISSING_PARAMETER),
        ({"p2": {"id": 5}}, ERR.CBOR_UNEXPECTED_TYPE),
        ({"p3": {"name": "no id"}}, ERR.MISSING_PARAMETER),
        ({"p3": {"id": "text id"}}, ERR.CBOR_UNEXPECTED_TYPE),
        ({"p3": {"id": b"u" * 65}}, ERR.INVALID_LENGTH),
        ({"p4": {"alg": -7}}, ERR.CBOR_UNEXPECTED_TYPE),
        ({"p4": [{"type": "public-key"}]}, ERR.INVALID_CBOR),
        ({"p4": [{"type": "public-key", "alg": "ES256"}]}, ERR.CBOR_UNEXPECTED_TYPE),
        ({"p4": [{"type": "public-key", "alg": -257}]}, ERR.UNSUPPORTED_ALGORITHM),
        ({"p4": [{"type": "other", "alg": -7}]}, ERR.UNSUPPORTED_ALGORITHM),
        ({"p4": []}, ERR.UNSUPPORTED_ALGORITHM),
        ({"p5": [{"type": "public-key"}]}, ERR.MISSING_PARAMETER),
        ({"p5": {"id": b"x"}}, ERR.CBOR_UNEXPECTED_TYPE),
        ({"p6": {"hmac-secret": 1}}, ERR.CBOR_UNEXPECTED_TYPE),
        ({"p6": {"credProtect": 7}}, ERR.INVALID_PARAMETER),
        ({"p7": {"uv": 1}}, ERR.CBOR_UNEXPECTED_TYPE),
        ({"p7": {"uv": True}}, ERR.INVALID_OPTION),  # no built-in UV
        ({"p7": {"up": False}}, ERR.INVALID_OPTION),
        ({"p8": b"\x00" * 32}, ERR.MISSING_PARAMETER),  # pinUvAuthProtocol absent
        ({"p8": b"\x00" * 32, "p9": 3}, ERR.INVALID_PARAMETER),  # unsupported protocol
        ({"p8": b"\x00" * 32, "p9": "2"}, ERR.CBOR_UNEXPECTED_TYPE),
        ({"p10": 1}, ERR.INVALID_PARAMETER),  # no enterprise attestation
    ],
)
def test_make_credential_bad_parameter(
    mem: Authenticator, override: dict[str, Any], expected: int
) -> None:
    assert status(mem, MC, mc_params(**override)) == expected


def test_make_credential_ignores_unknown_things(mem: Authenticator) -> None:
    params = mc_params(
        p4=[{"type": "other", "alg": -8}, {"type": "public-key", "alg": -7}],
        p6={"unknownExtension": [1, 2], "credBlob": b"x"},
        p7={"somethingElse": 17, "rk": False},
    )
    params[42] = "an unknown parameter"
    response = decoded(call(mem, MC, params))
    assert response[1] == "packed"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({2: CDH}, ERR.MISSING_PARAMETER),
        ({1: RP_ID}, ERR.MISSING_PARAMETER),
        ({1: b"example.com", 2: CDH}, ERR.CBOR_UNEXPECTED_TYPE),
        ({1: RP_ID, 2: CDH, 3: {"id": b"x"}}, ERR.CBOR_UNEXPECTED_TYPE),
        ({1: RP_ID, 2: CDH, 3: [{"id": b"x"}]}, ERR.MISSING_PARAMETER),
        ({1: RP_ID, 2: CDH, 5: {"rk": True}}, ERR.UNSUPPORTED_OPTION),
        ({1: RP_ID, 2: CDH, 5: {"uv": True}}, ERR.INVALID_OPTION),
        ({1: RP_ID, 2: CDH, 5: {"up": "yes"}}, ERR.CBOR_UNEXPECTED_TYPE),
        ({1: RP_ID, 2: CDH, 4: {"hmac-secret": {1: {}}}}, ERR.MISSING_PARAMETER),
        ({1: RP_ID, 2: CDH, 4: {"hmac-secret": True}}, ERR.CBOR_UNEXPECTED_TYPE),
        ({1: RP_ID, 2: CDH, 6: b"\x00" * 16}, ERR.MISSING_PARAMETER),
        ({1: RP_ID, 2: CDH}, ERR.NO_CREDENTIALS),
        ({1: RP_ID, 2: CDH, 3: [{"type": "public-key", "id": b"x" * 63}]}, ERR.NO_CREDENTIALS),
    ],
)
def test_get_assertion_errors(mem: Authenticator, params: dict[int, Any], expected: int) -> None:
    assert status(mem, GA, params) == expected


def test_request_too_large(mem: Authenticator) -> None:
    payload = cbor.encode(mc_params(p3={"id": b"u", "name": "x" * 1300}))
    assert mem.process(MC, payload) == bytes([ERR.REQUEST_TOO_LARGE])


# -------------------------------------------------------- getNextAssertion


def test_get_next_assertion_order(tmp_path: Path) -> None:
    clock = FakeClock()
    auth = Authenticator(tmp_path / "key.json", clock=clock)
    assert status(auth, NEXT) == ERR.NOT_ALLOWED  # nothing to continue
    first = make(auth, rk=True)
    assert decoded(ga(auth))[1]["id"] == first
    assert 5 not in decoded(ga(auth))  # one credential: no numberOfCredentials
    assert status(auth, NEXT) == ERR.NOT_ALLOWED

    params = mc_params(p3={"id": b"second", "name": "bob"}, p7={"rk": True})
    decoded(call(auth, MC, params))
    response = decoded(ga(auth))
    assert response[5] == 2
    assert response[4] == {"id": b"second"}
    following = decoded(call(auth, NEXT))
    assert following[1]["id"] == first
    assert 5 not in following
    assert status(auth, NEXT) == ERR.NOT_ALLOWED  # all given

    decoded(ga(auth))
    assert status(auth, INFO) == 0
    assert status(auth, NEXT) == ERR.NOT_ALLOWED  # another command came between

    decoded(ga(auth))
    clock.now += 31
    assert status(auth, NEXT) == ERR.NOT_ALLOWED  # timer expired

    decoded(ga(auth, first))  # an allowList never gives more than one
    assert status(auth, NEXT) == ERR.NOT_ALLOWED


# ------------------------------------------------------------- PIN and UV


def test_pin_required_and_pin_auth_errors(mem: Authenticator) -> None:
    set_pin(SoftCtapDevice(mem))
    assert status(mem, MC, mc_params(p7={"rk": True})) == ERR.PUAT_REQUIRED
    assert status(mem, MC, mc_params()) == 0  # makeCredUvNotRqd
    for version, length in ((1, 16), (2, 32)):
        bad = mc_params(p8=os.urandom(length), p9=version)
        assert status(mem, MC, bad) == ERR.PIN_AUTH_INVALID
        bad_ga = {1: RP_ID, 2: CDH, 6: os.urandom(length), 7: version}
        assert status(mem, GA, bad_ga) == ERR.PIN_AUTH_INVALID


def test_zero_length_pin_uv_auth_param(mem: Authenticator) -> None:
    asked: list[str] = []

    def touch(request: PresenceRequest) -> bool:
        asked.append(request.purpose)
        return True

    mem.presence = touch
    probe = mc_params(p8=b"", p9=1)
    assert status(mem, MC, probe) == ERR.PIN_NOT_SET
    set_pin(SoftCtapDevice(mem))
    assert status(mem, MC, probe) == ERR.PIN_INVALID
    assert status(mem, GA, {1: RP_ID, 2: CDH, 6: b"", 7: 2}) == ERR.PIN_INVALID
    assert asked == ["pinUvAuthParamProbe"] * 3
    mem.presence = deny
    assert status(mem, MC, probe) == ERR.OPERATION_DENIED


def test_user_presence_denied_or_absent(mem: Authenticator) -> None:
    cred = make(mem)
    for behaviour in (deny, no_touch):
        mem.presence = behaviour
        assert status(mem, MC, mc_params()) == ERR.OPERATION_DENIED
        assert ga(mem, cred)[0] == ERR.OPERATION_DENIED
        assert status(mem, SELECTION) == (
            ERR.OPERATION_DENIED if behaviour is deny else ERR.USER_ACTION_TIMEOUT
        )
        # up=false needs nobody: the UP flag is then clear.
        response = decoded(ga(mem, cred, p5={"up": False}))
        assert response[2][32] & 0x01 == 0


def test_up_flag_and_counter_in_auth_data(mem: Authenticator) -> None:
    cred = make(mem)
    before = mem.sign_count
    auth_data = decoded(ga(mem, cred))[2]
    assert auth_data[32] & 0x01 == 0x01
    assert auth_data[32] & 0x04 == 0
    assert int.from_bytes(auth_data[33:37], "big") == before + 1 == mem.sign_count


def test_excluded_credential(mem: Authenticator) -> None:
    cred = make(mem)
    exclude = [{"type": "public-key", "id": cred}]
    asked: list[str] = []
    mem.presence = lambda r: asked.append(r.purpose) or False
    assert status(mem, MC, mc_params(p5=exclude)) == ERR.CREDENTIAL_EXCLUDED
    assert asked == ["credentialExcluded"]  # waits for the touch, whatever its outcome
    other_rp = mc_params(p2={"id": "other.example"}, p5=exclude)
    mem.presence = lambda r: True
    assert status(mem, MC, other_rp) == 0


def test_key_store_full(tmp_path: Path) -> None:
    auth = Authenticator(tmp_path / "key.json", max_resident_credentials=1)
    make(auth, rk=True)
    make(auth, rk=True)  # same user: replaces
    full = mc_params(p3={"id": b"another"}, p7={"rk": True})
    assert status(auth, MC, full) == ERR.KEY_STORE_FULL
    assert len(auth.resident_credentials) == 1
    assert decoded(call(auth, INFO))[0x14] == 0


def test_cred_protect(mem: Authenticator) -> None:
    set_pin(SoftCtapDevice(mem))
    from fido2.ctap2 import Ctap2
    from fido2.ctap2.pin import ClientPin

    ctap = Ctap2(SoftCtapDevice(mem))
    pin = ClientPin(ctap, PinProtocolV2())

    def token_param() -> dict[str, Any]:
        token = pin.get_pin_token(PIN, ClientPin.PERMISSION(3), RP_ID)
        return {"p6": pin.protocol.authenticate(token, CDH), "p7": 2}

    def make_protected(level: int, user: bytes) -> bytes:
        token = pin.get_pin_token(PIN, ClientPin.PERMISSION(3), RP_ID)
        params = mc_params(
            p3={"id": user},
            p6={"credProtect": level},
            p7={"rk": True},
            p8=pin.protocol.authenticate(token, CDH),
            p9=2,
        )
        response = decoded(call(mem, MC, params))
        assert cbor.decode_from(response[2][55 + 63 + 77 :])[0] == {"credProtect": level}
        return bytes(response[2][55 : 55 + 63])

    optional_with_list = make_protected(2, b"two")
    required = make_protected(3, b"three")
    assert ga(mem)[0] == ERR.NO_CREDENTIALS  # neither is discoverable without UV
    assert decoded(ga(mem, optional_with_list))[1]["id"] == optional_with_list
    assert ga(mem, required)[0] == ERR.NO_CREDENTIALS
    with_uv = decoded(ga(mem, **token_param()))
    assert with_uv[5] == 2
    assert decoded(ga(mem, required, **token_param()))[1]["id"] == required
    assert status(mem, MC, mc_params(p5=[{"type": "public-key", "id": required}])) == 0


# --------------------------------------------------------------- hmac-secret


def hmac_request(
    mem: Authenticator, cred: bytes, salts: bytes, version: int = 2, **tamper: Any
) -> bytes:
    protocol = PinProtocolV2() if version == 2 else PinProtocolV1()
    key = decoded(call(mem, PIN_CMD, {1: version, 2: 2}))[1]
    key_agreement, shared = protocol.encapsulate(key)
    salt_enc = protocol.encrypt(shared, salts)
    ext = {1: key_agreement, 2: salt_enc, 3: protocol.authenticate(shared, salt_enc), 4: version}
    ext.update({int(k[1:]): v for k, v in tamper.items()})
    return ga(mem, cred, p4={"hmac-secret": ext})


def test_hmac_secret_errors(mem: Authenticator) -> None:
    cred = make(mem, ext={"hmac-secret": True})
    assert hmac_request(mem, cred, b"s" * 32)[0] == 0
    assert hmac_request(mem, cred, b"s" * 64, version=1)[0] == 0
    assert hmac_request(mem, cred, b"s" * 48)[0] == ERR.INVALID_PARAMETER
    assert hmac_request(mem, cred, b"s" * 32, p3=b"\x00" * 32)[0] == ERR.PIN_AUTH_INVALID
    point = {1: 2, 3: -25, -1: 1, -2: b"\x01" * 32, -3: b"\x02" * 32}  # not on the curve
    assert hmac_request(mem, cred, b"s" * 32, p1=point)[0] == ERR.INVALID_PARAMETER
    assert hmac_request(mem, cred, b"s" * 32, p4=7)[0] == ERR.INVALID_PARAMETER
    up_false = hmac_request(mem, cred, b"s" * 32)  # valid, for the structure below
    assert up_false[0] == 0
    key = decoded(call(mem, PIN_CMD, {1: 2, 2: 2}))[1]
    key_agreement, shared = PinProtocolV2().encapsulate(key)
    salt_enc = PinProtocolV2().encrypt(shared, b"s" * 32)
    ext = {1: key_agreement, 2: salt_enc, 3: PinProtocolV2().authenticate(shared, salt_enc), 4: 2}
    silent = ga(mem, cred, p4={"hmac-secret": ext}, p5={"up": False})
    assert silent[0] == ERR.UNSUPPORTED_OPTION
    # A credential made without hmac-secret answers without the extension.
    plain = make(mem)
    response = decoded(hmac_request(mem, plain, b"s" * 32))
    assert response[2][32] & 0x80 == 0
    assert len(response[2]) == 37


# ----------------------------------------------------------------- clientPIN


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({1: 2}, ERR.MISSING_PARAMETER),
        ({1: 2, 2: "getRetries"}, ERR.CBOR_UNEXPECTED_TYPE),
        ({2: 2}, ERR.MISSING_PARAMETER),  # getKeyAgreement needs the protocol
        ({1: 3, 2: 2}, ERR.INVALID_PARAMETER),
        ({1: 2, 2: 3}, ERR.MISSING_PARAMETER),  # setPIN without its parameters
        ({1: 2, 2: 4}, ERR.MISSING_PARAMETER),
        ({1: 2, 2: 5}, ERR.MISSING_PARAMETER),
        ({1: 2, 2: 9}, ERR.MISSING_PARAMETER),
        ({1: 2, 2: 6}, ERR.INVALID_SUBCOMMAND),  # no built-in UV
        ({1: 2, 2: 7}, ERR.INVALID_SUBCOMMAND),
        ({1: 2, 2: 0x42}, ERR.INVALID_SUBCOMMAND),
        ({1: 2, 2: 2, 3: [1]}, ERR.CBOR_UNEXPECTED_TYPE),
        ({1: 2, 2: 9, 3: {1: 2}, 6: b"x" * 32, 9: 0}, ERR.INVALID_PARAMETER),
        ({1: 2, 2: 9, 3: {1: 2}, 6: b"x" * 32, 9: 0x20}, ERR.UNAUTHORIZED_PERMISSION),
        ({1: 2, 2: 9, 3: {1: 2}, 6: b"x" * 32, 9: 1}, ERR.PIN_NOT_SET),
        ({1: 2, 2: 5, 3: {1: 2}, 6: b"x" * 32, 9: 1}, ERR.INVALID_PARAMETER),
        ({1: 2, 2: 3, 3: {1: 2}, 4: b"x" * 32, 5: b"x" * 80}, ERR.INVALID_PARAMETER),
    ],
)
def test_client_pin_errors(mem: Authenticator, params: dict[int, Any], expected: int) -> None:
    assert status(mem, PIN_CMD, params) == expected


def test_get_retries_without_protocol(mem: Authenticator) -> None:
    assert decoded(call(mem, PIN_CMD, {2: 1})) == {3: 8, 4: False}


def _set_pin_raw(mem: Authenticator, padded: bytes, version: int = 2) -> int:
    protocol = PinProtocolV2() if version == 2 else PinProtocolV1()
    key = decoded(call(mem, PIN_CMD, {1: version, 2: 2}))[1]
    key_agreement, shared = protocol.encapsulate(key)
    new_pin_enc = protocol.encrypt(shared, padded)
    auth_param = protocol.authenticate(shared, new_pin_enc)
    return status(mem, PIN_CMD, {1: version, 2: 3, 3: key_agreement, 4: auth_param, 5: new_pin_enc})


def test_pin_policy(mem: Authenticator) -> None:
    assert _set_pin_raw(mem, b"123".ljust(64, b"\0")) == ERR.PIN_POLICY_VIOLATION
    assert _set_pin_raw(mem, b"\xff\xfe\xfd\xfc".ljust(64, b"\0")) == ERR.PIN_POLICY_VIOLATION
    assert _set_pin_raw(mem, b"7" * 64) == ERR.PIN_POLICY_VIOLATION  # > 63 bytes
    assert _set_pin_raw(mem, b"1234".ljust(80, b"\0")) == ERR.INVALID_PARAMETER
    assert not mem.pin_is_set
    assert _set_pin_raw(mem, "€€€€".encode().ljust(64, b"\0"), version=1) == 0  # 4 code points
    assert mem.pin_is_set


def test_set_pin_with_a_bad_mac(mem: Authenticator) -> None:
    protocol = PinProtocolV2()
    key = decoded(call(mem, PIN_CMD, {1: 2, 2: 2}))[1]
    key_agreement, shared = protocol.encapsulate(key)
    new_pin_enc = protocol.encrypt(shared, b"1234".ljust(64, b"\0"))
    bad = {1: 2, 2: 3, 3: key_agreement, 4: b"\x00" * 32, 5: new_pin_enc}
    assert status(mem, PIN_CMD, bad) == ERR.PIN_AUTH_INVALID
    assert not mem.pin_is_set


def test_errors_leave_no_trace(mem: Authenticator) -> None:
    cred = make(mem, rk=True)
    for payload in (b"\xa1", b"\x80", cbor.encode(mc_params(p1="x"))):
        mem.process(MC, payload)
        mem.process(GA, payload)
        mem.process(PIN_CMD, payload)
    assert mem.internal_errors == 0
    assert [c.credential_id for c in mem.resident_credentials] == [cred]
    assert decoded(ga(mem))[1]["id"] == cred
    assert not mem.pin_is_set
    assert mem.pin_retries == 8
