"""FIDO2 tokens: the network as a WebAuthn relying party, on python-fido2's
server code (`fido2.server.Fido2Server`).

A FIDO2 token registers a credential for the network's RP id with user
verification, and then proves each request with an assertion whose client
data challenge is SHA-256 of the transcript an ES256 token would sign
(authnet.protocol.messages). The server checks the type, origin, challenge,
RP id hash, the UP and UV flags and the signature; this module adds the
signature-counter check python-fido2 leaves to its caller (see
`Directory.advance_sign_count`).

The origin in client data is `https://<rp id>`: FIDO2 tokens reach the
network through the local agent or `passkey`, never from a web page, so no
page origin is involved on this path.
"""

from __future__ import annotations

from dataclasses import dataclass

from fido2.server import Fido2Server
from fido2.utils import websafe_encode
from fido2.webauthn import (
    AttestationObject,
    AttestedCredentialData,
    AuthenticationResponse,
    AuthenticatorAssertionResponse,
    AuthenticatorAttestationResponse,
    AuthenticatorData,
    CollectedClientData,
    PublicKeyCredentialRpEntity,
    RegistrationResponse,
    UserVerificationRequirement,
)

from authnet.errors import MalformedInput, SignatureInvalid
from authnet.protocol.proofs import Assertion, webauthn_challenge

MAX_FIELD = 4096


@dataclass(frozen=True, kw_only=True)
class Registered:
    # AttestedCredentialData: AAGUID, credential id and COSE public key. What
    # the network stores as the token's public key.
    credential: bytes
    sign_count: int


@dataclass(frozen=True, kw_only=True)
class Verified:
    sign_count: int
    user_verified: bool


def _state(message: bytes) -> dict[str, object]:
    return {
        "challenge": websafe_encode(webauthn_challenge(message)),
        "user_verification": UserVerificationRequirement.REQUIRED,
    }


def _check_sizes(*fields: bytes) -> None:
    if any(len(f) > MAX_FIELD for f in fields):
        raise MalformedInput(f"WebAuthn fields are limited to {MAX_FIELD} bytes")


class RelyingParty:
    def __init__(self, rp_id: str, name: str) -> None:
        self.rp_id = rp_id
        self.origin = f"https://{rp_id}"
        self._server = Fido2Server(
            PublicKeyCredentialRpEntity(id=rp_id, name=name),
            verify_origin=lambda origin: origin == self.origin,
        )

    def register(
        self, *, message: bytes, client_data_json: bytes, attestation_object: bytes
    ) -> Registered:
        """Check a registration made for `message` (the enrolment transcript)."""
        _check_sizes(client_data_json, attestation_object)
        try:
            attestation = AttestationObject(attestation_object)
            response = RegistrationResponse(
                raw_id=b"",
                response=AuthenticatorAttestationResponse(
                    client_data=CollectedClientData(client_data_json),
                    attestation_object=attestation,
                ),
            )
            auth_data = self._server.register_complete(_state(message), response)
        except ValueError as e:
            raise SignatureInvalid(f"FIDO2 registration refused: {e}") from None
        except (KeyError, TypeError, IndexError):
            raise MalformedInput("FIDO2 registration is malformed") from None
        credential = auth_data.credential_data
        if credential is None or credential.public_key.ALGORITHM != -7:
            raise MalformedInput("FIDO2 credentials must be ES256 (COSE -7)")
        return Registered(credential=bytes(credential), sign_count=auth_data.counter)

    def verify(self, *, credential: bytes, message: bytes, assertion: Assertion) -> Verified:
        """Check an assertion over `message` by the stored credential."""
        _check_sizes(
            assertion.credential_id, assertion.authenticator_data, assertion.client_data_json
        )
        try:
            stored = AttestedCredentialData(credential)
            auth_data = AuthenticatorData(assertion.authenticator_data)
            response = AuthenticationResponse(
                raw_id=assertion.credential_id,
                response=AuthenticatorAssertionResponse(
                    client_data=CollectedClientData(assertion.client_data_json),
                    authenticator_data=auth_data,
                    signature=assertion.signature,
                ),
            )
            self._server.authenticate_complete(_state(message), [stored], response)
        except ValueError as e:
            raise SignatureInvalid(f"FIDO2 assertion refused: {e}") from None
        except (KeyError, TypeError, IndexError):
            raise MalformedInput("FIDO2 assertion is malformed") from None
        return Verified(sign_count=auth_data.counter, user_verified=auth_data.is_user_verified())
