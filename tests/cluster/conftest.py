"""The ``cluster`` fixture: ``harness.cluster.Cluster`` (one ``vdx api`` and three ``vdx node``
processes on their own nats-server) on this test's PostgreSQL database. Tests import ``Cluster``,
``join`` and ``join_on`` from here or from ``harness.cluster``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from harness.cluster import NODE_IDS, ORG, Cluster, join, join_on

__all__ = ["NODE_IDS", "ORG", "Cluster", "cluster", "join", "join_on"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" and report.failed:
        item.stash[_FAILED] = True
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
async def cluster(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str | None
) -> AsyncIterator[Cluster]:
    """One api and three nodes on a private NATS and this test's PostgreSQL database; the nodes'
    logs are printed when the test fails."""
    if not database_url:
        pytest.fail("cluster tests run on PostgreSQL: set VDX_TEST_DATABASE_URL (make test does)")
    c = Cluster(tmp_path, database_url)
    async with c.serving():
        try:
            yield c
        finally:
            if request.node.stash.get(_FAILED, False):
                print(c.logs_tail())
