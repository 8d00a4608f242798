"""Usage per organisation per day (issue 6): the node's ledger splits calls at midnight, the
writer adds it to the database once, and the dashboard's usage endpoint reads it back after a
restart. Explicit timestamps throughout: nothing here depends on the clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from tests import seed
from vdx.app import create_app
from vdx.booking.roles import ADMIN, PLANNER, PROVISIONER, PROVISIONER_USER, USER
from vdx.booking.usage import DayUsage, UsageLedger
from vdx.services import organisations
from vdx.services import usage as usage_service
from vdx.settings import Settings
from vdx.store.models import UsageDay
from vdx.tokens import mint_token

D = date(2030, 3, 9)


def at(day: date, hh: int, mm: int) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=UTC)


NEXT = D + timedelta(days=1)


def test_a_call_across_midnight_counts_on_both_days_and_its_minutes_are_split() -> None:
    ledger = UsageLedger()
    ledger.joined("a", "r@x", at(D, 23, 50))
    ledger.joined("b", "r@x", at(D, 10, 0))
    ledger.left("b", at(D, 10, 30))
    first = ledger.collect(at(D, 23, 55))
    assert first == {("r@x", D): DayUsage(2, 35 * 60)}
    ledger.written(first)
    ledger.left("a", at(NEXT, 0, 10))
    second = ledger.collect(at(NEXT, 0, 20))
    # a: 5 more minutes on D (counted there already), 10 minutes and a participant on the next day
    assert second == {("r@x", D): DayUsage(0, 5 * 60), ("r@x", NEXT): DayUsage(1, 10 * 60)}
    ledger.written(second)
    assert ledger.collect(at(NEXT, 1, 0)) == {} and ledger.open_calls == 0


def test_a_call_over_several_days_and_what_is_not_yet_written() -> None:
    ledger = UsageLedger()
    ledger.joined("a", "r@x", at(D, 12, 0))
    got = ledger.collect(at(D + timedelta(days=2), 6, 0))
    assert got == {
        ("r@x", D): DayUsage(1, 12 * 3600),
        ("r@x", NEXT): DayUsage(1, 24 * 3600),
        ("r@x", D + timedelta(days=2)): DayUsage(1, 6 * 3600),
    }
    # not written (the database was away): collected again with what came since, never lost
    again = ledger.collect(at(D + timedelta(days=2), 7, 0))
    assert again[("r@x", D + timedelta(days=2))] == DayUsage(1, 7 * 3600)
    assert again[("r@x", D)] == DayUsage(1, 12 * 3600)
    # a call that ended while a write was under way stays pending after it
    ledger.joined("b", "r@x", at(D + timedelta(days=2), 7, 0))
    ledger.left("b", at(D + timedelta(days=2), 7, 30))
    ledger.written(again)
    assert ledger.collect(at(D + timedelta(days=2), 7, 30)) == {
        ("r@x", D + timedelta(days=2)): DayUsage(1, 60 * 60)
    }
    try:
        ledger.joined("c", "r@x", datetime(2030, 1, 1))
    except ValueError as e:
        assert "timezone" in str(e)
    else:
        raise AssertionError("a naive time was accepted")


async def _started(settings: Settings) -> tuple[Any, Any]:
    app = create_app(settings, migrate=False)
    cm = app.router.lifespan_context(app)
    await cm.__aenter__()
    return app, cm


async def test_usage_is_written_once_and_survives_a_restart(
    settings_factory: Callable[..., Settings], api_factory: Callable[..., Any]
) -> None:
    settings = settings_factory()
    app, cm = await _started(settings)
    try:
        async with app.state.sessions() as s, s.begin():
            await organisations.create(s, "clinic")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://vdx.test") as c:
            planner = {
                "Authorization": "Bearer "
                + mint_token(settings, org="clinic", email="p@clinic.test", roles=["meeting-planner"])
            }
            r = await c.post(
                f"{settings.api_context}/v2/meetings",
                json={
                    "subject": "Night shift",
                    "startTime": at(D, 23, 30).isoformat(),
                    "endTime": at(NEXT, 0, 30).isoformat(),
                },
                headers=planner,
            )
            assert r.status_code == 200, r.text
            si = await c.get(f"{settings.api_context}/v2/scheduling-info/{r.json()['uuid']}", headers=planner)
            alias = si.json()["uriWithDomain"]
        ledger: UsageLedger = app.state.rooms.usage
        writer = app.state.usage_writer
        ledger.joined("a", alias, at(D, 23, 50))
        ledger.joined("b", alias, at(D, 23, 40))
        ledger.left("b", at(D, 23, 45))
        ledger.joined("c", "901@elsewhere.test", at(NEXT, 1, 0))  # a room without a booking
        await writer.write(at(D, 23, 55))
        await writer.write(at(D, 23, 55))  # nothing new: nothing added
        ledger.left("a", at(NEXT, 0, 10))
        ledger.left("c", at(NEXT, 1, 30))
        await writer.write(at(NEXT, 2, 0))
    finally:
        await cm.__aexit__(None, None, None)  # shutdown writes again: nothing is pending

    api = await api_factory()  # the restarted app, on the same database
    admin = api.auth("clinic", "ops@clinic.test", "meeting-admin")
    r = await api.client.get("/web/usage", params={"days": 3, "until": NEXT.isoformat()}, headers=admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["days"] == [(D - timedelta(days=1)).isoformat(), D.isoformat(), NEXT.isoformat()]
    got = {(u["organisation"], u["day"]): u for u in body["usage"]}
    night = got[("clinic", D.isoformat())]
    assert (night["meetings"], night["minutes"], night["participants"], night["participantMinutes"]) == (
        1,
        60,
        2,
        15,
    )
    morning = got[("clinic", NEXT.isoformat())]
    assert (morning["meetings"], morning["participants"], morning["participantMinutes"]) == (0, 1, 10)
    assert len(got) == 2  # the room without a booking belongs to no organisation: nobody's usage
    async with api.app.state.sessions() as s:
        (unbooked,) = await usage_service.per_day(s, D, NEXT, [usage_service.UNBOOKED])
    assert (unbooked.day, unbooked.participants, unbooked.participant_seconds) == (NEXT, 1, 30 * 60)
    bad = await api.client.get("/web/usage", params={"until": "yesterday"}, headers=admin)
    assert bad.status_code == 400


async def test_usage_shows_only_the_admins_own_subtree(api) -> None:
    # issue 15: an admin of a region sees the region and its descendants, never a sibling or a
    # parent; roles other than meeting-admin (provisioners included) get nothing.
    await api.add_org("region")
    await api.add_org("east", parent_code="region")
    await api.add_org("west", parent_code="region")
    await api.add_org("ward", parent_code="east")
    await api.add_org("elsewhere")
    orgs = ("region", "east", "west", "ward", "elsewhere")
    for n, org in enumerate(orgs):
        await seed.meeting_with_si(api, org, start=at(D, 10, 0), uri_number=7100 + n)
    async with api.app.state.sessions() as s, s.begin():
        for org in orgs:
            s.add(UsageDay(day=D, organisation_code=org, participants=2, participant_seconds=600))
        s.add(
            UsageDay(day=D, organisation_code=usage_service.UNBOOKED, participants=1, participant_seconds=60)
        )

    async def seen(org: str, *roles: str) -> tuple[int, set[str], int]:
        r = await api.client.get(
            "/web/usage",
            params={"days": 1, "until": D.isoformat()},
            headers=api.auth(org, f"x@{org}.dk", *roles),
        )
        if r.status_code != 200:
            return r.status_code, set(), 0
        body = r.json()
        assert all(u["meetings"] == 1 and u["participants"] == 2 for u in body["usage"]), body
        return 200, {u["organisation"] for u in body["usage"]}, body["meetingsTotal"]

    assert await seen("region", ADMIN) == (200, {"region", "east", "west", "ward"}, 4)
    assert await seen("east", ADMIN) == (200, {"east", "ward"}, 2)
    assert await seen("west", ADMIN) == (200, {"west"}, 1)
    assert await seen("ward", ADMIN) == (200, {"ward"}, 1)
    assert await seen("elsewhere", ADMIN) == (200, {"elsewhere"}, 1)
    for role in (USER, PLANNER, PROVISIONER_USER):
        assert (await seen("region", role))[0] == 403, role
    assert (await seen("region", USER, PROVISIONER_USER))[0] == 403
    r = await api.client.get("/web/usage", headers=api.auth(None, None, PROVISIONER))
    assert r.status_code == 403
