"""Directory on SQLAlchemy Core, on SQLite (the embedded default) or PostgreSQL.

Each operation is written once, as a function of a synchronous `Connection`
(`_get_sp`, `_revoke_token`, ...); the backend (`authnet.directory.backends`)
runs it inline on SQLite, or through an asyncio engine and a pool on
PostgreSQL. The schema is created and upgraded only by the Alembic migrations
in `authnet/migrations`; `METADATA` mirrors it for queries, and a test checks
the two agree on both databases.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from authnet.directory import DataContainer, ServiceProvider, SpCertificate, TokenRecord
from authnet.directory.backends import (
    Backend,
    PoolOptions,
    PostgresBackend,
    SqliteBackend,
    is_postgres,
    make_engine,
)
from authnet.errors import LastToken, MalformedInput, VersionConflict

__all__ = ["METADATA", "PoolOptions", "SqlDirectory", "make_engine", "sqlite_url"]

METADATA = sa.MetaData()

service_providers = sa.Table(
    "service_providers",
    METADATA,
    sa.Column("spid", sa.LargeBinary(16), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("display_name", sa.String(128), nullable=False),
    sa.Column("origins", sa.Text, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("disabled_ms", sa.BigInteger, nullable=True),
)

sp_certificates = sa.Table(
    "sp_certificates",
    METADATA,
    sa.Column("fingerprint", sa.LargeBinary(32), primary_key=True),
    sa.Column(
        "spid",
        sa.LargeBinary(16),
        sa.ForeignKey("service_providers.spid"),
        nullable=False,
        index=True,
    ),
    sa.Column("serial", sa.String(64), nullable=False),
    sa.Column("not_after_ms", sa.BigInteger, nullable=False),
    sa.Column("revoked_ms", sa.BigInteger, nullable=True),
)

accounts = sa.Table(
    "accounts",
    METADATA,
    sa.Column("user_id", sa.LargeBinary(16), primary_key=True),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
)

tokens = sa.Table(
    "tokens",
    METADATA,
    sa.Column("token_id", sa.LargeBinary(16), primary_key=True),
    sa.Column(
        "user_id", sa.LargeBinary(16), sa.ForeignKey("accounts.user_id"), nullable=False, index=True
    ),
    sa.Column("kind", sa.Integer, nullable=False),
    sa.Column("algorithm", sa.Integer, nullable=False),
    sa.Column("public_key", sa.LargeBinary, nullable=False, unique=True),
    sa.Column("label", sa.String(64), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("revoked_ms", sa.BigInteger, nullable=True),
    sa.Column("last_used_ms", sa.BigInteger, nullable=True),
    sa.Column("sign_count", sa.BigInteger, nullable=False, server_default="0"),
    # FIDO2 tokens: the credential id (inside public_key), for browser-native logins.
    sa.Column("credential_id", sa.LargeBinary, nullable=True),
    sa.Index("ix_tokens_credential_id", "credential_id", unique=True),
)

data_containers = sa.Table(
    "data_containers",
    METADATA,
    sa.Column(
        "spid", sa.LargeBinary(16), sa.ForeignKey("service_providers.spid"), primary_key=True
    ),
    sa.Column("user_id", sa.LargeBinary(16), sa.ForeignKey("accounts.user_id"), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
)

# last_used_ms is advisory; writing it at most once a minute per token keeps
# the login path free of a write per login.
TOUCH_GRANULARITY_MS = 60_000


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _sp(row: Row[Any]) -> ServiceProvider:
    return ServiceProvider(
        spid=row.spid,
        name=row.name,
        display_name=row.display_name,
        origins=tuple(json.loads(row.origins)),
        created_ms=row.created_ms,
        disabled_ms=row.disabled_ms,
    )


def _cert(row: Row[Any]) -> SpCertificate:
    return SpCertificate(
        fingerprint=row.fingerprint,
        spid=row.spid,
        serial=int(row.serial),
        not_after_ms=row.not_after_ms,
        revoked_ms=row.revoked_ms,
    )


def _token(row: Row[Any]) -> TokenRecord:
    return TokenRecord(
        token_id=row.token_id,
        user_id=row.user_id,
        kind=row.kind,
        algorithm=row.algorithm,
        public_key=row.public_key,
        label=row.label,
        created_ms=row.created_ms,
        revoked_ms=row.revoked_ms,
        last_used_ms=row.last_used_ms,
        sign_count=row.sign_count,
        credential_id=row.credential_id,
    )


# The login path's statements, run by the backend as hot statements.
_TOKEN_FIELDS = tuple(tokens.columns.keys())
TOKEN_BY_ID = tokens.select().where(tokens.c.token_id == sa.bindparam("token_id"))
TOUCH_TOKEN = (
    tokens.update()
    .where(tokens.c.token_id == sa.bindparam("token_id"))
    .where(
        sa.or_(
            tokens.c.last_used_ms.is_(None),
            tokens.c.last_used_ms < sa.bindparam("stale_before"),
        )
    )
    .values(last_used_ms=sa.bindparam("used_ms"))
)
TOKEN_BY_CREDENTIAL = tokens.select().where(tokens.c.credential_id == sa.bindparam("credential_id"))
# Forward only, or 0 while both are 0 (the authenticator keeps no counter).
ADVANCE_SIGN_COUNT = (
    tokens.update()
    .where(tokens.c.token_id == sa.bindparam("token_id"))
    .where(
        sa.or_(
            tokens.c.sign_count < sa.bindparam("count"),
            sa.and_(tokens.c.sign_count == 0, sa.bindparam("count", type_=sa.BigInteger) == 0),
        )
    )
    .values(sign_count=sa.bindparam("count"))
)


# --- the operations, each a function of a connection ---------------------------


def _add_sp(c: Connection, sp: ServiceProvider) -> None:
    c.execute(
        service_providers.insert().values(
            spid=sp.spid,
            name=sp.name,
            display_name=sp.display_name,
            origins=json.dumps(list(sp.origins)),
            created_ms=sp.created_ms,
            disabled_ms=sp.disabled_ms,
        )
    )


def _get_sp(c: Connection, where: Any) -> ServiceProvider | None:
    row = c.execute(service_providers.select().where(where)).first()
    return _sp(row) if row else None


def _list_sps(c: Connection) -> list[ServiceProvider]:
    rows = c.execute(service_providers.select().order_by(service_providers.c.created_ms))
    return [_sp(r) for r in rows]


def _set_sp_disabled(c: Connection, spid: bytes, disabled_ms: int | None) -> None:
    c.execute(
        service_providers.update()
        .where(service_providers.c.spid == spid)
        .values(disabled_ms=disabled_ms)
    )


def _add_sp_certificate(c: Connection, cert: SpCertificate) -> None:
    c.execute(
        sp_certificates.insert().values(
            fingerprint=cert.fingerprint,
            spid=cert.spid,
            serial=str(cert.serial),
            not_after_ms=cert.not_after_ms,
            revoked_ms=cert.revoked_ms,
        )
    )


def _sp_for_certificate(
    c: Connection, fingerprint: bytes
) -> tuple[ServiceProvider, SpCertificate] | None:
    row = c.execute(
        sa.select(sp_certificates, service_providers)
        .join(service_providers, service_providers.c.spid == sp_certificates.c.spid)
        .where(sp_certificates.c.fingerprint == fingerprint)
    ).first()
    return (_sp(row), _cert(row)) if row else None


def _list_sp_certificates(c: Connection, spid: bytes) -> list[SpCertificate]:
    rows = c.execute(sp_certificates.select().where(sp_certificates.c.spid == spid))
    return [_cert(r) for r in rows]


def _revoke_sp_certificate(c: Connection, fingerprint: bytes, revoked_ms: int) -> bool:
    res = c.execute(
        sp_certificates.update()
        .where(sp_certificates.c.fingerprint == fingerprint)
        .where(sp_certificates.c.revoked_ms.is_(None))
        .values(revoked_ms=revoked_ms)
    )
    return bool(res.rowcount)


def _insert_token(c: Connection, t: TokenRecord) -> None:
    try:
        c.execute(
            tokens.insert().values(
                token_id=t.token_id,
                user_id=t.user_id,
                kind=t.kind,
                algorithm=t.algorithm,
                public_key=t.public_key,
                label=t.label,
                created_ms=t.created_ms,
                sign_count=t.sign_count,
                credential_id=t.credential_id,
            )
        )
    except sa.exc.IntegrityError:
        raise MalformedInput("this public key is already enrolled") from None


def _create_account(c: Connection, user_id: bytes, first_token: TokenRecord, now_ms: int) -> None:
    c.execute(accounts.insert().values(user_id=user_id, created_ms=now_ms))
    _insert_token(c, first_token)


def _list_tokens(c: Connection, user_id: bytes) -> list[TokenRecord]:
    rows = c.execute(
        tokens.select().where(tokens.c.user_id == user_id).order_by(tokens.c.created_ms)
    )
    return [_token(r) for r in rows]


def _revoke_token(c: Connection, token_id: bytes, revoked_ms: int) -> None:
    row = c.execute(tokens.select().where(tokens.c.token_id == token_id)).first()
    if row is None or row.revoked_ms is not None:
        return
    # Two revocations of an account's last two tokens must not both see the
    # other one active: on PostgreSQL the account row is locked until commit
    # (SQLite has one writer at a time, and renders no FOR UPDATE).
    c.execute(
        sa.select(accounts.c.user_id).where(accounts.c.user_id == row.user_id).with_for_update()
    )
    active = c.execute(
        sa.select(sa.func.count())
        .select_from(tokens)
        .where(tokens.c.user_id == row.user_id)
        .where(tokens.c.revoked_ms.is_(None))
    ).scalar_one()
    if active <= 1:
        raise LastToken()
    c.execute(
        tokens.update()
        .where(tokens.c.token_id == token_id)
        .where(tokens.c.revoked_ms.is_(None))
        .values(revoked_ms=revoked_ms)
    )


def _container_where(spid: bytes, user_id: bytes, name: str) -> Any:
    return sa.and_(
        data_containers.c.spid == spid,
        data_containers.c.user_id == user_id,
        data_containers.c.name == name,
    )


def _read_data(c: Connection, spid: bytes, user_id: bytes, name: str) -> DataContainer:
    row = c.execute(
        sa.select(data_containers.c.data, data_containers.c.version).where(
            _container_where(spid, user_id, name)
        )
    ).first()
    if row is None:
        return DataContainer(data=b"", version=0)
    return DataContainer(data=row.data, version=row.version)


def _write_data(
    c: Connection,
    spid: bytes,
    user_id: bytes,
    name: str,
    data: bytes,
    expected_version: int,
    now_ms: int,
) -> bool:
    """Whether the compare-and-set took. A racing first write raises
    IntegrityError (the primary key), out of the aborted transaction."""
    if expected_version == 0:
        c.execute(
            data_containers.insert().values(
                spid=spid, user_id=user_id, name=name, version=1, data=data, updated_ms=now_ms
            )
        )
        return True
    res = c.execute(
        data_containers.update()
        .where(_container_where(spid, user_id, name))
        .where(data_containers.c.version == expected_version)
        .values(version=expected_version + 1, data=data, updated_ms=now_ms)
    )
    return res.rowcount == 1


class SqlDirectory:
    def __init__(self, backend: Backend) -> None:
        self._db = backend
        # The login path reads one token row twice per login (a WebAuthn login
        # finds it by credential id and advances its counter), and now and
        # then writes its last-used time: one round trip each (see backends).
        self._token_by_id = backend.hot(TOKEN_BY_ID, idempotent=True)
        self._token_by_credential = backend.hot(TOKEN_BY_CREDENTIAL, idempotent=True)
        self._touch = backend.hot(TOUCH_TOKEN, idempotent=True)
        # Not idempotent: run twice, the second finds the count not advanced.
        self._advance = backend.hot(ADVANCE_SIGN_COUNT, idempotent=False)
        # When each token's last_used_ms was last written, so the login path
        # writes it at most once per TOUCH_GRANULARITY_MS.
        self._touched: dict[bytes, int] = {}

    @classmethod
    def open(cls, url: str, options: PoolOptions | None = None) -> SqlDirectory:
        """Open a database already migrated to head (see authnet.migrations.upgrade):
        `sqlite:///path`, or `postgresql://user@host:port/db` (any PostgreSQL
        driver named in the URL; the directory runs on asyncpg), with `options`
        sizing the PostgreSQL pool."""
        if is_postgres(url):
            return cls(PostgresBackend(url, options or PoolOptions()))
        return cls(SqliteBackend(make_engine(url)))

    @property
    def dialect(self) -> str:
        """ "sqlite" or "postgresql"."""
        return self._db.dialect

    @property
    def engine(self) -> Engine:
        """A synchronous engine on the same database, for inspection and tests
        (on PostgreSQL, not the one the directory's calls go through)."""
        return self._db.sync_engine()

    async def ping(self) -> bool:
        """Whether the database answers now (health checks)."""
        return await self._db.ping()

    # --- service providers ----------------------------------------------------

    async def add_sp(self, sp: ServiceProvider) -> None:
        await self._db.write(_add_sp, sp)

    async def get_sp(self, spid: bytes) -> ServiceProvider | None:
        return await self._db.read(_get_sp, service_providers.c.spid == spid)

    async def find_sp(self, name: str) -> ServiceProvider | None:
        return await self._db.read(_get_sp, service_providers.c.name == name)

    async def list_sps(self) -> list[ServiceProvider]:
        return await self._db.read(_list_sps)

    async def set_sp_disabled(self, spid: bytes, disabled_ms: int | None) -> None:
        await self._db.write(_set_sp_disabled, spid, disabled_ms)

    async def add_sp_certificate(self, cert: SpCertificate) -> None:
        await self._db.write(_add_sp_certificate, cert)

    async def sp_for_certificate(
        self, fingerprint: bytes
    ) -> tuple[ServiceProvider, SpCertificate] | None:
        return await self._db.read(_sp_for_certificate, fingerprint)

    async def list_sp_certificates(self, spid: bytes) -> list[SpCertificate]:
        return await self._db.read(_list_sp_certificates, spid)

    async def revoke_sp_certificate(self, fingerprint: bytes, revoked_ms: int) -> bool:
        return await self._db.write(_revoke_sp_certificate, fingerprint, revoked_ms)

    # --- accounts and tokens --------------------------------------------------

    async def create_account(self, user_id: bytes, first_token: TokenRecord, now_ms: int) -> None:
        await self._db.write(_create_account, user_id, first_token, now_ms)

    async def add_token(self, token: TokenRecord) -> None:
        await self._db.write(_insert_token, token)

    async def get_token(self, token_id: bytes) -> TokenRecord | None:
        raw = await self._token_by_id.fetchrow(token_id=token_id)
        if raw is None:
            return None
        return TokenRecord(**dict(zip(_TOKEN_FIELDS, raw, strict=True)))

    async def token_for_credential(self, credential_id: bytes) -> TokenRecord | None:
        raw = await self._token_by_credential.fetchrow(credential_id=credential_id)
        if raw is None:
            return None
        return TokenRecord(**dict(zip(_TOKEN_FIELDS, raw, strict=True)))

    async def list_tokens(self, user_id: bytes) -> list[TokenRecord]:
        return await self._db.read(_list_tokens, user_id)

    async def revoke_token(self, token_id: bytes, revoked_ms: int) -> None:
        await self._db.write(_revoke_token, token_id, revoked_ms)

    async def advance_sign_count(self, token_id: bytes, count: int) -> bool:
        """Store a FIDO2 authenticator's new signature counter if it moved
        forward (or both are 0: the authenticator keeps none). False when it did
        not: the credential may have been cloned."""
        return bool(await self._advance.execute(token_id=token_id, count=count))

    async def touch_token(self, token_id: bytes, used_ms: int) -> None:
        if used_ms - self._touched.get(token_id, -TOUCH_GRANULARITY_MS) < TOUCH_GRANULARITY_MS:
            return
        if len(self._touched) > 100_000:
            self._touched.clear()
        self._touched[token_id] = used_ms
        await self._touch.execute(
            token_id=token_id, used_ms=used_ms, stale_before=used_ms - TOUCH_GRANULARITY_MS
        )

    # --- data containers ------------------------------------------------------

    async def read_data(self, spid: bytes, user_id: bytes, name: str) -> DataContainer:
        return await self._db.read(_read_data, spid, user_id, name)

    async def write_data(
        self,
        spid: bytes,
        user_id: bytes,
        name: str,
        data: bytes,
        expected_version: int,
        now_ms: int,
    ) -> int:
        try:
            if await self._db.write(
                _write_data, spid, user_id, name, data, expected_version, now_ms
            ):
                return expected_version + 1
        except sa.exc.IntegrityError:
            pass  # someone else wrote version 1 first
        current = (await self.read_data(spid, user_id, name)).version
        raise VersionConflict(
            f"container is at version {current}, not {expected_version}: read it again",
            current_version=current,
        )

    async def close(self) -> None:
        await self._db.close()
