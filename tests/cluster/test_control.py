"""Conference control through the API reaches a conference live on any node of the cluster: the
operator's list spans the nodes, and a host's own participant token works there too, while the
host of another room (live on whichever node) is refused and a room live nowhere is not found."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets

from harness.ports import free_port
from harness.waiting import until
from tests.cluster.conftest import ORG, Cluster, join_on
from vdx.booking.roles import ADMIN

pytestmark = [pytest.mark.cluster, pytest.mark.pg]


@contextlib.asynccontextmanager
async def joined(cluster: Cluster, node: str, alias: str, name: str) -> AsyncIterator[Any]:
    """A participant of the room on ``node`` (a host: the cluster's meetings have no PINs)."""
    async with websockets.connect(cluster.ws_url(node, alias)) as ws:
        reply = await join_on(ws, name=name)
        assert reply["type"] == "joined" and reply["role"] == "host", reply
        ws.joined = reply
        yield ws


async def test_the_api_controls_a_conference_live_on_another_node(cluster: Cluster) -> None:
    (uuid, alias), (other_uuid, other) = [await cluster.book() for _ in range(2)]
    node = cluster.host_of(await cluster.provisioned(uuid))
    other_node = cluster.host_of(await cluster.provisioned(other_uuid))
    admin = cluster.headers(ADMIN, org=ORG)
    control = f"{cluster.api.base_url}/api/node/v1/conferences"
    async with (
        joined(cluster, node, alias, "Doctor") as doctor,
        joined(cluster, node, alias, "Nurse") as nurse,
        joined(cluster, other_node, other, "Elsewhere") as elsewhere,
        httpx.AsyncClient(timeout=20) as http,
    ):
        # the operator's list spans the nodes; the status comes from the node the room is on
        r = await http.get(control, headers=admin)
        assert r.status_code == 200, r.text
        assert {alias, other} <= {c["alias"] for c in r.json()}
        status = (await http.get(f"{control}/{alias}", headers=admin)).json()
        assert {p["displayName"] for p in status["participants"]} == {"Doctor", "Nurse"}

        # an operator mutes the nurse: the nurse is told on its own socket
        nurse_id = nurse.joined["participantId"]
        r = await http.post(f"{control}/{alias}/participants/{nurse_id}/mute", headers=admin)
        assert r.status_code == 204, r.text
        await _told(nurse, lambda m: m.get("type") == "muted" and m.get("muted") is True)

        # a host locks the room with its participant token; the host of another room may not
        # unlock it, nor may a token that is nobody's
        r = await http.post(f"{control}/{alias}/lock", headers=_bearer(doctor.joined["token"]))
        assert r.status_code == 204, r.text
        r = await http.post(f"{control}/{alias}/unlock", headers=_bearer(elsewhere.joined["token"]))
        assert r.status_code == 403, r.text
        r = await http.post(f"{control}/{alias}/unlock", headers=_bearer("not-a-token"))
        assert r.status_code == 401, r.text
        assert (await http.get(f"{control}/{alias}", headers=admin)).json()["locked"] is True

        # a participant who is not there, a room live nowhere
        r = await http.post(f"{control}/{alias}/participants/nobody/mute", headers=admin)
        assert r.status_code == 404, r.text
        r = await http.post(f"{control}/99999999@vdx.test/lock", headers=admin)
        assert r.status_code == 404, r.text

        # a dial-out from the node the room is on: to the node itself is refused before dialling;
        # to an address nobody answers at it fails, and the node reports that to the API's trail
        dial = f"{control}/{alias}/participants/dial"
        own = f"sip:{alias}:{cluster.sip_ports[node]}"
        r = await http.post(dial, json={"destination": own}, headers=admin)
        assert r.status_code == 400 and "loop" in r.json()["detailed_error"], r.text
        nowhere = f"sip:interpreter@127.0.0.1:{free_port()};transport=tcp"
        r = await http.post(dial, json={"destination": nowhere, "displayName": "Interpreter"}, headers=admin)
        assert r.status_code == 202, r.text
        dialled = r.json()["participantId"]

        # the operator ends it: both are sent away, and it leaves the list
        r = await http.post(f"{control}/{alias}/disconnect", headers=admin)
        assert r.status_code == 204, r.text
        for ws in (doctor, nurse):
            await _told(ws, lambda m: m.get("type") == "bye")

        async def unlisted() -> bool:
            rows = (await http.get(control, headers=admin)).json()
            return alias not in {c["alias"] for c in rows}

        await until(unlisted, 15, f"{alias} to leave the live list")

        # the API kept the trail, with the actors as the node saw them
        r = await http.get(f"{cluster.api.base_url}/api/v2/audit", params={"meeting": uuid}, headers=admin)
        assert r.status_code == 200, r.text
        entries = [e for e in r.json()["entries"] if e["resource"] == "conference"]
        done = [(e["operation"], e["user"]) for e in entries]
        doctor_id = doctor.joined["participantId"]
        assert sorted(done) == sorted(
            [
                ("mute", "planner@vdx.test"),
                ("lock", f"host Doctor ({doctor_id})"),
                ("dial", "planner@vdx.test"),
                ("dial_outcome", "planner@vdx.test"),
                ("end", "planner@vdx.test"),
            ]
        ), done
        outcome = next(e for e in entries if e["operation"] == "dial_outcome")
        assert (outcome["data"]["participantId"], outcome["data"]["state"]) == (dialled, "failed"), outcome


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _told(ws: Any, wanted: Any) -> None:
    async def seen() -> None:
        while not wanted(json.loads(await ws.recv())):
            pass

    await asyncio.wait_for(seen(), 10)
