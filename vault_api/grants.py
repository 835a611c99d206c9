"""Claim grants for the one-time key proxy (docs/devices.md 5, docs/keyproxy.md).

An approval's deposit at the proxy carries two conditions: the claim secret
(only device B holds it) and a grant by this vault that the claimer is a
logged-in session of the account (issuer "vault", subject the user id). The
vault signs grants with an Ed25519 issuer key kept in its data directory
(`keyproxy-issuer.key`, mode 0600, made on first use); the proxy's operator
registers its public key (`vault-api keyproxy-issuer` prints it):

    keyproxy issuer add vault --public-key <base64url>

The signature format is keyproxy.grants.sign_grant's. The vault imports only
the proxy's client libraries (keyproxy.grants here, keyproxy.client in the
CLI), never its server.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.asymmetric import ed25519

from authnet.protocol.encoding import b64u_encode
from keyproxy.grants import sign_grant

ISSUER: Final = "vault"
KEY_FILE: Final = "keyproxy-issuer.key"
KEY_BYTES: Final = 32


class IssuerKeyError(RuntimeError):
    """The issuer key file is unusable (wrong size, or readable by others)."""


def key_path(data_dir: Path) -> Path:
    return data_dir / KEY_FILE


def issuer_key(data_dir: Path) -> ed25519.Ed25519PrivateKey:
    """The vault's issuer key, made (mode 0600) if there is none yet."""
    path = key_path(data_dir)
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        raw = ed25519.Ed25519PrivateKey.generate().private_bytes_raw()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first: read that one
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(raw)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise IssuerKeyError(
            f"{path} is readable by others (mode {mode:o}); chmod 600 it, it signs claim grants"
        )
    raw = path.read_bytes()
    if len(raw) != KEY_BYTES:
        raise IssuerKeyError(f"{path} must hold a raw {KEY_BYTES}-byte Ed25519 private key")
    return ed25519.Ed25519PrivateKey.from_private_bytes(raw)


def issuer_public_key(data_dir: Path) -> str:
    """The issuer's public key, base64url, for `keyproxy issuer add vault --public-key`."""
    return b64u_encode(issuer_key(data_dir).public_key().public_bytes_raw())


def grant(
    key: ed25519.Ed25519PrivateKey, *, user_id: bytes, token_hash: str, expires_ms: int
) -> bytes:
    """A grant that a session of account `user_id` may claim the deposit whose
    token hashes to `token_hash` (base64url of SHA-256), until `expires_ms`."""
    return sign_grant(
        key, issuer=ISSUER, subject=b64u_encode(user_id), token=token_hash, expires_ms=expires_ms
    )
