"""The grant issuers an operator registered (`keyproxy issuer add`): a JSON
file `issuers.json` in the data directory, name -> Ed25519 public key."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Final

from keyproxy import grants

FILE: Final = "issuers.json"
NAME_RE: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class IssuerError(ValueError):
    pass


def path(data_dir: Path) -> Path:
    return data_dir / FILE


def load(data_dir: Path) -> dict[str, bytes]:
    p = path(data_dir)
    if not p.exists():
        return {}
    raw = json.loads(p.read_text())
    return {name: grants.unb64u(key) for name, key in raw.items()}


def _save(data_dir: Path, issuers: dict[str, bytes]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path(data_dir).with_suffix(".tmp")
    tmp.write_text(json.dumps({n: grants.b64u(k) for n, k in sorted(issuers.items())}, indent=1))
    os.replace(tmp, path(data_dir))


def add(data_dir: Path, name: str, public_key: str) -> None:
    if not NAME_RE.match(name):
        raise IssuerError("an issuer name is 1-64 of a-z 0-9 . _ - starting with a letter or digit")
    try:
        key = grants.unb64u(public_key.strip())
    except ValueError:
        raise IssuerError("the public key is not unpadded base64url") from None
    if len(key) != 32:
        raise IssuerError(f"an Ed25519 public key is 32 bytes, got {len(key)}")
    issuers = load(data_dir)
    issuers[name] = key
    _save(data_dir, issuers)


def remove(data_dir: Path, name: str) -> bool:
    issuers = load(data_dir)
    if issuers.pop(name, None) is None:
        return False
    _save(data_dir, issuers)
    return True
