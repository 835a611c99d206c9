"""Alembic environment: online migrations against the configured URL, under
the migration lock on PostgreSQL (see authnet.migrations)."""

from __future__ import annotations

import contextlib

from alembic import context

from authnet.directory.sql import METADATA, make_engine
from authnet.migrations import migration_lock

url = context.config.get_main_option("sqlalchemy.url")
assert url is not None, "sqlalchemy.url must be set"
engine = make_engine(url)
with engine.connect() as connection:
    postgres = connection.dialect.name == "postgresql"
    with migration_lock(connection) if postgres else contextlib.nullcontext():
        context.configure(
            connection=connection,
            target_metadata=METADATA,
            render_as_batch=url.startswith("sqlite"),
        )
        with context.begin_transaction():
            context.run_migrations()
engine.dispose()
