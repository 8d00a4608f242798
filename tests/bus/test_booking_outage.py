"""Bookings during a NATS outage (spec 4.2; vdx's outbox instead of the reference's publish in the
transaction): with NATS stopped, bookings succeed; when it comes back, a JetStream consumer
receives each of their events exactly once, in order per scheduling info."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import timedelta

import nats
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy
from sqlalchemy import select

from harness.nats import NatsServer
from harness.waiting import until
from tests.bus.test_outbox_relay import _bus_up
from tests.seed import meeting_body
from vdx.booking.roles import USER
from vdx.store.db import now_utc
from vdx.store.models import Outbox

N = 20


@pytest.mark.nats
async def test_bookings_during_a_nats_outage_reach_the_consumer_once_in_order(api_factory, tmp_path):
    server = NatsServer(tmp_path / "nats")
    server.start()
    try:
        api = await api_factory(nats_url=server.url)
        await until(lambda: _bus_up(api), what="bus connected")
        await api.add_org("org1")
        server.stop()

        headers = api.auth("org1", "u@x.dk", USER)
        uuids = []
        for i in range(N):
            start = now_utc() + timedelta(days=1, minutes=i)
            r = await api.client.post(f"{api.v2}/meetings", headers=headers, json=meeting_body(start=start))
            assert r.status_code == 200, r.text
            uuids.append(r.json()["uuid"])
        for u in uuids:  # a second event per scheduling info: the order must hold per SI
            r = await api.client.patch(f"{api.v2}/meetings/{u}", headers=headers, json={"subject": "moved"})
            assert r.status_code == 200, r.text
        r = await api.client.get("/manage/health")
        assert r.json()["components"]["bus"]["status"] == "DOWN"

        server.start()  # same port, same store

        async def published() -> bool:
            async with api.app.state.sessions() as s:
                rows = (await s.execute(select(Outbox))).scalars().all()
                return bool(rows) and all(r.published_time is not None for r in rows)

        await until(published, deadline_s=30, what="relay to publish after NATS came back")
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            seen: dict[str, list[str]] = defaultdict(list)
            msg_ids: list[str] = []

            async def on_msg(msg) -> None:
                body = json.loads(msg.data)
                seen[body["uuid"]].append(body["messageType"])
                msg_ids.append((msg.headers or {}).get("Nats-Msg-Id", ""))
                await msg.ack()

            sub = await js.subscribe(
                api.settings.nats_subject_scheduling_info,
                cb=on_msg,
                manual_ack=True,
                config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
            )

            async def all_arrived() -> bool:
                return sum(len(v) for v in seen.values()) >= 2 * N

            await until(all_arrived, deadline_s=30, what=f"{2 * N} events at the consumer")
            info = await js.stream_info(api.settings.nats_stream_scheduling_info)
            assert info.state.messages == 2 * N
            assert set(seen) == set(uuids)
            assert all(seen[u] == ["CREATE", "UPDATE"] for u in uuids), dict(seen)
            assert len(set(msg_ids)) == 2 * N and all(msg_ids)
            await sub.unsubscribe()
        finally:
            await nc.drain()
    finally:
        server.stop()
