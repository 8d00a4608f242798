"""The node on NATS JetStream (scale-out): scheduling-info events reach it through a durable
consumer, which resumes after a restart where the node stopped (spec 4.2)."""

from __future__ import annotations

from datetime import timedelta

import nats
import pytest

from harness.waiting import until
from tests.node.booking import book, delete_booking, wait_for_room, wait_for_status, whole_seconds
from tests.node.conftest import drop_consumer, start_node_app
from vdx.store.db import now_utc

pytestmark = pytest.mark.nats


async def test_events_over_jetstream_with_a_durable_consumer(api_factory, nats_url):
    node = await start_node_app(api_factory, nats_url=nats_url)
    try:
        await node.add_org("clinic")
        now = whole_seconds(now_utc())
        uuid, alias = await book(node, "clinic", start=now, end=now + timedelta(hours=1))
        await wait_for_room(node, alias)
        await wait_for_status(node, uuid, "PROVISIONED_OK")

        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            name = node.app.state.provisioner.durable_name
            info = await js.consumer_info(node.settings.nats_stream_scheduling_info, name)
            assert info.config.durable_name == name
            assert info.delivered.consumer_seq >= 1  # the CREATE came through this consumer
        finally:
            await nc.drain()

        # A future meeting booked and deleted: the DELETE event removes its announced room.
        later, later_alias = await book(
            node, "clinic", start=now + timedelta(hours=2), end=now + timedelta(hours=3)
        )
        await until(lambda: _present(node, later_alias), what="announced over JetStream")
        await delete_booking(node, later)
        await until(lambda: _absent(node, later_alias), what="removed over JetStream")
    finally:
        await drop_consumer(node)


async def _present(api, alias):
    return api.app.state.rooms.lookup(alias) is not None


async def _absent(api, alias):
    return api.app.state.rooms.lookup(alias) is None
