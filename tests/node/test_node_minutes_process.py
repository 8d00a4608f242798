"""A ``vdx node`` process without a database: it learns which organisations are clinical from
``vdx api`` over HTTP and sends its minutes there, refused joins included, and none is lost while
the API is away."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy import select

from harness.served import ServedProcess
from harness.waiting import until
from tests.node.booking import whole_seconds
from tests.node.test_node_command import _join
from tests.seed import meeting_with_si
from tests.test_cli import vdx
from vdx.booking.roles import PROVISIONER_USER
from vdx.services import organisations
from vdx.store.db import create_engine, now_utc, read_session, session_factory
from vdx.store.models import NodeMinute, RefusedJoin

pytestmark = pytest.mark.slow


async def test_a_remote_node_learns_clinical_organisations_and_reports_its_minutes(
    live_server_factory, tmp_path
):
    server = live_server_factory("api", {"VDX_EVENT_ORGANISATION_FILTER": "-"})
    engine = create_engine(server.settings)
    shim = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(sessions=session_factory(engine))))
    try:
        async with shim.app.state.sessions() as s, s.begin():
            await organisations.create(s, "clinic")
            await organisations.create(s, "vdx-node")
        now = whole_seconds(now_utc())
        uuid = await meeting_with_si(
            shim, "clinic", start=now - timedelta(minutes=1), end=now + timedelta(hours=1)
        )
        inherited = {k: v for k, v in server.env.items() if k.startswith("VDX_") and k != "VDX_DATABASE_URL"}
        node = ServedProcess(server.data_dir, ["node"], log_dir=tmp_path)
        node.env.update(inherited)
        node.env.update(
            {
                "VDX_HTTP_PORT": str(node.port),
                "VDX_PUBLIC_URL": f"http://127.0.0.1:{node.port}",
                "VDX_NODE_API_URL": f"{server.base_url}/api",
                "VDX_NODE_ID": "node-a",
                "VDX_NODE_POLL_INTERVAL": "0.3",
                "VDX_NODE_CLINICAL_REFRESH": "0.5",
                # an HD participant weighs 1 unit: every join is refused as "full"
                "VDX_NODE_CAPACITY": "0.5",
            }
        )
        node.spawn()
        try:
            node.wait_ready()
            headers = {
                "Authorization": f"Bearer {server.token('vdx-node', 'probe@vdx.test', PROVISIONER_USER)}"
            }
            async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=10) as http:

                async def provisioned():
                    si = (await http.get(f"/api/v2/scheduling-info/{uuid}")).json()
                    return si if si.get("provisionStatus") == "PROVISIONED_OK" else None

                si = await until(provisioned, 30, "the node to provision the meeting")
            # marked clinical on the server while the meeting is booked: the node reads it
            done = await asyncio.to_thread(vdx, server.settings, "org", "set", "clinic", "--clinical")
            assert done.returncode == 0, done.stderr
            await until(lambda: "clinical organisations now 1" in node.log_tail(), 15, "the node to read it")
            ws = f"ws://127.0.0.1:{node.port}/ws/rooms/{si['uriWithDomain']}"
            refused = await _join(ws, str(si["hostPin"]))
            assert refused["type"] == "error" and refused["code"] == "capacity_full", refused

            async def stored():
                async with read_session(shim.app.state.sessions) as s:
                    return (await s.execute(select(RefusedJoin))).scalars().all()

            # read-only polls, now and then: a writing session takes SQLite's write lock, and the API
            # storing the node's minute must not queue behind this test
            rows = await until(
                stored, 135, "the node's minute with the refusal in the API's database", poll_s=0.5
            )
            assert [(r.node, r.reason, r.organisation_code, r.clinical, r.count) for r in rows] == [
                ("node-a", "capacity_full", "clinic", True, 1)
            ]
            async with read_session(shim.app.state.sessions) as s:
                minute = (
                    (await s.execute(select(NodeMinute).where(NodeMinute.node == "node-a"))).scalars().first()
                )
            assert minute is not None and minute.capacity == 0.5 and minute.units_in_use == 0.0

            # the API goes away for a minute end or more: the node keeps those minutes and sends
            # them when it is back, so the stored minutes have no gap
            server.stop()
            await until(lambda: "node minutes not sent" in node.log_tail(), 100, "a minute the API missed")
            server.spawn()
            await asyncio.to_thread(server.wait_ready)

            async def caught_up():
                async with read_session(shim.app.state.sessions) as s:
                    rows = (
                        await s.execute(select(NodeMinute.minute).where(NodeMinute.node == "node-a"))
                    ).all()
                    return sorted(m for (m,) in rows) if "minutes sent again" in node.log_tail() else None

            stored_minutes = await until(caught_up, 60, "the node to send what the API missed", poll_s=0.5)
            steps = {b - a for a, b in itertools.pairwise(stored_minutes)}
            assert len(stored_minutes) >= 2 and steps == {timedelta(minutes=1)}, stored_minutes
        except BaseException:
            print(node.log_tail())
            raise
        finally:
            node.stop()
    finally:
        await engine.dispose()
