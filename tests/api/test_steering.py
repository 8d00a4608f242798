"""Clinical organisations (CLI, organisation service, audit), the nodes' minutes as the API
stores them, and the steering figures as JSON and CSV. Runs on SQLite, and on PostgreSQL with
``VDX_TEST_DATABASE_URL``."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.test_cli import vdx as vdx_blocking
from vdx.booking.roles import ADMIN, PROVISIONER_USER, USER
from vdx.store.models import AuditRecord, NodeMinute, RefusedJoin

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
TODAY = NOW.date()


async def vdx(settings: Any, *args: str) -> Any:
    """The command in a thread: the app's sessions in this loop go on meanwhile."""
    return await asyncio.to_thread(vdx_blocking, settings, *args)


def svc(api: Any) -> str:
    return f"{api.settings.api_context}/services/v2"


@pytest.fixture
async def tree(api):
    """A national root and two sectors: region (clinical) -> hospital, municipality -> homecare."""
    await api.add_org("dk")
    await api.add_org("region", parent_code="dk", clinical=True)
    await api.add_org("hospital", parent_code="region")
    await api.add_org("municipality", parent_code="dk")
    await api.add_org("homecare", parent_code="municipality")
    await api.add_org("node")  # the nodes' provisioner tokens name it
    return api


async def audit_rows(api: Any, code: str) -> list[AuditRecord]:
    async with api.app.state.sessions() as s:
        rows = await s.execute(
            select(AuditRecord).where(AuditRecord.identifier == code).order_by(AuditRecord.id)
        )
        return list(rows.scalars())


async def clinical_codes(api: Any) -> list[str]:
    r = await api.client.get(
        f"{api.v2}/clinical-organisations", headers=api.auth("node", "node@vdx.test", PROVISIONER_USER)
    )
    assert r.status_code == 200, r.text
    codes: list[str] = r.json()["clinical"]
    return codes


# --- clinical organisations ------------------------------------------------------------------


async def test_org_add_and_set_clinical_from_the_command_line_are_audited(api, settings):
    await api.add_org("node")
    done = await vdx(settings, "org", "add", "rh", "--clinical")
    assert done.returncode == 0, done.stderr
    assert await clinical_codes(api) == ["rh"]
    done = await vdx(settings, "org", "set", "rh", "--no-clinical")
    assert done.returncode == 0 and "not clinical" in done.stdout, done.stderr
    assert await clinical_codes(api) == []
    assert (await vdx(settings, "org", "set", "rh", "--clinical")).returncode == 0
    assert await clinical_codes(api) == ["rh"]
    rows = await audit_rows(api, "rh")
    assert [(r.operation, json.loads(r.data)["clinical"]) for r in rows] == [
        ("create", True),
        ("update", False),
        ("update", True),
    ]
    assert rows[1].actor is not None and rows[1].actor.startswith("vdx org set (")
    # bad input: a clear message and exit status 2
    missing = await vdx(settings, "org", "set", "nobody", "--clinical")
    assert missing.returncode == 2 and "organisation nobody not found" in missing.stderr
    nothing = await vdx(settings, "org", "set", "rh")
    assert nothing.returncode == 2 and "--clinical or --no-clinical" in nothing.stderr


async def test_the_organisation_service_sets_clinical_and_a_reference_client_keeps_it(tree):
    api = tree
    h = api.auth("municipality", "admin@k.dk", ADMIN)
    r = await api.client.get(f"{svc(api)}/organisation/region", headers=h)
    assert r.json()["clinical"] is True
    r = await api.client.put(f"{svc(api)}/organisation/homecare", json={"clinical": True}, headers=h)
    assert r.status_code == 200 and r.json()["clinical"] is True, r.text
    # a client that knows only the reference's fields replaces those, never the clinical flag
    r = await api.client.put(f"{svc(api)}/organisation/homecare", json={"poolSize": 2}, headers=h)
    assert r.status_code == 200 and r.json()["clinical"] is True and r.json()["poolSize"] == 2
    r = await api.client.put(f"{svc(api)}/organisation/homecare", json={"clinical": False}, headers=h)
    assert r.json()["clinical"] is False
    r = await api.client.post(
        f"{svc(api)}/organisation/municipality", json={"code": "ambulance", "clinical": True}, headers=h
    )
    assert r.status_code == 200 and r.json()["clinical"] is True
    tree_body = (
        await api.client.get(
            f"{svc(api)}/organisationtree-children", params={"organisationCode": "municipality"}, headers=h
        )
    ).json()
    assert [c["clinical"] for c in tree_body["children"]] in ([False, True], [True, False])
    assert sorted(await clinical_codes(api)) == ["ambulance", "region"]
    changes = [
        (r.operation, json.loads(r.data)["clinical"], r.actor) for r in await audit_rows(api, "homecare")
    ]
    assert changes == [
        ("update", True, "admin@k.dk"),
        ("update", True, "admin@k.dk"),
        ("update", False, "admin@k.dk"),
    ]
    r = await api.client.put(f"{svc(api)}/organisation/homecare", json={"clinical": "maybe"}, headers=h)
    assert r.status_code == 400 and "clinical" in r.json()["error"]


async def test_only_nodes_and_admins_read_the_clinical_organisations(tree):
    api = tree
    r = await api.client.get(f"{api.v2}/clinical-organisations", headers=api.auth("region", "u@r.dk", USER))
    assert r.status_code == 403
    r = await api.client.get(f"{api.v2}/clinical-organisations", headers=api.auth("region", "a@r.dk", ADMIN))
    assert r.status_code == 200 and r.json() == {"clinical": ["region"]}


# --- node minutes and the figures ------------------------------------------------------------


def minute(at: datetime, capacity: float, units: float, **parts: Any) -> dict[str, Any]:
    return {
        "minute": at.isoformat().replace("+00:00", "Z"),
        "capacity": capacity,
        "unitsInUse": units,
        "reserve": 0.2,
        "participants": parts.get("participants", []),
        "organisations": parts.get("organisations", []),
        "refused": parts.get("refused", []),
    }


async def send(api: Any, node: str, minutes: list[dict[str, Any]]) -> None:
    r = await api.client.post(
        f"{api.v2}/node-minutes",
        json={"node": node, "minutes": minutes},
        headers=api.auth("node", "node@vdx.test", PROVISIONER_USER),
    )
    assert r.status_code == 204, r.text


async def seed_minutes(api: Any) -> None:
    """Today: node a and b together peak at 5 of 12 units at NOW-10 min; refused joins."""
    t0 = NOW - timedelta(minutes=10)
    org = [
        {"organisation": "hospital", "clinical": True, "participants": 4},
        {"organisation": "homecare", "clinical": False, "participants": 2},
    ]
    await send(
        api,
        "a",
        [
            minute(
                t0,
                6,
                3.0,
                participants=[
                    {"kind": "webrtc", "quality": "hd", "count": 2},
                    {"kind": "sip", "quality": "hd", "count": 1},
                ],
                organisations=org,
                refused=[
                    {
                        "reason": "capacity_clinical_reserve",
                        "organisation": "homecare",
                        "clinical": False,
                        "count": 2,
                    }
                ],
            ),
            minute(t0 + timedelta(minutes=1), 6, 1.0, organisations=[org[0]]),
        ],
    )
    await send(
        api,
        "b",
        [
            minute(
                t0,
                6,
                2.0,
                organisations=[{"organisation": "hospital", "clinical": True, "participants": 3}],
                refused=[
                    {"reason": "capacity_full", "organisation": "hospital", "clinical": True, "count": 1},
                    {
                        "reason": "capacity_clinical_reserve",
                        "organisation": "homecare",
                        "clinical": False,
                        "count": 1,
                    },
                ],
            )
        ],
    )
    # yesterday, and the four weeks before, growing: a projection has something to fit
    for days in range(1, 28):
        await send(api, "a", [minute(NOW - timedelta(days=days), 6, max(0.0, 5.0 - 0.1 * days))])


async def test_a_minute_sent_again_replaces_the_stored_one(tree):
    api = tree
    first = minute(
        NOW,
        4,
        1.5,
        refused=[{"reason": "capacity_full", "organisation": "hospital", "clinical": True, "count": 3}],
    )
    await send(api, "a", [first])
    await send(api, "a", [first])  # the answer was lost: the node sends it again
    async with api.app.state.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(NodeMinute)) == 1
        assert await s.scalar(select(func.sum(RefusedJoin.count))) == 3


async def test_node_minutes_need_a_provisioner_and_good_figures(tree):
    api = tree
    body = {"node": "a", "minutes": [minute(NOW, 4, 1.0)]}
    r = await api.client.post(
        f"{api.v2}/node-minutes", json=body, headers=api.auth("region", "a@r.dk", ADMIN)
    )
    assert r.status_code == 403
    bad = {"node": "a", "minutes": [minute(NOW, -1, 1.0)]}
    r = await api.client.post(
        f"{api.v2}/node-minutes", json=bad, headers=api.auth("node", "node@vdx.test", PROVISIONER_USER)
    )
    assert r.status_code == 400 and "capacity" in r.text
    r = await api.client.post(
        f"{api.v2}/node-minutes",
        json={"node": "a", "minutes": []},
        headers=api.auth("node", "node@vdx.test", PROVISIONER_USER),
    )
    assert r.status_code == 400


async def test_node_minutes_expire_after_their_retention(tree):
    api = tree
    old = NOW - timedelta(days=api.settings.node_minutes_retention_days + 1)
    kept = NOW - timedelta(days=api.settings.node_minutes_retention_days - 1)
    refused = [{"reason": "capacity_full", "organisation": "hospital", "clinical": True, "count": 1}]
    await send(api, "a", [minute(old, 4, 1.0, refused=refused), minute(kept, 4, 1.0, refused=refused)])
    result = await api.app.state.retention.run_once()
    assert result is not None and result.node_minutes_deleted == 1
    async with api.app.state.sessions() as s:
        assert (await s.execute(select(NodeMinute.minute))).scalars().all() == [kept]
        assert (await s.execute(select(RefusedJoin.minute))).scalars().all() == [kept]


async def figures(api: Any, org: str, **params: str) -> dict[str, Any]:
    r = await api.client.get(
        f"{api.v2}/steering/figures", params=params, headers=api.auth(org, f"admin@{org}.dk", ADMIN)
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_figures_sum_the_nodes_per_day_and_scope_usage_to_the_readers_tree(tree):
    api = tree
    await seed_minutes(api)
    body = await figures(api, "region")
    today = next(d for d in body["days"] if d["day"] == TODAY.isoformat())
    assert today["peakUnits"] == 5.0 and today["capacity"] == 12.0
    assert today["peakAt"].startswith((NOW - timedelta(minutes=10)).isoformat()[:16])
    assert len(body["days"]) == 28 and body["busiestHours"]
    # region's admin sees region's tree only: hospital's refusal, not homecare's
    assert body["refused"] == [
        {
            "day": TODAY.isoformat(),
            "reason": "capacity_full",
            "organisation": "hospital",
            "clinical": True,
            "count": 1,
        }
    ]
    orgs = {o["organisation"]: o for o in body["organisations"]}
    assert set(orgs) == {"region", "hospital"}
    # hospital: 4 + 3 at t0 on two nodes (7 at once), then 4: 11 participant-minutes
    assert orgs["hospital"] | {} == {
        "organisation": "hospital",
        "name": "hospital",
        "sector": "region",
        "clinical": False,
        "meetings": 0,
        "participantMinutes": 11,
        "peakParticipants": 7,
    }
    assert body["sectors"] == [
        {"sector": "region", "meetings": 0, "participantMinutes": 11, "peakParticipants": 7}
    ]
    # the municipality's admin: its own tree and its refusals, summed over both nodes
    other = await figures(api, "municipality")
    assert other["refused"] == [
        {
            "day": TODAY.isoformat(),
            "reason": "capacity_clinical_reserve",
            "organisation": "homecare",
            "clinical": False,
            "count": 3,
        }
    ]
    assert {c["clinical"]: c["participantMinutes"] for c in other["clinical"]} == {True: 0, False: 2}
    # the national steering group (an admin of the root) sees both sectors side by side
    national = await figures(api, "dk")
    assert [(s["sector"], s["participantMinutes"], s["peakParticipants"]) for s in national["sectors"]] == [
        ("municipality", 2, 2),
        ("region", 11, 7),
    ]
    assert sum(r["count"] for r in national["refused"]) == 4
    # the projection: the daily peaks grew 0.1 units a day; the capacity now is node a's 6
    p = body["projection"]
    assert p["basisDays"] == 28 and p["capacity"] == 6.0 and p["growthPerDay"] > 0
    assert p["exceedsOn"] is not None and p["exceedsOn"] >= TODAY.isoformat()


async def test_meetings_count_by_organisation_sector_and_label(tree):
    api = tree
    from tests.seed import template

    await template(api, None, is_default_template=True)
    planner = api.auth("homecare", "p@k.dk", "meeting-planner")
    start = NOW.replace(hour=0) + timedelta(hours=1)
    for labels in ([], ["clinical"], ["Non-Clinical", "training"]):
        r = await api.client.post(
            f"{api.v2}/meetings",
            json={
                "subject": "Visit",
                "startTime": start.isoformat(),
                "endTime": (start + timedelta(minutes=30)).isoformat(),
                "labels": labels,
            },
            headers=planner,
        )
        assert r.status_code == 200, r.text
    body = await figures(api, "municipality")
    assert {o["organisation"]: o["meetings"] for o in body["organisations"]} == {
        "municipality": 0,
        "homecare": 3,
    }
    assert body["sectors"][0]["sector"] == "municipality" and body["sectors"][0]["meetings"] == 3
    # homecare is not clinical: only the meeting labelled clinical counts as clinical
    assert {c["clinical"]: c["meetings"] for c in body["clinical"]} == {True: 1, False: 2}


async def test_every_csv_table_is_the_json_figures(tree):
    api = tree
    await seed_minutes(api)
    h = api.auth("municipality", "admin@k.dk", ADMIN)
    body = await figures(api, "municipality")
    for table, key in [
        ("days", "days"),
        ("busiest-hours", "busiestHours"),
        ("refused", "refused"),
        ("organisations", "organisations"),
        ("sectors", "sectors"),
        ("clinical", "clinical"),
        ("projection", "projection"),
    ]:
        r = await api.client.get(f"{api.v2}/steering/figures.csv", params={"table": table}, headers=h)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), r.text
        rows = list(csv.DictReader(io.StringIO(r.text)))
        expected = body[key] if isinstance(body[key], list) else [body[key]]
        assert rows == [{k: csv_cell(v) for k, v in e.items()} for e in expected], table


def csv_cell(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)  # as JavaScript's JSON reads it
    return "" if v is None else ("true" if v is True else "false" if v is False else str(v))


async def test_figures_refuse_bad_input_and_non_admins(tree):
    api = tree
    h = api.auth("region", "admin@r.dk", ADMIN)
    r = await api.client.get(
        f"{api.v2}/steering/figures", params={"from": "2026-12-07", "to": "2026-12-01"}, headers=h
    )
    assert r.status_code == 400 and "from must not be after to" in r.text
    r = await api.client.get(
        f"{api.v2}/steering/figures", params={"from": "2024-01-01", "to": "2026-01-01"}, headers=h
    )
    assert r.status_code == 400
    r = await api.client.get(f"{api.v2}/steering/figures", params={"from": "yesterday"}, headers=h)
    assert r.status_code == 400
    for day in ("2026-02-30", "0", "2026-12-07T00:00:00Z"):  # not a day, a number, a timestamp
        r = await api.client.get(f"{api.v2}/steering/figures", params={"to": day}, headers=h)
        assert r.status_code == 400, day
    r = await api.client.get(f"{api.v2}/steering/figures.csv", params={"table": "secrets"}, headers=h)
    assert r.status_code == 400
    user = api.auth("region", "u@r.dk", USER)
    assert (await api.client.get(f"{api.v2}/steering/figures", headers=user)).status_code == 403
