"""The card's non-volatile memory: what survives power cycles and restarts.

Stored as one JSON document, written atomically (temporary file in the same
directory, fsync, rename) with owner-only permissions (0600). PINs and PUKs
are kept as salted SHA-256 digests; private keys, the management key and the
OTP secrets are kept in clear, because the card must use them: the file is the
simulated chip, and 0600 is its only protection. Never point it at a real
secret. The file also holds the card's throwaway issuer key (the content signer
of its CHUID and Security Object), which a real card never carries: the
simulator plays the issuer too and re-signs its Security Object on the card.

Everything that reads the file validates it strictly and raises CardStateError
with the reason, so a damaged or foreign file is reported, not half-loaded.
"""

from __future__ import annotations

import copy
import hmac
import json
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "FORMAT",
    "VERSION",
    "CardState",
    "CardStateError",
    "ContentSigner",
    "KeySlot",
    "ManagementKey",
    "OtpSlot",
    "PinObject",
]

FORMAT = "authnet-virtual-smartcard"
VERSION = 1

# PIV algorithm identifiers (SP 800-78-4 table 6-2) this card knows.
ALG_3DES = 0x03  # three-key Triple DES (TDEA), the management key of YubiKeys before 5.7
ALG_AES128 = 0x08
ALG_AES192 = 0x0A
ALG_AES256 = 0x0C
ALG_ECC_P256 = 0x11
MANAGEMENT_KEY_SIZES = {ALG_3DES: 24, ALG_AES128: 16, ALG_AES192: 24, ALG_AES256: 32}
# The witness and challenge of a management-key authentication are one cipher block.
MANAGEMENT_BLOCK_SIZES = {ALG_3DES: 8, ALG_AES128: 16, ALG_AES192: 16, ALG_AES256: 16}

# YubiKey PIN policies (GENERATE tag AA) and touch policies (tag AB).
PIN_POLICY_DEFAULT = 0x00
PIN_POLICY_NEVER = 0x01
PIN_POLICY_ONCE = 0x02
PIN_POLICY_ALWAYS = 0x03
TOUCH_POLICY_DEFAULT = 0x00
TOUCH_POLICY_NEVER = 0x01
ORIGIN_GENERATED = 0x01


class CardStateError(Exception):
    """The state file is missing, unreadable, or not a valid card state."""


def _digest(salt: bytes, value: bytes) -> bytes:
    h = hashes.Hash(hashes.SHA256())
    h.update(b"authnet-vsc-pin\x00" + salt + value)
    return h.finalize()


@dataclass
class PinObject:
    """A PIN or PUK: digest of the 8-byte padded value, and its retry counter."""

    salt: bytes
    digest: bytes
    max_retries: int
    remaining: int
    is_default: bool

    @classmethod
    def new(cls, padded: bytes, retries: int, *, is_default: bool) -> PinObject:
        salt = secrets.token_bytes(16)
        return cls(salt, _digest(salt, padded), retries, retries, is_default)

    def matches(self, padded: bytes) -> bool:
        return hmac.compare_digest(_digest(self.salt, padded), self.digest)

    def set_value(self, padded: bytes, *, is_default: bool) -> None:
        self.salt = secrets.token_bytes(16)
        self.digest = _digest(self.salt, padded)
        self.is_default = is_default

    @property
    def blocked(self) -> bool:
        return self.remaining <= 0

    def to_json(self) -> dict[str, Any]:
        return {
            "salt": self.salt.hex(),
            "digest": self.digest.hex(),
            "max_retries": self.max_retries,
            "remaining": self.remaining,
            "default": self.is_default,
        }

    @classmethod
    def from_json(cls, doc: Any, name: str) -> PinObject:
        d = _obj(doc, name)
        obj = cls(
            salt=_hex(d, "salt", name, size=16),
            digest=_hex(d, "digest", name, size=32),
            max_retries=_int(d, "max_retries", name, 1, 15),
            remaining=_int(d, "remaining", name, 0, 15),
            is_default=_bool(d, "default", name),
        )
        if obj.remaining > obj.max_retries:
            raise CardStateError(f"{name}: more retries remaining than allowed")
        return obj


@dataclass
class ManagementKey:
    algorithm: int
    key: bytes
    is_default: bool

    def to_json(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, "key": self.key.hex(), "default": self.is_default}

    @classmethod
    def from_json(cls, doc: Any) -> ManagementKey:
        name = "management_key"
        d = _obj(doc, name)
        alg = _int(d, "algorithm", name, 0, 255)
        if alg not in MANAGEMENT_KEY_SIZES:
            raise CardStateError(f"{name}: unsupported algorithm {alg:#04x}")
        key = _hex(d, "key", name, size=MANAGEMENT_KEY_SIZES[alg])
        return cls(alg, key, _bool(d, "default", name))


@dataclass
class KeySlot:
    """An asymmetric key in a PIV slot (only ECC P-256 here)."""

    algorithm: int
    private_value: bytes  # the 32-byte big-endian scalar
    pin_policy: int
    touch_policy: int
    origin: int = ORIGIN_GENERATED

    def to_json(self) -> dict[str, Any]:
        return {
            "algorithm": self.algorithm,
            "private_value": self.private_value.hex(),
            "pin_policy": self.pin_policy,
            "touch_policy": self.touch_policy,
            "origin": self.origin,
        }

    @classmethod
    def from_json(cls, doc: Any, name: str) -> KeySlot:
        d = _obj(doc, name)
        alg = _int(d, "algorithm", name, 0, 255)
        if alg != ALG_ECC_P256:
            raise CardStateError(f"{name}: unsupported algorithm {alg:#04x}")
        value = _hex(d, "private_value", name, size=32)
        scalar = int.from_bytes(value, "big")
        if not 0 < scalar < _P256_ORDER:
            raise CardStateError(f"{name}: private value out of range")
        return cls(
            alg,
            value,
            _int(d, "pin_policy", name, PIN_POLICY_NEVER, PIN_POLICY_ALWAYS),
            _int(d, "touch_policy", name, TOUCH_POLICY_NEVER, TOUCH_POLICY_NEVER),
            _int(d, "origin", name, ORIGIN_GENERATED, ORIGIN_GENERATED),
        )


_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@dataclass(frozen=True)
class ContentSigner:
    """The issuer's content signing key (P-256) and its certificate (DER): what
    signs the CHUID and the Security Object (issuer.py)."""

    private_value: bytes  # the 32-byte big-endian scalar
    certificate: bytes

    def private_key(self) -> ec.EllipticCurvePrivateKey:
        return ec.derive_private_key(int.from_bytes(self.private_value, "big"), ec.SECP256R1())

    def load_certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.certificate)

    def to_json(self) -> dict[str, Any]:
        return {"private_value": self.private_value.hex(), "certificate": self.certificate.hex()}

    @classmethod
    def from_json(cls, doc: Any) -> ContentSigner:
        name = "content_signer"
        d = _obj(doc, name)
        value = _hex(d, "private_value", name, size=32)
        if not 0 < int.from_bytes(value, "big") < _P256_ORDER:
            raise CardStateError(f"{name}: private value out of range")
        raw = d.get("certificate")
        try:
            if not isinstance(raw, str):
                raise ValueError
            cert = bytes.fromhex(raw)
            public = x509.load_der_x509_certificate(cert).public_key()
        except ValueError:
            raise CardStateError(f"{name}.certificate must be a DER certificate in hex") from None
        signer = cls(value, cert)
        held = signer.private_key().public_key()
        if not (
            isinstance(public, ec.EllipticCurvePublicKey)
            and public.public_numbers() == held.public_numbers()
        ):
            raise CardStateError(f"{name}: the certificate is not the key's")
        return signer


@dataclass
class OtpSlot:
    """An OTP slot programmed for HMAC-SHA1 challenge-response."""

    secret: bytes  # 20 bytes
    lt64: bool = True  # "HMAC_LT64": challenges shorter than 64 bytes are padded

    def to_json(self) -> dict[str, Any]:
        return {"secret": self.secret.hex(), "lt64": self.lt64}

    @classmethod
    def from_json(cls, doc: Any, name: str) -> OtpSlot:
        d = _obj(doc, name)
        return cls(_hex(d, "secret", name, size=20), _bool(d, "lt64", name))


@dataclass
class CardState:
    serial: int
    firmware: tuple[int, int, int]
    pin: PinObject
    puk: PinObject
    management_key: ManagementKey
    keys: dict[int, KeySlot] = field(default_factory=dict)
    objects: dict[int, bytes] = field(default_factory=dict)
    otp_slots: dict[int, OtpSlot] = field(default_factory=dict)
    otp_program_sequence: int = 1
    content_signer: ContentSigner | None = None  # None: a blank card, or one made before

    def copy(self) -> CardState:
        return copy.deepcopy(self)

    # --- JSON ---------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        piv: dict[str, Any] = {
            "pin": self.pin.to_json(),
            "puk": self.puk.to_json(),
            "management_key": self.management_key.to_json(),
            "keys": {f"{k:02x}": v.to_json() for k, v in sorted(self.keys.items())},
            "objects": {f"{k:x}": v.hex() for k, v in sorted(self.objects.items())},
        }
        if self.content_signer is not None:
            piv["content_signer"] = self.content_signer.to_json()
        return {
            "format": FORMAT,
            "version": VERSION,
            "serial": self.serial,
            "firmware": list(self.firmware),
            "piv": piv,
            "otp": {
                "program_sequence": self.otp_program_sequence,
                "slots": {str(k): v.to_json() for k, v in sorted(self.otp_slots.items())},
            },
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, doc: Any) -> CardState:
        d = _obj(doc, "card state")
        if d.get("format") != FORMAT or d.get("version") != VERSION:
            raise CardStateError(f"not a version-{VERSION} {FORMAT} document")
        fw = d.get("firmware")
        if (
            not isinstance(fw, list)
            or len(fw) != 3
            or not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 255 for x in fw)
        ):
            raise CardStateError("firmware must be three integers 0..255")
        piv = _obj(d.get("piv"), "piv")
        otp = _obj(d.get("otp"), "otp")
        keys: dict[int, KeySlot] = {}
        for name, value in _obj(piv.get("keys"), "piv.keys").items():
            slot = _hex_name(name, "piv.keys", width=1)
            keys[slot] = KeySlot.from_json(value, f"key {name}")
        objects: dict[int, bytes] = {}
        for name, value in _obj(piv.get("objects"), "piv.objects").items():
            tag = _hex_name(name, "piv.objects", width=3)
            if not isinstance(value, str):
                raise CardStateError(f"object {name} must be a hex string")
            try:
                objects[tag] = bytes.fromhex(value)
            except ValueError:
                raise CardStateError(f"object {name} is not hex") from None
        slots: dict[int, OtpSlot] = {}
        for name, value in _obj(otp.get("slots"), "otp.slots").items():
            if name not in ("1", "2"):
                raise CardStateError(f"otp slot {name!r} is not 1 or 2")
            slots[int(name)] = OtpSlot.from_json(value, f"otp slot {name}")
        return cls(
            serial=_int(d, "serial", "card state", 0, 0xFFFFFFFF),
            firmware=(fw[0], fw[1], fw[2]),
            pin=PinObject.from_json(piv.get("pin"), "pin"),
            puk=PinObject.from_json(piv.get("puk"), "puk"),
            management_key=ManagementKey.from_json(piv.get("management_key")),
            keys=keys,
            objects=objects,
            otp_slots=slots,
            otp_program_sequence=_int(otp, "program_sequence", "otp", 0, 255),
            content_signer=(
                None
                if piv.get("content_signer") is None
                else ContentSigner.from_json(piv["content_signer"])
            ),
        )

    @classmethod
    def loads(cls, text: str) -> CardState:
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise CardStateError(f"not JSON: {e}") from None
        return cls.from_json(doc)

    # --- files --------------------------------------------------------------

    @classmethod
    def load(cls, path: Path) -> CardState:
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise CardStateError(f"no card state at {path}") from None
        except OSError as e:
            raise CardStateError(f"cannot read card state {path}: {e}") from None
        try:
            return cls.loads(text)
        except CardStateError as e:
            raise CardStateError(f"{path} is not a valid card state: {e}") from None


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text`: temp file in the same directory, 0600, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# --- strict field readers -------------------------------------------------------


def _obj(doc: Any, name: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise CardStateError(f"{name} must be an object")
    return doc


def _int(d: dict[str, Any], key: str, name: str, lo: int, hi: int) -> int:
    v = d.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise CardStateError(f"{name}.{key} must be an integer {lo}..{hi}")
    return v


def _bool(d: dict[str, Any], key: str, name: str) -> bool:
    v = d.get(key)
    if not isinstance(v, bool):
        raise CardStateError(f"{name}.{key} must be true or false")
    return v


def _hex(d: dict[str, Any], key: str, name: str, *, size: int) -> bytes:
    v = d.get(key)
    try:
        if not isinstance(v, str):
            raise ValueError
        b = bytes.fromhex(v)
    except ValueError:
        raise CardStateError(f"{name}.{key} must be a hex string") from None
    if len(b) != size:
        raise CardStateError(f"{name}.{key} must be {size} bytes")
    return b


def _hex_name(name: str, where: str, *, width: int) -> int:
    try:
        b = bytes.fromhex(name if len(name) % 2 == 0 else "0" + name)
    except ValueError:
        raise CardStateError(f"{where}: key {name!r} is not hex") from None
    if not 1 <= len(b) <= width:
        raise CardStateError(f"{where}: key {name!r} has the wrong size")
    return int.from_bytes(b, "big")
