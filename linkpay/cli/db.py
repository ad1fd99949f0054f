"""``linkpay db upgrade``: create or migrate the schema with Alembic."""

from __future__ import annotations

import click
from alembic.config import Config as AlembicConfig

from alembic import command
from linkpay import ROOT


def alembic_config(database_url: str) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


@click.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def upgrade_command(revision: str) -> None:
    """Create or migrate the schema."""
    from linkpay.config import load_config

    url = load_config()["app.database_url"]
    upgrade(url, revision)
    click.echo(f"database is at {revision} ({url.split('@')[-1]})")


COMMANDS = [db_group]
