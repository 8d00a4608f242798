"""A node with its provisioner on, inside the real all-in-one app (in-process bus, or NATS
JetStream when ``VDX_TEST_NATS_URL`` is set), and the helpers of ``booking.py``."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.conftest import Api
from vdx.node.cluster.buckets import bucket_names


async def start_node_app(api_factory: Callable[..., Any], **overrides: Any) -> Api:
    """An app whose node provisions; returns once its provisioner is ready (subscribed and
    resynced), so what a test books next cannot be missed."""
    values: dict[str, Any] = {
        "node_provisioner": True,
        "node_id": f"test-{uuid.uuid4().hex[:8]}",
        "node_poll_interval": 0.2,
    }
    values.update(overrides)
    api: Api = await api_factory(**values)
    await asyncio.wait_for(api.app.state.provisioner.ready.wait(), 30)
    return api


@pytest.fixture
async def node_api(api_factory: Callable[..., Any]) -> AsyncIterator[Api]:
    api = await start_node_app(api_factory)
    await api.add_org("clinic")
    yield api
    await drop_consumer(api)


async def drop_consumer(api: Api) -> None:
    """Tests use one JetStream consumer per node id: remove it from a shared server afterwards."""
    if not api.settings.nats_url:
        return
    import nats

    nc = await nats.connect(api.settings.nats_url)
    try:
        js = nc.jetstream()
        name = api.app.state.provisioner.durable_name
        with contextlib.suppress(Exception):
            await js.delete_consumer(api.settings.nats_stream_scheduling_info, name)
        for bucket in bucket_names(api.settings):  # the test's cluster buckets
            with contextlib.suppress(Exception):
                await js.delete_key_value(bucket)
    finally:
        await nc.drain()
