"""Initial vault schema: users and key slots, sessions, safes and their keys,
memberships, folders, items and their history, files, staged rotations, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_logins",
        sa.Column("ticket_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("binding_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("ticket_hash"),
    )
    with op.batch_alter_table("pending_logins", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pending_logins_expires_ms"), ["expires_ms"], unique=False
        )

    op.create_table(
        "safes",
        sa.Column("safe_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("name_ct", sa.LargeBinary(), nullable=False),
        sa.Column("name_version", sa.Integer(), nullable=False),
        sa.Column("rotation_needed", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.LargeBinary(length=16), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("safe_id"),
    )
    op.create_table(
        "users",
        sa.Column("user_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("puid", sa.String(length=32), nullable=False),
        sa.Column("handle", sa.String(length=32), nullable=True),
        sa.Column("public_key", sa.LargeBinary(length=32), nullable=True),
        sa.Column("keypair_version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("registered_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("user_id"),
        sa.UniqueConstraint("handle"),
        sa.UniqueConstraint("puid"),
    )
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("safe_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.LargeBinary(length=16), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target", sa.LargeBinary(length=16), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["safe_id"], ["safes.safe_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_safe_seq", ["safe_id", "seq"], unique=False)

    op.create_table(
        "files",
        sa.Column("file_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("safe_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("key_wrap", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("body_size", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("upload_started_ms", sa.BigInteger(), nullable=True),
        sa.Column("created_by", sa.LargeBinary(length=16), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["safe_id"], ["safes.safe_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("file_id"),
    )
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_files_safe_id"), ["safe_id"], unique=False)

    op.create_table(
        "folders",
        sa.Column("folder_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("safe_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("parent_id", sa.LargeBinary(length=16), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("name_ct", sa.LargeBinary(), nullable=False),
        sa.Column("updated_by", sa.LargeBinary(length=16), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["safe_id"], ["safes.safe_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("folder_id"),
    )
    with op.batch_alter_table("folders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_folders_safe_id"), ["safe_id"], unique=False)

    op.create_table(
        "items",
        sa.Column("item_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("safe_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("folder_id", sa.LargeBinary(length=16), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("schema", sa.Integer(), nullable=False),
        sa.Column("ct", sa.LargeBinary(), nullable=False),
        sa.Column("created_by", sa.LargeBinary(length=16), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.LargeBinary(length=16), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["safe_id"], ["safes.safe_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("item_id"),
    )
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_items_safe_id"), ["safe_id"], unique=False)

    op.create_table(
        "key_slots",
        sa.Column("user_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("key_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("keypair_version", sa.Integer(), nullable=False),
        sa.Column("slot", sa.LargeBinary(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_used_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.user_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "key_id"),
    )
    op.create_table(
        "memberships",
        sa.Column("safe_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("user_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("sealed_key", sa.LargeBinary(), nullable=False),
        sa.Column("added_by", sa.LargeBinary(length=16), nullable=False),
        sa.Column("added_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["safe_id"], ["safes.safe_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.user_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("safe_id", "user_id"),
    )
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_memberships_user_id"), ["user_id"], unique=False)

    op.create_table(
        "rotations",
        sa.Column("rotation_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("safe_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("from_generation", sa.Integer(), nullable=False),
        sa.Column("previous_key", sa.LargeBinary(), nullable=False),
        sa.Column("name_base_version", sa.Integer(), nullable=True),
        sa.Column("name_ct", sa.LargeBinary(), nullable=True),
        sa.Column("created_by", sa.LargeBinary(length=16), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["safe_id"], ["safes.safe_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("rotation_id"),
        sa.UniqueConstraint("safe_id"),
    )
    op.create_table(
        "safe_keys",
        sa.Column("safe_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("previous_key", sa.LargeBinary(), nullable=True),
        sa.Column("created_by", sa.LargeBinary(length=16), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["safe_id"], ["safes.safe_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("safe_id", "generation"),
    )
    op.create_table(
        "sessions",
        sa.Column("session_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("user_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("key_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("proven_key_ids", sa.Text(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("ticket", sa.String(length=64), nullable=False),
        sa.Column("ticket_expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("renewed_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.user_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("session_hash"),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sessions_user_id"), ["user_id"], unique=False)

    op.create_table(
        "item_versions",
        sa.Column("item_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("folder_id", sa.LargeBinary(length=16), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("schema", sa.Integer(), nullable=False),
        sa.Column("ct", sa.LargeBinary(), nullable=False),
        sa.Column("updated_by", sa.LargeBinary(length=16), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.item_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("item_id", "version"),
    )
    op.create_table(
        "staged_files",
        sa.Column("rotation_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("file_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("key_wrap", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["rotation_id"], ["rotations.rotation_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("rotation_id", "file_id"),
    )
    op.create_table(
        "staged_folders",
        sa.Column("rotation_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("folder_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=False),
        sa.Column("name_ct", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["rotation_id"], ["rotations.rotation_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("rotation_id", "folder_id"),
    )
    op.create_table(
        "staged_items",
        sa.Column("rotation_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("item_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=False),
        sa.Column("ct", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["rotation_id"], ["rotations.rotation_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("rotation_id", "item_id"),
    )
    op.create_table(
        "staged_members",
        sa.Column("rotation_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("user_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("sealed_key", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["rotation_id"], ["rotations.rotation_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("rotation_id", "user_id"),
    )


def downgrade() -> None:
    op.drop_table("staged_members")
    op.drop_table("staged_items")
    op.drop_table("staged_folders")
    op.drop_table("staged_files")
    op.drop_table("item_versions")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_user_id"))

    op.drop_table("sessions")
    op.drop_table("safe_keys")
    op.drop_table("rotations")
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_memberships_user_id"))

    op.drop_table("memberships")
    op.drop_table("key_slots")
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_items_safe_id"))

    op.drop_table("items")
    with op.batch_alter_table("folders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_folders_safe_id"))

    op.drop_table("folders")
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_files_safe_id"))

    op.drop_table("files")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_safe_seq")

    op.drop_table("audit_events")
    op.drop_table("users")
    op.drop_table("safes")
    with op.batch_alter_table("pending_logins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pending_logins_expires_ms"))

    op.drop_table("pending_logins")
