"""Engine and session factory: SQLite (aiosqlite) by default, PostgreSQL (asyncpg) when configured."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.types import TypeDecorator

from vdx.settings import Settings
from vdx.store.write_queue import WriteQueue

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
        busy_timeout_s = 30
        engine = create_async_engine(url, connect_args={"timeout": busy_timeout_s})
        writers = WriteQueue(busy_timeout_s)
        writers.install(engine.sync_engine)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _rec: Any) -> None:
            # Let SQLAlchemy's "begin" hook below emit BEGIN itself (SQLAlchemy's aiosqlite recipe).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={busy_timeout_s * 1000}")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Writers take the write lock at BEGIN, in their turn (``WriteQueue``), so that
            # concurrent writers queue instead of failing with "database is locked" when they
            # upgrade a read transaction; sessions opened with ``read_session`` only read and do
            # not queue behind writers (WAL).
            if conn.get_execution_options().get("vdx_read_only"):
                conn.exec_driver_sql("BEGIN")
            else:
                writers.begin_immediate(conn)

        return engine
    # No overflow: a connection above the pool's size is closed when it comes back, so a load of
    # more concurrent requests than that would open and close a PostgreSQL backend (a fork, and
    # its statements prepared anew) every few requests; waiting for a pooled one is cheaper.
    engine = create_async_engine(url, pool_size=settings.database_pool_size, max_overflow=0)
    _ping_when_idle(engine)
    return engine


# A pooled connection idle longer than this is checked before use (a database restart or failover
# drops it). One in steady use proves itself; SQLAlchemy's ``pool_pre_ping`` would check every
# checkout, which on asyncpg is three round trips (BEGIN, ping, ROLLBACK) per session.
IDLE_PING_AFTER = 5.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    def _stamp(_dbapi_conn: Any, record: Any, *_: Any) -> None:
        record.info["vdx_idle_since"] = time.monotonic()

    event.listen(engine.sync_engine, "connect", _stamp)
    event.listen(engine.sync_engine, "checkin", _stamp)

    @event.listens_for(engine.sync_engine, "checkout")
    def _ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("vdx_idle_since", 0.0) < IDLE_PING_AFTER:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            # the pool discards this connection and checks out another (up to three times)
            raise DisconnectionError(str(exc)) from exc


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def read_session(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session that only reads. On SQLite it does not take the write lock (it would queue behind
    every booking). On PostgreSQL it runs in autocommit: under READ COMMITTED each statement sees
    its own snapshot anyway, so BEGIN and ROLLBACK were two round trips that changed nothing."""
    async with factory() as session:
        options: dict[str, Any] = {"vdx_read_only": True}
        bind = session.bind
        if bind is not None and bind.dialect.name == "postgresql":
            options["isolation_level"] = "AUTOCOMMIT"
        await session.connection(execution_options=options)
        yield session


def table_of(model: type[Any]) -> Table:
    """The table of a mapped class, typed as one (``__table__`` is typed as any FROM clause)."""
    table: Table = model.__table__
    return table


# INSERT ... RETURNING id per (table, dialect, unique key skipped), built once (SQLAlchemy
# memoises a statement's cache key).
_INSERT_RETURNING_ID: dict[tuple[Table, str, tuple[str, ...]], Any] = {}


def _insert_returning_id(table: Table, dialect: str, skip_conflict_on: tuple[str, ...]) -> Any:
    key = (table, dialect, skip_conflict_on)
    stmt = _INSERT_RETURNING_ID.get(key)
    if stmt is None:
        if skip_conflict_on:
            dml = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
            stmt = dml.on_conflict_do_nothing(index_elements=list(skip_conflict_on))
        else:
            stmt = table.insert()
        stmt = _INSERT_RETURNING_ID[key] = stmt.returning(table.c.id)
    return stmt


async def insert_new(session: AsyncSession, obj: Any, *, skip_conflict_on: tuple[str, ...] = ()) -> bool:
    """INSERT a new object's column values in one Core statement and set its ``id``; the object
    stays out of the session (transient), its relationships as the caller set them.

    For hot paths (a booking): the unit of work's flush of a new meeting and its VMR cost more
    CPU than everything else the booking does. The caller sets the foreign-key columns itself
    (a relationship set on a transient object fills its foreign key only at a flush). As in a
    flush, columns set to None are left out (a column default applies), but the object is not
    given the defaults: the caller sets every column the answer or an event reads.

    ``skip_conflict_on``: the columns of a unique key whose collision inserts nothing (``ON
    CONFLICT DO NOTHING``, waiting for a concurrent inserter of the same key) and returns False."""
    table = obj.__table__
    bind = session.bind
    dialect = bind.dialect.name if bind is not None else "sqlite"
    stmt = _insert_returning_id(table, dialect, skip_conflict_on)
    values = {
        key: value
        for key, value in obj.__dict__.items()
        if value is not None and key in table.c and key != "id"
    }
    new_id = (await session.execute(stmt, values)).scalar_one_or_none()
    if new_id is None:
        return False
    obj.id = new_id
    return True
