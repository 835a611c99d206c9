"""Key versions: each has a POPRF key pair, a hash key and a wrap key, sealed
at rest under the master key (AES-256-GCM, AAD = version + purpose).

States: `active` (exactly one: new evaluations and wraps use it), `old`
(still opens what it made, until every record is re-keyed), `retired` (its
secrets erased). Rotation makes a new active version; retirement is refused
while a user record or a wrapped record still uses the version.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from hardener import oprf
from hardener.attempts import AttemptKey
from hardener.errors import HardenerError, KeyVersionRetired, KeyVersionUnknown, RetireRefused
from hardener.masterkey import MasterKey
from hardener.store import KeyRow, Store
from hardener.transcripts import key_at_rest_aad

ACTIVE = "active"
OLD = "old"
RETIRED = "retired"
PURPOSES = ("oprf", "hash", "wrap")


@dataclass(frozen=True, kw_only=True)
class KeyVersion:
    version: int
    state: str
    public_key: bytes
    oprf_secret: bytes = field(repr=False)
    hash_key: bytes = field(repr=False)
    wrap_key: bytes = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class PublicKeyInfo:
    version: int
    state: str
    public_key: bytes


@dataclass(frozen=True, kw_only=True)
class KeyRing:
    """The unsealed, usable versions (active and old) and every version's public facts."""

    current: int
    usable: dict[int, KeyVersion]
    public: tuple[PublicKeyInfo, ...]

    def get(self, version: int) -> KeyVersion:
        """The version to use (0 = current)."""
        v = version or self.current
        kv = self.usable.get(v)
        if kv is not None:
            return kv
        if any(p.version == v for p in self.public):
            raise KeyVersionRetired(f"key version {v} is retired", key_version=self.current)
        raise KeyVersionUnknown(
            f"no key version {v} (the current one is {self.current})", key_version=self.current
        )

    @classmethod
    def load(cls, store: Store, master: MasterKey) -> KeyRing:
        rows = store.key_rows()
        usable: dict[int, KeyVersion] = {}
        current = 0
        for row in rows:
            if row.state == RETIRED:
                continue
            if row.sealed_oprf is None or row.sealed_hash is None or row.sealed_wrap is None:
                raise HardenerError(f"key version {row.version} has lost its sealed secrets")
            usable[row.version] = KeyVersion(
                version=row.version,
                state=row.state,
                public_key=row.public_key,
                oprf_secret=master.open(row.sealed_oprf, key_at_rest_aad(row.version, "oprf")),
                hash_key=master.open(row.sealed_hash, key_at_rest_aad(row.version, "hash")),
                wrap_key=master.open(row.sealed_wrap, key_at_rest_aad(row.version, "wrap")),
            )
            if row.state == ACTIVE:
                current = row.version
        if not current:
            raise HardenerError(
                "the data directory has no active key version: run `hardener rotate`"
            )
        public = tuple(
            PublicKeyInfo(
                version=r.version,
                state=r.state,
                public_key=b"" if r.state == RETIRED else r.public_key,
            )
            for r in rows
        )
        return cls(current=current, usable=usable, public=public)


def new_version(store: Store, master: MasterKey, *, now: float | None = None) -> int:
    """Make a new active version (the previous active one becomes old).

    Call inside a transaction.
    """
    rows = store.key_rows()
    version = max((r.version for r in rows), default=0) + 1
    for r in rows:
        if r.state == ACTIVE:
            store.set_key_state(r.version, OLD)
    pair = oprf.generate_key_pair()
    hash_key = secrets.token_bytes(32)
    wrap_key = secrets.token_bytes(32)
    store.add_key(
        KeyRow(
            version=version,
            state=ACTIVE,
            created_at=time.time() if now is None else now,
            retired_at=None,
            public_key=pair.public,
            sealed_oprf=master.seal(pair.secret, key_at_rest_aad(version, "oprf")),
            sealed_hash=master.seal(hash_key, key_at_rest_aad(version, "hash")),
            sealed_wrap=master.seal(wrap_key, key_at_rest_aad(version, "wrap")),
        )
    )
    return version


@dataclass(frozen=True, kw_only=True)
class VersionStatus:
    version: int
    state: str
    users: int
    records: int
    created_at: float
    retired_at: float | None


def status(store: Store) -> list[VersionStatus]:
    users = store.users_per_version()
    records = store.records_per_version()
    return [
        VersionStatus(
            version=r.version,
            state=r.state,
            users=users.get(r.version, 0),
            records=records.get(r.version, 0),
            created_at=r.created_at,
            retired_at=r.retired_at,
        )
        for r in store.key_rows()
    ]


def retire(store: Store, version: int, *, force: bool = False, now: float | None = None) -> None:
    """Retire `version` (erasing its secrets). Call inside a transaction."""
    for s in status(store):
        if s.version != version:
            continue
        if s.state == RETIRED:
            raise RetireRefused(f"key version {version} is already retired")
        if s.state == ACTIVE:
            raise RetireRefused(
                f"key version {version} is the current one: `hardener rotate` first"
            )
        if (s.users or s.records) and not force:
            raise RetireRefused(
                f"key version {version} is still needed by {s.users} user record(s) and"
                f" {s.records} wrapped record(s): wait until they re-key at their next unlock"
                " (or Rewrap), or use --force to make them unopenable"
            )
        store.set_key_state(version, RETIRED, time.time() if now is None else now)
        return
    raise KeyVersionUnknown(f"no key version {version}")


ATTEMPT_SECRET = "attempt"  # noqa: S105 - the name of a sealed secret, not a secret


def attempt_key(store: Store, master: MasterKey) -> AttemptKey:
    """The key that authenticates attempt ids (made on first use, sealed like the versions')."""
    aad = key_at_rest_aad(0, ATTEMPT_SECRET)
    sealed = store.secret(ATTEMPT_SECRET)
    if sealed is None:
        key = secrets.token_bytes(32)
        with store.transaction():
            store.set_secret(ATTEMPT_SECRET, master.seal(key, aad))
        return AttemptKey(key=key)
    return AttemptKey(key=master.open(sealed, aad))
