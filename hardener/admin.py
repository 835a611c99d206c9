"""Operator actions on a data directory (what the `hardener` CLI runs).

Each action opens its own connection and commits one transaction, bumping
the generation a running server polls, so it takes effect without a
restart. Every action is written to the audit log with actor `operator`.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hardener import keys as keyring
from hardener.audit import AuditLog
from hardener.credentials import CallerCredentials
from hardener.datadir import Config, DataDir, MasterKeyConfig, Policy
from hardener.errors import HardenerError, StoreError
from hardener.masterkey import FileMasterKey, MasterKey, Pkcs11MasterKey
from hardener.pki import (
    CertificateAuthority,
    cert_pem,
    check_caller_name,
    fingerprint,
    key_pem,
    write_private,
)
from hardener.store import CallerRow, Store


@dataclass(frozen=True, kw_only=True)
class Pkcs11Options:
    module: str
    token_label: str
    pin_file: Path | None = None


def init(
    root: Path,
    *,
    name: str = "hardener",
    hostnames: tuple[str, ...] = ("127.0.0.1", "localhost"),
    pkcs11: Pkcs11Options | None = None,
    key_file: Path | None = None,
    policy: Policy | None = None,
) -> Config:
    """Create a data directory: CA, server certificate, master key, database, key version 1."""
    data = DataDir(root)
    if data.exists():
        raise StoreError(f"{root} is already a hardener data directory")
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    master: MasterKey
    if pkcs11 is not None:
        master = Pkcs11MasterKey.create(
            module=pkcs11.module, token_label=pkcs11.token_label, pin_file=pkcs11.pin_file
        )
        mk = MasterKeyConfig(
            kind="pkcs11",
            module=pkcs11.module,
            token_label=pkcs11.token_label,
            pin_file=str(pkcs11.pin_file) if pkcs11.pin_file else "",
        )
    else:
        path = key_file or root / "master.key"
        master = FileMasterKey.create(path)
        mk = MasterKeyConfig(
            kind="file", path=path.name if path.parent == root else str(path.resolve())
        )
    ca = CertificateAuthority.create(name)
    ca.save(data.ca_key, data.ca_cert)
    skey, scert = ca.issue_server(list(hostnames))
    write_private(data.server_key, key_pem(skey))
    data.server_cert.write_bytes(cert_pem(scert))
    config = Config(name=name, hostnames=hostnames, master_key=mk, policy=policy or Policy())
    store = Store(data.db, create=True)
    try:
        with store.transaction():
            keyring.new_version(store, master)
        keyring.attempt_key(store, master)
    finally:
        store.close()
        close = getattr(master, "close", None)
        if close is not None:
            close()
    data.write_config(config)
    _audit(data, "init", detail_version=1)
    return config


def _audit(data: DataDir, operation: str, **fields: object) -> None:
    log = AuditLog(data.audit_log)
    try:
        log.write(
            operation=operation,
            caller=str(fields.get("caller", "-")),
            user_id=fields.get("user_id"),  # type: ignore[arg-type]
            key_version=fields.get("detail_version"),  # type: ignore[arg-type]
            outcome=str(fields.get("outcome", "ok")),
            actor="operator",
        )
    finally:
        log.close()


@contextmanager
def _store(root: Path) -> Iterator[tuple[DataDir, Store]]:
    data = DataDir(root)
    data.config()
    store = Store(data.db)
    try:
        yield data, store
    finally:
        store.close()


def add_caller(root: Path, name: str, out: Path | None = None) -> CallerCredentials:
    """Register caller `name` (or give it one more certificate) and issue its credentials."""
    check_caller_name(name)
    with _store(root) as (data, store):
        existing = store.caller(name)
        if existing is not None and existing.revoked_at is not None:
            raise HardenerError(f"caller {name!r} is revoked; choose another name")
        ca = CertificateAuthority.load(data.ca_key, data.ca_cert)
        key, cert = ca.issue_caller(name)
        now = time.time()
        with store.transaction():
            store.add_caller(name, now)
            store.add_certificate(
                fingerprint=fingerprint(cert),
                caller=name,
                serial=cert.serial_number,
                not_after=cert.not_valid_after_utc.timestamp(),
                now=now,
            )
        creds = CallerCredentials(
            name=name,
            ca_pem=cert_pem(ca.cert),
            certificate_pem=cert_pem(cert),
            key_pem=key_pem(key),
        )
        if out is not None:
            creds.save(out)
        _audit(data, "caller_add", caller=name)
        return creds


def list_callers(root: Path) -> list[CallerRow]:
    with _store(root) as (_, store):
        return store.callers()


def revoke_caller(root: Path, name: str) -> None:
    with _store(root) as (data, store):
        with store.transaction():
            if not store.revoke_caller(name, time.time()):
                known = store.caller(name)
                raise HardenerError(
                    f"caller {name!r} is already revoked"
                    if known
                    else f"no caller {name!r} (see `hardener caller list`)"
                )
        _audit(data, "caller_revoke", caller=name)


def rotate(root: Path, master: MasterKey | None = None) -> int:
    with _store(root) as (data, store):
        mk = master or data.master_key()
        try:
            with store.transaction():
                version = keyring.new_version(store, mk)
        finally:
            if master is None:
                close = getattr(mk, "close", None)
                if close is not None:
                    close()
        _audit(data, "rotate", detail_version=version)
        return version


def status(root: Path) -> list[keyring.VersionStatus]:
    with _store(root) as (_, store):
        return keyring.status(store)


def retire(root: Path, version: int, *, force: bool = False) -> None:
    with _store(root) as (data, store):
        with store.transaction():
            keyring.retire(store, version, force=force)
        _audit(data, "retire_forced" if force else "retire", detail_version=version)


def unlock(root: Path, caller: str, user_id: str, *, forget_key: bool = False) -> None:
    """The recovery step: reset a locked user's count (and optionally its success key)."""
    with _store(root) as (data, store):
        with store.transaction():
            if not store.reset_user(caller, user_id):
                raise HardenerError(f"caller {caller!r} has no user {user_id!r} at this hardener")
            if forget_key:
                store.forget_success_key(caller, user_id)
        _audit(
            data, "unlock_forget_key" if forget_key else "unlock", caller=caller, user_id=user_id
        )


BACKUP_FILES = ("hardener.json", "ca.key", "ca.pem", "server.key", "server.pem", "audit.log")


def backup(root: Path, out: Path, *, include_master_key: bool = False) -> list[Path]:
    """A consistent copy of the data directory (the database through SQLite's
    backup API, so a serving hardener need not stop), without the master key
    unless asked: keep that apart from the copies of the data."""
    data = DataDir(root)
    config = data.config()
    if out.exists():
        raise HardenerError(f"{out} exists: give a new directory for the backup")
    out.mkdir(parents=True, mode=0o700)
    written: list[Path] = []
    for name in BACKUP_FILES:
        src = root / name
        if src.exists():
            dst = out / name
            write_private(dst, src.read_bytes())
            written.append(dst)
    dst_db = out / data.db.name
    os.close(os.open(dst_db, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    src_conn = sqlite3.connect(data.db)
    dst_conn = sqlite3.connect(dst_db)
    try:
        src_conn.backup(dst_conn)
    finally:
        dst_conn.close()
        src_conn.close()
    written.append(dst_db)
    if include_master_key:
        if config.master_key.kind != "file":
            raise HardenerError("the master key is in a PKCS#11 token: back the token up instead")
        key = Path(config.master_key.path)
        key = key if key.is_absolute() else root / key
        write_private(out / key.name, key.read_bytes())
        written.append(out / key.name)
    _audit(data, "backup")
    return written
