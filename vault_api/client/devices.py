"""The CLI as a registered device (docs/devices.md 8): its device file, and the
client's side of registration, the bypass and opening the keys with it.

**The device file** `<config dir>/device-<user id, base64url>.json` holds the
device id and its two private keys (X25519 device key, Ed25519 signing key,
raw, base64url). The config dir is `$VAULT_CONFIG_DIR`, else
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
class DeviceFile:
    """What the device file holds: whose device it is, and its keys."""

    path: Path
    user_id: bytes
    keys: dv.DeviceKeys
    name: str
    server: str
    created_ms: int

    @property
    def device_id(self) -> bytes:
        return self.keys.device_id

    @property
    def ref(self) -> str:
        return enc(self.keys.device_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": FILE_VERSION,
            "server": self.server,
            "user_id": enc(self.user_id),
            "device_id": enc(self.keys.device_id),
            "name": self.name,
            "device_key": enc(self.keys.device_key.private_bytes_raw()),
            "signing_key": enc(self.keys.signing_key.private_bytes_raw()),
            "created_ms": self.created_ms,
        }


def load(user_id: bytes, folder: Path | None = None) -> DeviceFile | None:
    """This user's device file, or None when there is none. A file that others
    can read, that is damaged or that names another user is refused."""
    path = device_path(user_id, folder)
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
        if not isinstance(d, dict) or d.get("version") != FILE_VERSION:
            raise ValueError("version")
        owner = dec(str(d["user_id"]))
        keys = dv.device_from_bytes(
            dec(str(d["device_id"])), dec(str(d["device_key"])), dec(str(d["signing_key"]))
        )
    except (OSError, ValueError, KeyError, TypeError, VaultCryptoError):
        raise FactorError(
            f"the device file {path} is damaged; delete it and register again "
            "(`vault device register`)",
            code="device_file_damaged",
        ) from None
    if owner != user_id:
        raise FactorError(
            f"the device file {path} belongs to another account (user {short(owner)}); not used",
            code="device_file_other_user",
        )
    return DeviceFile(
        path=path,
        user_id=owner,
        keys=keys,
        name=str(d.get("name") or ""),
        server=str(d.get("server") or ""),
        created_ms=int(d.get("created_ms") or 0),
    )


def save(device: DeviceFile) -> None:
    """Atomically, 0600 from its first byte, in a 0700 folder."""
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


def remove(device: DeviceFile) -> None:
    device.path.unlink(missing_ok=True)


def new_file(user_id: bytes, *, name: str, server: str, folder: Path | None = None) -> DeviceFile:
    return DeviceFile(
        path=device_path(user_id, folder),
        user_id=user_id,
        keys=dv.new_device(),
        name=name,
        server=server,
        created_ms=time.time_ns() // 1_000_000,
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
