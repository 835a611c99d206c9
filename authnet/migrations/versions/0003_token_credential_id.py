"""FIDO2 tokens: the credential id, indexed, so a page that logs in with a
security key (WebAuthn in the browser, discoverable credentials) finds the
token from the assertion alone.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

WEBAUTHN_ES256 = 2


def _credential_id(attested: bytes) -> bytes:
    # AttestedCredentialData: AAGUID (16) || length (u16, big-endian) || id || COSE key.
    n = int.from_bytes(attested[16:18], "big")
    return attested[18 : 18 + n]


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("credential_id", sa.LargeBinary, nullable=True))
        batch.create_index("ix_tokens_credential_id", ["credential_id"], unique=True)
    tokens = sa.table(
        "tokens",
        sa.column("token_id", sa.LargeBinary),
        sa.column("algorithm", sa.Integer),
        sa.column("public_key", sa.LargeBinary),
        sa.column("credential_id", sa.LargeBinary),
    )
    c = op.get_bind()
    rows = c.execute(
        sa.select(tokens.c.token_id, tokens.c.public_key).where(
            tokens.c.algorithm == WEBAUTHN_ES256
        )
    ).all()
    for token_id, public_key in rows:
        c.execute(
            tokens.update()
            .where(tokens.c.token_id == token_id)
            .values(credential_id=_credential_id(public_key))
        )


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_index("ix_tokens_credential_id")
        batch.drop_column("credential_id")
