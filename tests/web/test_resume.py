"""Reconnect without losing your place, in a browser: a guest let in from the lobby loses the
network; the page comes back by itself as the same participant, straight into the call (the lobby
never shows again), and decodes the room's picture again. When only the media path goes, the page
offers new media on the same socket and stays the same participant."""

from __future__ import annotations

from typing import Any

from harness.bot import BLUE, cut_network
from tests.web.pictures import colour_share
from vdx.conference.policy import RoomConfig

from .conftest import WebNode, new_page, receives_media, wait_for
from .test_join import join, portal_link

BLUE_SHARE = colour_share("blue")

# Notes whether the lobby is ever shown from now on.
WATCH_LOBBY = """() => {
  window.lobbyShown = false;
  new MutationObserver(() => { if (!document.getElementById('lobby').hidden) window.lobbyShown = true; })
    .observe(document.getElementById('lobby'), {attributes: true});
}"""


async def test_an_admitted_guest_comes_back_past_the_lobby_after_a_drop(web: WebNode, browser: Any) -> None:
    alias = "55550090@vdx.test"
    web.rooms.put(RoomConfig(alias=alias, host_pin="1111", guest_pin="2222", enable_overlay_text=False))
    page = await new_page(browser)
    down = False
    live: list[Any] = []

    async def route(ws: Any) -> None:  # the signalling socket, cut while `down`
        if down:
            await ws.close(code=1011)
            return
        ws.connect_to_server()
        live.append(ws)

    await page.route_web_socket("**/ws/rooms/**", route)
    await join(page, portal_link(web, alias, pin=2222), "Guest", expect="lobby")
    host = web.bot(alias, "Host", colour=BLUE, tone=660.0)
    await host.connect()
    assert (await host.join("1111"))["role"] == "host"
    await host.start_media()
    await wait_for(page, "window.vdxCall.state === 'call'", "the guest let in")
    await wait_for(page, f"({BLUE_SHARE})() > 0.1", "the host's blue")
    first = await page.evaluate("window.vdxCall.participantId")
    conf = web.rooms.live_conference(alias)
    assert conf is not None

    await page.evaluate(WATCH_LOBBY)
    down = True
    for ws in live:
        await ws.close(code=1011)
    await wait_for(page, "window.vdxCall.state === 'reconnecting'", "notices the drop")
    assert first in conf.participants  # kept for the page to come back
    down = False
    await wait_for(page, "window.vdxCall.state === 'call'", "back in the call", 30000)
    assert await page.evaluate("window.vdxCall.participantId") == first
    assert await page.evaluate("window.vdxCall.resumed") == 1
    assert await page.evaluate("window.vdxCall.role") == "guest"
    assert not await page.evaluate("window.lobbyShown")
    assert set(conf.participants) == {first, host.participant_id}
    await receives_media(page, "after coming back")
    await wait_for(page, f"({BLUE_SHARE})() > 0.1", "the host's blue again")
    await host.until(
        lambda: conf.participants[first].leg.counters.video_frames_in > 5, 20, "the guest's video"
    )


async def test_a_lost_media_path_is_restarted_on_the_same_socket(web: WebNode, browser: Any) -> None:
    alias = "55550091@vdx.test"
    web.rooms.put(RoomConfig(alias=alias, enable_overlay_text=False))
    bot = await web.joined_bot(alias, "Bot", colour=BLUE, tone=660.0)
    page = await new_page(browser)
    await join(page, portal_link(web, alias), "Anna")
    await wait_for(page, f"({BLUE_SHARE})() > 0.1", "the bot's blue")
    pid = await page.evaluate("window.vdxCall.participantId")
    conf = web.rooms.live_conference(alias)
    assert conf is not None
    old = conf.participants[pid].leg
    assert old is not None

    # the network under the page's media goes at the node's end; the socket stays
    await page.evaluate("() => { window.firstPc = window.vdxCall.pc; }")
    cut_network(old.pc)
    await wait_for(page, "window.vdxCall.mediaRestarts >= 1", "the page restarts its media", 30000)
    await bot.until(lambda: conf.participants[pid].leg is not old, 20, "the node took the new media")
    assert await page.evaluate("window.vdxCall.participantId") == pid
    assert await page.evaluate("window.vdxCall.resumed") == 0  # the same socket all along
    await wait_for(page, "window.vdxCall.state === 'call'", "in the call")
    await receives_media(page, "after the restart", sound=False)
    await wait_for(page, f"({BLUE_SHARE})() > 0.1", "the bot's blue again")
    await bot.until(lambda: conf.participants[pid].leg.counters.video_frames_in > 5, 20, "Anna's video")
    # an ICE restart on the page's own peer connection, not a new one
    assert await page.evaluate("window.vdxCall.iceRestarts") >= 1
    assert await page.evaluate("window.vdxCall.pc === window.firstPc")
