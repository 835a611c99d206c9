"""The master key that seals every key version's secrets at rest.

Two homes: a key file (32 random bytes, 0600, in the data directory or
elsewhere) or an AES-256 key inside a PKCS#11 token that never leaves it
(SoftHSM2 in tests). Either seals with AES-256-GCM, a random 96-bit nonce,
and associated data naming the key version and purpose; the sealed form is
nonce || ciphertext || tag.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hardener.errors import KeystoreError
from hardener.pki import write_private

NONCE = 12
PKCS11_KEY_LABEL = "hardener-master"
PIN_ENV = "HARDENER_PKCS11_PIN"


class MasterKey(Protocol):
    def seal(self, plaintext: bytes, aad: bytes) -> bytes: ...

    def open(self, sealed: bytes, aad: bytes) -> bytes: ...

    def describe(self) -> str: ...


@dataclass(frozen=True, kw_only=True)
class FileMasterKey:
    path: Path
    _key: bytes = field(repr=False)

    @classmethod
    def create(cls, path: Path) -> FileMasterKey:
        if path.exists():
            raise KeystoreError(f"{path} already exists: refusing to overwrite a master key")
        key = secrets.token_bytes(32)
        write_private(path, key)
        return cls(path=path, _key=key)

    @classmethod
    def load(cls, path: Path) -> FileMasterKey:
        try:
            st = path.stat()
            key = path.read_bytes()
        except OSError as e:
            raise KeystoreError(f"cannot read the master key file {path}: {e.strerror}") from None
        if st.st_mode & 0o077:
            raise KeystoreError(
                f"the master key file {path} is readable by others (mode {st.st_mode & 0o777:o}):"
                " chmod 600 it"
            )
        if len(key) != 32:
            raise KeystoreError(f"the master key file {path} is not 32 bytes")
        return cls(path=path, _key=key)

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE)
        return nonce + AESGCM(self._key).encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        try:
            return AESGCM(self._key).decrypt(sealed[:NONCE], sealed[NONCE:], aad)
        except (InvalidTag, ValueError):
            raise KeystoreError(
                f"a sealed key does not open under the master key file {self.path}"
                " (wrong key file, or the database was altered)"
            ) from None

    def describe(self) -> str:
        return f"key file {self.path}"


def _read_pin(pin_file: Path | None) -> str:
    if pin_file is not None:
        try:
            return pin_file.read_text().strip()
        except OSError as e:
            raise KeystoreError(
                f"cannot read the PKCS#11 PIN file {pin_file}: {e.strerror}"
            ) from None
    pin = os.environ.get(PIN_ENV)
    if not pin:
        raise KeystoreError(f"no PKCS#11 PIN: set {PIN_ENV} or give a PIN file")
    return pin


def _find_token(pkcs11: Any, lib: Any, label: str) -> Any:
    """The token labelled `label`, reading the slots one by one: another token of
    the module that fails (removed, its storage gone) must not hide this one,
    as `lib.get_token` lets it (its first failing slot ends the search)."""
    failed: Exception | None = None
    for slot in lib.get_slots(token_present=True):
        try:
            token = slot.get_token()
        except pkcs11.exceptions.PKCS11Error as e:
            failed = failed or e
            continue
        if token.label == label:
            return token
    if failed is not None:
        raise failed
    raise pkcs11.exceptions.NoSuchToken()


@dataclass(kw_only=True)
class Pkcs11MasterKey:
    """An AES-256 key in a PKCS#11 token; every seal and open runs inside the token."""

    module: str
    token_label: str
    key_label: str = PKCS11_KEY_LABEL
    pin_file: Path | None = None
    _session: Any = field(default=None, repr=False)
    _key: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _open_session(self) -> tuple[Any, Any]:
        import pkcs11

        try:
            lib = pkcs11.lib(self.module)
            token = _find_token(pkcs11, lib, self.token_label)
            try:
                session = token.open(rw=True, user_pin=_read_pin(self.pin_file))
            except pkcs11.exceptions.UserAlreadyLoggedIn:
                # Another session of this process is logged in (PKCS#11 logins
                # are per application): a new session shares that login.
                session = token.open(rw=True)
        except (pkcs11.exceptions.PKCS11Error, RuntimeError) as e:
            raise KeystoreError(
                f"cannot open the PKCS#11 token {self.token_label!r} ({type(e).__name__})"
            ) from None
        return pkcs11, session

    @classmethod
    def create(
        cls, *, module: str, token_label: str, pin_file: Path | None = None
    ) -> Pkcs11MasterKey:
        mk = cls(module=module, token_label=token_label, pin_file=pin_file)
        pkcs11, session = mk._open_session()
        try:
            with contextlib.suppress(pkcs11.exceptions.NoSuchKey):
                session.get_key(label=mk.key_label)
                raise KeystoreError(
                    f"the token {token_label!r} already holds a key {mk.key_label!r}:"
                    " refusing to replace a master key"
                )
            mk._key = session.generate_key(
                pkcs11.KeyType.AES,
                256,
                label=mk.key_label,
                store=True,
                template={
                    pkcs11.Attribute.SENSITIVE: True,
                    pkcs11.Attribute.EXTRACTABLE: False,
                },
            )
        except pkcs11.exceptions.PKCS11Error as e:
            session.close()
            raise KeystoreError(
                f"the token refused to create the master key ({type(e).__name__})"
            ) from None
        mk._session = session
        return mk

    def _ensure(self) -> Any:
        if self._key is None:
            pkcs11, session = self._open_session()
            try:
                self._key = session.get_key(label=self.key_label)
            except pkcs11.exceptions.PKCS11Error:
                session.close()
                raise KeystoreError(
                    f"the token {self.token_label!r} has no key {self.key_label!r}"
                ) from None
            self._session = session
        return self._key

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        from pkcs11 import Mechanism
        from pkcs11.mechanisms import GCMParams

        nonce = secrets.token_bytes(NONCE)
        with self._lock:
            key = self._ensure()
            ct = key.encrypt(
                plaintext, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, aad)
            )
        return nonce + bytes(ct)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        import pkcs11
        from pkcs11.mechanisms import GCMParams

        with self._lock:
            key = self._ensure()
            try:
                pt = key.decrypt(
                    sealed[NONCE:],
                    mechanism=pkcs11.Mechanism.AES_GCM,
                    mechanism_param=GCMParams(sealed[:NONCE], aad),
                )
            except pkcs11.exceptions.PKCS11Error:
                raise KeystoreError(
                    f"a sealed key does not open under the token {self.token_label!r}"
                    " (wrong token, or the database was altered)"
                ) from None
        return bytes(pt)

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                with contextlib.suppress(Exception):
                    self._session.close()
            self._session = None
            self._key = None

    def describe(self) -> str:
        return f"PKCS#11 token {self.token_label!r} key {self.key_label!r}"
