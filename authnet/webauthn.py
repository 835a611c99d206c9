"""FIDO2 tokens: the network as a WebAuthn relying party, on python-fido2's
server code (`fido2.server.Fido2Server`).

A FIDO2 token registers a credential for the network's RP id with user
verification, and then proves each request with an assertion whose client
data challenge is SHA-256 of the transcript an ES256 token would sign
(authnet.protocol.messages). The server checks the type, origin, challenge,
RP id hash, the UP and UV flags and the signature; this module adds the
signature-counter check python-fido2 leaves to its caller (see
`Directory.advance_sign_count`).

Origins. Through the local agent or `passkey`, the client data's origin is
`https://<rp id>`. A page can use the key itself (WebAuthn in the browser):
enrolling on the network's own pages (any origin the browser lets use the RP
id, i.e. its host or a subdomain, python-fido2's `verify_rp_id`), and logging
in from an SP's page, whose origin the caller passes (`origins`): it must be
the very origin the page fetched from, registered for the SP.
"""

from __future__ import annotations

from dataclasses import dataclass

from fido2.rpid import verify_rp_id
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
        self.name = name
        self.origin = f"https://{rp_id}"
        self._rp = PublicKeyCredentialRpEntity(id=rp_id, name=name)
        self._server = Fido2Server(self._rp, verify_origin=self.on_rp_id)

    def on_rp_id(self, origin: str) -> bool:
        """Whether a page at `origin` may use the RP id without related origins."""
        return verify_rp_id(self.rp_id, origin)

    def _server_for(self, origins: frozenset[str] | None) -> Fido2Server:
        if origins is None:
            return self._server
        return Fido2Server(self._rp, verify_origin=lambda origin: origin in origins)

    def register(
        self,
        *,
        message: bytes,
        client_data_json: bytes,
        attestation_object: bytes,
        origins: frozenset[str] | None = None,
    ) -> Registered:
        """Check a registration made for `message` (the enrolment transcript) on
        a page at one of `origins` (default: any origin on the RP id)."""
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
            auth_data = self._server_for(origins).register_complete(_state(message), response)
        except ValueError as e:
            raise SignatureInvalid(f"FIDO2 registration refused: {e}") from None
        except (KeyError, TypeError, IndexError, RecursionError):
            # RecursionError: client data JSON nested thousands deep (json.loads).
            raise MalformedInput("FIDO2 registration is malformed") from None
        credential = auth_data.credential_data
        if credential is None or credential.public_key.ALGORITHM != -7:
            raise MalformedInput("FIDO2 credentials must be ES256 (COSE -7)")
        return Registered(credential=bytes(credential), sign_count=auth_data.counter)

    def verify(
        self,
        *,
        credential: bytes,
        message: bytes,
        assertion: Assertion,
        origins: frozenset[str] | None = None,
    ) -> Verified:
        """Check an assertion over `message` by the stored credential, made on a
        page at one of `origins` (default: any origin on the RP id)."""
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
            self._server_for(origins).authenticate_complete(_state(message), [stored], response)
        except ValueError as e:
            raise SignatureInvalid(f"FIDO2 assertion refused: {e}") from None
        except (KeyError, TypeError, IndexError, RecursionError):
            raise MalformedInput("FIDO2 assertion is malformed") from None
        return Verified(
            sign_count=auth_data.counter,
            user_verified=auth_data.is_user_verified(),
        )


def credential_id(credential: bytes) -> bytes:
    """The credential id inside a stored credential (AttestedCredentialData)."""
    return bytes(AttestedCredentialData(credential).credential_id)
