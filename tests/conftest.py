"""Fixtures shared by the whole suite.

Every test gets its own database: a copy of a migrated SQLite file, or, when
``VDX_TEST_DATABASE_URL`` names a PostgreSQL server, a database cloned from a migrated template.
So tests never see each other's rows, and the suite runs unchanged on both.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from harness.nats import NatsServer
from harness.served import ServedProcess
from harness.turn import TURNSERVER, TurnServer
from vdx.app import create_app
from vdx.services import organisations
from vdx.settings import Settings
from vdx.store.migrate import upgrade
from vdx.tokens import mint_token

PG_URL = os.environ.get("VDX_TEST_DATABASE_URL")
NATS_URL = os.environ.get("VDX_TEST_NATS_URL")


def _pg_admin_url(url: str, db: str) -> str:
    base = url.rsplit("/", 1)[0]
    return f"{base}/{db}"


def _asyncpg(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


async def _pg_exec(url: str, sql: str) -> None:
    engine = create_async_engine(_asyncpg(url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database to copy from: a SQLite file path, or a PostgreSQL template db name."""
    if PG_URL:
        name = f"vdx_tmpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        asyncio.run(_pg_exec(_pg_admin_url(PG_URL, "postgres"), f'CREATE DATABASE "{name}"'))
        upgrade(Settings(database_url=_pg_admin_url(PG_URL, name), data_dir=tmp_path_factory.mktemp("tmpl")))
        yield name
        asyncio.run(_pg_exec(_pg_admin_url(PG_URL, "postgres"), f'DROP DATABASE IF EXISTS "{name}"'))
    else:
        d = tmp_path_factory.mktemp("tmpl")
        upgrade(Settings(data_dir=d))
        yield str(d / "vdx.sqlite3")


@pytest.fixture
def database_url(template_db: str, tmp_path: Path) -> Iterator[str | None]:
    """This test's own database (None = SQLite in the test's data dir)."""
    if PG_URL:
        name = f"vdx_t_{uuid.uuid4().hex[:12]}"
        asyncio.run(
            _pg_exec(_pg_admin_url(PG_URL, "postgres"), f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
        )
        yield _pg_admin_url(PG_URL, name)
        asyncio.run(
            _pg_exec(_pg_admin_url(PG_URL, "postgres"), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        )
    else:
        data = tmp_path / "data"
        data.mkdir(exist_ok=True)
        shutil.copy(template_db, data / "vdx.sqlite3")
        yield None


@pytest.fixture
def settings_factory(tmp_path: Path, database_url: str | None) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "database_url": database_url,
            "nats_url": NATS_URL,  # the PostgreSQL pass runs on real NATS JetStream too
            "public_url": "http://vdx.test",
            "sip_domain": "vdx.test",
            "log_format": "text",
            # The node's provisioner would provision what API tests seed; tests/node turn it on.
            "node_provisioner": False,
            "sip_enabled": False,  # SIP tests start their own server on free ports
            # No start-up self-test (seconds of CPU per app); capacity tests set their own.
            "node_capacity": 1000.0,
            # Tests read picture sizes and count views; node and peers share one starved loop here,
            # where a delay-based estimate speaks of CPU, not of a link. test_link_adaptation turns it on.
            "media_adapt": False,
            # With NATS a provisioning node joins a cluster: each test its own buckets, so tests
            # (and other suites on the same server) never place rooms on each other's nodes.
            "cluster_name": f"t{uuid.uuid4().hex[:12]}",
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory()


@dataclass
class Api:
    """An HTTP client on an in-process app, with token helpers."""

    app: Any
    client: httpx.AsyncClient
    settings: Settings

    @property
    def v2(self) -> str:
        return f"{self.settings.api_context}/v2"

    def token(self, org: str | None, email: str | None, *roles: str, **kw: Any) -> str:
        return mint_token(self.settings, org=org, email=email, roles=list(roles), **kw)

    def auth(self, org: str | None, email: str | None, *roles: str, **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(org, email, *roles, **kw)}"}

    async def add_org(self, code: str, **kw: Any) -> None:
        async with self.app.state.sessions() as s, s.begin():
            await organisations.create(s, code, **kw)


@pytest.fixture
async def api_factory(settings_factory: Callable[..., Settings]) -> AsyncIterator[Callable[..., Any]]:
    """Start apps with extra settings; all are shut down at the end of the test."""
    stack: list[Any] = []

    async def make(*, demo_sign_in: bool = False, **overrides: Any) -> Api:
        s = settings_factory(**overrides)
        app = create_app(s, migrate=False, demo_sign_in=demo_sign_in)
        cm = app.router.lifespan_context(app)
        await cm.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://vdx.test")
        stack.append((cm, client))
        return Api(app=app, client=client, settings=s)

    yield make
    for cm, client in reversed(stack):
        await client.aclose()
        await cm.__aexit__(None, None, None)


@pytest.fixture
async def api(api_factory: Callable[..., Any]) -> Api:
    a: Api = await api_factory()
    return a


@pytest.fixture
def live_server_factory(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., ServedProcess]]:
    """Start ``vdx COMMAND ARGS`` processes on this test's data dir and database (tests that need
    the whole node, signals or several processes); all are stopped at the end of the test."""
    servers: list[ServedProcess] = []

    def start(
        command: str = "serve", extra_env: dict[str, str | None] | None = None, args: Sequence[str] = ()
    ) -> ServedProcess:
        """``extra_env``: a value None leaves that variable unset."""
        env: dict[str, str | None] = {
            "VDX_SIP_DOMAIN": settings.sip_domain,
            "VDX_LOG_FORMAT": "text",
            "VDX_SIP_ENABLED": "false",  # never 5060: tests that want SIP pass free ports
            "VDX_NODE_CAPACITY": "1000",  # no start-up self-test; capacity tests set their own
            **(extra_env or {}),
        }
        server = ServedProcess(
            settings.data_dir,
            [command, *args],
            {k: v for k, v in env.items() if v is not None},
            database_url=settings.database_url,
            settings=settings,
            log_dir=tmp_path,
        )
        servers.append(server)
        server.start(60)
        return server

    yield start
    for s in servers:
        s.stop()


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    """The configured JetStream server (CI: the machine's), else a private one for this test."""
    if NATS_URL:
        yield NATS_URL
        return
    server = NatsServer(tmp_path / "nats-private")
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def turn(tmp_path: Path) -> Iterator[TurnServer]:
    """A throwaway coturn on a free loopback port (``harness.turn``), stopped at the end of the
    test. ``make test`` installs coturn (``scripts/install-test-deps.sh``); without it the test
    fails with the install command rather than passing unseen."""
    if not shutil.which(TURNSERVER):
        pytest.fail("no turnserver: apt-get install coturn (make test installs it)")
    server = TurnServer(tmp_path / "turn")
    server.start()
    try:
        yield server
    finally:
        server.stop()
