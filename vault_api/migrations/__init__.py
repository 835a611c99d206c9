"""Alembic migrations of the vault database. `upgrade(url)` brings a database
to the newest schema; `vault-api serve` and `vault-api migrate` call it. The
version table is `vault_alembic_version`, so the vault can share a PostgreSQL
database with other applications."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

HERE = Path(__file__).resolve().parent
VERSION_TABLE = "vault_alembic_version"


def config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(config(url), revision)
