"""Schema migrations (Alembic), run on start and by ``vdx migrate``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

from vdx.settings import Settings


def alembic_config(settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", settings.database_url_effective.replace("%", "%%"))
    return cfg


def upgrade(settings: Settings) -> None:
    """Bring the schema to the newest revision (blocking; runs its own event loop)."""
    if not settings.is_postgres:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings), "head")


async def upgrade_async(settings: Settings) -> None:
    """The same from inside a running event loop: Alembic's env needs a loop of its own."""
    await asyncio.to_thread(upgrade, settings)
