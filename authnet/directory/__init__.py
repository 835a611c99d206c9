"""Long-lived network records: service providers and their certificates,
accounts and their tokens, and the SPs' per-user data containers.

`Directory` is the interface the servers use; `SqlDirectory` implements it on
SQLAlchemy Core, on SQLite (embedded, the default) or PostgreSQL (what the
nodes of a cluster share). A call that cannot reach the database raises
`DirectoryUnavailable` (retryable). The user id is network-internal:
no record here is ever sent to an SP or a token except through the PUID PRF.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, kw_only=True)
class ServiceProvider:
    spid: bytes
    name: str
    display_name: str
    origins: tuple[str, ...]
    created_ms: int
    disabled_ms: int | None = None


@dataclass(frozen=True, kw_only=True)
class SpCertificate:
    fingerprint: bytes  # SHA-256 of the DER certificate
    spid: bytes
    serial: int
    not_after_ms: int
    revoked_ms: int | None = None


@dataclass(frozen=True, kw_only=True)
class TokenRecord:
    token_id: bytes
    user_id: bytes
    kind: int
    algorithm: int
    public_key: bytes
    label: str
    created_ms: int
    revoked_ms: int | None = None
    last_used_ms: int | None = None
    # FIDO2 tokens: the authenticator's last signature counter, and the
    # credential id (also inside public_key) that browser-native logins name.
    sign_count: int = 0
    credential_id: bytes | None = None

    def __repr__(self) -> str:
        tag = self.token_id.hex()[:8]
        return f"TokenRecord(token_id={tag}, kind={self.kind}, label={self.label!r})"


@dataclass(frozen=True, kw_only=True)
class DataContainer:
    data: bytes
    version: int


class Directory(Protocol):
    # Service providers.
    async def add_sp(self, sp: ServiceProvider) -> None: ...
    async def get_sp(self, spid: bytes) -> ServiceProvider | None: ...
    async def find_sp(self, name: str) -> ServiceProvider | None: ...
    async def list_sps(self) -> list[ServiceProvider]: ...
    async def set_sp_disabled(self, spid: bytes, disabled_ms: int | None) -> None: ...
    async def add_sp_certificate(self, cert: SpCertificate) -> None: ...
    async def sp_for_certificate(
        self, fingerprint: bytes
    ) -> tuple[ServiceProvider, SpCertificate] | None: ...
    async def list_sp_certificates(self, spid: bytes) -> list[SpCertificate]: ...
    async def revoke_sp_certificate(self, fingerprint: bytes, revoked_ms: int) -> bool: ...

    # Accounts and tokens.
    async def create_account(
        self, user_id: bytes, first_token: TokenRecord, now_ms: int
    ) -> None: ...
    async def add_token(self, token: TokenRecord) -> None: ...
    async def get_token(self, token_id: bytes) -> TokenRecord | None: ...
    async def token_for_credential(self, credential_id: bytes) -> TokenRecord | None: ...
    async def list_tokens(self, user_id: bytes) -> list[TokenRecord]: ...
    async def revoke_token(self, token_id: bytes, revoked_ms: int) -> None:
        """Raises LastToken if it is the account's only active token."""
        ...

    async def touch_token(self, token_id: bytes, used_ms: int) -> None: ...
    async def advance_sign_count(self, token_id: bytes, count: int) -> bool: ...

    # Per-user, per-SP data containers.
    async def read_data(self, spid: bytes, user_id: bytes, name: str) -> DataContainer: ...
    async def write_data(
        self,
        spid: bytes,
        user_id: bytes,
        name: str,
        data: bytes,
        expected_version: int,
        now_ms: int,
    ) -> int:
        """Compare-and-set; raises VersionConflict(current_version=...)."""
        ...

    async def ping(self) -> bool:
        """Whether the database answers now; for health checks, never raises."""
        ...

    async def close(self) -> None: ...
