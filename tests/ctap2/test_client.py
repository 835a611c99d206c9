"""Unmodified python-fido2 (Ctap2, Fido2Client, Fido2Server) against the
simulator, over both transports (the `device` fixture is parametrised)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fido2.client import ClientError
from fido2.ctap import CtapDevice, CtapError
from fido2.ctap2 import Ctap2
from fido2.webauthn import Aaguid, AuthenticatorData

from simulators.ctap2 import Authenticator, deny, no_touch
from tests.ctap2.conftest import DeviceOpener
from tests.ctap2.util import (
    PIN,
    RP_ID,
    PinEntry,
    authenticate,
    client,
    prf_salt,
    register,
    server,
    set_pin,
)

SALT_A = b"A" * 32
SALT_B = b"B" * 32


def test_get_info(device: CtapDevice, auth: Authenticator) -> None:
    info = Ctap2(device).get_info()
    assert "FIDO_2_1" in info.versions
    assert "FIDO_2_0" in info.versions
    assert "hmac-secret" in info.extensions
    assert info.pin_uv_protocols == [2, 1]
    assert info.aaguid == Aaguid(auth.aaguid)
    assert info.options["clientPin"] is False
    assert info.options["pinUvAuthToken"] is True
    assert info.options["rk"] is True
    assert "uv" not in info.options  # no built-in user verification
    assert info.algorithms == [{"alg": -7, "type": "public-key"}]
    assert info.min_pin_length == 4
    set_pin(device)
    assert Ctap2(device).get_info().options["clientPin"] is True


def test_register_and_authenticate_non_resident(device: CtapDevice, auth: Authenticator) -> None:
    fido, rp = client(device), server()
    auth_data, registration = register(fido, rp)
    att = registration.response.attestation_object
    assert att.fmt == "packed"  # self attestation, verified by the server
    assert auth_data.credential_data is not None
    assert auth_data.credential_data.aaguid == Aaguid(auth.aaguid)
    assert auth_data.is_user_present()
    assert not auth_data.is_user_verified()
    assert auth.resident_credentials == []
    counters = [auth_data.counter]
    for _ in range(3):
        response = authenticate(fido, rp, [auth_data.credential_data])
        ad = response.response.authenticator_data
        assert ad.rp_id_hash == rp.rp.id_hash
        assert ad.flags & AuthenticatorData.FLAG.UP
        assert not ad.flags & AuthenticatorData.FLAG.UV
        counters.append(ad.counter)
    assert counters == sorted(counters)
    assert len(set(counters)) == len(counters)


def test_attestation_none(open_device: DeviceOpener, tmp_path: Path) -> None:
    device = open_device(Authenticator(tmp_path / "none.json", attestation="none"))
    fido, rp = client(device), server()
    auth_data, registration = register(fido, rp)
    assert registration.response.attestation_object.fmt == "none"
    assert registration.response.attestation_object.att_stmt == {}
    assert auth_data.credential_data is not None
    authenticate(fido, rp, [auth_data.credential_data])


def test_resident_credential_with_pin(device: CtapDevice, auth: Authenticator) -> None:
    set_pin(device)
    fido, rp = client(device), server()
    auth_data, _ = register(fido, rp, user_id=b"alice-id", resident=True, uv="required")
    assert auth_data.is_user_verified()
    [stored] = auth.resident_credentials
    assert stored.rp_id == RP_ID
    assert stored.user_id == b"alice-id"
    assert auth_data.credential_data is not None
    response = authenticate(fido, rp, [auth_data.credential_data], uv="required", allow=False)
    assert response.response.user_handle == b"alice-id"
    assert response.response.authenticator_data.is_user_verified()
    assert response.raw_id == stored.credential_id


def test_discoverable_needs_pin_even_when_rp_discourages_uv(
    device: CtapDevice, auth: Authenticator
) -> None:
    """makeCredUvNotRqd: a PIN-protected key makes non-discoverable credentials
    without the PIN, but a discoverable one answers CTAP2_ERR_PUAT_REQUIRED,
    upon which python-fido2 asks for the PIN and retries."""
    set_pin(device)
    entry = PinEntry()
    fido, rp = client(device, user=entry), server()
    auth_data, _ = register(fido, rp, user_id=b"u1", uv="discouraged")
    assert entry.prompts == 0
    assert not auth_data.is_user_verified()
    auth_data, _ = register(fido, rp, user_id=b"u2", resident=True, uv="discouraged")
    assert entry.prompts == 1
    assert auth_data.is_user_verified()


def test_several_discoverable_credentials(device: CtapDevice, auth: Authenticator) -> None:
    set_pin(device)
    fido, rp = client(device), server()
    creds = []
    for user in (b"u-1", b"u-2", b"u-3"):
        auth_data, _ = register(fido, rp, user_id=user, name=user.decode(), resident=True)
        assert auth_data.credential_data is not None
        creds.append(auth_data.credential_data)
    options, state = rp.authenticate_begin(user_verification="required")
    selection = fido.get_assertion(options.public_key)
    assertions = selection.get_assertions()
    assert len(assertions) == 3  # authenticatorGetNextAssertion twice
    assert assertions[0].number_of_credentials == 3
    # Newest first; names only after user verification.
    assert [a.user["id"] for a in assertions if a.user] == [b"u-3", b"u-2", b"u-1"]
    assert assertions[0].user is not None
    assert assertions[0].user["name"] == "u-3"
    for index in range(3):
        response = selection.get_response(index)
        rp.authenticate_complete(state, creds, response)
    # Registering the same user again replaces the credential.
    register(fido, rp, user_id=b"u-2", name="again", resident=True)
    assert len(auth.resident_credentials) == 3


def test_allow_list_picks_the_listed_credential(device: CtapDevice) -> None:
    fido, rp = client(device), server()
    first, _ = register(fido, rp, user_id=b"one")
    second, _ = register(fido, rp, user_id=b"two")
    assert first.credential_data is not None
    assert second.credential_data is not None
    response = authenticate(fido, rp, [second.credential_data])
    assert response.raw_id == second.credential_data.credential_id
    response = authenticate(fido, rp, [first.credential_data])
    assert response.raw_id == first.credential_data.credential_id


def test_credential_ids_are_bound_to_device_and_rp(
    open_device: DeviceOpener, tmp_path: Path
) -> None:
    home = open_device(Authenticator(tmp_path / "a.json"))
    other = open_device(Authenticator(tmp_path / "b.json"))
    auth_data, _ = register(client(home), server())
    assert auth_data.credential_data is not None
    cred_id = auth_data.credential_data.credential_id
    descriptor = [{"type": "public-key", "id": cred_id}]
    Ctap2(home).get_assertion(RP_ID, os.urandom(32), descriptor)
    for device, rp_id in ((other, RP_ID), (home, "evil.example")):
        with pytest.raises(CtapError) as e:
            Ctap2(device).get_assertion(rp_id, os.urandom(32), descriptor)
        assert e.value.code == CtapError.ERR.NO_CREDENTIALS
    tampered = bytearray(cred_id)
    tampered[-1] ^= 1
    with pytest.raises(CtapError) as e:
        Ctap2(home).get_assertion(RP_ID, os.urandom(32), [{"type": "public-key", "id": tampered}])
    assert e.value.code == CtapError.ERR.NO_CREDENTIALS
    with pytest.raises(ClientError) as ce:
        authenticate(client(other), server(), [auth_data.credential_data])
    assert ce.value.code == ClientError.ERR.DEVICE_INELIGIBLE


def test_exclude_list(device: CtapDevice) -> None:
    fido, rp = client(device), server()
    auth_data, _ = register(fido, rp)
    assert auth_data.credential_data is not None
    with pytest.raises(ClientError) as e:
        register(fido, rp, exclude=[auth_data.credential_data])
    assert e.value.code == ClientError.ERR.DEVICE_INELIGIBLE
    # The same credential excluded by another RP changes nothing.
    fido_org = client(device, origin="https://example.org")
    register(fido_org, server("example.org"), exclude=[auth_data.credential_data])


def test_user_refuses_or_does_not_touch(device: CtapDevice, auth: Authenticator) -> None:
    fido, rp = client(device), server()
    auth_data, _ = register(fido, rp)
    assert auth_data.credential_data is not None
    for behaviour in (deny, no_touch):
        auth.presence = behaviour
        with pytest.raises(ClientError) as e:
            register(fido, rp)
        assert isinstance(e.value.cause, CtapError)
        assert e.value.cause.code == CtapError.ERR.OPERATION_DENIED
        with pytest.raises(ClientError) as e:
            authenticate(fido, rp, [auth_data.credential_data])
        assert isinstance(e.value.cause, CtapError)
        assert e.value.cause.code == CtapError.ERR.OPERATION_DENIED


def _hmac(response: object) -> tuple[bytes, bytes | None]:
    outputs = response.client_extension_results.hmac_get_secret  # type: ignore[attr-defined]
    assert outputs is not None
    return outputs.output1, outputs.output2 or None


def test_hmac_secret(device: CtapDevice) -> None:
    set_pin(device)
    fido, rp = client(device, hmac_secret=True), server()
    a, reg = register(fido, rp, user_id=b"a", extensions={"hmacCreateSecret": True})
    b, _ = register(fido, rp, user_id=b"b", extensions={"hmacCreateSecret": True})
    assert reg.client_extension_results.hmac_create_secret is True
    assert a.extensions == {"hmac-secret": True}
    assert a.credential_data is not None
    assert b.credential_data is not None

    def outputs(cred: object, uv: str, *salts: bytes) -> tuple[bytes, bytes | None]:
        ext = {"hmacGetSecret": {"salt1": salts[0], **({"salt2": salts[1]} if salts[1:] else {})}}
        return _hmac(authenticate(fido, rp, [cred], uv=uv, extensions=ext))  # type: ignore[list-item]

    one, two = outputs(a.credential_data, "required", SALT_A, SALT_B)
    assert len(one) == 32
    assert two is not None
    assert len(two) == 32
    assert one != two
    assert outputs(a.credential_data, "required", SALT_A, SALT_B) == (one, two)  # stable
    assert outputs(a.credential_data, "required", SALT_B) == (two, None)  # per salt
    assert outputs(b.credential_data, "required", SALT_A)[0] != one  # per credential
    without_uv = outputs(a.credential_data, "discouraged", SALT_A)[0]
    assert without_uv != one  # CredRandomWithoutUV
    assert outputs(a.credential_data, "discouraged", SALT_A)[0] == without_uv


def test_prf_is_hmac_secret_over_the_prf_salt(device: CtapDevice) -> None:
    fido_prf = client(device)  # python-fido2's default extensions: PRF
    fido_hmac = client(device, hmac_secret=True)
    rp = server()
    auth_data, reg = register(fido_prf, rp, extensions={"prf": {}})
    assert reg.client_extension_results.prf.enabled is True
    cred = auth_data.credential_data
    assert cred is not None

    def prf(first: bytes, second: bytes | None = None) -> tuple[bytes, bytes | None]:
        values = {"first": first, **({"second": second} if second else {})}
        response = authenticate(fido_prf, rp, [cred], extensions={"prf": {"eval": values}})
        results = response.client_extension_results.prf.results
        return results.first, results.second or None  # fido2 gives b"" for one salt

    first, second = prf(b"input one", b"input two")
    assert first != second
    assert prf(b"input one") == (first, None)
    raw = authenticate(
        fido_hmac,
        rp,
        [cred],
        extensions={"hmacGetSecret": {"salt1": prf_salt(b"input one")}},
    )
    assert _hmac(raw)[0] == first


def test_prf_differs_with_and_without_uv(device: CtapDevice) -> None:
    set_pin(device)
    fido, rp = client(device), server()
    auth_data, _ = register(fido, rp, resident=True, uv="required", extensions={"prf": {}})
    cred = auth_data.credential_data
    assert cred is not None
    ext = {"prf": {"eval": {"first": b"salt"}}}
    results = {
        uv: authenticate(fido, rp, [cred], uv=uv, extensions=ext).client_extension_results
        for uv in ("required", "discouraged")
    }
    with_uv = results["required"].prf.results.first
    without_uv = results["discouraged"].prf.results.first
    assert with_uv != without_uv
    again = authenticate(fido, rp, [cred], uv="required", allow=False, extensions=ext)
    assert again.client_extension_results.prf.results.first == with_uv


def test_state_persists_across_instances(open_device: DeviceOpener, tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    first = Authenticator(path)
    device = open_device(first)
    set_pin(device)
    fido, rp = client(device, hmac_secret=True), server()
    resident, _ = register(
        fido, rp, resident=True, uv="required", extensions={"hmacCreateSecret": True}
    )
    plain, _ = register(fido, rp, user_id=b"other", extensions={"hmacCreateSecret": True})
    assert resident.credential_data is not None
    assert plain.credential_data is not None
    ext = {"hmacGetSecret": {"salt1": SALT_A}}
    before = authenticate(fido, rp, [resident.credential_data], uv="required", extensions=ext)
    plain_before = authenticate(fido, rp, [plain.credential_data], extensions=ext)

    second = Authenticator(path)  # the same key, plugged in again
    device = open_device(second)
    fido = client(device, hmac_secret=True)
    assert second.pin_is_set
    assert second.aaguid == first.aaguid
    assert second.resident_credentials == first.resident_credentials
    after = authenticate(
        fido, rp, [resident.credential_data], uv="required", allow=False, extensions=ext
    )
    plain_after = authenticate(fido, rp, [plain.credential_data], extensions=ext)
    assert _hmac(after) == _hmac(before)
    assert _hmac(plain_after) == _hmac(plain_before)
    assert (
        after.response.authenticator_data.counter > plain_before.response.authenticator_data.counter
    )
    with pytest.raises(ClientError):
        authenticate(client(device, pin="9999"), rp, [plain.credential_data], uv="required")
    assert Authenticator(path).pin_retries == 7


def test_reset_wipes_everything(device: CtapDevice, auth: Authenticator) -> None:
    set_pin(device)
    fido, rp = client(device), server()
    resident, _ = register(fido, rp, resident=True, uv="required")
    plain, _ = register(fido, rp, user_id=b"plain")
    assert resident.credential_data is not None
    assert plain.credential_data is not None
    aaguid = auth.aaguid
    Ctap2(device).reset()
    assert auth.resident_credentials == []
    assert not auth.pin_is_set
    assert auth.aaguid == aaguid
    assert Ctap2(device).get_info().options["clientPin"] is False
    for cred in (resident.credential_data, plain.credential_data):
        with pytest.raises(CtapError) as e:
            Ctap2(device).get_assertion(
                RP_ID, os.urandom(32), [{"type": "public-key", "id": cred.credential_id}]
            )
        assert e.value.code == CtapError.ERR.NO_CREDENTIALS
    register(client(device, pin=None), rp)  # a fresh key works as before


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_reset_only_shortly_after_power_up(open_device: DeviceOpener, tmp_path: Path) -> None:
    clock = FakeClock()
    auth = Authenticator(tmp_path / "key.json", clock=clock)
    ctap = Ctap2(open_device(auth))
    clock.now += 11
    with pytest.raises(CtapError) as e:
        ctap.reset()
    assert e.value.code == CtapError.ERR.NOT_ALLOWED
    auth.power_cycle()
    auth.presence = deny
    with pytest.raises(CtapError) as e:
        ctap.reset()
    assert e.value.code == CtapError.ERR.OPERATION_DENIED
    auth.presence = no_touch
    with pytest.raises(CtapError) as e:
        ctap.reset()
    assert e.value.code == CtapError.ERR.USER_ACTION_TIMEOUT
    never = Authenticator(tmp_path / "other.json", clock=clock, reset_window=None)
    clock.now += 3600
    Ctap2(open_device(never)).reset()


def test_selection(device: CtapDevice, auth: Authenticator) -> None:
    fido = client(device)
    fido.selection()
    auth.presence = deny
    with pytest.raises(ClientError):
        fido.selection()


def test_wink_and_ping(device: CtapDevice) -> None:
    from fido2.hid import CTAPHID

    assert device.call(CTAPHID.PING, b"hello") == b"hello"
    assert device.call(CTAPHID.WINK) == b""
    with pytest.raises(CtapError) as e:
        device.call(CTAPHID.MSG, b"\x00\x01\x00\x00")
    assert e.value.code == CtapError.ERR.INVALID_COMMAND


def test_pin_is_required_for_uv(device: CtapDevice) -> None:
    """Without a PIN the key cannot verify the user: python-fido2 refuses
    "required" (and "preferred", since clientPin is a supported option)."""
    fido, rp = client(device), server()
    for uv in ("required", "preferred"):
        with pytest.raises(ClientError) as e:
            register(fido, rp, uv=uv)
        assert e.value.code == ClientError.ERR.CONFIGURATION_UNSUPPORTED


def test_wrong_pin_through_the_client(device: CtapDevice, auth: Authenticator) -> None:
    set_pin(device)
    fido, rp = client(device, pin="0000"), server()
    with pytest.raises(ClientError) as e:
        register(fido, rp, uv="required")
    assert isinstance(e.value.cause, CtapError)
    assert e.value.cause.code == CtapError.ERR.PIN_INVALID
    assert auth.pin_retries == 7
    register(client(device, pin=PIN), rp, uv="required")
    assert auth.pin_retries == 8
