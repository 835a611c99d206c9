"""How a token proves a transcript: an ES256 signature over it, or (FIDO2) a
WebAuthn assertion whose client-data challenge is SHA-256 of it. I/O-free
records shared by the network (which verifies) and the tokens (which prove)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class Assertion:
    credential_id: bytes
    authenticator_data: bytes
    client_data_json: bytes
    signature: bytes = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class Registration:
    """A WebAuthn registration made for an enrolment transcript."""

    client_data_json: bytes
    attestation_object: bytes
    # The new credential (AttestedCredentialData): what the network will store
    # as the token's public key, and what an authorising token signs over.
    credential: bytes


@dataclass(frozen=True, kw_only=True)
class Proof:
    signature: bytes = field(default=b"", repr=False)
    webauthn: Assertion | None = None


def webauthn_challenge(message: bytes) -> bytes:
    """The WebAuthn challenge that stands for an authnet transcript."""
    return hashlib.sha256(message).digest()
