"""The vault's Alembic migrations are its schema, on SQLite and PostgreSQL:
after upgrading, the database matches the metadata the code queries, and
every step can be undone and redone."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from vault_api import migrations
from vault_api.db import make_engine
from vault_api.schema import METADATA


def diff(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            ctx = MigrationContext.configure(c, opts={"version_table": migrations.VERSION_TABLE})
            return list(compare_metadata(ctx, METADATA))
    finally:
        engine.dispose()


def test_head_matches_the_metadata_and_steps_go_down_and_up(db_url: str) -> None:
    migrations.upgrade(db_url)
    assert diff(db_url) == []
    script = ScriptDirectory.from_config(migrations.config(db_url))
    assert [r.revision for r in script.walk_revisions()][-1] == "0001"
    migrations.downgrade(db_url, "base")
    engine = make_engine(db_url)
    try:
        with engine.connect() as c:
            ctx = MigrationContext.configure(c, opts={"version_table": migrations.VERSION_TABLE})
            assert ctx.get_current_revision() is None
    finally:
        engine.dispose()
    migrations.upgrade(db_url)
    assert diff(db_url) == []
