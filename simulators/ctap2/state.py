"""The authenticator's persistent state: one JSON file, written atomically
(temporary file in the same folder, fsync, rename) with mode 0600.

What persists is what a real key keeps in flash: the device master key (from
which the credential-wrapping and CredRandom keys are derived), the AAGUID,
the discoverable (resident) credentials, the PIN hash and retry counter, and
the signature counter. What a real key loses on power-off (key-agreement keys,
pinUvAuthTokens, the consecutive-mismatch count) lives in the Authenticator.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FORMAT = "authnet-soft-ctap2/1"
PIN_RETRIES_MAX = 8


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise ValueError("expected a base64url string")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _opt_str(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError("expected a string or null")


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("expected an integer")
    return value


@dataclass
class ResidentCredential:
    """A discoverable credential as stored on the device."""

    credential_id: bytes
    rp_id: str
    rp_name: str | None
    user_id: bytes
    user_name: str | None
    user_display_name: str | None
    private_key: bytes
    """The P-256 private scalar, 32 bytes big-endian."""
    hmac_secret: bool
    cred_protect: int
    created: int
    """Creation order (newest credentials are offered first)."""

    def to_json(self) -> dict[str, object]:
        return {
            "credential_id": _b64(self.credential_id),
            "rp_id": self.rp_id,
            "rp_name": self.rp_name,
            "user_id": _b64(self.user_id),
            "user_name": self.user_name,
            "user_display_name": self.user_display_name,
            "private_key": _b64(self.private_key),
            "hmac_secret": self.hmac_secret,
            "cred_protect": self.cred_protect,
            "created": self.created,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ResidentCredential:
        rp_id = data["rp_id"]
        if not isinstance(rp_id, str):
            raise ValueError("rp_id must be a string")
        return cls(
            credential_id=_unb64(data["credential_id"]),
            rp_id=rp_id,
            rp_name=_opt_str(data.get("rp_name")),
            user_id=_unb64(data["user_id"]),
            user_name=_opt_str(data.get("user_name")),
            user_display_name=_opt_str(data.get("user_display_name")),
            private_key=_unb64(data["private_key"]),
            hmac_secret=bool(data.get("hmac_secret", False)),
            cred_protect=_int(data.get("cred_protect", 1)),
            created=_int(data["created"]),
        )


@dataclass
class DeviceState:
    aaguid: bytes
    master_key: bytes
    pin_hash: bytes | None = None
    pin_code_points: int = 0
    pin_retries: int = PIN_RETRIES_MAX
    sign_count: int = 0
    creation_counter: int = 0
    credentials: list[ResidentCredential] = field(default_factory=list)

    @classmethod
    def new(cls, aaguid: bytes) -> DeviceState:
        return cls(aaguid=aaguid, master_key=os.urandom(32))

    def derive(self, purpose: bytes) -> bytes:
        """A 32-byte key for one purpose, derived from the master key."""
        return HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"authnet soft-ctap2 " + purpose
        ).derive(self.master_key)

    def to_json(self) -> dict[str, object]:
        return {
            "format": FORMAT,
            "aaguid": self.aaguid.hex(),
            "master_key": _b64(self.master_key),
            "pin_hash": None if self.pin_hash is None else _b64(self.pin_hash),
            "pin_code_points": self.pin_code_points,
            "pin_retries": self.pin_retries,
            "sign_count": self.sign_count,
            "creation_counter": self.creation_counter,
            "credentials": [c.to_json() for c in self.credentials],
        }

    @classmethod
    def from_json(cls, data: object) -> DeviceState:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} state file")
        aaguid = data["aaguid"]
        if not isinstance(aaguid, str):
            raise ValueError("aaguid must be a hex string")
        pin_hash = data.get("pin_hash")
        credentials = data.get("credentials", [])
        if not isinstance(credentials, list):
            raise ValueError("credentials must be a list")
        state = cls(
            aaguid=bytes.fromhex(aaguid),
            master_key=_unb64(data["master_key"]),
            pin_hash=None if pin_hash is None else _unb64(pin_hash),
            pin_code_points=_int(data.get("pin_code_points", 0)),
            pin_retries=_int(data.get("pin_retries", PIN_RETRIES_MAX)),
            sign_count=_int(data.get("sign_count", 0)),
            creation_counter=_int(data.get("creation_counter", 0)),
            credentials=[ResidentCredential.from_json(c) for c in credentials],
        )
        if len(state.aaguid) != 16 or len(state.master_key) != 32:
            raise ValueError("aaguid or master key has the wrong length")
        return state


class StateFile:
    """Loads and atomically saves a DeviceState; `path=None` keeps it in memory."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = None if path is None else Path(path)

    def load(self) -> DeviceState | None:
        if self.path is None or not self.path.exists():
            return None
        with self.path.open("r", encoding="utf-8") as f:
            return DeviceState.from_json(json.load(f))

    def save(self, state: DeviceState) -> None:
        if self.path is None:
            return
        data = json.dumps(state.to_json(), indent=1, sort_keys=True).encode("utf-8")
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=folder)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
