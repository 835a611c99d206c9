"""Token signature algorithms. Version 1 has one: ES256 (ECDSA P-256, SHA-256,
DER signature), what phone key stores, PIV cards, PKCS#11 tokens and FIDO2 keys
all do natively."""

from __future__ import annotations

import enum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from authnet.errors import MalformedInput, SignatureInvalid

MAX_SIGNATURE_BYTES = 80  # DER ECDSA P-256 is at most 72


class Algorithm(enum.IntEnum):
    """Wire values of passkey.proto SignatureAlgorithm."""

    ES256 = 1
    # FIDO2: WebAuthn assertions by an ES256 credential (authnet.webauthn).
    WEBAUTHN_ES256 = 2


def load_public_key(spki: bytes, algorithm: Algorithm) -> ec.EllipticCurvePublicKey:
    """Parse and check a token public key (SubjectPublicKeyInfo DER)."""
    if algorithm is not Algorithm.ES256:
        raise MalformedInput("unsupported signature algorithm")
    if len(spki) > 200:
        raise MalformedInput("public key too long")
    try:
        key = serialization.load_der_public_key(spki)
    except (ValueError, TypeError):
        raise MalformedInput("public key is not a DER SubjectPublicKeyInfo") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise MalformedInput("ES256 needs a P-256 public key")
    return key


def verify(key: ec.EllipticCurvePublicKey, signature: bytes, message: bytes) -> None:
    if not signature or len(signature) > MAX_SIGNATURE_BYTES:
        raise SignatureInvalid("signature has an impossible length")
    try:
        key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise SignatureInvalid() from None


def spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
