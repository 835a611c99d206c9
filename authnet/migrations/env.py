"""Alembic environment: online migrations against the configured URL."""

from __future__ import annotations

from alembic import context

from authnet.directory.sql import METADATA, make_engine

url = context.config.get_main_option("sqlalchemy.url")
assert url is not None, "sqlalchemy.url must be set"
engine = make_engine(url)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=METADATA,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
