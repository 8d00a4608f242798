"""Engine and session factory: SQLite (aiosqlite) by default, PostgreSQL (asyncpg) when configured."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.types import TypeDecorator

from vdx.settings import Settings

# SQLite only auto-increments an INTEGER PRIMARY KEY; elsewhere ids are 64-bit as in the reference.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC wall-clock (works the same on SQLite and PostgreSQL), returns aware UTC."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite function results
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)


def now_utc() -> datetime:
    """Now, to the second: the API never shows fractions (spec 1.0)."""
    return datetime.now(UTC).replace(microsecond=0)


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.database_url_effective
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _rec: Any) -> None:
            # Let SQLAlchemy's "begin" hook below emit BEGIN itself (SQLAlchemy's aiosqlite recipe).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Writers take the write lock at BEGIN so that concurrent writers queue instead of
            # failing with "database is locked" when they upgrade a read transaction; sessions
            # opened with ``read_session`` only read and do not queue behind writers (WAL).
            if conn.get_execution_options().get("vdx_read_only"):
                conn.exec_driver_sql("BEGIN")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_async_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def read_session(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session that only reads: on SQLite it does not take the write lock (it would queue behind
    every booking); elsewhere it is an ordinary session."""
    async with factory() as session:
        await session.connection(execution_options={"vdx_read_only": True})
        yield session
