"""The phone PassKey: a software key store, as the phone app keeps it.

The store is one JSON file. Its public part (label, public key, enrolments)
is readable without the PIN; its secrets (the P-256 authentication key and
the 256-bit Kc secret) are either kept as they are (no PIN: the phone is a
trusted device, protected by its OS) or encrypted at rest, in one of two ways:

Version 2, kdf "argon2id+hardener" (the default once the phone is enrolled
with a network that runs a hardener; `tokens.hardened_pin`):

    x   = Argon2id(PIN, salt, m=19 MiB, t=2, p=1, 32 bytes)
    y   = the hardener's POPRF of x (blind, relayed by the network, proof
          checked against the key the store pinned)
    K   = HKDF-SHA256(y, salt, "authnet/v1 phone keystore key")
    ct  = AES-256-GCM(K, nonce, secrets JSON (+ the Ed25519 success key),
                      aad = transcript(label, public key, kdf params, hardener facts))

A copied file cannot be attacked offline: checking a guess needs the
hardener, which stops after 10 evaluations without a proven success
(`tokens.phone_hardened` runs these steps).

Version 1, kdf "argon2id" (`--offline-pin`, or no hardener): K = x. The
wrong-PIN counter lives in the file and is enforced by the app; someone who
copies the file can bypass it, and is then left with Argon2id's cost per
guess (docs/threat-model.md). Weaker, but it unlocks without a network.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
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
from tokens import hardened_pin as hp
from tokens.enrolments import Enrolment, find
from tokens.passkey import TokenDescription, TokenKind
from tokens.phone_hardened import HardenedStore
from tokens.phone_secrets import (
    ARGON2,
    ARGON2_LIMITS,
    FORMAT,
    HARDENED_VERSION,
    MIN_PIN_LENGTH,
    PIN_ATTEMPTS,
    VERSION,
    VERSIONS,
    StoreSecrets,
    kek,
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
    if doc["version"] == HARDENED_VERSION and protection != "pin":
        raise ValueError("a version-2 key store is PIN-protected")
    if protection == "none":
        sec = StoreSecrets.from_json(doc["secrets"])
        if spki(sec.auth_key.public_key()) != public:
            raise ValueError("the authentication key does not match the public key")
    elif protection == "pin":
        sealed = doc["sealed"]
        expected = hp.KDF if doc["version"] == HARDENED_VERSION else "argon2id"
        if sealed.get("kdf") != expected:
            raise ValueError(f"unsupported key derivation (expected {expected})")
        if expected == hp.KDF:
            _pinned_of(sealed)
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


def _pinned_of(sealed: dict[str, Any]) -> hp.PinnedHardener:
    h = sealed["hardener"]
    if not isinstance(h, dict):
        raise ValueError("hardener is not an object")
    for k in ("network", "caller", "user_id"):
        if not isinstance(h.get(k), str) or not h[k] or len(h[k]) > 256:
            raise ValueError(f"hardener {k} must be a non-empty string")
    version = h["key_version"]
    if type(version) is not int or not 1 <= version < 1 << 32:
        raise ValueError("hardener key_version must be a positive integer")
    return hp.PinnedHardener(
        network=h["network"],
        caller=h["caller"],
        user_id=h["user_id"],
        key_version=version,
        public_key=b64u_decode(h["public_key"], field="hardener public_key", length=32),
    )


class PhoneKeyStore:
    """The key store file. Load it, then `unlock()` to get a PhonePassKey."""

    def __init__(self, path: Path, doc: dict[str, Any]) -> None:
        self.path = path
        self._doc = doc

    # --- creation and persistence ---------------------------------------------

    @classmethod
    def create(
        cls, path: Path, *, label: str, pin: str | None = None, offline_pin: bool = False
    ) -> PhoneKeyStore:
        """`offline_pin`: the person chose a PIN checked on the phone only
        (Argon2id, version 1), which the app then keeps even when a network
        offers a hardener."""
        if path.exists():
            raise KeystoreError(f"{path} already exists; refusing to overwrite a key store")
        if pin is not None and len(pin) < MIN_PIN_LENGTH:
            raise KeystoreError(f"a PIN needs at least {MIN_PIN_LENGTH} characters")
        sec = StoreSecrets(ec.generate_private_key(ec.SECP256R1()), secrets.token_bytes(32))
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
            ct = AESGCM(kek(pin, salt, ARGON2)).encrypt(nonce, sec.to_bytes(), _aad(public, ARGON2))
            doc["protection"] = "pin"
            doc["sealed"] = {
                "kdf": "argon2id",
                **ARGON2,
                "salt": b64u_encode(salt),
                "nonce": b64u_encode(nonce),
                "ciphertext": b64u_encode(ct),
            }
            doc["pin_attempts_left"] = PIN_ATTEMPTS
            if offline_pin:
                doc["offline_pin"] = True
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
            or doc.get("version") not in VERSIONS
        ):
            raise KeystoreError(
                f"{path} is not a phone key store of version {' or '.join(map(str, VERSIONS))}"
            )
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

    @property
    def doc(self) -> dict[str, Any]:
        """The document (tokens.phone_hardened reads and replaces it; save() writes it)."""
        return self._doc

    @doc.setter
    def doc(self, value: dict[str, Any]) -> None:
        self._doc = value

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
    def offline_pin(self) -> bool:
        """The person chose an Argon2id-only PIN (weaker; unlocks offline)."""
        return self._doc.get("offline_pin") is True

    @property
    def hardened(self) -> bool:
        """Whether the PIN is hardened by a network's hardener (version 2)."""
        return self.has_pin and self._doc.get("version") == HARDENED_VERSION

    @property
    def pinned(self) -> hp.PinnedHardener | None:
        return _pinned_of(self._doc["sealed"]) if self.hardened else None

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

    def _open(self, pin: str) -> StoreSecrets:
        left = int(self._doc["pin_attempts_left"])
        if left <= 0:
            raise PinLocked(
                "PIN locked after too many wrong attempts: re-create the key store",
                retries_left=0,
            )
        sealed = self._doc["sealed"]
        params = {k: int(sealed[k]) for k in ("t", "m", "p")}
        try:
            plain = AESGCM(kek(pin, b64u_decode(sealed["salt"], field="salt"), params)).decrypt(
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
        return StoreSecrets.from_json(json.loads(plain))

    # --- the hardened PIN (version 2: tokens.phone_hardened) ---------------------

    async def set_hardened_pin(
        self,
        sec: StoreSecrets,
        pin: str,
        relay: hp.PinRelay,
        enrolment: Enrolment,
        *,
        old: tuple[StoreSecrets, hp.PinnedHardener] | None = None,
    ) -> StoreSecrets:
        """Seal the secrets under `pin` hardened by `enrolment`'s network (see
        `HardenedStore.set_pin`)."""
        return await HardenedStore(self).set_pin(sec, pin, relay, enrolment, old=old)

    async def open_hardened(self, pin: str, relay: hp.PinRelay, *, token_id: bytes) -> StoreSecrets:
        """Unlock a version-2 store through the network (`HardenedStore.open`)."""
        return await HardenedStore(self).open(pin, relay, token_id=token_id)

    def unlock(self, pin: str | None = None) -> PhonePassKey:
        """A PassKey over this store. With a PIN-protected store and no PIN, the
        result can describe itself but not sign until `verify_pin` (or, for a
        hardened store, `verify_pin_async`)."""
        token = PhonePassKey(self)
        if pin is not None:
            token.verify_pin(pin)
        elif not self.has_pin:
            token._secrets = StoreSecrets.from_json(self._doc["secrets"])
        return token


class PhonePassKey:
    """PassKey backend for the phone key store."""

    def __init__(self, store: PhoneKeyStore, *, relay: hp.PinRelay | None = None) -> None:
        self.store = store
        # The network's relay to its hardener (hardened stores unlock through it).
        self.relay = relay
        self._secrets: StoreSecrets | None = None
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
        if self.store.hardened:
            raise PinRequired(
                "this key store's PIN is checked through the network's hardener: "
                "use verify_pin_async"
            )
        self._secrets = self.store._open(pin)
        self._verified = True

    def _relay(self) -> tuple[hp.PinRelay, Enrolment]:
        pinned = self.store.pinned
        assert pinned is not None
        enrolment = self.store.enrolment_for(pinned.network)
        if self.relay is None:
            raise PinRequired(
                "this key store's PIN is checked through the network: the app has no "
                f"connection to {pinned.network}"
            )
        return self.relay, enrolment

    async def verify_pin_async(self, pin: str) -> None:
        """Check the PIN: through the network's hardener for a hardened store
        (the token's `relay`), on the phone for an Argon2id-only one."""
        if not self.store.hardened:
            self.verify_pin(pin)
            return
        relay, enrolment = self._relay()
        self._secrets = await self.store.open_hardened(pin, relay, token_id=enrolment.token_id)
        self._verified = True

    async def set_pin(self, new_pin: str, relay: hp.PinRelay, enrolment: Enrolment) -> None:
        """Harden this (unlocked) store's PIN with `enrolment`'s network: a
        store without a PIN or with an Argon2id-only one gets `new_pin`, a
        hardened one changes its PIN (the old success key authorises the new)."""
        sec = self._require()
        old = None
        pinned = self.store.pinned
        if pinned is not None:
            old = (sec, pinned)
        self._secrets = await self.store.set_hardened_pin(sec, new_pin, relay, enrolment, old=old)

    def _require(self) -> StoreSecrets:
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


__all__ = [
    "ARGON2",
    "PIN_ATTEMPTS",
    "Enrolment",
    "PhoneKeyStore",
    "PhonePassKey",
    "StoreSecrets",
    "now_ms",
]
