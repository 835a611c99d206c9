"""The CLI as a registered device (docs/devices.md 8): its device file, and the
client's side of registration, the bypass and opening the keys with it.

**The device file** `<config dir>/device-<user id, base64url>.json` holds the
device id and its two private keys (X25519 device key, Ed25519 signing key,
raw, base64url), or, for a device registered with `--keyring`, only
`"keyring": true` while the keys are in the OS keyring
(below). The config dir is `$VAULT_CONFIG_DIR`, else
`~/.config/authnet-vault`. It is written atomically, mode 0600 in a 0700
folder, and refused (`device_file_mode`) when group or others can read it,
as ssh refuses a private key readable by others. It is a secret: a copy of
it is a copy of the device (docs/devices.md 10), so it never goes to output.

**The bypass** (docs/devices.md 3, 4): after the token login, the device
proves itself with the session's nonce, gets its device wrap and sealed KEK,
opens DKEK with its device key, derives KEK_b from T and DKEK and opens the
private key. Every refusal is a `FactorError` with the server's or the
crypto's code; the caller falls back to the passphrase and says why.
"""

from __future__ import annotations

import json
import os
import platform
import stat
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import x25519

from vault_api.client.errors import ApiError
from vault_api.client.factors import FactorError, Send
from vault_api.client.keys import dec, enc
from vault_api.crypto import devices as dv
from vault_api.crypto.errors import VaultCryptoError
from vault_api.crypto.ids import short

FILE_VERSION = 1
NAME_MAX = 64
USER_AGENT_MAX = 256

# The server's refusals of a bypass login (docs/devices.md 4), said in words.
BYPASS_REFUSALS: Mapping[str, str] = {
    "device_not_found": "the vault does not know this device (removed, or another account's)",
    "device_revoked": "this device was revoked",
    "device_expired": "this device expired (unused for longer than the policy allows)",
    "policy_forbids": "your organisation's policy does not allow the bypass",
    "bypass_off": "the bypass is off for this device (never enabled, or removed by a policy "
    "change or a recovery)",
    "device_proof_invalid": "the vault did not accept this device's proof",
}


def config_dir() -> Path:
    explicit = os.environ.get("VAULT_CONFIG_DIR")
    if explicit:
        return Path(explicit).expanduser()
    return Path.home() / ".config" / "authnet-vault"


def device_path(user_id: bytes, folder: Path | None = None) -> Path:
    return (folder or config_dir()) / f"device-{enc(user_id)}.json"


def default_name() -> str:
    host = platform.node() or "this computer"
    return f"vault CLI on {host}"[:NAME_MAX]


def user_agent() -> str:
    return (
        f"vault-cli/1 (authnet) {platform.system()} {platform.release()} "
        f"Python {platform.python_version()}"
    )[:USER_AGENT_MAX]


@dataclass(frozen=True, kw_only=True)
class DeviceRecord:
    """What the device file says about the device, without its keys: enough to
    list, rename, revoke or replace it even when its keys cannot be had."""

    path: Path
    user_id: bytes
    device_id: bytes
    name: str
    server: str
    created_ms: int
    in_keyring: bool = False

    @property
    def ref(self) -> str:
        return enc(self.device_id)


@dataclass(frozen=True, kw_only=True)
class DeviceFile(DeviceRecord):
    """The device with its keys (from the file, or the OS keyring)."""

    keys: dv.DeviceKeys

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": FILE_VERSION,
            "server": self.server,
            "user_id": enc(self.user_id),
            "device_id": enc(self.device_id),
            "name": self.name,
        }
        if self.in_keyring:
            out["keyring"] = True
        else:
            out["device_key"] = enc(self.keys.device_key.private_bytes_raw())
            out["signing_key"] = enc(self.keys.signing_key.private_bytes_raw())
        out["created_ms"] = self.created_ms
        return out


# --- the OS keyring (docs/devices.md 8) -----------------------------------------------

KEYRING_SERVICE = "authnet-vault device"


def keyring_username(user_id: bytes, device_id: bytes) -> str:
    return f"{enc(user_id)}:{enc(device_id)}"


def _keyring_backend() -> Any:
    """The OS keyring's backend, refused (`device_keyring_unavailable`) when
    keyring found none that works (its fail backend, or a chainer of none)."""
    import keyring
    from keyring.backends import chainer, fail

    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring) or (
        isinstance(backend, chainer.ChainerBackend) and not backend.backends
    ):
        raise FactorError(
            f"no usable OS keyring: keyring found no backend that works here "
            f"({type(backend).__module__}.{type(backend).__name__}; for the Secret Service a "
            "D-Bus session with an unlocked keyring such as gnome-keyring is needed)",
            code="device_keyring_unavailable",
        )
    return backend


def _keyring_refused(backend: Any, e: Exception) -> FactorError:
    name = f"{type(backend).__module__}.{type(backend).__name__}"
    return FactorError(
        f"the OS keyring ({name}) cannot be used: {type(e).__name__}: {e}",
        code="device_keyring_unavailable",
    )


def keyring_check() -> None:
    """Refuse early, before registering, when there is no usable keyring."""
    _keyring_backend()


def keyring_store(user_id: bytes, device_id: bytes, device_key: bytes, signing_key: bytes) -> None:
    from keyring.errors import KeyringError

    backend = _keyring_backend()
    secret = json.dumps({"device_key": enc(device_key), "signing_key": enc(signing_key)})
    try:
        backend.set_password(KEYRING_SERVICE, keyring_username(user_id, device_id), secret)
    except (KeyringError, OSError) as e:
        raise _keyring_refused(backend, e) from None


def keyring_read(user_id: bytes, device_id: bytes) -> tuple[bytes, bytes]:
    """(device key, signing key), raw; `device_keyring_missing` when the
    keyring holds no entry for the device. A damaged entry raises ValueError."""
    from keyring.errors import KeyringError

    backend = _keyring_backend()
    try:
        secret = backend.get_password(KEYRING_SERVICE, keyring_username(user_id, device_id))
    except (KeyringError, OSError) as e:
        raise _keyring_refused(backend, e) from None
    if secret is None:
        raise FactorError(
            "the OS keyring holds no key for this device: it was removed, or this is another "
            "login session; revoke the device and register again",
            code="device_keyring_missing",
        )
    d = json.loads(str(secret))
    if not isinstance(d, dict):
        raise ValueError("keyring entry")
    return dec(str(d["device_key"])), dec(str(d["signing_key"]))


def keyring_delete(user_id: bytes, device_id: bytes) -> None:
    from keyring.errors import KeyringError, PasswordDeleteError

    backend = _keyring_backend()
    try:
        backend.delete_password(KEYRING_SERVICE, keyring_username(user_id, device_id))
    except PasswordDeleteError:
        pass  # already gone
    except (KeyringError, OSError) as e:
        raise _keyring_refused(backend, e) from None


# --- the device file ---------------------------------------------------------------------


def _damaged(path: Path) -> FactorError:
    return FactorError(
        f"the device file {path} is damaged; delete it and register again "
        "(`vault device register`)",
        code="device_file_damaged",
    )


def _read(path: Path) -> dict[str, Any] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise FactorError(
            f"cannot read the device file {path}: {e.strerror}", code="device_file_unreadable"
        ) from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise FactorError(
            f"the device file {path} can be read by other users (mode "
            f"{stat.S_IMODE(st.st_mode):o}); refusing to use it: `chmod 600` it, or revoke the "
            "device (`vault device revoke`) if others may have copied it",
            code="device_file_mode",
        )
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError):
        raise _damaged(path) from None
    if not isinstance(d, dict) or d.get("version") != FILE_VERSION:
        raise _damaged(path)
    return d


def load_record(user_id: bytes, folder: Path | None = None) -> DeviceRecord | None:
    """This user's device as its file names it (no keys read), or None when
    there is none. A file that others can read, that is damaged or that names
    another user is refused."""
    path = device_path(user_id, folder)
    d = _read(path)
    if d is None:
        return None
    try:
        owner = dec(str(d["user_id"]))
        device_id = dec(str(d["device_id"]))
        in_keyring = d.get("keyring", False)
        if not isinstance(in_keyring, bool) or len(device_id) == 0:
            raise ValueError("keyring")
        record = DeviceRecord(
            path=path,
            user_id=owner,
            device_id=device_id,
            name=str(d.get("name") or ""),
            server=str(d.get("server") or ""),
            created_ms=int(d.get("created_ms") or 0),
            in_keyring=in_keyring,
        )
    except (ValueError, KeyError, TypeError):
        raise _damaged(path) from None
    if owner != user_id:
        raise FactorError(
            f"the device file {path} belongs to another account (user {short(owner)}); not used",
            code="device_file_other_user",
        )
    return record


def load(user_id: bytes, folder: Path | None = None) -> DeviceFile | None:
    """This user's device with its keys (from the file, or the OS keyring), or
    None when there is none. Besides load_record's refusals, a keyring device
    whose entry is gone (`device_keyring_missing`) or whose keyring cannot be
    used (`device_keyring_unavailable`) is refused."""
    record = load_record(user_id, folder)
    if record is None:
        return None
    try:
        if record.in_keyring:
            device_key, signing_key = keyring_read(record.user_id, record.device_id)
        else:
            d = _read(record.path) or {}
            device_key, signing_key = dec(str(d["device_key"])), dec(str(d["signing_key"]))
        keys = dv.device_from_bytes(record.device_id, device_key, signing_key)
    except (ValueError, KeyError, TypeError, VaultCryptoError):
        if record.in_keyring:
            raise FactorError(
                "the OS keyring's entry for this device is damaged; revoke the device "
                "(`vault device revoke this`) and register again",
                code="device_file_damaged",
            ) from None
        raise _damaged(record.path) from None
    return DeviceFile(**vars(record), keys=keys)


def save(device: DeviceFile) -> None:
    """Atomically, 0600 from its first byte, in a 0700 folder; a keyring
    device's keys go to the OS keyring first, and not into the file."""
    if device.in_keyring:
        keyring_store(
            device.user_id,
            device.device_id,
            device.keys.device_key.private_bytes_raw(),
            device.keys.signing_key.private_bytes_raw(),
        )
    folder = device.path.parent
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".device-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(device.to_json(), f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, device.path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove(device: DeviceRecord) -> None:
    """Delete the device file, and for a keyring device its keyring entry (an
    entry already gone is no error)."""
    try:
        if device.in_keyring:
            keyring_delete(device.user_id, device.device_id)
    finally:
        device.path.unlink(missing_ok=True)


def new_file(
    user_id: bytes,
    *,
    name: str,
    server: str,
    folder: Path | None = None,
    in_keyring: bool = False,
) -> DeviceFile:
    keys = dv.new_device()
    return DeviceFile(
        path=device_path(user_id, folder),
        user_id=user_id,
        device_id=keys.device_id,
        keys=keys,
        name=name,
        server=server,
        created_ms=time.time_ns() // 1_000_000,
        in_keyring=in_keyring,
    )


# --- request bodies (no I/O) -----------------------------------------------------------


def check_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise FactorError(
            f"a device name is 1 to {NAME_MAX} characters, not {len(name)}", code="invalid"
        )
    return name


def registration_body(device: DeviceFile) -> dict[str, Any]:
    k = device.keys
    return {
        "device_id": enc(k.device_id),
        "name": check_name(device.name),
        "user_agent": user_agent(),
        "public_key": enc(k.public_key),
        "signing_key": enc(k.signing_public_key),
        "proof": enc(dv.registration_proof(k, user_id=device.user_id)),
    }


def bypass_wraps(
    *,
    token_factor: bytes,
    private_key: x25519.X25519PrivateKey,
    user_id: bytes,
    keypair_version: int,
    device_id: bytes,
    device_public_key: bytes,
) -> tuple[bytes, bytes]:
    """(device_wrap, sealed_kek) for a device: a fresh DKEK, the account key
    wrapped under KEK_b(T, DKEK), DKEK sealed to the device's key."""
    dkek = dv.new_dkek()
    wrap = dv.make_device_wrap(
        token_factor,
        dkek,
        private_key,
        user_id=user_id,
        device_id=device_id,
        keypair_version=keypair_version,
    )
    sealed = dv.seal_dkek(dkek, user_id=user_id, device_id=device_id, public_key=device_public_key)
    return wrap, sealed


def open_wraps(
    device: DeviceFile,
    answer: Mapping[str, Any],
    *,
    token_factor: bytes,
    public_key: bytes,
) -> x25519.X25519PrivateKey:
    """The account's private key from `POST .../open`'s answer; a wrap that does
    not open is named (device_kek_invalid, device_wrap_invalid, key_mismatch)."""
    try:
        dkek = dv.open_dkek(dec(answer["sealed_kek"]), device.keys, user_id=device.user_id)
        return dv.open_device_wrap(
            token_factor,
            dkek,
            dec(answer["device_wrap"]),
            user_id=device.user_id,
            device_id=device.device_id,
            keypair_version=int(answer["keypair_version"]),
            public_key=public_key,
        )
    except VaultCryptoError as e:
        code = "device_wrap_invalid" if e.code == "malformed_ciphertext" else e.code
        raise FactorError(f"{e.message}", code=code) from None
    except (KeyError, TypeError, ValueError):
        raise FactorError(
            "the vault's answer to the device login is not a device wrap and sealed key",
            code="device_wrap_invalid",
        ) from None


# --- over the API ----------------------------------------------------------------------


async def open_with_device(
    send: Send,
    device: DeviceFile,
    *,
    nonce: bytes,
    token_factor: bytes,
    public_key: bytes,
) -> x25519.X25519PrivateKey:
    """The bypass login (docs/devices.md 4): prove the device with this session's
    nonce, then open the wraps the server releases."""
    proof = dv.login_proof(device.keys, user_id=device.user_id, nonce=nonce)
    try:
        answer = await send("POST", f"/api/me/devices/{device.ref}/open", {"proof": enc(proof)})
    except ApiError as e:
        if e.error in BYPASS_REFUSALS:
            raise FactorError(BYPASS_REFUSALS[e.error], code=e.error) from None
        raise
    return open_wraps(device, answer, token_factor=token_factor, public_key=public_key)


def verify_request(user_id: bytes, r: Mapping[str, Any]) -> str:
    """Check a device request's registration proof (docs/devices.md 5, step 2);
    the fingerprint to show."""
    try:
        device_id, pk, spk = dec(r["device_id"]), dec(r["public_key"]), dec(r["signing_key"])
        message = dv.registration_message(
            user_id=user_id, device_id=device_id, public_key=pk, signing_key=spk
        )
        dv.verify_proof(spk, dec(r["proof"]), message, device_id=device_id)
        return dv.fingerprint(user_id=user_id, device_id=device_id, public_key=pk, signing_key=spk)
    except VaultCryptoError as e:
        raise FactorError(
            f"the device request does not hold up: {e.message}; refuse it", code=e.code
        ) from None
    except (KeyError, TypeError, ValueError):
        raise FactorError(
            "the device request is missing its keys or proof", code="device_proof_invalid"
        ) from None


def fingerprint_of(device: DeviceFile) -> str:
    k = device.keys
    return dv.fingerprint(
        user_id=device.user_id,
        device_id=k.device_id,
        public_key=k.public_key,
        signing_key=k.signing_public_key,
    )
