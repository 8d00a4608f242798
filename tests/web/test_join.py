"""The citizen's join page in a real browser (issue 6): portal link -> preview -> room -> media."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.media.bot import BLUE, Bot
from vdx.booking.portal_links import PortalValues, build_portal_link
from vdx.node.policy import RoomConfig

from .conftest import (
    WebNode,
    check_accessibility,
    new_page,
    receives_media,
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
    bot = Bot(web.ws(alias), "Bot", colour=BLUE, tone=660.0)

    async def close_bot() -> None:
        await bot.close()

    web.cleanups.append(close_bot)
    await bot.connect()
    assert (await bot.join())["type"] == "joined"
    await bot.start_media()

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

    # one leaves and rejoins
    await pages[2].get_by_role("button", name="Leave").first.click()
    await wait_for(pages[2], "window.vdxCall.state === 'ended'", "left")
    conf = web.rooms.live_conference(alias)
    assert conf is not None
    await bot.until(lambda: len(conf.participants) == 3, 10, "the leaver is gone")
    await screenshot(pages[2], "join-left")
    await pages[2].get_by_role("button", name="Join again").click()
    await pages[2].get_by_role("button", name="Join").click()
    await wait_for(pages[2], "window.vdxCall.state === 'call'", "rejoined")
    await bot.until(lambda: len(conf.participants) == 4, 10, "the leaver is back")
    await receives_media(pages[2], "rejoined browser")
