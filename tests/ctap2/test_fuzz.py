"""Fuzzing: random command bytes and random, structured or mutated CBOR never
crash the authenticator (every answer is a known CTAP status, successes carry
canonical CBOR) and never corrupt its state (a normal python-fido2 flow works
afterwards and hmac-secret outputs are unchanged). The same for raw CTAPHID
packets."""

from __future__ import annotations

import os
from typing import Any

from fido2 import cbor
from fido2.ctap import CtapError
from fido2.ctap2 import Ctap2
from fido2.ctap2.pin import ClientPin, PinProtocolV2
from fido2.webauthn import AttestedCredentialData
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulators.ctap2 import Authenticator, SoftCtapDevice, SoftCtapHidDevice
from tests.ctap2.util import PIN, RP_ID, authenticate, client, register, server

KNOWN_STATUSES = {int(e) for e in CtapError.ERR}
COMMANDS = [0x01, 0x02, 0x04, 0x06, 0x07, 0x08, 0x0B]
CDH = b"\x33" * 32


class Provisioned:
    """A PIN-protected key with one discoverable hmac-secret credential, made
    once and cloned for every example."""

    def __init__(self) -> None:
        self.auth = Authenticator(None)
        device = SoftCtapDevice(self.auth)
        ClientPin(Ctap2(device)).set_pin(PIN)
        self.rp = server()
        auth_data, _ = register(
            client(device, hmac_secret=True),
            self.rp,
            resident=True,
            uv="required",
            extensions={"hmacCreateSecret": True},
        )
        assert auth_data.credential_data is not None
        self.cred: AttestedCredentialData = auth_data.credential_data
        self.output = self.hmac_output(self.auth)

    def hmac_output(self, auth: Authenticator) -> bytes:
        """A discoverable assertion with the PIN and hmac-secret, via Fido2Client."""
        response = authenticate(
            client(SoftCtapDevice(auth), hmac_secret=True),
            self.rp,
            [self.cred],
            uv="required",
            allow=False,
            extensions={"hmacGetSecret": {"salt1": b"\x01" * 32}},
        )
        output = response.client_extension_results.hmac_get_secret.output1
        assert isinstance(output, bytes)
        return output


PROVISIONED = Provisioned()


def _templates() -> list[tuple[int, dict[int, Any] | None]]:
    """Valid requests of every kind (some about the provisioned credential)."""
    platform = PinProtocolV2()
    key = cbor.decode(PROVISIONED.auth.process(6, cbor.encode({1: 2, 2: 2}))[1:])[1]
    peer, shared = platform.encapsulate(key)
    salt_enc = platform.encrypt(shared, b"\x07" * 64)
    hmac_ext = {1: peer, 2: salt_enc, 3: platform.authenticate(shared, salt_enc), 4: 2}
    known = {"type": "public-key", "id": PROVISIONED.cred.credential_id}
    unknown = {"type": "public-key", "id": os.urandom(63), "transports": ["usb"]}
    mc = {
        1: CDH,
        2: {"id": RP_ID, "name": "Example"},
        3: {"id": b"fuzz-user", "name": "fuzz", "displayName": "Fuzz"},
        4: [{"type": "public-key", "alg": -7}],
        5: [unknown],
        6: {"hmac-secret": True, "credProtect": 2},
        7: {"rk": True},
        8: os.urandom(32),
        9: 2,
    }
    ga = {1: RP_ID, 2: CDH, 3: [unknown, known], 4: {"hmac-secret": hmac_ext}, 5: {"up": True}}
    pin_hash_enc = platform.encrypt(shared, os.urandom(16))
    new_pin_enc = platform.encrypt(shared, b"4321".ljust(64, b"\0"))
    new_pin_auth = platform.authenticate(shared, new_pin_enc)
    return [
        (0x01, mc),
        (0x01, {k: v for k, v in mc.items() if k not in (7, 8, 9)}),
        (0x02, ga),
        (0x02, {**ga, 6: os.urandom(16), 7: 1}),
        (0x02, {1: RP_ID, 2: CDH}),
        (0x02, {1: RP_ID, 2: CDH, 5: {"up": False}}),
        (0x04, None),
        (0x06, {1: 2, 2: 1}),
        (0x06, {1: 1, 2: 2}),
        (0x06, {1: 2, 2: 3, 3: peer, 4: new_pin_auth, 5: new_pin_enc}),
        (0x06, {1: 2, 2: 4, 3: peer, 4: os.urandom(32), 5: new_pin_enc, 6: pin_hash_enc}),
        (0x06, {1: 2, 2: 5, 3: peer, 6: pin_hash_enc}),
        (0x06, {1: 2, 2: 9, 3: peer, 6: pin_hash_enc, 9: 3, 10: RP_ID}),
        (0x08, None),
        (0x0B, None),
    ]


TEMPLATES = _templates()

cbor_leaves = st.one_of(
    st.integers(-(2**63), 2**64 - 1),
    st.binary(max_size=70),
    st.text(max_size=20),
    st.booleans(),
    st.sampled_from([RP_ID, "public-key", "hmac-secret", "rk", "up", "uv", -7, -25]),
)
cbor_values = st.recursive(
    cbor_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(st.integers(-3, 12), st.sampled_from(["id", "type", "alg", "name"])),
            inner,
            max_size=5,
        ),
    ),
    max_leaves=12,
)


@st.composite
def structured(draw: st.DrawFn) -> tuple[int, bytes]:
    """A valid request with whole parameters dropped, replaced or added."""
    command, template = draw(st.sampled_from(TEMPLATES))
    params = dict(template or {})
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["drop", "replace", "add"]))
        key = draw(st.sampled_from(sorted(params) or [1]))
        if op == "drop":
            params.pop(key, None)
        elif op == "replace":
            params[key] = draw(cbor_values)
        else:
            params[draw(st.integers(1, 12))] = draw(cbor_values)
    return command, cbor.encode(params) if params else b""


@st.composite
def mutated(draw: st.DrawFn) -> tuple[int, bytes]:
    """A valid request with a few bytes flipped, inserted or cut."""
    command, template = draw(st.sampled_from(TEMPLATES))
    data = bytearray(b"" if template is None else cbor.encode(template))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "byte"]))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte" and data:
            data[position] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[position:]
        elif op == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and data:
            del data[position]
    if draw(st.booleans()):
        command = draw(st.sampled_from(COMMANDS))
    return command, bytes(data)


requests = st.one_of(
    structured(),
    mutated(),
    st.tuples(st.integers(0, 255), st.binary(max_size=200)),
    st.tuples(
        st.sampled_from(COMMANDS),
        st.dictionaries(st.integers(1, 10), cbor_values, max_size=8).map(cbor.encode),
    ),
    st.tuples(st.sampled_from(COMMANDS), cbor_values.map(cbor.encode)),
)


def check_response(response: bytes) -> None:
    assert response, "empty response"
    assert response[0] in KNOWN_STATUSES, f"unknown status 0x{response[0]:02x}"
    if response[0] == 0 and len(response) > 1:
        value = cbor.decode(response[1:])
        assert cbor.encode(value) == response[1:], "non-canonical response"
    elif response[0] != 0:
        assert len(response) == 1


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(requests, min_size=1, max_size=6))
def test_fuzzed_requests_never_crash_or_corrupt(batch: list[tuple[int, bytes]]) -> None:
    auth = PROVISIONED.auth.clone()
    for command, payload in batch:
        check_response(auth.process(command, payload))
    assert auth.internal_errors == 0
    # A fuzzed reset is a legitimate wipe; anything else must leave the key intact.
    auth.power_cycle()  # lifts a fuzzed 3-mismatch PIN block
    if auth.pin_is_set:
        assert auth.pin_retries >= 5
        assert PROVISIONED.hmac_output(auth) == PROVISIONED.output
    else:  # reset (and perhaps a few credentials made since)
        assert PROVISIONED.cred.credential_id not in {
            c.credential_id for c in auth.resident_credentials
        }
        fresh = client(SoftCtapDevice(auth), pin=None)
        auth_data, _ = register(fresh, PROVISIONED.rp)
        assert auth_data.credential_data is not None
        authenticate(fresh, PROVISIONED.rp, [auth_data.credential_data])
    assert auth.internal_errors == 0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(min_size=64, max_size=64), min_size=1, max_size=12))
def test_fuzzed_hid_packets(packets: list[bytes]) -> None:
    hid = SoftCtapHidDevice(Authenticator(None), message_timeout=0.05)
    try:
        conn = hid.connect(read_timeout=2.0)
        fido = hid.open(read_timeout=2.0)
        cid = fido._channel_id
        for index, packet in enumerate(packets):
            if index % 3 == 1:  # aim some packets at the live channel
                packet = cid.to_bytes(4, "big") + packet[4:]
            conn.write_packet(packet)
        hid.close()  # drop whatever the fuzz left pending
        # The device still allocates channels and answers on them.
        fresh = hid.open(read_timeout=2.0)
        assert fresh.ping(b"still alive") == b"still alive"
        ctap = Ctap2(fresh)
        assert ctap.get_info().versions == ["FIDO_2_0", "FIDO_2_1"]
        response = ctap.make_credential(
            CDH, {"id": RP_ID}, {"id": b"u"}, [{"type": "public-key", "alg": -7}]
        )
        assert response.auth_data.credential_data is not None
    finally:
        hid.close()
