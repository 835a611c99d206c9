"""Helpers shared by the CTAP2 simulator tests: a python-fido2 client and
server pair, and raw CBOR requests."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from fido2 import cbor
from fido2.attestation import Attestation
from fido2.client import DefaultClientDataCollector, Fido2Client, UserInteraction
from fido2.ctap import CtapDevice
from fido2.ctap2 import Ctap2
from fido2.ctap2.extensions import Ctap2Extension, HmacSecretExtension
from fido2.ctap2.pin import ClientPin, PinProtocol
from fido2.server import Fido2Server
from fido2.webauthn import (
    AttestationObject,
    AttestedCredentialData,
    AuthenticationResponse,
    AuthenticatorData,
    PublicKeyCredentialRpEntity,
    RegistrationResponse,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from simulators.ctap2 import Authenticator

RP_ID = "example.com"
ORIGIN = "https://example.com"
PIN = "1234"


class PinEntry(UserInteraction):
    """A user who types `pin` when asked (and counts the prompts)."""

    def __init__(self, pin: str | None = PIN) -> None:
        self.pin = pin
        self.prompts = 0

    def request_pin(self, permissions: ClientPin.PERMISSION, rp_id: str | None) -> str | None:
        self.prompts += 1
        return self.pin


def client(
    device: CtapDevice,
    pin: str | None = PIN,
    *,
    hmac_secret: bool = False,
    origin: str = ORIGIN,
    user: PinEntry | None = None,
) -> Fido2Client:
    """python-fido2's client; PRF (its default) or also raw hmac-secret."""
    user = user or PinEntry(pin)
    if not hmac_secret:
        return Fido2Client(device, DefaultClientDataCollector(origin), user)
    extensions: Sequence[Ctap2Extension] = [HmacSecretExtension(allow_hmac_secret=True)]
    return Fido2Client(device, DefaultClientDataCollector(origin), user, extensions)


def _verify_attestation(att: AttestationObject, client_data_hash: bytes) -> None:
    Attestation.for_type(att.fmt)().verify(att.att_stmt, att.auth_data, client_data_hash)


def server(rp_id: str = RP_ID) -> Fido2Server:
    """A relying party that verifies attestation statements (packed or none)."""
    return Fido2Server(
        PublicKeyCredentialRpEntity(id=rp_id, name="Example"),
        attestation="direct",
        verify_attestation=_verify_attestation,
    )


def register(
    fido_client: Fido2Client,
    rp: Fido2Server,
    *,
    user_id: bytes = b"user-1",
    name: str = "alice",
    resident: bool = False,
    uv: str = "discouraged",
    exclude: Sequence[AttestedCredentialData] = (),
    extensions: Mapping[str, Any] | None = None,
) -> tuple[AuthenticatorData, RegistrationResponse]:
    options, state = rp.register_begin(
        {"id": user_id, "name": name, "displayName": name.title()},
        credentials=list(exclude),
        resident_key_requirement=(
            ResidentKeyRequirement.REQUIRED if resident else ResidentKeyRequirement.DISCOURAGED
        ),
        user_verification=UserVerificationRequirement(uv),
        extensions=extensions,
    )
    response = fido_client.make_credential(options.public_key)
    return rp.register_complete(state, response), response


def authenticate(
    fido_client: Fido2Client,
    rp: Fido2Server,
    credentials: Sequence[AttestedCredentialData],
    *,
    uv: str = "discouraged",
    allow: bool = True,
    extensions: Mapping[str, Any] | None = None,
    index: int = 0,
) -> AuthenticationResponse:
    options, state = rp.authenticate_begin(
        list(credentials) if allow else None,
        user_verification=UserVerificationRequirement(uv),
        extensions=extensions,
    )
    response = fido_client.get_assertion(options.public_key).get_response(index)
    rp.authenticate_complete(state, list(credentials), response)
    return response


def set_pin(device: CtapDevice, pin: str = PIN, protocol: PinProtocol | None = None) -> None:
    ClientPin(Ctap2(device), protocol).set_pin(pin)


def prf_salt(value: bytes) -> bytes:
    return hashlib.sha256(b"WebAuthn PRF\x00" + value).digest()


def call(auth: Authenticator, command: int, params: Mapping[int, Any] | None = None) -> bytes:
    """Send one command at the CBOR level; returns status byte + CBOR."""
    return auth.process(command, b"" if params is None else cbor.encode(params))


def status(auth: Authenticator, command: int, params: Mapping[int, Any] | None = None) -> int:
    return call(auth, command, params)[0]


def decoded(response: bytes) -> Mapping[int, Any]:
    assert response[0] == 0, f"status 0x{response[0]:02x}"
    value = cbor.decode(response[1:])
    assert isinstance(value, Mapping)
    return value
