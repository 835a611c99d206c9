"""SP certificate serials: room for every X.509 serial in decimal.

A serial is up to 20 octets (RFC 5280), 159 random bits here: up to 48
decimal digits, which VARCHAR(40) could not hold. SQLite never enforced the
length; PostgreSQL refused such certificates.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sp_certificates") as batch:
        batch.alter_column(
            "serial", existing_type=sa.String(40), type_=sa.String(64), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sp_certificates") as batch:
        batch.alter_column(
            "serial", existing_type=sa.String(64), type_=sa.String(40), existing_nullable=False
        )
