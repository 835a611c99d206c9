"""Initial directory: service providers, certificates, accounts, tokens, data containers.

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
        "service_providers",
        sa.Column("spid", sa.LargeBinary(16), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("display_name", sa.String(128), nullable=False),
        sa.Column("origins", sa.Text, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("disabled_ms", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "sp_certificates",
        sa.Column("fingerprint", sa.LargeBinary(32), primary_key=True),
        sa.Column(
            "spid", sa.LargeBinary(16), sa.ForeignKey("service_providers.spid"), nullable=False
        ),
        sa.Column("serial", sa.String(40), nullable=False),
        sa.Column("not_after_ms", sa.BigInteger, nullable=False),
        sa.Column("revoked_ms", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_sp_certificates_spid", "sp_certificates", ["spid"])
    op.create_table(
        "accounts",
        sa.Column("user_id", sa.LargeBinary(16), primary_key=True),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "tokens",
        sa.Column("token_id", sa.LargeBinary(16), primary_key=True),
        sa.Column("user_id", sa.LargeBinary(16), sa.ForeignKey("accounts.user_id"), nullable=False),
        sa.Column("kind", sa.Integer, nullable=False),
        sa.Column("algorithm", sa.Integer, nullable=False),
        sa.Column("public_key", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("revoked_ms", sa.BigInteger, nullable=True),
        sa.Column("last_used_ms", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_tokens_user_id", "tokens", ["user_id"])
    op.create_table(
        "data_containers",
        sa.Column(
            "spid", sa.LargeBinary(16), sa.ForeignKey("service_providers.spid"), primary_key=True
        ),
        sa.Column(
            "user_id", sa.LargeBinary(16), sa.ForeignKey("accounts.user_id"), primary_key=True
        ),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("data_containers")
    op.drop_index("ix_tokens_user_id", "tokens")
    op.drop_table("tokens")
    op.drop_table("accounts")
    op.drop_index("ix_sp_certificates_spid", "sp_certificates")
    op.drop_table("sp_certificates")
    op.drop_table("service_providers")
