"""What a newcomer meets on ``make run``: the demo meeting is open on the node, and an idle node
keeps the console quiet while it polls."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from harness.waiting import until
from tests.node.booking import book, wait_for_room, whole_seconds
from tests.node.conftest import drop_consumer, start_node_app
from vdx import logs
from vdx.demo import DEMO_MEETING_LEFT, ensure_demo

POLL_S = 0.1
POLLS = "vdx_http_requests_total"


@pytest.fixture
def console() -> Iterator[io.StringIO]:
    """The served process's console (``logs.setup``, JSON lines) for one test; restored after."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    quiet = {name: logging.getLogger(name).level for name in ("httpx", "uvicorn.access")}
    out = io.StringIO()
    logs.setup("json", "INFO", stream=out)
    yield out
    root.handlers[:], level = saved
    root.setLevel(level)
    for name, lvl in quiet.items():
        logging.getLogger(name).setLevel(lvl)


def polls(api: Any) -> float:
    value = api.app.state.metrics_registry.get_sample_value(
        POLLS,
        {"method": "GET", "route": f"{api.v2}/scheduling-info-provision", "status": "200"},
    )
    return float(value or 0)


async def test_an_idle_node_logs_nothing_while_it_polls(
    api_factory: Callable[..., Any], console: io.StringIO
) -> None:
    api = await start_node_app(api_factory, node_poll_interval=POLL_S, event_organisation_filter="-")
    try:
        await api.add_org("clinic")
        before = polls(api)
        console.truncate(0)
        console.seek(0)
        await asyncio.sleep(POLL_S * 10)
        assert polls(api) >= before + 3  # the node did poll its API meanwhile
        assert console.getvalue() == ""
        # a real change still shows: the polled booking's provisioning is one line
        now = whole_seconds(datetime.now(UTC))
        _, alias = await book(api, "clinic", start=now, end=now + timedelta(hours=1), events=False)

        async def provisioned_line() -> list[str]:
            return [line for line in console.getvalue().splitlines() if f"provisioned {alias}" in line]

        assert len(await until(provisioned_line, what="the provisioning's log line")) == 1
    finally:
        await drop_consumer(api)


async def test_the_demo_meeting_is_open_on_the_node(api_factory: Callable[..., Any]) -> None:
    api = await start_node_app(api_factory)
    try:
        demo = await ensure_demo(api.settings)
        assert demo.host_pin is not None and demo.guest_pin is not None
        assert demo.host_pin != demo.guest_pin
        room = await wait_for_room(api, demo.alias)
        assert room.end_time is not None and room.end_time >= datetime.now(UTC) + DEMO_MEETING_LEFT
        # a second start finds the same meeting still current instead of booking another
        assert await ensure_demo(api.settings) == demo
    finally:
        await drop_consumer(api)
