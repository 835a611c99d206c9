"""The authenticator's side of the PIN/UV auth protocols one and two
(CTAP 2.1 §6.5.6, §6.5.7) and of the pinUvAuthToken state (§6.5.2.1).

Protocol one: shared secret = SHA-256(Z); AES-256-CBC with an all-zero IV;
authenticate = LEFT(HMAC-SHA-256, 16). Protocol two: shared secret =
HKDF-SHA-256(32 zero bytes, "CTAP2 HMAC key") || HKDF-SHA-256(32 zero bytes,
"CTAP2 AES key"); AES-256-CBC with a random IV prepended; authenticate = the
full HMAC-SHA-256 (keyed with the first 32 bytes of the key).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Mapping

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from simulators.ctap2.status import CtapFail, Status

INITIAL_USAGE_TIME_LIMIT = 30.0
"""Seconds a fresh pinUvAuthToken may wait for its first use (§6.5.2.1, USB)."""
MAX_USAGE_TIME_PERIOD = 600.0
"""Seconds after which a pinUvAuthToken expires however it is used."""

PERMISSION_MC = 0x01
PERMISSION_GA = 0x02
PERMISSION_LBW = 0x10


class ProtocolError(Exception):
    """decrypt/decapsulate/verify failed (the caller picks the status)."""


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _aes_cbc(key: bytes, iv: bytes, data: bytes, *, encrypt: bool) -> bytes:
    if len(data) % 16:
        raise ProtocolError("length is not a multiple of the block size")
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    op = cipher.encryptor() if encrypt else cipher.decryptor()
    return op.update(data) + op.finalize()


def cose_p256_public(key: ec.EllipticCurvePublicKey, alg: int) -> dict[int, object]:
    numbers = key.public_numbers()
    return {
        1: 2,
        3: alg,
        -1: 1,
        -2: numbers.x.to_bytes(32, "big"),
        -3: numbers.y.to_bytes(32, "big"),
    }


def parse_cose_p256(value: object) -> ec.EllipticCurvePublicKey:
    """A platform key-agreement key: COSE_Key kty EC2, crv P-256, x, y."""
    if not isinstance(value, Mapping):
        raise ProtocolError("keyAgreement is not a map")
    x, y = value.get(-2), value.get(-3)
    if value.get(1) != 2 or value.get(-1) != 1:
        raise ProtocolError("keyAgreement is not an EC2 P-256 key")
    if not (isinstance(x, bytes) and isinstance(y, bytes) and len(x) == len(y) == 32):
        raise ProtocolError("keyAgreement coordinates malformed")
    try:
        return ec.EllipticCurvePublicNumbers(
            int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
        ).public_key()
    except ValueError as e:
        raise ProtocolError("keyAgreement point not on the curve") from e


class PinUvAuthToken:
    """The token and its state: permissions, permissions RP ID, flags, timers."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.value = os.urandom(32)
        self.in_use = False
        self.permissions = 0
        self.rp_id: str | None = None
        self.user_present = False
        self.user_verified = False
        self._started = 0.0
        self._used = False

    def reset(self) -> None:
        """resetPinUvAuthToken(): a fresh random token, not in use."""
        self.value = os.urandom(32)
        self.stop()

    def stop(self) -> None:
        """stopUsingPinUvAuthToken()."""
        self.in_use = False
        self.permissions = 0
        self.rp_id = None
        self.user_present = False
        self.user_verified = False
        self._used = False

    def begin(self, *, user_present: bool, permissions: int, rp_id: str | None) -> None:
        """beginUsingPinUvAuthToken(userIsPresent) with the granted permissions."""
        self.in_use = True
        self.user_present = user_present
        self.user_verified = True
        self.permissions = permissions
        self.rp_id = rp_id
        self._started = self._clock()
        self._used = False

    def check_expiry(self) -> None:
        """The usage timer observer, run lazily whenever the token is consulted."""
        if not self.in_use:
            return
        age = self._clock() - self._started
        if age > MAX_USAGE_TIME_PERIOD or (not self._used and age > INITIAL_USAGE_TIME_LIMIT):
            self.stop()

    def mark_used(self) -> None:
        self._used = True

    def clear_after_up(self) -> None:
        """clearUserPresentFlag(), clearUserVerifiedFlag(),
        clearPinUvAuthTokenPermissionsExceptLbw()."""
        if self.in_use:
            self.user_present = False
            self.user_verified = False
            self.permissions &= PERMISSION_LBW


class PinUvAuthProtocol:
    """One PIN/UV auth protocol: its key-agreement key and its token."""

    version: int = 0

    def __init__(self, clock: Callable[[], float]) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.token = PinUvAuthToken(clock)

    def regenerate(self) -> None:
        """A new key-agreement key pair (power-up, or after a PIN mismatch)."""
        self._key = ec.generate_private_key(ec.SECP256R1())

    def get_public_key(self) -> dict[int, object]:
        # -25 (ECDH-ES+HKDF-256) "although this is NOT the algorithm actually used".
        return cose_p256_public(self._key.public_key(), -25)

    def decapsulate(self, peer: object) -> bytes:
        public = parse_cose_p256(peer)
        try:
            z = self._key.exchange(ec.ECDH(), public)
        except (ValueError, InvalidKey) as e:  # pragma: no cover - defensive
            raise ProtocolError("ECDH failed") from e
        return self.kdf(z)

    def kdf(self, z: bytes) -> bytes:
        raise NotImplementedError

    def encrypt(self, key: bytes, plaintext: bytes) -> bytes:
        raise NotImplementedError

    def decrypt(self, key: bytes, ciphertext: bytes) -> bytes:
        raise NotImplementedError

    def authenticate(self, key: bytes, message: bytes) -> bytes:
        raise NotImplementedError

    def verify(self, key: bytes, message: bytes, signature: bytes) -> bool:
        return hmac.compare_digest(self.authenticate(key, message), signature)


class PinProtocolOne(PinUvAuthProtocol):
    version = 1

    def kdf(self, z: bytes) -> bytes:
        return hashlib.sha256(z).digest()

    def encrypt(self, key: bytes, plaintext: bytes) -> bytes:
        return _aes_cbc(key, bytes(16), plaintext, encrypt=True)

    def decrypt(self, key: bytes, ciphertext: bytes) -> bytes:
        return _aes_cbc(key, bytes(16), ciphertext, encrypt=False)

    def authenticate(self, key: bytes, message: bytes) -> bytes:
        return _hmac(key, message)[:16]


class PinProtocolTwo(PinUvAuthProtocol):
    version = 2

    def kdf(self, z: bytes) -> bytes:
        def hkdf(info: bytes) -> bytes:
            return HKDF(algorithm=hashes.SHA256(), length=32, salt=bytes(32), info=info).derive(z)

        return hkdf(b"CTAP2 HMAC key") + hkdf(b"CTAP2 AES key")

    def encrypt(self, key: bytes, plaintext: bytes) -> bytes:
        iv = os.urandom(16)
        return iv + _aes_cbc(key[32:], iv, plaintext, encrypt=True)

    def decrypt(self, key: bytes, ciphertext: bytes) -> bytes:
        if len(ciphertext) < 16:
            raise ProtocolError("ciphertext shorter than the IV")
        return _aes_cbc(key[32:], ciphertext[:16], ciphertext[16:], encrypt=False)

    def authenticate(self, key: bytes, message: bytes) -> bytes:
        return _hmac(key[:32], message)


def make_protocols(clock: Callable[[], float]) -> dict[int, PinUvAuthProtocol]:
    return {2: PinProtocolTwo(clock), 1: PinProtocolOne(clock)}


def select_protocol(
    protocols: Mapping[int, PinUvAuthProtocol], version: object
) -> PinUvAuthProtocol:
    """The protocol a request names (CTAP1_ERR_INVALID_PARAMETER if unsupported)."""
    if isinstance(version, bool) or not isinstance(version, int):
        raise CtapFail(Status.CBOR_UNEXPECTED_TYPE, "pinUvAuthProtocol is not an integer")
    protocol = protocols.get(version)
    if protocol is None:
        raise CtapFail(Status.INVALID_PARAMETER, f"pinUvAuthProtocol {version} unsupported")
    return protocol
