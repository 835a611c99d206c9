"""What the nodes of a cluster share, and how a new node gets it.

Nodes share no memory: tickets, the mailbox, events and locks are in Redis
(`state_url`), accounts, SPs and data containers in PostgreSQL
(`database_url`). What they must also share lives in files, never in either
database:

    network.key   the master secret (PUID and key-id PRF keys)
    ca.crt        the network CA's certificate (SP client certificates chain to it)
    server.key    the TLS key and certificate of every node's ports, for the
    server.crt    cluster's names (one certificate for all nodes)

`authnet cluster init` makes them on the first machine (with the CA key,
which stays there: SP registration runs where it is), `authnet cluster
bundle` writes a node bundle (one file, 0600, optionally encrypted under a
passphrase with scrypt + AES-256-GCM), and `authnet node join BUNDLE` writes
a new node's data directory from it. The CA key is never in a bundle, so a
node can serve but cannot issue certificates.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from authnet import pki
from authnet.config import ConfigError
from authnet.datadir import DataDir
from authnet.puid import MASTER_SECRET_BYTES

FORMAT = "authnet-node-bundle/1"
ENCRYPTED_FORMAT = "authnet-node-bundle-encrypted/1"
# Files a node needs, by name in the data directory, and whether they are secret.
FILES = {"network.key": True, "ca.crt": False, "server.key": True, "server.crt": False}
# Settings every node of the cluster must agree on (the rest are per node).
SHARED_SETTINGS = (
    "network_name",
    "database_url",
    "state_url",
    "state_prefix",
    "public_host",
    "extra_hostnames",
    "webauthn_rp_id",
)
SCRYPT_N = 2**15
SCRYPT_R = 8
SALT_BYTES = 16
NONCE_BYTES = 12


class BundleError(ConfigError):
    pass


@dataclass(frozen=True, kw_only=True)
class Bundle:
    settings: dict[str, Any]
    files: dict[str, bytes]

    def __repr__(self) -> str:
        return f"Bundle(settings={sorted(self.settings)}, files={sorted(self.files)})"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def make_bundle(data_dir: DataDir, settings: dict[str, Any]) -> Bundle:
    files: dict[str, bytes] = {}
    for name in FILES:
        path = data_dir.path / name
        try:
            files[name] = path.read_bytes()
        except OSError as e:
            raise BundleError(
                f"cannot read {path}: {e.strerror}; run `authnet cluster init` first"
            ) from None
    shared = {k: settings[k] for k in SHARED_SETTINGS if k in settings}
    return Bundle(settings=shared, files=files)


def _key(passphrase: str, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=1).derive(passphrase.encode())


def encode(bundle: Bundle, passphrase: str | None) -> bytes:
    """The bundle file: JSON, or (with a passphrase) JSON around AES-256-GCM of
    it under a scrypt key, the format label as associated data."""
    plain = json.dumps(
        {
            "format": FORMAT,
            "settings": bundle.settings,
            "files": {k: _b64(v) for k, v in bundle.files.items()},
        },
        indent=1,
    ).encode()
    if not passphrase:
        return plain
    salt, nonce = secrets.token_bytes(SALT_BYTES), secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(_key(passphrase, salt)).encrypt(nonce, plain, ENCRYPTED_FORMAT.encode())
    return json.dumps(
        {
            "format": ENCRYPTED_FORMAT,
            "kdf": {"name": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": 1, "salt": _b64(salt)},
            "nonce": _b64(nonce),
            "ciphertext": _b64(sealed),
        }
    ).encode()


def is_encrypted(raw: bytes) -> bool:
    try:
        return bool(json.loads(raw).get("format") == ENCRYPTED_FORMAT)
    except (ValueError, AttributeError):
        return False


def decode(raw: bytes, passphrase: str | None) -> Bundle:
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict):
            raise ValueError
    except ValueError:
        raise BundleError(
            "not a node bundle (not JSON): make one with `authnet cluster bundle`"
        ) from None
    if doc.get("format") == ENCRYPTED_FORMAT:
        if not passphrase:
            raise BundleError("this bundle is encrypted: set AUTHNET_BUNDLE_PASSPHRASE")
        try:
            kdf = doc["kdf"]
            if (kdf["name"], kdf["n"], kdf["r"], kdf["p"]) != ("scrypt", SCRYPT_N, SCRYPT_R, 1):
                raise BundleError("the bundle's key derivation is not one this version knows")
            key = _key(passphrase, base64.b64decode(kdf["salt"]))
            raw = AESGCM(key).decrypt(
                base64.b64decode(doc["nonce"]),
                base64.b64decode(doc["ciphertext"]),
                ENCRYPTED_FORMAT.encode(),
            )
            doc = json.loads(raw)
        except InvalidTag:
            raise BundleError("wrong passphrase, or the bundle was altered") from None
        except (KeyError, TypeError, ValueError):
            raise BundleError("the encrypted bundle is damaged") from None
    if doc.get("format") != FORMAT:
        raise BundleError(f"unknown bundle format {str(doc.get('format'))[:40]!r}")
    try:
        files = {k: base64.b64decode(doc["files"][k], validate=True) for k in FILES}
        settings = dict(doc["settings"])
    except (KeyError, TypeError, ValueError):
        raise BundleError("the bundle lacks a file or its settings: make a new one") from None
    if len(files["network.key"]) != MASTER_SECRET_BYTES:
        raise BundleError("the bundle's network.key has the wrong size")
    unknown = set(settings) - set(SHARED_SETTINGS)
    if unknown:
        raise BundleError(f"the bundle has unknown settings: {', '.join(sorted(unknown))}")
    return Bundle(settings=settings, files=files)


def _toml_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(json.dumps(str(v)) for v in value) + "]"
    return json.dumps(value)


def write_settings(path: Path, settings: dict[str, Any], *, extra: dict[str, Any]) -> None:
    """authnet.toml for a node: the cluster's shared settings, then its own."""
    lines = ["# Written by `authnet cluster init` / `authnet node join`.", ""]
    for key, value in {**settings, **extra}.items():
        if value not in (None, "", ()):
            lines.append(f"{key} = {_toml_value(value)}")
    path.write_text("\n".join(lines) + "\n")


def join(bundle: Bundle, data_dir: DataDir, *, node_settings: dict[str, Any]) -> list[str]:
    """Write a new node's data directory from a bundle. Refuses to overwrite a
    data directory of another network (another master secret)."""
    path = data_dir.path
    existing = data_dir.master_secret_path
    if existing.exists() and not secrets.compare_digest(
        existing.read_bytes(), bundle.files["network.key"]
    ):
        raise BundleError(
            f"{path} already holds another network's master secret: use an empty data directory"
        )
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    written = []
    for name, secret in FILES.items():
        target = path / name
        if secret:
            pki.write_private(target, bundle.files[name])
        else:
            target.write_bytes(bundle.files[name])
        written.append(str(target))
    settings_path = path / "authnet.toml"
    write_settings(settings_path, bundle.settings, extra=node_settings)
    written.append(str(settings_path))
    return written
