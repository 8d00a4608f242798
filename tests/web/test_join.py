"""The citizen's join page in a real browser (issue 6): portal link -> preview -> room -> media."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from harness.bot import BLUE, Bot
from harness.waiting import until
from vdx.booking.portal_links import PortalValues, build_portal_link
from vdx.conference.pin_guard import PinGuard, PinRules
from vdx.conference.policy import RoomConfig

from .conftest import (
    WebNode,
    check_accessibility,
    new_page,
    receives_media,
    running_node,
    screenshot,
    wait_for,
)


def portal_link(web: WebNode, alias: str, pin: int | None = None, start: datetime | None = None) -> str:
    """The link a booking hands out, from the configured template (spec 2.7)."""
    return build_portal_link(
        web.settings.portal_template,
        PortalValues(start_time=start or datetime.now(UTC), uri_with_domain=alias, guest_pin=pin),
    )


async def join(page: Any, link: str, name: str, expect: str = "call") -> None:
    await page.goto(link)
    await wait_for(page, "window.vdxCall && window.vdxCall.ready", "preview ready")
    await page.get_by_label("Your name").fill(name)
    await page.get_by_role("button", name="Join").click()
    await wait_for(page, f"window.vdxCall.state === '{expect}'", f"{name} in {expect}")


async def test_three_browsers_and_a_bot_share_a_room_and_one_rejoins(web: WebNode, browser: Any) -> None:
    alias = "55550001@vdx.test"
    web.rooms.put(RoomConfig(alias=alias))
    bot = await web.joined_bot(alias, "Bot", colour=BLUE, tone=660.0)

    link = portal_link(web, alias)
    assert link.startswith(f"{web.base}/join/?conference=55550001@vdx.test")
    pages = [await new_page(browser) for _ in range(3)]
    await join(pages[0], link, "Anna")
    await check_accessibility(pages[0], "join page, in the call")
    for i, page in enumerate(pages[1:], start=2):
        await join(page, link, f"Person {i}")
    for i, page in enumerate(pages):
        await receives_media(page, f"browser {i}")
    await bot.until(
        lambda: bot.video_frames > 10 and bot.audio_frames > 50, 20, "bot hears and sees the room"
    )
    await wait_for(pages[0], "window.vdxCall.quality && window.vdxCall.quality.kbps > 0", "quality shown")
    await screenshot(pages[0], "join-call")

    # mute and camera off: the node mutes the participant; the camera track stops sending pictures
    conf = web.rooms.live_conference(alias)
    assert conf is not None
    pid = await pages[1].evaluate("window.vdxCall.participantId")
    await pages[1].get_by_role("button", name="Mute").click()
    await bot.until(lambda: conf.participants[pid].muted, 10, "muted at the node")
    assert await pages[1].get_by_role("button", name="Unmute").get_attribute("aria-pressed") == "true"
    await pages[1].get_by_role("button", name="Camera off").click()
    assert await pages[1].evaluate(
        "window.vdxCall.pc.getSenders().every(s => !s.track || s.track.enabled === false)"
    )
    await pages[1].get_by_role("button", name="Unmute").click()
    await bot.until(lambda: not conf.participants[pid].muted, 10, "unmuted at the node")

    # one leaves and rejoins
    await pages[2].get_by_role("button", name="Leave").first.click()
    await wait_for(pages[2], "window.vdxCall.state === 'ended'", "left")
    await bot.until(lambda: len(conf.participants) == 3, 10, "the leaver is gone")
    await screenshot(pages[2], "join-left")
    await pages[2].get_by_role("button", name="Join again").click()
    await pages[2].get_by_role("button", name="Join").click()
    await wait_for(pages[2], "window.vdxCall.state === 'call'", "rejoined")
    await bot.until(lambda: len(conf.participants) == 4, 10, "the leaver is back")
    await receives_media(pages[2], "rejoined browser")


async def test_lobby_guest_waits_for_the_host_then_sees_the_room(web: WebNode, browser: Any) -> None:
    alias = "55550002@vdx.test"
    web.rooms.put(RoomConfig(alias=alias, host_pin="1111", guest_pin="2222"))
    guest = await new_page(browser)
    await join(guest, portal_link(web, alias, pin=2222), "Guest", expect="lobby")
    await wait_for(guest, "document.getElementById('lobby-self').videoWidth > 0", "own preview in the lobby")
    text = await guest.locator("#lobby").inner_text()
    assert "Waiting for the host" in text
    await check_accessibility(guest, "join page, lobby")
    await screenshot(guest, "join-lobby")

    host = await new_page(browser)
    await join(host, portal_link(web, alias, pin=1111), "Host")
    await wait_for(guest, "window.vdxCall.state === 'call'", "guest admitted when the host came")
    assert await guest.evaluate("window.vdxCall.role") == "guest"
    assert await host.evaluate("window.vdxCall.role") == "host"
    await receives_media(guest, "admitted guest")


async def test_clear_answers_before_joining(web: WebNode, browser: Any) -> None:
    """Not open yet, ended, full, wrong PIN (then right): each with its own message."""
    now = datetime.now(UTC)
    web.rooms.put(
        RoomConfig(alias="55550010@vdx.test", start_time=now + timedelta(hours=2), vmr_available_before=10)
    )
    web.rooms.put(
        RoomConfig(
            alias="55550011@vdx.test",
            start_time=now - timedelta(hours=2),
            end_time=now - timedelta(hours=1),
            end_meeting_on_end_time=True,
        )
    )
    web.rooms.put(RoomConfig(alias="55550012@vdx.test", max_participants=1))
    web.rooms.put(RoomConfig(alias="55550013@vdx.test", host_pin="1111", guest_pin="2222"))
    page = await new_page(browser)

    await page.goto(portal_link(web, "55550013@vdx.test", pin=2222))
    await wait_for(page, "window.vdxCall && window.vdxCall.ready", "preview ready")
    await wait_for(page, "document.getElementById('preview').videoWidth > 0", "camera preview")
    assert await page.locator("#pin").input_value() == "2222"  # pre-filled from the link
    assert await page.locator("#camera option").count() >= 1
    assert await page.locator("#microphone option").count() >= 1
    await page.get_by_label("Your name").fill("Eve")
    await check_accessibility(page, "join page, before joining")
    await screenshot(page, "join-prejoin")
    await page.get_by_label("PIN", exact=True).fill("9999")
    await page.get_by_role("button", name="Join").click()
    await wait_for(page, "window.vdxCall.lastError === 'wrong_pin'", "wrong PIN answered")
    assert "The PIN is wrong. Attempts left: 2." in await page.get_by_role("alert").inner_text()
    await screenshot(page, "join-wrong-pin")
    await page.get_by_label("PIN", exact=True).fill("2222")
    await page.get_by_role("button", name="Join").click()
    await wait_for(page, "window.vdxCall.state === 'lobby'", "right PIN on the same socket")
    await page.get_by_role("button", name="Leave").first.click()

    async def refused(alias: str, code: str, text: str, shot: str, **kw: Any) -> None:
        await page.goto(portal_link(web, alias, **kw))
        await wait_for(page, "window.vdxCall && window.vdxCall.ready", "preview ready")
        await page.get_by_label("Your name").fill("Eve")
        await page.get_by_role("button", name="Join").click()
        await wait_for(page, f"window.vdxCall.lastError === '{code}'", code)
        assert text in await page.get_by_role("alert").inner_text()
        assert await page.evaluate("window.vdxCall.state") == "prejoin"
        await screenshot(page, shot)

    await refused(
        "55550010@vdx.test", "not_open", "has not opened yet", "join-not-open", start=now + timedelta(hours=2)
    )
    await refused("55550011@vdx.test", "ended", "The meeting has ended.", "join-ended")
    bot = web.bot("55550012@vdx.test", "Inside")
    await bot.connect()
    assert (await bot.join())["type"] == "joined"
    await refused("55550012@vdx.test", "room_full", "The meeting is full.", "join-full")
    await refused("nobody@vdx.test", "not_found", "There is no such meeting.", "join-not-found")


async def test_danish_from_the_browser_language_and_phone_layout(web: WebNode, browser: Any) -> None:
    web.rooms.put(RoomConfig(alias="55550020@vdx.test"))
    page = await new_page(
        browser, locale="da-DK", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    await page.goto(portal_link(web, "55550020@vdx.test"))
    await wait_for(page, "window.vdxCall && window.vdxCall.ready", "preview ready")
    assert await page.evaluate("document.documentElement.lang") == "da"
    await page.get_by_label("Dit navn").fill("Mette")
    await check_accessibility(page, "join page in Danish on a phone")
    await screenshot(page, "join-prejoin-da-phone")
    # keyboard only: Enter in the name field submits the form
    await page.get_by_label("Dit navn").press("Enter")
    await wait_for(page, "window.vdxCall.state === 'call'", "joined by keyboard")
    assert await page.get_by_role("button", name="Forlad mødet").is_visible()
    await receives_media(page, "phone", sound=False)
    await screenshot(page, "join-call-da-phone")


async def test_reconnects_by_itself_when_the_network_drops(web: WebNode, browser: Any) -> None:
    alias = "55550030@vdx.test"
    web.rooms.put(RoomConfig(alias=alias))
    page = await new_page(browser)
    # The signalling socket runs through Playwright's WebSocket routing, so the test can cut it:
    # while `down`, the connection is dropped and new ones are refused, as on a dead network.
    down = False
    live: list[Any] = []

    async def route(ws: Any) -> None:
        if down:
            await ws.close(code=1011)
            return
        ws.connect_to_server()
        live.append(ws)

    await page.route_web_socket("**/ws/rooms/**", route)
    await join(page, portal_link(web, alias), "Anna")
    first = await page.evaluate("window.vdxCall.participantId")
    down = True
    for ws in live:
        await ws.close(code=1011)
    await wait_for(page, "window.vdxCall.state === 'reconnecting'", "notices the drop")
    assert "Reconnecting" in await page.locator("#status").inner_text()
    await screenshot(page, "join-reconnecting")
    await wait_for(page, "window.vdxCall.reconnects >= 2", "keeps trying while the network is down")
    assert await page.evaluate("window.vdxCall.state") == "reconnecting"
    down = False
    await wait_for(page, "window.vdxCall.state === 'call'", "back in the call", 30000)
    # the node kept the participant: the page's resume token took it back
    assert await page.evaluate("window.vdxCall.participantId") == first
    assert await page.evaluate("window.vdxCall.resumed") == 1
    assert await page.locator("#status").is_hidden()
    await receives_media(page, "after reconnecting", sound=False)


async def test_pin_guessing_from_one_network_gets_a_readable_wait(web: WebNode, browser: Any) -> None:
    """Issue 15: after three wrong PINs from this address (a bot's sockets), the page's next try,
    even with the right PIN, is refused unchecked; the page says how long to wait, in Danish and
    English, and keeps Join off meanwhile."""
    web.rooms.pin_guard = PinGuard(PinRules(backoff_base_s=120))  # two minutes: no race
    alias = "55550040@vdx.test"
    web.rooms.put(RoomConfig(alias=alias, host_pin="1111", guest_pin="2222"))
    guesser = web.bot(alias, "Guesser")
    await guesser.connect()
    for pin in ("0001", "0002", "0003"):
        await guesser.join(pin)
    for locale, text in (
        ("en-GB", "Too many wrong PINs have been tried from your network. Please wait 2 minutes"),
        ("da-DK", "Der er prøvet for mange forkerte PIN-koder fra dit netværk. Vent 2 minutter"),
    ):
        page = await new_page(browser, locale=locale)
        await page.goto(portal_link(web, alias, pin=2222))
        await wait_for(page, "window.vdxCall && window.vdxCall.ready", "preview ready")
        await page.locator("#name").fill("Eve")
        await page.locator("#join").click()
        await wait_for(page, "window.vdxCall.lastError === 'pin_wait'", "the wait answered")
        assert text in await page.get_by_role("alert").inner_text()
        assert await page.evaluate("window.vdxCall.state") == "prejoin"
        assert await page.locator("#join").is_disabled()
        await screenshot(page, f"join-pin-wait-{locale}")


async def test_a_join_refused_for_capacity_says_why_in_both_languages_and_can_retry(
    settings_factory: Any, browser: Any
) -> None:
    """A node of 1 HD unit with half of it kept for clinical meetings, in an SD room: one bot
    fills the non-clinical share, so a browser hears that the rest is kept for clinical use (in
    English and Danish) and when to try again; once the bot leaves, Join again gets it in."""
    async with running_node(settings_factory, node_capacity=1.0, clinical_reserve=0.5) as web:
        alias = "55550040@vdx.test"
        web.rooms.put(RoomConfig(alias=alias, vmr_quality="sd"))
        bot = Bot(web.ws(alias), "Inside")
        web.cleanups.append(bot.close)
        await bot.connect()
        assert (await bot.join())["type"] == "joined"
        await bot.start_media()
        link = portal_link(web, alias)
        page = await new_page(browser)
        await page.goto(link)
        await wait_for(page, "window.vdxCall && window.vdxCall.ready", "preview ready")
        await page.get_by_label("Your name").fill("Eve")
        await page.get_by_role("button", name="Join").click()
        await wait_for(
            page, "window.vdxCall.lastError === 'capacity_clinical_reserve'", "refused for capacity"
        )
        alert = await page.get_by_role("alert").inner_text()
        assert (
            "remaining capacity is kept for clinical meetings" in alert and "try again in 30 seconds" in alert
        )
        assert await page.evaluate("window.vdxCall.state") == "prejoin"
        await check_accessibility(page, "join page, refused for capacity")
        await screenshot(page, "join-capacity-reserve")

        danish = await new_page(browser, locale="da-DK")
        await danish.goto(link)
        await wait_for(danish, "window.vdxCall && window.vdxCall.ready", "preview ready (da)")
        await danish.get_by_label("Dit navn").fill("Mette")
        await danish.get_by_role("button", name="Deltag").click()
        await wait_for(danish, "window.vdxCall.lastError === 'capacity_clinical_reserve'", "refused (da)")
        text = await danish.get_by_role("alert").inner_text()
        assert "forbeholdt kliniske møder" in text and "Prøv igen om 30 sekunder" in text

        await bot.close()
        await until(lambda: not web.rooms.live, 10, "the bot gone")
        await page.get_by_role("button", name="Join").click()  # the retry
        await wait_for(page, "window.vdxCall.state === 'call'", "in after the retry")
