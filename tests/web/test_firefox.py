"""The join page in Debian's Firefox ESR (issue 6: "works in current Chromium, Firefox and
Safari"), driven over WebDriver BiDi (tests/web/bidi.py): preview with Firefox's fake camera and
microphone, join a room with an aiortc bot showing a colour, decode the room's video."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.bot import BLUE, Bot
from harness.ports import free_port
from vdx.conference.policy import RoomConfig

from .bidi import FIREFOX, Firefox
from .conftest import INBOUND, SCREENSHOTS, WebNode
from .test_join import portal_link

pytestmark = pytest.mark.skipif(not shutil.which(FIREFOX), reason=f"no Firefox at {FIREFOX}")

# Pixels of the decoded room picture (320x180, one_main_seven_pips): the main tile and where the
# first pip would be
PIXELS = """(() => {
  const v = document.getElementById('remote'), c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext('2d'); g.drawImage(v, 0, 0);
  const at = (x, y) => Array.from(g.getImageData(x, y, 1, 1).data.slice(0, 3));
  return c.width === 320 ? [at(160, 60), at(20, 150)] : null;
})()"""
FILL_AND_JOIN = """(() => {
  const name = document.getElementById('name');
  name.value = 'Firefox';
  name.dispatchEvent(new Event('input', {bubbles: true}));
  document.getElementById('join').click();
  return true;
})()"""


async def test_firefox_previews_joins_and_decodes_the_room(web: WebNode, tmp_path: Path) -> None:
    alias = "55550009@vdx.test"
    web.rooms.put(RoomConfig(alias=alias))
    bot = Bot(web.ws(alias), "Bot", colour=BLUE, tone=660.0)
    fox = Firefox(tmp_path / "profile", free_port(), tmp_path / "firefox.log")

    async def close() -> None:
        await fox.close()
        await bot.close()

    web.cleanups.append(close)
    await bot.connect()
    assert (await bot.join())["type"] == "joined"
    await bot.start_media()

    await fox.start()
    await fox.goto(portal_link(web, alias))
    await fox.wait_for("window.vdxCall && window.vdxCall.ready", "preview ready")
    # the preview plays Firefox's fake camera, and the device lists are filled
    assert await fox.wait_for("document.getElementById('preview').videoWidth > 0", "preview playing")
    assert await fox.evaluate("document.getElementById('camera').options.length") >= 1
    await fox.screenshot(SCREENSHOTS / "firefox-join.png")
    await fox.evaluate(FILL_AND_JOIN)
    await fox.wait_for("window.vdxCall.state === 'call'", "Firefox in the call")

    first = await fox.wait_for(f"({INBOUND})().then(s => s && s.frames > 0 && s)", "first frames decoded")
    later = await fox.wait_for(
        f"({INBOUND})().then(s => s && s.frames > {first['frames'] + 10} && s)", "frames keep coming"
    )
    assert later["width"] > 0
    # the other way too: the node decodes Firefox's fake camera and the bot sees the room
    conf = web.rooms.live_conference(alias)
    assert conf is not None
    fox_p = next(p for p in conf.participants.values() if p.display_name == "Firefox")
    await bot.until(
        lambda: fox_p.leg is not None and fox_p.leg.counters.video_frames_in > 10, 20, "node decodes Firefox"
    )

    def firefox_tile_shows_its_camera() -> bool:
        # Firefox's fake camera is a bright, saturated colour; a tile without video is dark grey
        stage = bot.last("stage")
        tiles = {t["participantId"]: t for t in (stage or {}).get("tiles", [])}
        got = bot.tile_colour(tiles[fox_p.id]) if fox_p.id in tiles else None
        return got is not None and (got[0] > 80 or abs(got[1] - 128) > 30 or abs(got[2] - 128) > 30)

    await bot.until(firefox_tile_shows_its_camera, 20, "the bot sees Firefox's camera in the room")
    # The join click came from a script, not a user: Firefox would not play the room's sound,
    # so the page offers a button (before, the picture stood still on its first frame).
    assert await fox.wait_for("window.vdxCall.playBlocked === true", "playing refused")
    await fox.screenshot(SCREENSHOTS / "firefox-call-play-button.png")
    await fox.click("play")
    await fox.wait_for("!document.getElementById('remote').paused", "the room plays")
    assert await fox.evaluate("document.getElementById('play').hidden") is True
    # Firefox's picture of the room: the bot's blue in the main tile, and no pip: its own camera
    # is never in its own picture (the page shows it in a corner of its own)
    dark = "(p => p[0] < 40 && p[1] < 40 && p[2] < 40)"
    blue = "(p => p[0] < 40 && p[1] < 40 && p[2] > 200)"
    shown = await fox.wait_for(
        f"(px => px && {blue}(px[0]) && {dark}(px[1]) && px)({PIXELS})", "the room's picture decoded"
    )
    assert len(shown) == 2
    await fox.screenshot(SCREENSHOTS / "firefox-call.png")
