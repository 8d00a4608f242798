"""Alembic environment: runs on the async engine of the configured database."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from vdx.store.models import Base

config = context.config
target_metadata = Base.metadata

# Serialises migrations of several processes starting at once on PostgreSQL.
_PG_MIGRATION_LOCK = 7_710_001


def _run(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text(f"SELECT pg_advisory_lock({_PG_MIGRATION_LOCK})"))
            await conn.commit()
        try:
            await conn.run_sync(_run)
            await conn.commit()
        finally:
            if conn.dialect.name == "postgresql":
                await conn.execute(text(f"SELECT pg_advisory_unlock({_PG_MIGRATION_LOCK})"))
                await conn.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
