"""The steering group's page in Chromium: a real node (capacity 4 HD units, half kept for
clinical use) with participants in booked rooms and a non-clinical join it refused reports its
minutes to the API on its own clock, and the page shows the peak against capacity, the refused
join, usage per organisation, sector and clinical decision, as charts and tables, axe clean;
each table's CSV is what the page shows."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from harness.bot import BLUE, GREEN, RED, Bot
from harness.waiting import until
from tests.node.booking import wait_for_room
from vdx.services import organisations
from vdx.store.models import NodeMinute, NodeMinuteOrganisation, RefusedJoin

from .conftest import check_accessibility, new_page, running_node, screenshot, wait_for

CAPACITY = 4.0  # HD units; three HD participants fill the clinical share of it


async def book(web: Any, org: str, subject: str, labels: list[str]) -> tuple[str, str | None]:
    """(alias, host PIN) of a meeting open now."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    r = await web.http.post(
        f"{web.settings.api_context}/v2/meetings",
        json={
            "subject": subject,
            "startTime": start.isoformat(),
            "endTime": (start + timedelta(minutes=30)).isoformat(),
            "labels": labels,
        },
        headers=web.auth(org, f"planner@{org}.test", "meeting-planner"),
    )
    assert r.status_code == 200, r.text
    si = await web.http.get(
        f"{web.settings.api_context}/v2/scheduling-info/{r.json()['uuid']}",
        headers=web.auth(org, f"planner@{org}.test", "meeting-planner"),
    )
    pin = si.json()["hostPin"]
    return si.json()["uriWithDomain"], None if pin is None else str(pin)


async def test_the_steering_page_shows_a_real_nodes_minutes(settings_factory: Any, browser: Any) -> None:
    async with running_node(
        settings_factory,
        node_provisioner=True,
        node_poll_interval=0.2,
        node_capacity=CAPACITY,
        clinical_reserve=0.5,
    ) as web:
        async with web.app.state.sessions() as s, s.begin():
            await organisations.create(s, "dk", name="Denmark")
            await organisations.create(s, "region", parent_code="dk", name="Region")
            await organisations.create(s, "hospital", parent_code="region", name="Hospital")
            await organisations.create(s, "municipality", parent_code="dk", name="Municipality")
            await organisations.create(s, "homecare", parent_code="municipality", name="Home care")
        admin = web.auth("dk", "steering@dk.test", "meeting-admin")
        services = f"{web.settings.api_context}/services/v2"
        r = await web.http.put(f"{services}/organisation/hospital", json={"clinical": True}, headers=admin)
        assert r.status_code == 200 and r.json()["clinical"] is True, r.text
        ward, ward_pin = await book(web, "hospital", "Ward round", [])
        visit, visit_pin = await book(web, "homecare", "Wound check", ["clinical"])  # the label overrides
        chat, chat_pin = await book(web, "homecare", "Team chat", [])
        for alias in (ward, visit, chat):
            await wait_for_room(web, alias)
        rooms = web.rooms
        await until(lambda: rooms.clinical(ward), 15, "the hospital marked clinical reaches the node")
        assert rooms.clinical(visit) and not rooms.clinical(chat)

        bots = [
            await web.joined_bot(ward, "Doctor", ward_pin, colour=BLUE),
            await web.joined_bot(ward, "Patient", ward_pin, colour=GREEN, tone=660.0),
            await web.joined_bot(visit, "Nurse", visit_pin, colour=RED, tone=550.0),
        ]
        # three clinical participants carry 3 of 4 units: a non-clinical join would leave less
        # than the clinical half, so the node refuses it
        await until(lambda: rooms.capacity.units_in_use() == 3.0, 30, "three HD participants with media")
        chatter = Bot(web.ws(chat), "Chatter", colour=GREEN)
        web.cleanups.append(chatter.close)
        await chatter.connect()
        answer = await chatter.join(chat_pin)
        assert answer["type"] == "error" and answer["code"] == "capacity_clinical_reserve", answer

        async def stored(query: Any) -> Any:
            async with web.app.state.sessions() as s:
                return await s.scalar(query)

        # the node's own clock sends the minute with the refusal when that minute ends
        await until(lambda: stored(select(func.sum(RefusedJoin.count))), 75, "the refused join stored")
        await until(lambda: stored(select(func.max(NodeMinute.units_in_use))), 75, "the load stored")

        async def ward_stored() -> bool:
            most = select(func.max(NodeMinuteOrganisation.participants)).where(
                NodeMinuteOrganisation.organisation_code == "hospital"
            )
            return await stored(most) == 2

        # a minute that ends with both at the ward round (the next one, should a bot have been
        # reconnecting when the first ended)
        await until(ward_stored, 75, "a minute with the ward round's two participants")
        for b in bots:  # from now on the minutes add nothing, so page and CSV see the same
            await b.close()
        await until(lambda: rooms.capacity.units_in_use() == 0.0, 15, "everyone gone")
        day = datetime.now(UTC).date().isoformat()
        page = await new_page(browser, accept_downloads=True)
        await page.goto(f"{web.base}/steering/")
        await wait_for(page, "window.vdxSteer && window.vdxSteer.ready", "page ready")
        await page.get_by_label("Organisation code").fill("dk")
        await page.get_by_label("E-mail", exact=True).fill("steering@dk.test")
        await page.get_by_role("button", name="Sign in").click()
        await wait_for(page, "window.vdxSteer.figures !== null", "figures loaded")
        f = await page.evaluate("window.vdxSteer.figures")
        today = next(d for d in f["days"] if d["day"] == day)
        assert (today["peakUnits"], today["capacity"]) == (3.0, CAPACITY)
        assert f["refused"] == [
            {
                "day": day,
                "reason": "capacity_clinical_reserve",
                "organisation": "homecare",
                "clinical": False,
                "count": 1,
            }
        ]
        sectors = {s["sector"]: s for s in f["sectors"]}
        assert sectors["region"]["peakParticipants"] == 2 and sectors["region"]["participantMinutes"] >= 2
        assert (sectors["municipality"]["meetings"], sectors["municipality"]["peakParticipants"]) == (2, 1)
        assert {c["clinical"]: c["meetings"] for c in f["clinical"]} == {True: 2, False: 1}
        by_decision = {c["clinical"]: c for c in f["clinical"]}
        assert by_decision[True]["peakParticipants"] == 3 and by_decision[False]["participantMinutes"] == 0
        assert "Not enough days" in await page.locator("#projection").inner_text()

        # the charts are drawn; the tables say the same for a screen reader
        assert await page.locator("#chart-peak svg rect").count() == 1
        assert await page.locator("#chart-refused svg rect").count() == 1
        assert await page.locator("#chart-sectors svg rect").count() == 2
        org_rows = await page.locator("#table-organisations tbody tr").all_inner_texts()
        assert any(r.split("\t")[:2] == ["hospital", "Hospital"] for r in org_rows), org_rows
        await page.get_by_text("Refused joins as a table").click()
        refused_row = await page.locator("#table-refused tbody tr").first.locator("td").all_inner_texts()
        assert refused_row == [
            day,
            "capacity reserved for clinical use",
            "homecare",
            "no",
            "1",
        ]
        await check_accessibility(page, "steering page")
        await screenshot(page, "steering")

        # each CSV is the table the page shows
        for table, key in (("organisations", "organisations"), ("refused", "refused"), ("days", "days")):
            async with page.expect_download() as info:
                await page.get_by_role("button", name=f"Download CSV: {csv_label(table)}").click()
            download = await info.value
            text = await asyncio.to_thread(Path(await download.path()).read_text, encoding="utf-8")
            rows = list(csv.DictReader(io.StringIO(text)))
            assert rows == [{k: cell(v) for k, v in e.items()} for e in f[key]], table

        # in Danish
        da = await new_page(browser, locale="da-DK")
        await da.goto(f"{web.base}/steering/")
        await wait_for(da, "window.vdxSteer && window.vdxSteer.ready", "Danish page ready")
        assert "kapacitet og forbrug" in (await da.locator("h1").inner_text())


def csv_label(table: str) -> str:
    return {"organisations": "organisations", "refused": "refused joins", "days": "peak per day"}[table]


def cell(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)  # as JavaScript's JSON reads it
    return "" if v is None else ("true" if v is True else "false" if v is False else str(v))
