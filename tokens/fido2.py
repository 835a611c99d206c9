"""PassKey backend for FIDO2 security keys (a YubiKey over USB HID, or the
software authenticator in simulators.ctap2), through unmodified python-fido2.

The network is the WebAuthn relying party (its `webauthn_rp_id`); this module
plays the browser's part with `fido2.client.Fido2Client`, origin
`https://<rp id>`. User verification is always required: the key's PIN (no
biometrics assumed), which also makes the PRF output, and so Kc, stable.

* enrolment: makeCredential (ES256, PRF/hmac-secret enabled) with the
  challenge SHA-256(enrolment transcript);
* every proof: getAssertion with the challenge SHA-256(transcript);
* Kc: the same getAssertion evaluates the WebAuthn PRF at
  transcript("authnet/v1 fido2 prf", SPID), i.e. hmac-secret with salt
  SHA-256("WebAuthn PRF" 0x00 input); Kc = HKDF(salt "authnet/v1 fido2 kc").
  A browser-native WebAuthn login with the same credential gets the same Kc.

Which of the credentials enrolled on this computer the plugged-in key holds is
found with a silent (up=false) probe, as browsers do.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Sequence
from typing import Any

from fido2.client import ClientError, DefaultClientDataCollector, Fido2Client, UserInteraction
from fido2.ctap import CtapDevice, CtapError
from fido2.ctap2.base import Ctap2
from fido2.ctap2.pin import ClientPin
from fido2.webauthn import (
    AttestedCredentialData,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialCreationOptions,
    PublicKeyCredentialDescriptor,
    PublicKeyCredentialParameters,
    PublicKeyCredentialRequestOptions,
    PublicKeyCredentialRpEntity,
    PublicKeyCredentialType,
    PublicKeyCredentialUserEntity,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from authnet.errors import (
    AuthnetError,
    Declined,
    KeystoreError,
    NotEnrolled,
    PinInvalid,
    PinLocked,
    PinRequired,
    TokenUnavailable,
)
from authnet.protocol import labels
from authnet.protocol.kc import derive_kc, fido2_prf_input
from authnet.protocol.proofs import Assertion, Proof, Registration, webauthn_challenge
from authnet.protocol.signatures import Algorithm
from tokens.passkey import TokenDescription, TokenKind

ES256 = -7


class _Interaction(UserInteraction):
    def __init__(self, token: Fido2PassKey) -> None:
        self.token = token

    def request_pin(self, permissions: Any, rp_id: str | None) -> str | None:
        return self.token._pin

    def request_uv(self, permissions: Any, rp_id: str | None) -> bool:
        return True


def _translate(e: Exception, what: str) -> AuthnetError:
    """python-fido2's errors, as the person at the key should hear them."""
    code = getattr(e, "code", None)
    cause = getattr(e, "cause", None)
    if isinstance(cause, CtapError):
        code = cause.code
    if isinstance(e, CtapError):
        code = e.code
    if isinstance(e, OSError | ConnectionError):
        return TokenUnavailable("the security key is not connected: plug it in and retry")
    if code in (CtapError.ERR.PIN_INVALID,):
        return PinInvalid("wrong PIN for the security key")
    if code in (CtapError.ERR.PIN_BLOCKED,):
        return PinLocked("the security key's PIN is blocked: reset the key")
    if code in (CtapError.ERR.PIN_AUTH_BLOCKED,):
        return PinLocked("too many wrong PINs: unplug the key, plug it back in and retry")
    if code in (CtapError.ERR.OPERATION_DENIED, CtapError.ERR.USER_ACTION_TIMEOUT):
        return Declined(f"{what}: the security key was not touched (or the person refused)")
    if code in (CtapError.ERR.NO_CREDENTIALS,):
        return NotEnrolled("this security key holds no credential enrolled with that network")
    if code in (ClientError.ERR.DEVICE_INELIGIBLE,):
        return NotEnrolled("this security key holds no credential enrolled with that network")
    return KeystoreError(f"{what} failed on the security key ({e})")


class Fido2PassKey:
    """A FIDO2 key as a PassKey, for one network (rp id) and at most one of its
    enrolled credentials (None before enrolment)."""

    def __init__(
        self,
        device: CtapDevice,
        *,
        rp_id: str,
        credential: bytes | None = None,
        label: str = "security key",
    ) -> None:
        self.device = device
        self.rp_id = rp_id
        self.label = label
        self.credential = AttestedCredentialData(credential) if credential else None
        self._pin: str | None = None
        self._client = Fido2Client(
            device, DefaultClientDataCollector(f"https://{rp_id}"), _Interaction(self)
        )

    def __repr__(self) -> str:
        return f"Fido2PassKey(rp_id={self.rp_id!r}, enrolled={self.credential is not None})"

    @classmethod
    def find(
        cls, device: CtapDevice, *, rp_id: str, candidates: Sequence[bytes], label: str = ""
    ) -> Fido2PassKey:
        """The credential among `candidates` (AttestedCredentialData) that this key
        holds, found with a silent getAssertion (no touch, no PIN)."""
        try:
            ctap = Ctap2(device)
            for candidate in candidates:
                cred = AttestedCredentialData(candidate)
                try:
                    ctap.get_assertion(
                        rp_id,
                        bytes(32),
                        [{"type": "public-key", "id": cred.credential_id}],
                        options={"up": False},
                    )
                except CtapError as e:
                    if e.code == CtapError.ERR.NO_CREDENTIALS:
                        continue
                    raise
                return cls(device, rp_id=rp_id, credential=candidate, label=label or "security key")
        except (CtapError, OSError) as e:
            raise _translate(e, "looking for the credential") from None
        raise NotEnrolled("this security key holds none of the credentials enrolled here")

    # --- PassKey -------------------------------------------------------------

    @property
    def description(self) -> TokenDescription:
        return TokenDescription(
            kind=TokenKind.FIDO2,
            label=self.label,
            algorithm=Algorithm.WEBAUTHN_ES256,
            public_key=bytes(self.credential) if self.credential is not None else b"",
        )

    @property
    def has_pin(self) -> bool:
        return bool(self._client.info.options.get("clientPin"))

    @property
    def locked(self) -> bool:
        return self._pin is None

    @property
    def user_verified(self) -> bool:
        return self._pin is not None

    def verify_pin(self, pin: str) -> None:
        if not self.has_pin:
            raise PinRequired(
                "this security key has no PIN: set one first (user verification is required)"
            )
        client_pin = ClientPin(Ctap2(self.device))
        try:
            client_pin.get_pin_token(pin, ClientPin.PERMISSION.GET_ASSERTION, self.rp_id)
        except CtapError as e:
            if e.code == CtapError.ERR.PIN_INVALID:
                left = client_pin.get_pin_retries()[0]
                raise PinInvalid(f"wrong PIN: {left} tries left", retries_left=left) from None
            raise _translate(e, "checking the PIN") from None
        except OSError as e:
            raise _translate(e, "checking the PIN") from None
        self._pin = pin

    def sign(self, message: bytes) -> bytes:
        raise TypeError("FIDO2 keys prove with WebAuthn assertions: use prove()")

    def _require_pin(self) -> None:
        if self._pin is None:
            raise PinRequired("the security key needs its PIN")

    def _assert(self, message: bytes, extensions: dict[str, Any] | None) -> Any:
        self._require_pin()
        if self.credential is None:
            raise NotEnrolled("this security key is not enrolled with that network yet")
        options = PublicKeyCredentialRequestOptions(
            challenge=webauthn_challenge(message),
            rp_id=self.rp_id,
            allow_credentials=[
                PublicKeyCredentialDescriptor(
                    type=PublicKeyCredentialType.PUBLIC_KEY, id=self.credential.credential_id
                )
            ],
            user_verification=UserVerificationRequirement.REQUIRED,
            extensions=extensions,
        )
        try:
            return self._client.get_assertion(options).get_response(0)
        except (ClientError, CtapError, OSError) as e:
            raise _translate(e, "the assertion") from None

    @staticmethod
    def _assertion(response: Any) -> Assertion:
        r = response.response
        return Assertion(
            credential_id=bytes(response.raw_id),
            authenticator_data=bytes(r.authenticator_data),
            client_data_json=bytes(r.client_data),
            signature=bytes(r.signature),
        )

    def prove(self, message: bytes) -> Proof:
        return Proof(webauthn=self._assertion(self._assert(message, None)))

    def prove_and_derive(self, message: bytes, spid: bytes) -> tuple[Proof, bytes]:
        """One assertion that proves `message` and yields Kc for `spid` (PRF)."""
        response = self._assert(message, {"prf": {"eval": {"first": fido2_prf_input(spid)}}})
        results = response.client_extension_results.prf
        first = None if results is None or results.results is None else results.results.first
        if not first:
            raise KeystoreError("the security key returned no PRF output (hmac-secret missing?)")
        kc = derive_kc(bytes(first), spid, salt=labels.KC_FIDO2_SALT)
        return Proof(webauthn=self._assertion(response)), kc

    def derive_kc(self, spid: bytes) -> bytes:
        return self.prove_and_derive(secrets.token_bytes(32), spid)[1]

    def register(self, message: bytes, *, user_name: str) -> Registration:
        """Create this key's credential for the network (enrolment)."""
        self._require_pin()
        options = PublicKeyCredentialCreationOptions(
            rp=PublicKeyCredentialRpEntity(id=self.rp_id, name=self.rp_id),
            user=PublicKeyCredentialUserEntity(
                id=secrets.token_bytes(16), name=user_name, display_name=user_name
            ),
            challenge=webauthn_challenge(message),
            pub_key_cred_params=[
                PublicKeyCredentialParameters(type=PublicKeyCredentialType.PUBLIC_KEY, alg=ES256)
            ],
            authenticator_selection=AuthenticatorSelectionCriteria(
                # Discoverable where the key can: then it also logs in from web
                # pages with no username (browser-native WebAuthn).
                resident_key=ResidentKeyRequirement.PREFERRED,
                user_verification=UserVerificationRequirement.REQUIRED,
            ),
            extensions={"prf": {}},
        )
        try:
            response = self._client.make_credential(options)
        except (ClientError, CtapError, OSError) as e:
            raise _translate(e, "creating the credential") from None
        attestation = response.response.attestation_object
        credential = attestation.auth_data.credential_data
        if credential is None:
            raise KeystoreError("the security key returned no credential")
        self.credential = credential
        return Registration(
            client_data_json=bytes(response.response.client_data),
            attestation_object=bytes(attestation),
            credential=bytes(credential),
        )

    def close(self) -> None:
        self._pin = None
        with contextlib.suppress(OSError):
            self.device.close()
