"""Organisations kept apart on the node (issue 15): conference control, the live list and usage
answer a meeting-admin of the room's organisation or of an ancestor, and a host of that very
room; a guest's participant token, a host of another room, an admin of a sibling, a parent's
child or another tree, and provisioner tokens get 403 on every endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from harness.bot import Bot
from tests.media.conftest import Node
from vdx.booking.roles import ADMIN, PLANNER, PROVISIONER, PROVISIONER_USER, USER
from vdx.conference.policy import RoomConfig
from vdx.services import organisations
from vdx.tokens import mint_token

pytestmark = pytest.mark.media

A, B, C = "4100@vdx.test", "4200@vdx.test", "4300@vdx.test"


def endpoints(pid: str) -> Iterator[tuple[str, str, dict[str, str] | None]]:
    """Every conference control endpoint of one conference (method, path under it, body);
    ``pid`` is the participant the participant endpoints act on."""
    yield "GET", "", None
    for action in ("lock", "unlock", "mute_guests", "unmute_guests"):
        yield "POST", f"/{action}", None
    yield "POST", "/layout", {"layout": "one_main_zero_pips"}
    for action in ("mute", "unmute", "admit", "disconnect"):
        yield "POST", f"/participants/{pid}/{action}", None
    yield "POST", "/disconnect", None  # ends the conference: last


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def tree(node: Node) -> None:
    """region -> east -> ward, region -> west; ops (the fixture's) is another tree."""
    async with node.app.state.sessions() as s, s.begin():
        await organisations.create(s, "region")
        await organisations.create(s, "east", parent_code="region")
        await organisations.create(s, "west", parent_code="region")
        await organisations.create(s, "ward", parent_code="east")


def admin_of(node: Node, org: str, *roles: str) -> dict[str, str]:
    return bearer(mint_token(node.settings, org=org, email=f"x@{org}.test", roles=list(roles or (ADMIN,))))


async def joined(node: Node, alias: str, name: str, pin: str) -> Bot:
    bot = node.bot(alias, name)
    await bot.connect()
    assert (await bot.join(pin))["type"] == "joined"
    return bot


async def test_control_live_list_and_usage_only_for_the_rooms_organisation_its_ancestors_and_hosts(node):
    await tree(node)
    node.add_room(A, host_pin="1111", guest_pin="2222", organisation="east")
    node.add_room(B, host_pin="3333", organisation="west")
    node.add_room(C, host_pin="4444", organisation="east")
    host_a = await joined(node, A, "Host A", "1111")
    guest_a = await joined(node, A, "Guest A", "2222")
    host_b = await joined(node, B, "Host B", "3333")
    host_c = await joined(node, C, "Host C", "4444")

    refused = {
        "guest of the room": bearer(guest_a.token),
        "host of another room": bearer(host_b.token),
        "admin of a sibling": admin_of(node, "west"),
        "admin of a descendant": admin_of(node, "ward"),
        "admin of another tree": node.admin(),
        "meeting-user of the organisation": admin_of(node, "east", USER),
        "provisioner-user of the root": admin_of(node, "region", PROVISIONER_USER),
        "provisioner": bearer(mint_token(node.settings, org=None, email=None, roles=[PROVISIONER])),
    }
    for who, headers in refused.items():
        for method, path, body in endpoints(guest_a.participant_id or ""):
            r = await node.http.request(method, node.control(A, path), json=body, headers=headers)
            assert r.status_code == 403, (who, method, path, r.status_code)
        # usage: 403 without meeting-admin; an admin elsewhere sees only their own subtree's
        r = await node.http.get("/web/usage", headers=headers)
        if who.startswith("admin of"):
            assert r.status_code == 200 and r.json()["capacity"]["conferences"] < 2, who
        else:
            assert r.status_code == 403, (who, "usage", r.status_code)
    # Nothing they tried took effect: both are still in, the room unlocked, the layout as it was.
    status = (await node.http.get(node.control(A), headers=admin_of(node, "east"))).json()
    assert {p["displayName"] for p in status["participants"]} == {"Host A", "Guest A"}
    assert status["locked"] is False and status["hostView"] == "one_main_seven_pips"

    # The host of the room, an admin of its organisation and one of an ancestor get through on
    # every endpoint short of ending (a participant that does not exist: 404, past the gate).
    allowed = {
        "host of the room": bearer(host_a.token),
        "admin of the organisation": admin_of(node, "east"),
        "admin of an ancestor": admin_of(node, "region"),
    }
    for who, headers in allowed.items():
        for method, path, body in list(endpoints("nobody"))[:-1]:
            r = await node.http.request(method, node.control(A, path), json=body, headers=headers)
            expected = 404 if "/participants/" in path else 200 if method == "GET" else 204
            assert r.status_code == expected, (who, method, path, r.status_code, r.text)

    # The live list and capacity show the operator's own subtree only.
    listing = f"{node.settings.api_context}/node/v1/conferences"
    subtrees = {"region": {A, B, C}, "east": {A, C}, "west": {B}, "ward": set(), "ops": set()}
    for org, rooms in subtrees.items():
        r = await node.http.get(listing, headers=admin_of(node, org))
        assert {c["alias"] for c in r.json()} == rooms, org
        usage = (await node.http.get("/web/usage", headers=admin_of(node, org))).json()
        assert usage["capacity"]["conferences"] == len(rooms), org
    for who in ("guest of the room", "host of another room", "provisioner"):
        assert (await node.http.get(listing, headers=refused[who])).status_code == 403, who

    # Ending: each allowed kind ends one conference (the host its own only).
    assert (
        await node.http.post(node.control(B, "/disconnect"), headers=bearer(host_a.token))
    ).status_code == 403
    assert (
        await node.http.post(node.control(C, "/disconnect"), headers=bearer(host_c.token))
    ).status_code == 204
    assert (
        await node.http.post(node.control(A, "/disconnect"), headers=admin_of(node, "east"))
    ).status_code == 204
    assert (
        await node.http.post(node.control(B, "/disconnect"), headers=admin_of(node, "region"))
    ).status_code == 204
    for bot in (host_a, guest_a, host_b, host_c):
        await bot.expect("bye")


async def test_a_booked_room_is_controlled_and_counted_only_within_its_organisation(node):
    # The room the node provisions from a booking names the booking's organisation; live
    # counts on the booking page come only for one's own organisation's meetings, whatever
    # provisioner role the token also holds.
    await tree(node)
    start = datetime.now(UTC).replace(microsecond=0)
    planner = admin_of(node, "east", PLANNER)
    api = f"{node.settings.api_context}/v2"
    r = await node.http.post(
        f"{api}/meetings",
        json={
            "subject": "Ward round",
            "startTime": start.isoformat(),
            "endTime": (start + timedelta(hours=1)).isoformat(),
        },
        headers=planner,
    )
    assert r.status_code == 200, r.text
    si = (await node.http.get(f"{api}/scheduling-info/{r.json()['uuid']}", headers=planner)).json()
    alias = si["uriWithDomain"]
    config = RoomConfig.from_scheduling_info(si)  # as the provisioner reads it (tests/node)
    assert config.organisation == si["organisationCode"] == "east"
    node.rooms.put(config)
    host = await joined(node, alias, "Host", str(si["hostPin"]))

    assert (await node.http.get(node.control(alias), headers=admin_of(node, "east"))).status_code == 200
    assert (await node.http.get(node.control(alias), headers=admin_of(node, "region"))).status_code == 200
    assert (await node.http.get(node.control(alias), headers=admin_of(node, "west"))).status_code == 403
    assert (await node.http.get(node.control(alias), headers=bearer(host.token))).status_code == 200

    async def live(headers: dict[str, str]) -> int | None:
        r = await node.http.get("/web/live", params={"alias": alias}, headers=headers)
        return r.json()[alias] if r.status_code == 200 else r.status_code

    assert await live(planner) == 1
    assert await live(admin_of(node, "west", USER, PROVISIONER_USER)) == 0
    assert await live(admin_of(node, "west", ADMIN)) == 0
    assert await live(admin_of(node, "east", PROVISIONER_USER)) == 403
    assert await live(bearer(mint_token(node.settings, org=None, email=None, roles=[PROVISIONER]))) == 403
