"""The vault's tables (SQLAlchemy Core). The Alembic migrations in
vault_api/migrations create them; this metadata mirrors them for queries, and
a test checks the two agree.

What the server stores is ciphertext and the facts it needs to enforce access
(docs/vault.md, "What the server stores"): ids, versions, key generations,
roles, sizes and times. Columns named *_ct, sealed_key, key_wrap, previous_key
and slot hold client-made ciphertexts the server cannot open.
"""

from __future__ import annotations

import sqlalchemy as sa

METADATA = sa.MetaData()

ID = sa.LargeBinary(16)


users = sa.Table(
    "users",
    METADATA,
    sa.Column("user_id", ID, primary_key=True),
    sa.Column("puid", sa.String(32), nullable=False, unique=True),
    sa.Column("handle", sa.String(32), nullable=True, unique=True),
    sa.Column("public_key", sa.LargeBinary(32), nullable=True),
    sa.Column("keypair_version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("registered_ms", sa.BigInteger, nullable=True),
)

key_slots = sa.Table(
    "key_slots",
    METADATA,
    sa.Column("user_id", ID, sa.ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key_id", sa.LargeBinary(16), primary_key=True),
    sa.Column("keypair_version", sa.Integer, nullable=False),
    sa.Column("slot", sa.LargeBinary, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("last_used_ms", sa.BigInteger, nullable=True),
    # "kc": the slot wraps the private key under Kc; "kc+passphrase": it wraps
    # the token factor T, and the private key is in the passphrase wrap.
    sa.Column("kind", sa.String(16), nullable=False, server_default="kc"),
)

sessions = sa.Table(
    "sessions",
    METADATA,
    # SHA-256 of the cookie's value: a stolen database holds no usable cookie.
    sa.Column("session_hash", sa.LargeBinary(32), primary_key=True),
    sa.Column(
        "user_id",
        ID,
        sa.ForeignKey("users.user_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("key_id", sa.LargeBinary(16), nullable=False),
    # JSON list of base64url key ids this session has proven (logins with other tokens).
    sa.Column("proven_key_ids", sa.Text, nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    # The authnet ticket the session keeps alive with PutTicket.
    sa.Column("ticket", sa.String(64), nullable=False),
    sa.Column("ticket_expires_ms", sa.BigInteger, nullable=False),
    sa.Column("renewed_ms", sa.BigInteger, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("last_seen_ms", sa.BigInteger, nullable=False),
    # Migration 0003 (docs/devices.md): the device the session is bound to (by
    # registration, bypass login or approval), the nonce its device login
    # proof signs (replaced once a proof over it is accepted), and when it
    # proved the vault passphrase.
    sa.Column("device_id", ID, nullable=True),
    sa.Column("device_nonce", sa.LargeBinary(32), nullable=True),
    sa.Column("passphrase_unlocked_ms", sa.BigInteger, nullable=True),
)

pending_logins = sa.Table(
    "pending_logins",
    METADATA,
    sa.Column("ticket_hash", sa.LargeBinary(32), primary_key=True),
    # SHA-256 of the browser's login-binding cookie.
    sa.Column("binding_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("expires_ms", sa.BigInteger, nullable=False, index=True),
)

safes = sa.Table(
    "safes",
    METADATA,
    sa.Column("safe_id", ID, primary_key=True),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("name_ct", sa.LargeBinary, nullable=False),
    sa.Column("name_version", sa.Integer, nullable=False),
    sa.Column("rotation_needed", sa.Boolean, nullable=False),
    sa.Column("created_by", ID, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
)

safe_keys = sa.Table(
    "safe_keys",
    METADATA,
    sa.Column("safe_id", ID, sa.ForeignKey("safes.safe_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("generation", sa.Integer, primary_key=True),
    # The previous generation's key under this one (NULL for generation 1).
    sa.Column("previous_key", sa.LargeBinary, nullable=True),
    sa.Column("created_by", ID, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
)

memberships = sa.Table(
    "memberships",
    METADATA,
    sa.Column("safe_id", ID, sa.ForeignKey("safes.safe_id", ondelete="CASCADE"), primary_key=True),
    sa.Column(
        "user_id",
        ID,
        sa.ForeignKey("users.user_id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
    sa.Column("role", sa.String(8), nullable=False),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("sealed_key", sa.LargeBinary, nullable=False),
    sa.Column("added_by", ID, nullable=False),
    sa.Column("added_ms", sa.BigInteger, nullable=False),
)

folders = sa.Table(
    "folders",
    METADATA,
    sa.Column("folder_id", ID, primary_key=True),
    sa.Column(
        "safe_id",
        ID,
        sa.ForeignKey("safes.safe_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("parent_id", ID, nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("name_ct", sa.LargeBinary, nullable=False),
    sa.Column("updated_by", ID, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
)

items = sa.Table(
    "items",
    METADATA,
    sa.Column("item_id", ID, primary_key=True),
    sa.Column(
        "safe_id",
        ID,
        sa.ForeignKey("safes.safe_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("folder_id", ID, nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("schema", sa.Integer, nullable=False),
    sa.Column("ct", sa.LargeBinary, nullable=False),
    sa.Column("created_by", ID, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_by", ID, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
)

item_versions = sa.Table(
    "item_versions",
    METADATA,
    sa.Column("item_id", ID, sa.ForeignKey("items.item_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("folder_id", ID, nullable=True),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("schema", sa.Integer, nullable=False),
    sa.Column("ct", sa.LargeBinary, nullable=False),
    sa.Column("updated_by", ID, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
)

files = sa.Table(
    "files",
    METADATA,
    sa.Column("file_id", ID, primary_key=True),
    sa.Column(
        "safe_id",
        ID,
        sa.ForeignKey("safes.safe_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("key_wrap", sa.LargeBinary, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("body_size", sa.BigInteger, nullable=False),
    # pending -> uploading -> complete
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("upload_started_ms", sa.BigInteger, nullable=True),
    sa.Column("created_by", ID, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
)

rotations = sa.Table(
    "rotations",
    METADATA,
    sa.Column("rotation_id", ID, primary_key=True),
    sa.Column(
        "safe_id",
        ID,
        sa.ForeignKey("safes.safe_id", ondelete="CASCADE"),
        nullable=False,
        unique=True,  # at most one open rotation per safe
    ),
    sa.Column("from_generation", sa.Integer, nullable=False),
    sa.Column("previous_key", sa.LargeBinary, nullable=False),
    sa.Column("name_base_version", sa.Integer, nullable=True),
    sa.Column("name_ct", sa.LargeBinary, nullable=True),
    sa.Column("created_by", ID, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
)


def _staged(name: str, *columns: sa.Column[object]) -> sa.Table:
    return sa.Table(
        name,
        METADATA,
        sa.Column(
            "rotation_id",
            ID,
            sa.ForeignKey("rotations.rotation_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        *columns,
    )


staged_members = _staged(
    "staged_members",
    sa.Column("user_id", ID, primary_key=True),
    sa.Column("sealed_key", sa.LargeBinary, nullable=False),
)
staged_items = _staged(
    "staged_items",
    sa.Column("item_id", ID, primary_key=True),
    sa.Column("base_version", sa.Integer, nullable=False),
    sa.Column("ct", sa.LargeBinary, nullable=False),
)
staged_folders = _staged(
    "staged_folders",
    sa.Column("folder_id", ID, primary_key=True),
    sa.Column("base_version", sa.Integer, nullable=False),
    sa.Column("name_ct", sa.LargeBinary, nullable=False),
)
staged_files = _staged(
    "staged_files",
    sa.Column("file_id", ID, primary_key=True),
    sa.Column("key_wrap", sa.LargeBinary, nullable=False),
)

audit_events = sa.Table(
    "audit_events",
    METADATA,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column(
        "safe_id",
        ID,
        sa.ForeignKey("safes.safe_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("at_ms", sa.BigInteger, nullable=False),
    sa.Column("actor", ID, nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("target", ID, nullable=True),
    # JSON of public facts (versions, roles, sizes); never a ciphertext.
    sa.Column("detail", sa.Text, nullable=False),
)
sa.Index("ix_audit_events_safe_seq", audit_events.c.safe_id, audit_events.c.seq)


# --- hardened factors (migration 0002; docs/vault.md 5.4-5.6) -------------------------

passphrase_wraps = sa.Table(
    "passphrase_wraps",
    METADATA,
    sa.Column("wrap_id", ID, primary_key=True),
    sa.Column(
        "user_id",
        ID,
        sa.ForeignKey("users.user_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    # "current" (one per user) or "history" (kept until expires_ms, for a rollback).
    sa.Column("state", sa.String(8), nullable=False),
    sa.Column("salt", sa.LargeBinary(16), nullable=False),
    sa.Column("iterations", sa.Integer, nullable=False),
    sa.Column("key_version", sa.Integer, nullable=False),
    sa.Column("hardener_public_key", sa.LargeBinary(32), nullable=False),
    sa.Column("wrap", sa.LargeBinary, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("replaced_ms", sa.BigInteger, nullable=True),
    sa.Column("expires_ms", sa.BigInteger, nullable=True),
)

recovery_slots = sa.Table(
    "recovery_slots",
    METADATA,
    sa.Column("user_id", ID, sa.ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("record_id", ID, nullable=False),
    # "passphrase" or "code" (a printed recovery code).
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("salt", sa.LargeBinary(16), nullable=False),
    sa.Column("iterations", sa.Integer, nullable=False),
    sa.Column("key_version", sa.Integer, nullable=False),
    sa.Column("hardener_public_key", sa.LargeBinary(32), nullable=False),
    sa.Column("slot", sa.LargeBinary, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
)

success_keys = sa.Table(
    "success_keys",
    METADATA,
    sa.Column("user_id", ID, sa.ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("purpose", sa.String(16), primary_key=True),
    # The Ed25519 public key enrolled with the hardener, and its private half
    # sealed to the user's own public key (HPKE).
    sa.Column("public_key", sa.LargeBinary(32), nullable=False),
    sa.Column("sealed", sa.LargeBinary, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
)

account_events = sa.Table(
    "account_events",
    METADATA,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column(
        "user_id",
        ID,
        sa.ForeignKey("users.user_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("at_ms", sa.BigInteger, nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    # The session that did it (the SHA-256 of its cookie, as in `sessions`), so
    # the user's other sessions are the ones told.
    sa.Column("session_hash", sa.LargeBinary(32), nullable=True),
    sa.Column("detail", sa.Text, nullable=False),
)


# --- devices and organisations (migration 0003; docs/devices.md) ----------------------

devices = sa.Table(
    "devices",
    METADATA,
    sa.Column("device_id", ID, primary_key=True),
    sa.Column(
        "user_id",
        ID,
        sa.ForeignKey("users.user_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("user_agent", sa.String(256), nullable=False),
    # The device's public X25519 and Ed25519 keys (its private keys never leave it).
    sa.Column("public_key", sa.LargeBinary(32), nullable=False),
    sa.Column("signing_key", sa.LargeBinary(32), nullable=False),
    # "active", "expired" or "revoked" (kept ended_ms + 30 days, then deleted).
    sa.Column("state", sa.String(8), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("last_used_ms", sa.BigInteger, nullable=False),
    sa.Column("ended_ms", sa.BigInteger, nullable=True),
    # The bypass (docs/devices.md 3): client-made ciphertexts the server cannot open.
    sa.Column("device_wrap", sa.LargeBinary, nullable=True),
    sa.Column("sealed_kek", sa.LargeBinary, nullable=True),
    sa.Column("keypair_version", sa.Integer, nullable=True),
)

device_requests = sa.Table(
    "device_requests",
    METADATA,
    # SHA-256 of the code: the database holds no usable code.
    sa.Column("code_hash", sa.LargeBinary(32), primary_key=True),
    sa.Column(
        "user_id",
        ID,
        sa.ForeignKey("users.user_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    # The requesting session (the only one shown the proxy token).
    sa.Column("session_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("device_id", ID, nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("user_agent", sa.String(256), nullable=False),
    sa.Column("public_key", sa.LargeBinary(32), nullable=False),
    sa.Column("signing_key", sa.LargeBinary(32), nullable=False),
    sa.Column("proof", sa.LargeBinary(64), nullable=False),
    sa.Column("claim_hash", sa.LargeBinary(32), nullable=False),
    # "pending", "approved" or "refused".
    sa.Column("state", sa.String(8), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("expires_ms", sa.BigInteger, nullable=False),
    sa.Column("proxy_token", sa.String(256), nullable=True),
)

# Wrong request codes per account: after the limit, lookups are refused until reset_ms.
device_request_failures = sa.Table(
    "device_request_failures",
    METADATA,
    sa.Column("user_id", ID, sa.ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("reset_ms", sa.BigInteger, nullable=False),
)

organisations = sa.Table(
    "organisations",
    METADATA,
    sa.Column("org_id", ID, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("allow_device_registration", sa.Boolean, nullable=False),
    sa.Column("allow_bypass", sa.Boolean, nullable=False),
    sa.Column("require_passphrase", sa.Boolean, nullable=False),
    sa.Column("device_expiry_seconds", sa.BigInteger, nullable=False),
)

org_members = sa.Table(
    "org_members",
    METADATA,
    # An account belongs to at most one organisation.
    sa.Column("user_id", ID, sa.ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True),
    sa.Column(
        "org_id",
        ID,
        sa.ForeignKey("organisations.org_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    # "admin" or "member".
    sa.Column("role", sa.String(8), nullable=False),
    sa.Column("added_ms", sa.BigInteger, nullable=False),
)

org_events = sa.Table(
    "org_events",
    METADATA,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column(
        "org_id",
        ID,
        sa.ForeignKey("organisations.org_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("at_ms", sa.BigInteger, nullable=False),
    sa.Column("actor", ID, nullable=True),
    sa.Column("action", sa.String(32), nullable=False),
    # JSON of public facts (policy values, roles, counts).
    sa.Column("detail", sa.Text, nullable=False),
)
