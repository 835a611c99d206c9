"""Small helpers of the key proxy's tests."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from keyproxy.grants import b64u


def deposit(url: str, blob: bytes, ttl: int = 600, **extra: Any) -> httpx.Response:
    return httpx.post(f"{url}/v1/deposits", json={"blob": b64u(blob), "ttl_seconds": ttl, **extra})


def secret_condition() -> tuple[bytes, dict[str, str]]:
    s = secrets.token_bytes(32)
    return s, {"kind": "secret", "hash": b64u(hashlib.sha256(s).digest())}


def issuer_key() -> tuple[ed25519.Ed25519PrivateKey, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return key, b64u(pub)
