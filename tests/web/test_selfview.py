"""Nobody sees themselves, in a browser: Chromium's camera is one colour (red), the room's picture
the page decodes holds the bot's blue and never that red, and the page draws its own camera in a
corner of its own, mirrored, which a button hides and shows again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.bot import BLUE
from tests.web.pictures import colour_share
from tests.web.test_join_redirect import RED_YUV, coloured_chromium, solid_y4m
from vdx.conference.policy import RoomConfig
from vdx.settings import Settings

from .conftest import check_accessibility, new_page, receives_media, running_node, wait_for
from .test_join import join, portal_link

RED_SHARE = colour_share("red")
BLUE_SHARE = colour_share("blue")


async def test_the_page_shows_its_own_camera_apart_and_the_room_without_it(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    async with (
        running_node(settings_factory) as web,
        coloured_chromium(solid_y4m(tmp_path / "red.y4m", RED_YUV)) as browser,
    ):
        alias = "55550080@vdx.test"
        web.rooms.put(RoomConfig(alias=alias, host_view="four_mains_zero_pips", enable_overlay_text=False))
        bot = await web.joined_bot(alias, "Bot", colour=BLUE, tone=660.0)

        page = await new_page(browser)
        await join(page, portal_link(web, alias), "Anna")
        await receives_media(page, "the room at Anna's")
        # the room's picture: the bot's blue, not Anna's own red
        await wait_for(
            page,
            f"({BLUE_SHARE})() > 0.1 && ({RED_SHARE})() < 0.002",
            "blue and no red in the room's picture",
        )
        # ...while Anna's red is in the bot's picture, and the bot's blue is not
        await bot.until(lambda: bot.colour_share(RED_YUV) > 0.1 and bot.colour_share(BLUE) < 0.002, 20)

        # the self-view: the local camera, mirrored, labelled, in the corner of the stage
        self_view = page.locator("#self")
        await wait_for(page, "document.getElementById('self').videoWidth > 0", "the self-view plays")
        assert await self_view.is_visible()
        assert await self_view.evaluate("v => v.muted && v.srcObject.getVideoTracks().length === 1")
        assert await self_view.evaluate("v => getComputedStyle(v).transform") == "matrix(-1, 0, 0, 1, 0, 0)"
        assert "own camera" in (await self_view.get_attribute("aria-label") or "")
        await check_accessibility(page, "join page with the self-view")

        # the button hides it and shows it again, and says which it does
        toggle = page.get_by_role("button", name="Hide my picture")
        await toggle.click()
        assert await self_view.is_hidden()
        shown = page.get_by_role("button", name="Show my picture")
        assert await shown.get_attribute("aria-pressed") == "true"
        await shown.click()
        assert await self_view.is_visible()
        assert (
            await page.get_by_role("button", name="Hide my picture").get_attribute("aria-pressed") == "false"
        )
