"""Trusted devices and organisations (docs/devices.md): registered devices and
their bypass wraps, device approval requests and the per-account count of
wrong request codes, organisations, their members and audit log; sessions
gain the device they are bound to, the device-login nonce and the time they
proved the vault passphrase.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.LargeBinary(length=16)


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("device_id", ID, nullable=True))
        batch_op.add_column(sa.Column("device_nonce", sa.LargeBinary(length=32), nullable=True))
        batch_op.add_column(sa.Column("passphrase_unlocked_ms", sa.BigInteger(), nullable=True))

    op.create_table(
        "devices",
        sa.Column("device_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=256), nullable=False),
        sa.Column("public_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("signing_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_used_ms", sa.BigInteger(), nullable=False),
        sa.Column("ended_ms", sa.BigInteger(), nullable=True),
        sa.Column("device_wrap", sa.LargeBinary(), nullable=True),
        sa.Column("sealed_kek", sa.LargeBinary(), nullable=True),
        sa.Column("keypair_version", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.user_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("device_id"),
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_devices_user_id"), ["user_id"], unique=False)

    op.create_table(
        "device_requests",
        sa.Column("code_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("session_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("device_id", ID, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=256), nullable=False),
        sa.Column("public_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("signing_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("proof", sa.LargeBinary(length=64), nullable=False),
        sa.Column("claim_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("proxy_token", sa.String(length=256), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.user_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("code_hash"),
    )
    with op.batch_alter_table("device_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_requests_user_id"), ["user_id"], unique=False)

    op.create_table(
        "device_request_failures",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("reset_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.user_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id"),
    )

    op.create_table(
        "organisations",
        sa.Column("org_id", ID, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("allow_device_registration", sa.Boolean(), nullable=False),
        sa.Column("allow_bypass", sa.Boolean(), nullable=False),
        sa.Column("require_passphrase", sa.Boolean(), nullable=False),
        sa.Column("device_expiry_seconds", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("org_id"),
    )

    op.create_table(
        "org_members",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("added_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.org_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.user_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id"),
    )
    with op.batch_alter_table("org_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_org_members_org_id"), ["org_id"], unique=False)

    op.create_table(
        "org_events",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("actor", ID, nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.org_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("org_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_org_events_org_id"), ["org_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("org_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_org_events_org_id"))
    op.drop_table("org_events")
    with op.batch_alter_table("org_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_org_members_org_id"))
    op.drop_table("org_members")
    op.drop_table("organisations")
    op.drop_table("device_request_failures")
    with op.batch_alter_table("device_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_requests_user_id"))
    op.drop_table("device_requests")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_devices_user_id"))
    op.drop_table("devices")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("passphrase_unlocked_ms")
        batch_op.drop_column("device_nonce")
        batch_op.drop_column("device_id")
