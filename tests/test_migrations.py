"""The Alembic migrations are the schema: after upgrading, the database matches
the metadata the code queries, and every step can be undone and redone."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from authnet import migrations
from authnet.directory.sql import METADATA, make_engine


def diff(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            return list(compare_metadata(MigrationContext.configure(c), METADATA))
    finally:
        engine.dispose()


def test_head_matches_the_metadata(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    migrations.upgrade(url)
    assert diff(url) == []


def test_every_step_goes_down_and_up_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'b.db'}"
    script = ScriptDirectory.from_config(migrations.config(url))
    revisions = [r.revision for r in script.walk_revisions()]
    assert revisions[-1] == "0001"
    migrations.upgrade(url)
    for revision in revisions[1:]:
        migrations.downgrade(url, revision)
    migrations.downgrade(url, "base")
    migrations.upgrade(url)
    assert diff(url) == []
