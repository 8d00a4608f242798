"""The outbox relay: events recorded in a transaction reach the bus after commit, in order, once
(issue 3: "never lose an event and never fail a booking because the bus is down")."""

from __future__ import annotations

import json
import os
import uuid

import nats
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy
from sqlalchemy import select, update

from harness.nats import NatsServer
from harness.waiting import until
from vdx.bus.base import Message
from vdx.events import record
from vdx.store.models import Outbox

NATS_URL = os.environ.get("VDX_TEST_NATS_URL")


async def _record(api, n: int, key: str) -> list[str]:
    """Record ``n`` events in one committed transaction; returns their message ids."""
    async with api.app.state.sessions() as s, s.begin():
        for i in range(n):
            record._enqueue(s, api.settings.nats_subject_audit, {"seq": i, "key": key}, key)
    async with api.app.state.sessions() as s:
        rows = (
            await s.execute(select(Outbox).where(Outbox.ordering_key == key).order_by(Outbox.id))
        ).scalars()
        return [r.message_id for r in rows]


async def test_in_process_bus_delivers_in_order_after_commit(api_factory):
    api = await api_factory(nats_url=None)
    got: list[Message] = []

    async def handler(msg: Message) -> None:
        got.append(msg)

    await api.app.state.bus.subscribe(api.settings.nats_subject_audit, handler)
    key = uuid.uuid4().hex
    ids = await _record(api, 5, key)

    async def arrived():
        return len([m for m in got if json.loads(m.data)["key"] == key]) == 5

    await until(arrived, what="5 events")
    mine = [m for m in got if json.loads(m.data)["key"] == key]
    assert [json.loads(m.data)["seq"] for m in mine] == [0, 1, 2, 3, 4]
    assert [m.msg_id for m in mine] == ids

    async def all_marked():
        async with api.app.state.sessions() as s:
            rows = (await s.execute(select(Outbox).where(Outbox.ordering_key == key))).scalars().all()
            return all(r.published_time is not None for r in rows)

    await until(all_marked, what="rows marked published")


async def test_rolled_back_transaction_publishes_nothing(api_factory):
    api = await api_factory(nats_url=None)
    got: list[Message] = []

    async def handler(msg: Message) -> None:
        got.append(msg)

    await api.app.state.bus.subscribe(">", handler)
    key = uuid.uuid4().hex
    with pytest.raises(RuntimeError):
        async with api.app.state.sessions() as s, s.begin():
            record._enqueue(s, api.settings.nats_subject_audit, {"key": key}, key)
            raise RuntimeError("booking failed")
    await _record(api, 1, "after")  # a later event proves the relay ran past that point
    await until(lambda: _has(got, "after"), what="later event")
    assert not any(json.loads(m.data).get("key") == key for m in got)


async def _has(got: list[Message], key: str) -> bool:
    return any(json.loads(m.data).get("key") == key for m in got)


@pytest.mark.nats
async def test_outage_then_exactly_once_in_order(api_factory, tmp_path):
    """With NATS down, recording succeeds; when NATS returns, a JetStream consumer gets every
    event once and in order, even when the relay resends some (crash between publish and mark)."""
    server = NatsServer(tmp_path / "nats")
    server.start()
    try:
        api = await api_factory(nats_url=server.url)
        await until(lambda: _bus_up(api), what="bus connected")
        server.stop()
        key = uuid.uuid4().hex
        ids = await _record(api, 20, key)
        assert len(ids) == 20
        r = await api.client.get("/manage/health")
        assert r.status_code == 200 and r.json()["components"]["bus"]["status"] == "DOWN"

        server.start()  # same port, same store
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        seen: list[dict] = []

        async def on_msg(msg) -> None:
            body = json.loads(msg.data)
            if body.get("key") == key:
                seen.append(body)
            await msg.ack()

        async def published() -> bool:
            async with api.app.state.sessions() as s:
                rows = (await s.execute(select(Outbox).where(Outbox.ordering_key == key))).scalars().all()
                return all(r.published_time is not None for r in rows)

        await until(published, deadline_s=30, what="relay to publish after NATS came back")
        # Simulate a relay that crashed after publishing but before marking: it sends all 20 again.
        async with api.app.state.sessions() as s, s.begin():
            await s.execute(update(Outbox).where(Outbox.ordering_key == key).values(published_time=None))
        api.app.state.outbox.wake()
        await until(published, deadline_s=30, what="resend")

        sub = await js.subscribe(
            api.settings.nats_subject_audit,
            cb=on_msg,
            manual_ack=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        await until(lambda: _count(seen, 20), what="20 events at the consumer")
        info = await js.stream_info(api.settings.nats_stream_audit)
        assert info.state.messages == 20  # the resend was dropped by JetStream's de-duplication
        assert [b["seq"] for b in seen] == list(range(20))
        await sub.unsubscribe()
        await nc.drain()
    finally:
        server.stop()


async def _bus_up(api) -> bool:
    try:
        await api.app.state.bus.check()
        return True
    except Exception:
        return False


async def _count(seen: list, n: int) -> bool:
    return len(seen) >= n


@pytest.mark.nats
async def test_streams_are_created_and_events_stored(api_factory, nats_url):
    api = await api_factory(nats_url=nats_url)
    await until(lambda: _bus_up(api), what="bus connected")
    key = uuid.uuid4().hex
    await _record(api, 3, key)

    async def published() -> bool:
        async with api.app.state.sessions() as s:
            rows = (await s.execute(select(Outbox).where(Outbox.ordering_key == key))).scalars().all()
            return all(r.published_time is not None for r in rows)

    await until(published, what="relay to publish")
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(api.settings.nats_stream_audit)
        assert api.settings.nats_subject_audit in info.config.subjects
        psub = await js.pull_subscribe(
            api.settings.nats_subject_audit, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
        )
        mine: list[int] = []

        async def fetched() -> bool:
            try:
                for m in await psub.fetch(100, timeout=1):
                    body = json.loads(m.data)
                    if body.get("key") == key:
                        mine.append(body["seq"])
                    await m.ack()
            except nats.errors.TimeoutError:
                pass
            return len(mine) >= 3

        await until(fetched, what="3 events in the stream")
        assert mine == [0, 1, 2]
    finally:
        await nc.drain()
