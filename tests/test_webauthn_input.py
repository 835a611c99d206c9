"""The network's WebAuthn relying party refuses malformed client data with a
clear MalformedInput, whatever python-fido2's JSON parsing does with it."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fido2.cose import ES256
from fido2.webauthn import Aaguid, AttestedCredentialData

from authnet import errors
from authnet.protocol.proofs import Assertion
from authnet.webauthn import MAX_FIELD, RelyingParty

# Nested far deeper than json.loads recurses, and still within the field limit.
DEEP = b"[" * 2000 + b"]" * 2000


def test_deep_client_data_in_a_registration_is_malformed_input() -> None:
    assert len(DEEP) <= MAX_FIELD
    rp = RelyingParty("localhost", "authnet")
    with pytest.raises(errors.MalformedInput, match="registration is malformed"):
        rp.register(message=b"m", client_data_json=DEEP, attestation_object=b"\xa0")


def test_deep_client_data_in_an_assertion_is_malformed_input() -> None:
    rp = RelyingParty("localhost", "authnet")
    assertion = Assertion(
        credential_id=b"c", authenticator_data=bytes(37), client_data_json=DEEP, signature=b"s"
    )
    with pytest.raises(errors.MalformedInput, match="assertion is malformed"):
        rp.verify(credential=_stored_credential(), message=b"m", assertion=assertion)


def _stored_credential() -> bytes:
    key = ES256.from_cryptography_key(ec.generate_private_key(ec.SECP256R1()).public_key())
    return bytes(AttestedCredentialData.create(Aaguid.NONE, b"c", key))
