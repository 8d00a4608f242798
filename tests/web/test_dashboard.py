"""The operator dashboard in a real browser (issue 6): live conferences and participants with
media details, mute / disconnect / lock / call in through the control API, capacity, usage
charts."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness.bot import BLUE, GREEN, Bot
from harness.ports import free_port, free_sip_port
from tests.interop.conftest import sipp_answering
from vdx.conference.policy import RoomConfig
from vdx.services import organisations

from .conftest import WebNode, check_accessibility, new_page, running_node, screenshot, wait_for


async def book(web: WebNode, org: str, subject: str, minutes: int) -> dict[str, Any]:
    # Begun a minute ago: the room is open, and its day is inside the usage window (which ends
    # today) whatever the clock says, also just before midnight.
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    headers = web.auth(org, f"planner@{org}.test", "meeting-planner")
    v2 = f"{web.settings.api_context}/v2"
    r = await web.http.post(
        f"{v2}/meetings",
        json={
            "subject": subject,
            "startTime": start.isoformat(),
            "endTime": (start + timedelta(minutes=minutes)).isoformat(),
        },
        headers=headers,
    )
    assert r.status_code == 200, r.text
    si: dict[str, Any] = (
        await web.http.get(f"{v2}/scheduling-info/{r.json()['uuid']}", headers=headers)
    ).json()
    return si


async def test_dashboard_shows_live_participants_and_acts_on_them(web: WebNode, browser: Any) -> None:
    async with web.app.state.sessions() as s, s.begin():
        await organisations.create(s, "other")
    si = await book(web, "clinic", "Consultation", 30)
    await book(web, "clinic", "Team meeting", 60)
    await book(web, "other", "Other's meeting", 45)
    # As the provisioner will (branch `node`), the booked room goes into the node's directory.
    web.rooms.put(RoomConfig.from_scheduling_info({**si, "hostPin": None, "guestPin": None}))
    alias = si["uriWithDomain"]
    bots = [
        await web.joined_bot(alias, "Alice", colour=BLUE),
        await web.joined_bot(alias, "Bob", colour=GREEN, tone=660.0),
    ]

    page = await new_page(browser)
    await page.goto(f"{web.base}/dashboard/")
    await wait_for(page, "window.vdxDash && window.vdxDash.ready", "dashboard ready")
    await page.get_by_label("Organisation code").fill("clinic")
    await page.get_by_label("E-mail", exact=True).fill("ops@clinic.test")
    await page.get_by_role("button", name="Sign in").click()
    await wait_for(
        page,
        "window.vdxDash.conferences && window.vdxDash.conferences.length === 1 && "
        "window.vdxDash.conferences[0].participants.length === 2 && "
        "window.vdxDash.conferences[0].participants.every(p => p.media && p.media.videoWidth > 0)",
        "both participants with media",
    )
    await wait_for(
        page, "!document.querySelector('#conferences').textContent.includes('…')", "bitrates shown"
    )
    table = page.locator(f"#conferences [data-alias='{alias}'] table")
    alice = table.locator("tr", has_text="Alice")
    # both ways: what the node sends Alice and what Alice (a bot sending a colour) sends the node
    conf = web.rooms.live_conference(alias)
    assert conf is not None
    alice_id = next(p.id for p in conf.participants.values() if p.display_name == "Alice")
    await wait_for(
        page,
        f"(r => r && r.kbpsOut > 0 && r.kbpsIn > 0)(window.vdxDash.rates['{alice_id}'])",
        "bitrates both ways",
    )
    cells = await alice.locator("td").all_inner_texts()
    # name, role, protocol, codec, resolution, bitrate to them, from them, loss to them, from them
    assert cells[2] == "webrtc" and cells[3] == "VP8" and cells[4] == "160\u00d790"
    assert cells[5].endswith("kbit/s") and int(cells[5].split()[0]) > 0
    assert cells[6].endswith("kbit/s") and int(cells[6].split()[0]) > 0
    assert cells[7].endswith("%") and cells[8].endswith("%")
    assert "1 conference(s), 2 participant(s)" in await page.locator("#capacity").inner_text()

    # the node writes usage down every VDX_USAGE_WRITE_SECONDS; now, so the chart has it
    await web.app.state.usage_writer.write()
    await wait_for(page, "window.vdxDash.usage.usage.some(u => u.participants > 0)", "usage polled again")
    usage = await page.evaluate("window.vdxDash.usage.usage")
    day = si["meetingDetails"]["startTime"][:10]  # the booked meetings' day (UTC)
    clinic = next(u for u in usage if u["organisation"] == "clinic" and u["day"] == day)
    assert (clinic["meetings"], clinic["minutes"], clinic["participants"]) == (2, 90, 2)
    # another organisation's meeting is not the operator's to see (issue 15: own subtree only)
    assert {u["organisation"] for u in usage} == {"clinic"}
    assert await page.locator("#chart-meetings svg rect").count() == 1  # one bar segment per org today
    await check_accessibility(page, "dashboard")
    await screenshot(page, "dashboard")

    await alice.get_by_role("button", name="Mute: Alice").click()
    await bots[0].until(
        lambda: any(m.get("type") == "muted" and m["muted"] for m in bots[0].messages), 10, "muted"
    )
    await wait_for(
        page, "document.querySelector('#conferences').textContent.includes('Unmute')", "unmute offered"
    )

    await page.get_by_role("button", name=f"Lock: {alias}").click()
    await bots[0].until(lambda: conf.locked, 10, "locked")
    await wait_for(page, "window.vdxDash.conferences[0].locked === true", "shown locked")

    await table.locator("tr", has_text="Bob").get_by_role("button", name="Disconnect: Bob").click()
    bye = await bots[1].expect("bye")
    assert bye["reason"] == "disconnected_by_host"
    await wait_for(page, "window.vdxDash.conferences[0].participants.length === 1", "Bob gone")
    await screenshot(page, "dashboard-after-actions")


async def test_dashboard_needs_an_operator(web: WebNode) -> None:
    user = web.auth("clinic", "u@clinic.test", "meeting-user")
    assert (await web.http.get("/web/usage", headers=user)).status_code == 403
    admin = web.auth("clinic", "ops@clinic.test", "meeting-admin")
    body = (await web.http.get("/web/usage", params={"days": 3}, headers=admin)).json()
    assert len(body["days"]) == 3 and body["capacity"] == {"conferences": 0, "participants": 0}
    assert (await web.http.get("/web/usage", params={"days": 0}, headers=admin)).status_code == 400


async def test_dashboard_shows_the_audit_trail_paged_and_filtered(web: WebNode, browser: Any) -> None:
    # the operator reads who changed what in their organisation tree: a table, pages, filters
    async with web.app.state.sessions() as s, s.begin():
        await organisations.create(s, "sibling")
    admin = web.auth("clinic", "ops@clinic.test", "meeting-admin")
    v2 = f"{web.settings.api_context}/v2"
    template = {
        "conferencingSysId": 1,
        "uriDomain": "rooms.test",
        "uriNumberRangeLow": 1000,
        "uriNumberRangeHigh": 9999,
        "hostPinRequired": False,
        "guestPinRequired": False,
    }
    for n in range(21):  # one page and one more record
        r = await web.http.post(
            f"{v2}/scheduling-templates", json=template | {"uriPrefix": f"p{n}"}, headers=admin
        )
        assert r.status_code == 200, r.text
    meeting = await book(web, "clinic", "Consultation", 30)
    await book(web, "sibling", "Not theirs", 30)

    page = await new_page(browser)
    await page.goto(f"{web.base}/dashboard/")
    await wait_for(page, "window.vdxDash && window.vdxDash.ready", "dashboard ready")
    await page.get_by_label("Organisation code").fill("clinic")
    await page.get_by_label("E-mail", exact=True).fill("ops@clinic.test")
    await page.get_by_role("button", name="Sign in").click()
    await wait_for(page, "window.vdxDash.audit && window.vdxDash.audit.total === 23", "the trail")
    rows = page.locator("#audit-table tbody tr")
    assert await rows.count() == 20
    first = await rows.first.locator("td").all_inner_texts()
    # newest first: the clinic's booking (meeting and its VMR), by the planner who made it
    assert first[1:3] == ["planner@clinic.test", "clinic"] and first[3] in ("meeting", "schedulingInfo")
    assert "Records 1\u201320 of 23." in await page.locator("#audit-status").inner_text()
    assert await page.get_by_role("button", name="Newer").is_disabled()
    await check_accessibility(page, "dashboard audit trail")
    await screenshot(page, "dashboard-audit")

    await page.get_by_role("button", name="Older").click()
    await wait_for(page, "window.vdxDash.audit.page === 1", "second page")
    assert await rows.count() == 3
    assert await page.get_by_role("button", name="Older").is_disabled()

    await page.get_by_label("Meeting (uuid)").fill(meeting["uuid"])
    await page.get_by_role("button", name="Show").click()
    await wait_for(page, "window.vdxDash.audit.total === 2 && window.vdxDash.audit.page === 0", "one meeting")
    texts = await page.locator("#audit-table tbody").inner_text()
    assert "Not theirs" not in texts and "sibling" not in texts
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    await page.get_by_label("From (date)").fill(tomorrow)
    await page.get_by_role("button", name="Show").click()
    await wait_for(page, "window.vdxDash.audit.total === 0", "nothing from tomorrow on")
    assert "No records." in await page.locator("#audit-status").inner_text()


async def test_an_operator_calls_someone_in_and_sees_the_outcome(
    settings_factory: Any, browser: Any, tmp_path: Path
) -> None:
    """Call in (issue 19): the operator types a SIP address; SIPp declines, and the conference's
    card says so."""
    sip = {
        "sip_enabled": True,
        "sip_host": "127.0.0.1",
        "sip_port": free_sip_port(),
        "sip_tls_port": 0,
    }
    async with running_node(settings_factory, **sip) as web:
        si = await book(web, "clinic", "Interpreted consultation", 30)
        web.rooms.put(RoomConfig.from_scheduling_info({**si, "hostPin": None, "guestPin": None}))
        alias = si["uriWithDomain"]
        bot = Bot(web.ws(alias), "Alice")
        web.cleanups.append(bot.close)
        await bot.connect()
        assert (await bot.join())["type"] == "joined"

        page = await new_page(browser)
        await page.goto(f"{web.base}/dashboard/")
        await wait_for(page, "window.vdxDash && window.vdxDash.ready", "dashboard ready")
        await page.get_by_label("Organisation code").fill("clinic")
        await page.get_by_label("E-mail", exact=True).fill("ops@clinic.test")
        await page.get_by_role("button", name="Sign in").click()
        await wait_for(
            page, "window.vdxDash.conferences && window.vdxDash.conferences.length === 1", "the room"
        )

        port = free_port(socket.SOCK_DGRAM)
        sipp = await sipp_answering(tmp_path, "dialled_busy.xml", listen=port)
        page.once("dialog", lambda d: asyncio.ensure_future(d.accept(f"interpreter@127.0.0.1:{port}")))
        await page.get_by_role("button", name=f"Call in: {alias}").click()
        await wait_for(
            page,
            "document.querySelector('#conferences').textContent.includes('is busy or declined the call')",
            "the outcome in the conference's card",
        )
        assert (await sipp).returncode == 0
        await check_accessibility(page, "dashboard with a dial-out")
