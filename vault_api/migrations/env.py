"""Alembic environment: online migrations against the configured URL."""

from __future__ import annotations

from alembic import context

from vault_api.db import make_engine
from vault_api.migrations import VERSION_TABLE
from vault_api.schema import METADATA

url = context.config.get_main_option("sqlalchemy.url")
assert url is not None, "sqlalchemy.url must be set"
engine = make_engine(url)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=METADATA,
        version_table=VERSION_TABLE,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
