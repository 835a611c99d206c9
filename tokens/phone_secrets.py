"""What a phone key store keeps secret, and the constants of its format.

Shared by `tokens.phone` (the file, version 1) and `tokens.phone_hardened`
(version 2, the PIN hardened by the network's hardener).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from authnet.errors import KeystoreError
from authnet.protocol.encoding import b64u_decode, b64u_encode
from tokens import hardened_pin as hp

FORMAT = "authnet-phone-keystore"
VERSION = 1
# Version 2: the PIN hardened by the network's hardener.
HARDENED_VERSION = 2
VERSIONS = (VERSION, HARDENED_VERSION)
PIN_ATTEMPTS = 10
MIN_PIN_LENGTH = 4
ARGON2 = {"t": 2, "m": 19456, "p": 1}
# What a loaded file may ask of Argon2id: argon2's own minimums, and at most
# 1 GiB, so an edited file cannot make the app crash or exhaust memory.
ARGON2_LIMITS = {"t": (1, 16), "m": (8, 1 << 20), "p": (1, 16)}


@dataclass(frozen=True)
class StoreSecrets:
    auth_key: ec.EllipticCurvePrivateKey = field(repr=False)
    kc_secret: bytes = field(repr=False)
    # Hardened stores only: signs the hardener's success message.
    success_key: Ed25519PrivateKey | None = field(default=None, repr=False)

    def to_bytes(self) -> bytes:
        der = self.auth_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        d = {"auth_key": b64u_encode(der), "kc_secret": b64u_encode(self.kc_secret)}
        if self.success_key is not None:
            d["success_key"] = b64u_encode(
                self.success_key.private_bytes(
                    serialization.Encoding.Raw,
                    serialization.PrivateFormat.Raw,
                    serialization.NoEncryption(),
                )
            )
        return json.dumps(d).encode()

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> StoreSecrets:
        key = serialization.load_der_private_key(
            b64u_decode(str(d["auth_key"]), field="auth_key"), password=None
        )
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise KeystoreError("the key store's authentication key is not an EC key")
        success = None
        if "success_key" in d:
            success = Ed25519PrivateKey.from_private_bytes(
                b64u_decode(str(d["success_key"]), field="success_key", length=32)
            )
        return cls(key, b64u_decode(str(d["kc_secret"]), field="kc_secret", length=32), success)

    def with_success_key(self, key: Ed25519PrivateKey | None) -> StoreSecrets:
        return StoreSecrets(self.auth_key, self.kc_secret, key)


def kek(pin: str, salt: bytes, params: dict[str, int]) -> bytes:
    """Argon2id of the PIN: the version-1 key, the version-2 POPRF input."""
    return hp.slow_hash(pin, salt, params)
