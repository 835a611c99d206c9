"""PassKey backend for PKCS#11 tokens (HSMs, smartcards with a PKCS#11 module,
SoftHSM2 in tests), through python-pkcs11.

The token holds two objects under one label prefix, created by `provision`:

| object           | PKCS#11                                       | use                 |
|------------------|-----------------------------------------------|---------------------|
| `<label>-auth`   | EC P-256 key pair, private key sensitive and  | signs challenges    |
|                  | non-extractable                               | (CKM_ECDSA on SHA-256) |
| `<label>-kc`     | GENERIC_SECRET 256 bits, sensitive,           | Kc input: HMAC-SHA256 |
|                  | non-extractable, CKA_SIGN                     | over a labelled SPID |

Neither secret can be read out of the token; Kc comes from
HKDF(salt "authnet/v1 pkcs11 kc", IKM = HMAC output) on the host, per SP.

PKCS#11 does not report how many PIN tries are left, only the flags "count
low", "final try" and "locked"; a wrong PIN reports those when the token sets
them (SoftHSM2 sets none: it has no retry counter).

Every call into the module goes through `_calling`, which turns python-pkcs11's
exceptions into authnet's (TokenUnavailable for a token that went away or a
session that ended, PinRequired, KeystoreError for the rest), with the token's
label and what was being done: a failing token never shows as a traceback.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pkcs11
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from authnet.errors import (
    AuthnetError,
    KeystoreError,
    PinInvalid,
    PinLocked,
    PinRequired,
    TokenUnavailable,
)
from authnet.protocol import labels
from authnet.protocol.kc import derive_kc, pkcs11_hmac_input
from authnet.protocol.signatures import Algorithm, spki
from tokens.passkey import TokenDescription, TokenKind

DEFAULT_KEY_LABEL = "authnet"

# CK_TOKEN_INFO flags (PKCS#11 v2.40 section 3.2).
CKF_USER_PIN_COUNT_LOW = 0x00010000
CKF_USER_PIN_FINAL_TRY = 0x00020000
CKF_USER_PIN_LOCKED = 0x00040000


# What the module says when the token, or the session with it, is gone.
_GONE = (
    pkcs11.exceptions.DeviceRemoved,
    pkcs11.exceptions.TokenNotPresent,
    pkcs11.exceptions.TokenNotRecognised,
    pkcs11.exceptions.SlotIDInvalid,
)
_SESSION_ENDED = (pkcs11.exceptions.SessionClosed, pkcs11.exceptions.SessionHandleInvalid)
_BROKEN = (
    pkcs11.exceptions.DeviceError,
    pkcs11.exceptions.DeviceMemory,
    pkcs11.exceptions.GeneralError,
    pkcs11.exceptions.FunctionFailed,
)


def translate(e: pkcs11.exceptions.PKCS11Error, *, what: str, label: str) -> AuthnetError:
    """A python-pkcs11 exception as the person at the token should hear it."""
    token = f"the PKCS#11 token {label!r}"
    name = type(e).__name__
    if isinstance(e, _GONE):
        return TokenUnavailable(f"{token} is not there any more ({what}): insert it and retry")
    if isinstance(e, _SESSION_ENDED):
        return TokenUnavailable(
            f"the session with {token} ended ({what}): was the token removed? Retry"
        )
    if isinstance(e, pkcs11.exceptions.UserNotLoggedIn):
        return PinRequired(f"{token} needs its PIN")
    if isinstance(e, pkcs11.exceptions.NoSuchKey):
        return KeystoreError(
            f"{token} no longer holds its authnet keys ({what}): was it removed or "
            "re-initialised? Then it must be provisioned and enrolled again"
        )
    if isinstance(e, pkcs11.exceptions.MultipleObjectsReturned):
        return KeystoreError(f"{token} holds several authnet keys of one label ({what})")
    if isinstance(e, _BROKEN):
        return TokenUnavailable(
            f"{token} failed ({what}: {name}): it may have been removed, or its storage is damaged"
        )
    detail = str(e).strip()
    return KeystoreError(f"{token} failed ({what}): {name}" + (f": {detail}" if detail else ""))


def _lib(module: str) -> Any:
    try:
        return pkcs11.lib(module)
    except (OSError, RuntimeError) as e:
        raise KeystoreError(f"cannot load the PKCS#11 module {module}: {e}") from None


def _token(module: str, token_label: str) -> Any:
    """The one token labelled `token_label`. Slots are read one by one, so that a
    token that fails (removed, or its storage gone) does not hide the others;
    when the wanted token is not found and one failed, that failure is reported."""
    lib = _lib(module)
    try:
        slots = lib.get_slots(token_present=True)
    except pkcs11.exceptions.PKCS11Error as e:
        raise translate(e, what="listing the module's slots", label=token_label) from None
    found: list[Any] = []
    failed: pkcs11.exceptions.PKCS11Error | None = None
    for slot in slots:
        try:
            token = slot.get_token()
        except pkcs11.exceptions.PKCS11Error as e:
            failed = failed or e
            continue
        if token.label == token_label:
            found.append(token)
    if len(found) > 1:
        raise KeystoreError(f"several tokens are labelled {token_label!r}")
    if found:
        return found[0]
    if failed is not None and not isinstance(failed, _GONE):
        raise TokenUnavailable(
            f"no PKCS#11 token labelled {token_label!r} answers in {module} (a token there "
            f"failed: {type(failed).__name__}): was it removed, or its storage damaged?"
        )
    raise KeystoreError(f"no PKCS#11 token labelled {token_label!r} in {module}")


def _point(ec_point: bytes) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING around the uncompressed point (most
    modules), or the bare point (some)."""
    if len(ec_point) == 67 and ec_point[0] == 0x04 and ec_point[1] == 65:
        return ec_point[2:]
    return ec_point


@dataclass(frozen=True, kw_only=True)
class Pkcs11Config:
    module: str
    token_label: str
    key_label: str = DEFAULT_KEY_LABEL


class Pkcs11PassKey:
    """A PKCS#11 token as a PassKey. Locked until `verify_pin` (C_Login)."""

    def __init__(self, config: Pkcs11Config) -> None:
        self.config = config
        self._token = _token(config.module, config.token_label)
        self._session: Any = None
        self._public_key: bytes | None = None

    def __repr__(self) -> str:
        return f"Pkcs11PassKey(token={self.config.token_label!r}, locked={self.locked})"

    @contextlib.contextmanager
    def _calling(self, what: str) -> Iterator[None]:
        try:
            yield
        except pkcs11.exceptions.PKCS11Error as e:
            if isinstance(e, pkcs11.exceptions.NoSuchKey) and not self._still_there():
                # Keys that were there vanish when the token itself goes away.
                raise TokenUnavailable(
                    f"the PKCS#11 token {self.config.token_label!r} is not there any more "
                    f"({what}): was it removed?"
                ) from None
            raise translate(e, what=what, label=self.config.token_label) from None

    def _still_there(self) -> bool:
        try:
            self._token.slot.get_token()
        except pkcs11.exceptions.PKCS11Error:
            return False
        return True

    @classmethod
    def provision(cls, config: Pkcs11Config, *, pin: str) -> Pkcs11PassKey:
        """Create the authentication key pair and the Kc secret on the token,
        unless they exist already. Returns the token, unlocked."""
        token = cls(config)
        try:
            token.verify_pin(pin)
            with token._calling("creating the keys"):
                token._create_keys()
        except BaseException:
            token.close()
            raise
        return token

    def _create_keys(self) -> None:
        config = self.config
        s = self._session
        auth = f"{config.key_label}-auth"
        if not list(
            s.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: auth})
        ):
            params = s.create_domain_parameters(
                KeyType.EC,
                {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
                local=True,
            )
            params.generate_keypair(
                store=True,
                label=auth,
                private_template={
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.SIGN: True,
                },
            )
        kc = f"{config.key_label}-kc"
        if not list(s.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: kc})):
            s.generate_key(
                KeyType.GENERIC_SECRET,
                256,
                label=kc,
                store=True,
                template={
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.SIGN: True,
                },
            )

    # --- PassKey -----------------------------------------------------------

    def _read_public_key(self) -> bytes:
        with self._calling("reading its public key"):
            return self._read_public_key_unwrapped()

    def _read_public_key_unwrapped(self) -> bytes:
        session = self._session or self._token.open()
        try:
            objs = list(
                session.get_objects(
                    {
                        Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                        Attribute.LABEL: f"{self.config.key_label}-auth",
                    }
                )
            )
            if len(objs) != 1:
                raise KeystoreError(
                    f"token {self.config.token_label!r} holds no authnet key pair: provision it"
                )
            point = _point(bytes(objs[0][Attribute.EC_POINT]))
        finally:
            if session is not self._session:
                with contextlib.suppress(pkcs11.exceptions.PKCS11Error):
                    session.close()
        return spki(ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point))

    @property
    def description(self) -> TokenDescription:
        if self._public_key is None:
            self._public_key = self._read_public_key()
        return TokenDescription(
            kind=TokenKind.PKCS11,
            label=self.config.token_label,
            algorithm=Algorithm.ES256,
            public_key=self._public_key,
        )

    @property
    def has_pin(self) -> bool:
        return True

    @property
    def locked(self) -> bool:
        return self._session is None

    @property
    def user_verified(self) -> bool:
        return self._session is not None

    def verify_pin(self, pin: str) -> None:
        if self._session is not None:
            return
        with self._calling("logging in"):
            self._login(pin)

    def _login(self, pin: str) -> None:
        flags = int(self._token.flags)
        if flags & CKF_USER_PIN_LOCKED:
            raise PinLocked("the token's user PIN is locked: unblock it with the SO PIN")
        try:
            self._session = self._token.open(rw=True, user_pin=pin)
        except pkcs11.PinIncorrect:
            after = int(self._token.flags)
            if after & CKF_USER_PIN_LOCKED:
                raise PinLocked("wrong PIN; the token locked its PIN", retries_left=0) from None
            if after & CKF_USER_PIN_FINAL_TRY:
                raise PinInvalid("wrong PIN: one try left", retries_left=1) from None
            hint = " (few tries left)" if after & CKF_USER_PIN_COUNT_LOW else ""
            raise PinInvalid(
                f"wrong PIN{hint}; this token does not say how many tries are left",
                retries_left=None,
            ) from None
        except pkcs11.PinLocked:
            raise PinLocked("the token's user PIN is locked: unblock it with the SO PIN") from None
        except pkcs11.UserAlreadyLoggedIn:
            # PKCS#11 login is per application: another handle in this process is
            # logged in, and the PIN given here was not checked. Never treat that
            # as verified.
            raise KeystoreError(
                "this program already has the token open and logged in; close that first"
            ) from None
        except pkcs11.PinLenRange:
            raise PinInvalid(
                "the PIN has the wrong length for this token", retries_left=None
            ) from None

    def _key(self, cls: ObjectClass, suffix: str) -> Any:
        if self._session is None:
            raise PinRequired(f"the PKCS#11 token {self.config.token_label!r} needs its PIN")
        return self._session.get_key(object_class=cls, label=f"{self.config.key_label}-{suffix}")

    def sign(self, message: bytes) -> bytes:
        with self._calling("signing"):
            key = self._key(ObjectClass.PRIVATE_KEY, "auth")
            raw = key.sign(hashlib.sha256(message).digest(), mechanism=Mechanism.ECDSA)
        if len(raw) != 64:
            raise KeystoreError("the PKCS#11 token returned an odd ECDSA signature")
        return encode_dss_signature(
            int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        )

    def derive_kc(self, spid: bytes) -> bytes:
        with self._calling("computing the client key"):
            key = self._key(ObjectClass.SECRET_KEY, "kc")
            mac = key.sign(pkcs11_hmac_input(spid), mechanism=Mechanism.SHA256_HMAC)
        return derive_kc(bytes(mac), spid, salt=labels.KC_PKCS11_SALT)

    def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            # A session of a token that went away cannot be closed cleanly; it is
            # gone either way.
            with contextlib.suppress(pkcs11.exceptions.PKCS11Error):
                session.close()
