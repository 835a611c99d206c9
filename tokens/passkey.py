"""The one interface every PassKey backend implements.

A PassKey holds two secrets that never leave it: an authentication key pair
(it signs the network's challenges) and a secret from which it derives Kc for
each SP. Phone, FIDO2, PIV, OTP and PKCS#11 backends differ only in where
those live and how the device computes with them; the login flow
(`tokens.login`) and the conformance suite (`tests/conformance`) are the same
for all.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from authnet.protocol.proofs import Proof, Registration
from authnet.protocol.signatures import Algorithm


class TokenKind(enum.IntEnum):
    """Wire values of passkey.proto TokenKind."""

    PHONE = 1
    FIDO2 = 2
    PIV = 3
    PKCS11 = 4
    OTP = 5


@dataclass(frozen=True, kw_only=True)
class TokenDescription:
    kind: TokenKind
    label: str
    algorithm: Algorithm
    # SubjectPublicKeyInfo (DER) of the authentication key.
    public_key: bytes


@runtime_checkable
class PassKey(Protocol):
    @property
    def description(self) -> TokenDescription: ...

    @property
    def has_pin(self) -> bool:
        """Whether the token has a PIN (user verification) at all."""
        ...

    @property
    def locked(self) -> bool:
        """True when the token cannot sign or derive until its PIN is verified."""
        ...

    @property
    def user_verified(self) -> bool:
        """Whether the PIN was verified in this session."""
        ...

    def verify_pin(self, pin: str) -> None:
        """Check the PIN. Raises PinInvalid (detail retries_left) or PinLocked."""
        ...

    def sign(self, message: bytes) -> bytes:
        """Sign with the authentication key (ES256, DER). Raises PinRequired
        when the token needs its PIN first."""
        ...

    def derive_kc(self, spid: bytes) -> bytes:
        """Kc for the SP with this SPID, computed on the device."""
        ...

    def close(self) -> None:
        """Release the device (session, reader connection); it is locked again."""
        ...


@runtime_checkable
class WebAuthnToken(PassKey, Protocol):
    """A PassKey that proves with WebAuthn assertions (FIDO2) instead of
    `sign`. Its Kc comes out of the same assertion that proves a login."""

    def register(self, message: bytes, *, user_name: str) -> Registration:
        """Create the credential for an enrolment transcript."""
        ...

    def prove(self, message: bytes) -> Proof: ...

    def prove_and_derive(self, message: bytes, spid: bytes) -> tuple[Proof, bytes]: ...


def prove(token: PassKey, message: bytes) -> Proof:
    """`token`'s proof of `message`, whatever its kind."""
    if isinstance(token, WebAuthnToken):
        return token.prove(message)
    return Proof(signature=token.sign(message))
