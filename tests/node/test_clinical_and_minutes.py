"""The node's links to the API beside provisioning: which organisations are clinical and the
gateway routing rules and trunks (read through the API, again at once when one changes) and its
minute counters (sent to the API and stored)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from harness.waiting import until
from tests.node.booking import book, wait_for_status, whole_seconds
from tests.node.conftest import drop_consumer, start_node_app
from vdx.booking.roles import ADMIN
from vdx.node.minutes import MinuteSnapshot, minute_of
from vdx.store.db import now_utc
from vdx.store.models import NodeMinute, NodeMinuteOrganisation, RefusedJoin


async def test_marking_an_organisation_clinical_reaches_the_booked_room_at_once(api_factory: Any) -> None:
    # A refresh interval no test waits for: only the organisation's event can bring the news.
    api = await start_node_app(api_factory, node_clinical_refresh=3600)
    try:
        await api.add_org("clinic")
        now = whole_seconds(now_utc())
        uuid, alias = await book(
            api, "clinic", start=now - timedelta(minutes=1), end=now + timedelta(hours=1)
        )
        await wait_for_status(api, uuid, "PROVISIONED_OK")
        rooms = api.app.state.rooms
        refresher = api.app.state.provisioner.clinical
        await until(lambda: refresher.refreshes >= 1, 10, "first read of the clinical organisations")
        assert rooms.clinical(alias) is False
        h = api.auth("clinic", "admin@clinic.dk", ADMIN)
        svc = f"{api.settings.api_context}/services/v2/organisation/clinic"
        r = await api.client.put(svc, json={"clinical": True}, headers=h)
        assert r.status_code == 200, r.text
        await until(lambda: rooms.clinical(alias), 15, "the room counts as clinical")
        r = await api.client.put(svc, json={"clinical": False}, headers=h)
        await until(lambda: not rooms.clinical(alias), 15, "and no longer")
        assert rooms.clinical("nobody@vdx.test") is False
    finally:
        await drop_consumer(api)


async def test_a_routing_rule_and_trunk_reach_the_node_at_once(api_factory: Any) -> None:
    # A refresh interval no test waits for: only the rule's and trunk's audit events bring them.
    api = await start_node_app(api_factory, node_routing_refresh=3600)
    try:
        routing = api.app.state.rooms.call_routing
        refresher = api.app.state.provisioner.routing
        await until(lambda: refresher.refreshes >= 1, 10, "first read of the routing rules")
        assert routing.loaded and routing.rules == () and routing.trunk("pbx") is None
        ops = api.settings.node_organisation
        h = api.auth(ops, "ops@vdx.test", ADMIN)
        node_ctx = f"{api.settings.api_context}/node/v1"
        trunk = {"proxy": "pbx.test:5061", "transport": "tls", "username": "vdx", "password": "s3cret"}
        assert (await api.client.put(f"{node_ctx}/trunks/pbx", json=trunk, headers=h)).status_code == 201
        rule = {"match": r"(\d{4})@gw\.vdx\.test", "replace": r"sip:\1@pbx.test", "trunk": "pbx"}
        assert (
            await api.client.put(f"{node_ctx}/routing-rules/pbx", json=rule, headers=h)
        ).status_code == 201

        await until(lambda: len(routing.rules) == 1, 15, "the rule reaches the node")
        pbx = routing.trunk("pbx")
        assert pbx is not None and (pbx.proxy, pbx.password) == ("pbx.test:5061", "s3cret")
        chosen = routing.decide("1234@gw.vdx.test", "any.test", "192.0.2.1")
        assert chosen.route is not None and chosen.route.destination == "sip:1234@pbx.test"

        assert (await api.client.delete(f"{node_ctx}/routing-rules/pbx", headers=h)).status_code == 204
        await until(lambda: routing.rules == (), 15, "the rule leaves the node")
    finally:
        await drop_consumer(api)


async def test_the_nodes_minutes_are_stored_through_the_api(api_factory: Any) -> None:
    api = await start_node_app(api_factory)
    try:
        minutes = api.app.state.rooms.minutes
        assert minutes is not None
        # A minute before the node started: its own clock reports each minute as it ends (with its
        # own, empty figures), which replaced the test's when the test ran at the end of a minute.
        at = minute_of(now_utc()) - timedelta(minutes=5)
        minutes.report(
            MinuteSnapshot(
                minute=at,
                capacity=2.0,
                units_in_use=1.0,
                reserve=0.5,
                participants={("webrtc", "sd"): 1, ("sip", "sd"): 1},
                organisations={("clinic", False): 2},
                refused={("capacity_clinical_reserve", "clinic", False): 1},
            )
        )

        async def stored() -> Any:
            async with api.app.state.sessions() as s:
                return (await s.execute(select(NodeMinute))).scalars().first()

        row = await until(stored, 15, "the minute stored")
        assert (row.node, row.minute, row.capacity, row.units_in_use, row.participants) == (
            api.settings.node_name,
            at,
            2.0,
            1.0,
            2,
        )
        async with api.app.state.sessions() as s:
            orgs = (await s.execute(select(NodeMinuteOrganisation))).scalars().all()
            refused = (await s.execute(select(RefusedJoin))).scalars().all()
        assert [(o.organisation_code, o.clinical, o.participants) for o in orgs] == [("clinic", False, 2)]
        assert [(r.reason, r.organisation_code, r.count) for r in refused] == [
            ("capacity_clinical_reserve", "clinic", 1)
        ]
        assert minutes.pending == 0 and minutes.sent == 1
    finally:
        await drop_consumer(api)
