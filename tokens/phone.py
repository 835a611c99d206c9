"""The phone PassKey: a software key store, as the phone app keeps it.

The store is one JSON file. Its public part (label, public key, enrolments)
is readable without the PIN; its secrets (the P-256 authentication key and
the 256-bit Kc secret) are either kept as they are (no PIN: the phone is a
trusted device, protected by its OS) or encrypted at rest:

    K   = Argon2id(PIN, salt, m=19 MiB, t=2, p=1, 32 bytes)
    ct  = AES-256-GCM(K, nonce (96 random bits), secrets JSON,
                      aad = transcript("authnet/v1 phone keystore", public key, kdf params))

The wrong-PIN counter lives in the file and is enforced by the app; someone
who copies the file can bypass it, and is then left with Argon2id's cost per
guess. That is the honest limit of a software token (docs/threat-model.md).
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from authnet.errors import (
    AuthnetError,
    KeystoreError,
    PinInvalid,
    PinLocked,
    PinRequired,
)
from authnet.protocol import labels
from authnet.protocol.encoding import b64u_decode, b64u_encode, transcript
from authnet.protocol.kc import derive_kc
from authnet.protocol.signatures import Algorithm, load_public_key, spki
from tokens.enrolments import Enrolment, find
from tokens.passkey import TokenDescription, TokenKind

FORMAT = "authnet-phone-keystore"
VERSION = 1
PIN_ATTEMPTS = 10
MIN_PIN_LENGTH = 4
ARGON2 = {"t": 2, "m": 19456, "p": 1}
# What a loaded file may ask of Argon2id: argon2's own minimums, and at most
# 1 GiB, so an edited file cannot make the app crash or exhaust memory.
ARGON2_LIMITS = {"t": (1, 16), "m": (8, 1 << 20), "p": (1, 16)}


@dataclass(frozen=True)
class _Secrets:
    auth_key: ec.EllipticCurvePrivateKey = field(repr=False)
    kc_secret: bytes = field(repr=False)

    def to_bytes(self) -> bytes:
        der = self.auth_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return json.dumps(
            {"auth_key": b64u_encode(der), "kc_secret": b64u_encode(self.kc_secret)}
        ).encode()

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> _Secrets:
        key = serialization.load_der_private_key(
            b64u_decode(str(d["auth_key"]), field="auth_key"), password=None
        )
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise KeystoreError("the key store's authentication key is not an EC key")
        return cls(key, b64u_decode(str(d["kc_secret"]), field="kc_secret", length=32))


def _kek(pin: str, salt: bytes, params: dict[str, int]) -> bytes:
    return hash_secret_raw(
        pin.encode("utf-8"),
        salt,
        time_cost=params["t"],
        memory_cost=params["m"],
        parallelism=params["p"],
        hash_len=32,
        type=Type.ID,
    )


def _aad(public_key: bytes, params: dict[str, int]) -> bytes:
    return transcript(
        labels.PHONE_KEYSTORE,
        public_key,
        b"argon2id",
        *(params[k].to_bytes(4, "big") for k in ("t", "m", "p")),
    )


def _check_doc(doc: dict[str, Any]) -> None:
    """Raise ValueError (or a MalformedInput/KeystoreError) naming what is wrong
    with a loaded document, so a damaged or edited file is refused at load time
    rather than failing later with a crash or being used as it is."""
    if not isinstance(doc.get("label"), str):
        raise ValueError("no label")
    if not isinstance(doc.get("public_key"), str):
        raise ValueError("no public key")
    public = b64u_decode(doc["public_key"], field="public_key")
    load_public_key(public, Algorithm.ES256)
    enrolments = doc.get("enrolments")
    if not isinstance(enrolments, list):
        raise ValueError("enrolments is not a list")
    for e in enrolments:
        Enrolment.from_json(e)
    protection = doc.get("protection")
    if protection == "none":
        sec = _Secrets.from_json(doc["secrets"])
        if spki(sec.auth_key.public_key()) != public:
            raise ValueError("the authentication key does not match the public key")
    elif protection == "pin":
        sealed = doc["sealed"]
        if sealed.get("kdf") != "argon2id":
            raise ValueError("unsupported key derivation (expected argon2id)")
        for k, (low, high) in ARGON2_LIMITS.items():
            v = sealed[k]
            if type(v) is not int or not low <= v <= high:
                raise ValueError(f"argon2id parameter {k} must be an integer {low}..{high}")
        if sealed["m"] < 8 * sealed["p"]:
            raise ValueError("argon2id memory must be at least 8 KiB per lane")
        b64u_decode(sealed["salt"], field="salt", length=16)
        b64u_decode(sealed["nonce"], field="nonce", length=12)
        if len(b64u_decode(sealed["ciphertext"], field="ciphertext")) < 16:
            raise ValueError("ciphertext too short")
        left = doc["pin_attempts_left"]
        if type(left) is not int or not 0 <= left <= PIN_ATTEMPTS:
            raise ValueError(f"pin_attempts_left must be an integer 0..{PIN_ATTEMPTS}")
    else:
        raise ValueError("unknown protection (expected none or pin)")


class PhoneKeyStore:
    """The key store file. Load it, then `unlock()` to get a PhonePassKey."""

    def __init__(self, path: Path, doc: dict[str, Any]) -> None:
        self.path = path
        self._doc = doc

    # --- creation and persistence ---------------------------------------------

    @classmethod
    def create(cls, path: Path, *, label: str, pin: str | None = None) -> PhoneKeyStore:
        if path.exists():
            raise KeystoreError(f"{path} already exists; refusing to overwrite a key store")
        if pin is not None and len(pin) < MIN_PIN_LENGTH:
            raise KeystoreError(f"a PIN needs at least {MIN_PIN_LENGTH} characters")
        sec = _Secrets(ec.generate_private_key(ec.SECP256R1()), secrets.token_bytes(32))
        public = spki(sec.auth_key.public_key())
        doc: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "label": label,
            "public_key": b64u_encode(public),
            "enrolments": [],
        }
        if pin is None:
            doc["protection"] = "none"
            doc["secrets"] = json.loads(sec.to_bytes())
        else:
            salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
            ct = AESGCM(_kek(pin, salt, ARGON2)).encrypt(
                nonce, sec.to_bytes(), _aad(public, ARGON2)
            )
            doc["protection"] = "pin"
            doc["sealed"] = {
                "kdf": "argon2id",
                **ARGON2,
                "salt": b64u_encode(salt),
                "nonce": b64u_encode(nonce),
                "ciphertext": b64u_encode(ct),
            }
            doc["pin_attempts_left"] = PIN_ATTEMPTS
        # Claim the name atomically, so two creators cannot overwrite each other.
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            raise KeystoreError(
                f"{path} already exists; refusing to overwrite a key store"
            ) from None
        store = cls(path, doc)
        store.save()
        return store

    @classmethod
    def load(cls, path: Path) -> PhoneKeyStore:
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            raise KeystoreError(
                f"no key store at {path}: create one with `passkey-phone init`"
            ) from None
        except (OSError, ValueError) as e:
            raise KeystoreError(f"cannot read key store {path}: {e}") from None
        if (
            not isinstance(doc, dict)
            or doc.get("format") != FORMAT
            or doc.get("version") != VERSION
        ):
            raise KeystoreError(f"{path} is not a version-{VERSION} phone key store")
        try:
            _check_doc(doc)
        except AuthnetError as e:
            raise KeystoreError(f"{path} is damaged: {e.message}") from None
        except KeyError as e:
            raise KeystoreError(f"{path} is damaged: {e.args[0]} is missing") from None
        except (TypeError, ValueError, AttributeError) as e:
            raise KeystoreError(f"{path} is damaged: {e}") from None
        return cls(path, doc)

    def save(self) -> None:
        """Atomic replace, owner-only permissions."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".keystore-")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(self._doc, f, indent=1)
                f.write("\n")
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # --- public part -----------------------------------------------------------

    @property
    def label(self) -> str:
        return str(self._doc["label"])

    @property
    def public_key(self) -> bytes:
        return b64u_decode(str(self._doc["public_key"]), field="public_key")

    @property
    def has_pin(self) -> bool:
        return self._doc.get("protection") == "pin"

    @property
    def pin_attempts_left(self) -> int | None:
        return int(self._doc["pin_attempts_left"]) if self.has_pin else None

    def enrolments(self) -> list[Enrolment]:
        return [Enrolment.from_json(e) for e in self._doc.get("enrolments", [])]

    def enrolment_for(self, network: str) -> Enrolment:
        return find(self.enrolments(), network, what="this phone")

    def add_enrolment(self, enrolment: Enrolment) -> None:
        others = [e for e in self.enrolments() if e.network != enrolment.network]
        self._doc["enrolments"] = [e.to_json() for e in [*others, enrolment]]
        self.save()

    def remove_enrolment(self, network: str) -> None:
        self._doc["enrolments"] = [e.to_json() for e in self.enrolments() if e.network != network]
        self.save()

    # --- secrets ----------------------------------------------------------------

    def _open(self, pin: str) -> _Secrets:
        left = int(self._doc["pin_attempts_left"])
        if left <= 0:
            raise PinLocked(
                "PIN locked after too many wrong attempts: re-create the key store",
                retries_left=0,
            )
        sealed = self._doc["sealed"]
        params = {k: int(sealed[k]) for k in ("t", "m", "p")}
        try:
            plain = AESGCM(_kek(pin, b64u_decode(sealed["salt"], field="salt"), params)).decrypt(
                b64u_decode(sealed["nonce"], field="nonce"),
                b64u_decode(sealed["ciphertext"], field="ciphertext"),
                _aad(self.public_key, params),
            )
        except InvalidTag:
            self._doc["pin_attempts_left"] = left - 1
            self.save()
            if left - 1 == 0:
                raise PinLocked("wrong PIN; the PIN is now locked", retries_left=0) from None
            raise PinInvalid(
                f"wrong PIN: {left - 1} attempts left", retries_left=left - 1
            ) from None
        if left != PIN_ATTEMPTS:
            self._doc["pin_attempts_left"] = PIN_ATTEMPTS
            self.save()
        return _Secrets.from_json(json.loads(plain))

    def unlock(self, pin: str | None = None) -> PhonePassKey:
        """A PassKey over this store. With a PIN-protected store and no PIN, the
        result can describe itself but not sign until `verify_pin`."""
        token = PhonePassKey(self)
        if pin is not None:
            token.verify_pin(pin)
        elif not self.has_pin:
            token._secrets = _Secrets.from_json(self._doc["secrets"])
        return token


class PhonePassKey:
    """PassKey backend for the phone key store."""

    def __init__(self, store: PhoneKeyStore) -> None:
        self.store = store
        self._secrets: _Secrets | None = None
        self._verified = False

    def __repr__(self) -> str:
        return f"PhonePassKey(label={self.store.label!r}, unlocked={self._secrets is not None})"

    @property
    def description(self) -> TokenDescription:
        return TokenDescription(
            kind=TokenKind.PHONE,
            label=self.store.label,
            algorithm=Algorithm.ES256,
            public_key=self.store.public_key,
        )

    @property
    def has_pin(self) -> bool:
        return self.store.has_pin

    @property
    def locked(self) -> bool:
        return self._secrets is None

    @property
    def user_verified(self) -> bool:
        return self._verified

    def verify_pin(self, pin: str) -> None:
        if not self.store.has_pin:
            raise PinInvalid("this phone key store has no PIN")
        self._secrets = self.store._open(pin)
        self._verified = True

    def _require(self) -> _Secrets:
        if self._secrets is None:
            raise PinRequired("this phone key store is PIN-protected: enter the PIN")
        return self._secrets

    def sign(self, message: bytes) -> bytes:
        return self._require().auth_key.sign(message, ec.ECDSA(hashes.SHA256()))

    def derive_kc(self, spid: bytes) -> bytes:
        return derive_kc(self._require().kc_secret, spid, salt=labels.KC_PHONE_SALT)

    def close(self) -> None:
        """Drop the unlocked secrets (the app locks again)."""
        self._secrets = None
        self._verified = False


def now_ms() -> int:
    return time.time_ns() // 1_000_000


__all__ = ["Enrolment", "PhoneKeyStore", "PhonePassKey", "now_ms"]
