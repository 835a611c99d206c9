"""The hardener's data directory: configuration, CA, TLS and master key files.

    DIR/hardener.json    configuration (below; no secrets)
    DIR/ca.key, ca.pem   the hardener's own CA (issues caller certificates)
    DIR/server.key/.pem  the TLS server certificate (127.0.0.1 and localhost by default)
    DIR/master.key       the master key (0600) unless it lives in a PKCS#11 token
    DIR/hardener.db      SQLite: callers, sealed key versions, user budgets, attempts, records
    DIR/audit.log        JSON lines: who asked what, and the outcome (never inputs or outputs)
    DIR/serve.lock       held (flock) by the one server serving DIR

Backing up DIR (with the master key or the token) is a complete backup.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from hardener.errors import StoreError
from hardener.masterkey import FileMasterKey, MasterKey, Pkcs11MasterKey

CONFIG = "hardener.json"
FORMAT = 1


@dataclass(frozen=True, kw_only=True)
class Policy:
    """Per-user budget and rate limits (docs/hardener.md, "Limits")."""

    max_failures: int = 10
    # From this many failures on, each evaluation waits backoff_base_ms * 2^(n - backoff_after).
    backoff_after: int = 5
    backoff_base_ms: int = 1000
    backoff_max_ms: int = 60_000
    attempt_ttl_s: int = 600
    caller_rate: float = 20_000.0
    caller_burst: float = 40_000.0
    global_rate: float = 50_000.0
    global_burst: float = 100_000.0


@dataclass(frozen=True, kw_only=True)
class MasterKeyConfig:
    kind: str = "file"  # "file" | "pkcs11"
    path: str = "master.key"
    module: str = ""
    token_label: str = ""
    key_label: str = "hardener-master"
    pin_file: str = ""


@dataclass(frozen=True, kw_only=True)
class Config:
    name: str
    hostnames: tuple[str, ...] = ("127.0.0.1", "localhost")
    master_key: MasterKeyConfig = field(default_factory=MasterKeyConfig)
    policy: Policy = field(default_factory=Policy)
    format: int = FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Config:
        raw: dict[str, Any] = json.loads(text)
        if raw.get("format") != FORMAT:
            raise StoreError(f"unsupported data directory format {raw.get('format')!r}")
        return cls(
            name=str(raw["name"]),
            hostnames=tuple(raw.get("hostnames", ("127.0.0.1", "localhost"))),
            master_key=MasterKeyConfig(**raw.get("master_key", {})),
            policy=Policy(**raw.get("policy", {})),
        )


@dataclass(frozen=True)
class DataDir:
    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.pem"

    @property
    def server_key(self) -> Path:
        return self.root / "server.key"

    @property
    def server_cert(self) -> Path:
        return self.root / "server.pem"

    @property
    def db(self) -> Path:
        return self.root / "hardener.db"

    @property
    def audit_log(self) -> Path:
        return self.root / "audit.log"

    def exists(self) -> bool:
        return self.config_path.exists()

    def config(self) -> Config:
        try:
            return Config.from_json(self.config_path.read_text())
        except FileNotFoundError:
            raise StoreError(
                f"{self.root} is not a hardener data directory (no {CONFIG}): run `hardener init`"
            ) from None
        except (ValueError, KeyError, TypeError) as e:
            raise StoreError(f"{self.config_path} is damaged: {e}") from None

    def write_config(self, config: Config) -> None:
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(config.to_json())
        os.replace(tmp, self.config_path)

    def update_policy(self, **changes: Any) -> Config:
        config = self.config()
        config = replace(config, policy=replace(config.policy, **changes))
        self.write_config(config)
        return config

    def master_key(self, config: Config | None = None) -> MasterKey:
        mk = (config or self.config()).master_key
        if mk.kind == "file":
            path = Path(mk.path)
            return FileMasterKey.load(path if path.is_absolute() else self.root / path)
        if mk.kind == "pkcs11":
            return Pkcs11MasterKey(
                module=mk.module,
                token_label=mk.token_label,
                key_label=mk.key_label,
                pin_file=Path(mk.pin_file) if mk.pin_file else None,
            )
        raise StoreError(f"unknown master key kind {mk.kind!r} in {self.config_path}")
