"""Directory on SQLAlchemy Core. SQLite is the embedded default.

SQLite statements here take tens of microseconds, so they run inline on the
event loop rather than hopping to a thread (which would cost more than the
query). A server-database implementation (PostgreSQL) would use an async
driver behind the same interface. The schema is created and upgraded only by
the Alembic migrations in `authnet/migrations`; `METADATA` mirrors it for
queries, and a test checks the two agree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine, Row

from authnet.directory import DataContainer, ServiceProvider, SpCertificate, TokenRecord
from authnet.errors import LastToken, MalformedInput, VersionConflict

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
    sa.Column("serial", sa.String(40), nullable=False),
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


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


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


_TOKEN_FIELDS = tuple(tokens.columns.keys())
# The token lookup of the login path, compiled once to SQLite's SQL.
_TOKEN_BY_ID = str(
    tokens.select()
    .where(tokens.c.token_id == sa.bindparam("token_id"))
    .compile(dialect=sqlite_dialect.dialect())
)


class SqlDirectory:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        # The login path reads one token row twice per login. On SQLite, a
        # dedicated DB-API connection answers that in microseconds, where a
        # pooled SQLAlchemy round trip costs a hundred or more; everything
        # else goes through SQLAlchemy Core.
        self._fast: Any = None
        if engine.dialect.name == "sqlite":
            self._fast = engine.raw_connection()
            # Autocommit: every lookup sees the latest committed rows (a revocation
            # takes effect at once) without a transaction to end.
            self._fast.driver_connection.isolation_level = None
        # When each token's last_used_ms was last written, so the login path
        # writes it at most once per TOUCH_GRANULARITY_MS.
        self._touched: dict[bytes, int] = {}

    @classmethod
    def open(cls, url: str) -> SqlDirectory:
        """Open a database already migrated to head (see authnet.migrations.upgrade)."""
        return cls(make_engine(url))

    @property
    def engine(self) -> Engine:
        return self._engine

    def _tx(self) -> Any:
        return self._engine.begin()

    def _ro(self) -> Connection:
        return self._engine.connect()

    # --- service providers ----------------------------------------------------

    async def add_sp(self, sp: ServiceProvider) -> None:
        with self._tx() as c:
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

    async def get_sp(self, spid: bytes) -> ServiceProvider | None:
        with self._ro() as c:
            row = c.execute(
                service_providers.select().where(service_providers.c.spid == spid)
            ).first()
        return _sp(row) if row else None

    async def find_sp(self, name: str) -> ServiceProvider | None:
        with self._ro() as c:
            row = c.execute(
                service_providers.select().where(service_providers.c.name == name)
            ).first()
        return _sp(row) if row else None

    async def list_sps(self) -> list[ServiceProvider]:
        with self._ro() as c:
            rows = c.execute(service_providers.select().order_by(service_providers.c.created_ms))
            return [_sp(r) for r in rows]

    async def set_sp_disabled(self, spid: bytes, disabled_ms: int | None) -> None:
        with self._tx() as c:
            c.execute(
                service_providers.update()
                .where(service_providers.c.spid == spid)
                .values(disabled_ms=disabled_ms)
            )

    async def add_sp_certificate(self, cert: SpCertificate) -> None:
        with self._tx() as c:
            c.execute(
                sp_certificates.insert().values(
                    fingerprint=cert.fingerprint,
                    spid=cert.spid,
                    serial=str(cert.serial),
                    not_after_ms=cert.not_after_ms,
                    revoked_ms=cert.revoked_ms,
                )
            )

    async def sp_for_certificate(
        self, fingerprint: bytes
    ) -> tuple[ServiceProvider, SpCertificate] | None:
        with self._ro() as c:
            row = c.execute(
                sa.select(sp_certificates, service_providers)
                .join(service_providers, service_providers.c.spid == sp_certificates.c.spid)
                .where(sp_certificates.c.fingerprint == fingerprint)
            ).first()
        return (_sp(row), _cert(row)) if row else None

    async def list_sp_certificates(self, spid: bytes) -> list[SpCertificate]:
        with self._ro() as c:
            rows = c.execute(sp_certificates.select().where(sp_certificates.c.spid == spid))
            return [_cert(r) for r in rows]

    async def revoke_sp_certificate(self, fingerprint: bytes, revoked_ms: int) -> bool:
        with self._tx() as c:
            res = c.execute(
                sp_certificates.update()
                .where(sp_certificates.c.fingerprint == fingerprint)
                .where(sp_certificates.c.revoked_ms.is_(None))
                .values(revoked_ms=revoked_ms)
            )
            return bool(res.rowcount)

    # --- accounts and tokens --------------------------------------------------

    @staticmethod
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

    async def create_account(self, user_id: bytes, first_token: TokenRecord, now_ms: int) -> None:
        with self._tx() as c:
            c.execute(accounts.insert().values(user_id=user_id, created_ms=now_ms))
            self._insert_token(c, first_token)

    async def add_token(self, token: TokenRecord) -> None:
        with self._tx() as c:
            self._insert_token(c, token)

    async def get_token(self, token_id: bytes) -> TokenRecord | None:
        if self._fast is not None:
            raw = self._fast.driver_connection.execute(_TOKEN_BY_ID, (token_id,)).fetchone()
            if raw is None:
                return None
            return TokenRecord(**dict(zip(_TOKEN_FIELDS, raw, strict=True)))
        with self._ro() as c:
            row = c.execute(tokens.select().where(tokens.c.token_id == token_id)).first()
        return _token(row) if row else None

    async def token_for_credential(self, credential_id: bytes) -> TokenRecord | None:
        with self._ro() as c:
            row = c.execute(tokens.select().where(tokens.c.credential_id == credential_id)).first()
        return _token(row) if row else None

    async def list_tokens(self, user_id: bytes) -> list[TokenRecord]:
        with self._ro() as c:
            rows = c.execute(
                tokens.select().where(tokens.c.user_id == user_id).order_by(tokens.c.created_ms)
            )
            return [_token(r) for r in rows]

    async def revoke_token(self, token_id: bytes, revoked_ms: int) -> None:
        with self._tx() as c:
            row = c.execute(tokens.select().where(tokens.c.token_id == token_id)).first()
            if row is None or row.revoked_ms is not None:
                return
            active = c.execute(
                sa.select(sa.func.count())
                .select_from(tokens)
                .where(tokens.c.user_id == row.user_id)
                .where(tokens.c.revoked_ms.is_(None))
            ).scalar_one()
            if active <= 1:
                raise LastToken()
            c.execute(
                tokens.update().where(tokens.c.token_id == token_id).values(revoked_ms=revoked_ms)
            )

    async def advance_sign_count(self, token_id: bytes, count: int) -> bool:
        """Store a FIDO2 authenticator's new signature counter if it moved
        forward (or both are 0: the authenticator keeps none). False when it did
        not: the credential may have been cloned."""
        with self._tx() as c:
            res = c.execute(
                tokens.update()
                .where(tokens.c.token_id == token_id)
                .where(
                    sa.or_(
                        tokens.c.sign_count < count,
                        sa.and_(tokens.c.sign_count == 0, sa.literal(count) == 0),
                    )
                )
                .values(sign_count=count)
            )
            return bool(res.rowcount)

    async def touch_token(self, token_id: bytes, used_ms: int) -> None:
        if used_ms - self._touched.get(token_id, -TOUCH_GRANULARITY_MS) < TOUCH_GRANULARITY_MS:
            return
        if len(self._touched) > 100_000:
            self._touched.clear()
        self._touched[token_id] = used_ms
        with self._tx() as c:
            c.execute(
                tokens.update()
                .where(tokens.c.token_id == token_id)
                .where(
                    sa.or_(
                        tokens.c.last_used_ms.is_(None),
                        tokens.c.last_used_ms < used_ms - TOUCH_GRANULARITY_MS,
                    )
                )
                .values(last_used_ms=used_ms)
            )

    # --- data containers ------------------------------------------------------

    @staticmethod
    def _container_where(spid: bytes, user_id: bytes, name: str) -> Any:
        return sa.and_(
            data_containers.c.spid == spid,
            data_containers.c.user_id == user_id,
            data_containers.c.name == name,
        )

    async def read_data(self, spid: bytes, user_id: bytes, name: str) -> DataContainer:
        with self._ro() as c:
            row = c.execute(
                sa.select(data_containers.c.data, data_containers.c.version).where(
                    self._container_where(spid, user_id, name)
                )
            ).first()
        if row is None:
            return DataContainer(data=b"", version=0)
        return DataContainer(data=row.data, version=row.version)

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
            with self._tx() as c:
                if expected_version == 0:
                    # The primary key makes a racing first write fail here.
                    c.execute(
                        data_containers.insert().values(
                            spid=spid,
                            user_id=user_id,
                            name=name,
                            version=1,
                            data=data,
                            updated_ms=now_ms,
                        )
                    )
                    return 1
                res = c.execute(
                    data_containers.update()
                    .where(self._container_where(spid, user_id, name))
                    .where(data_containers.c.version == expected_version)
                    .values(version=expected_version + 1, data=data, updated_ms=now_ms)
                )
                if res.rowcount == 1:
                    return expected_version + 1
        except sa.exc.IntegrityError:
            pass  # someone else wrote version 1 first
        current = (await self.read_data(spid, user_id, name)).version
        raise VersionConflict(
            f"container is at version {current}, not {expected_version}: read it again",
            current_version=current,
        )

    async def close(self) -> None:
        if self._fast is not None:
            self._fast.close()
            self._fast = None
        self._engine.dispose()
