"""The join page of a node that does not host the room (placed by hand on another node): the page
follows the WebSocket ``redirect`` with the same join, its media goes straight to the hosting node,
and it shares the room with a SIP room system that a 302 brought there; each decodes the other's
colour. Chromium's camera is a file of one colour here, so the room system can tell it apart."""

from __future__ import annotations

import fractions
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import av
import pytest

from harness.bot import GREEN, colour_close
from harness.waiting import until
from tests.interop.placed import Placed
from tests.interop.sipnode import SipNode, run_sip_node
from tests.interop.softphones import Baresip
from tests.interop.test_sip_redirect import info
from tests.web.pictures import colour_share
from vdx.conference.compositor import solid_frame
from vdx.node.routing import MOVING
from vdx.settings import Settings

from .conftest import CHROMIUM, CHROMIUM_ARGS, new_page, receives_media, wait_for

ROOM = "55550070@vdx.test"
RED_YUV = (81, 90, 240)

# share of the room's picture, as the page decoded it, in the room system's green
GREEN_SHARE = colour_share("green")


def solid_y4m(path: Path, colour: tuple[int, int, int], frames: int = 30) -> Path:
    """A Y4M file of one colour: Chromium's camera (``--use-file-for-fake-video-capture``)."""
    with av.open(str(path), "w", format="yuv4mpegpipe") as out:
        stream = out.add_stream("rawvideo", rate=15)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        for i in range(frames):
            frame = solid_frame(640, 360, colour)
            frame.pts, frame.time_base = i, fractions.Fraction(1, 15)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@asynccontextmanager
async def coloured_chromium(camera: Path) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={camera}"],
            headless=True,
        )
        try:
            yield browser
        finally:
            await browser.close()


async def test_the_join_page_of_another_node_follows_the_redirect_and_meets_a_sip_caller(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    if shutil.which("baresip") is None:
        pytest.fail("baresip is missing: apt-get install -y baresip baresip-ffmpeg (make test installs it)")
    # the entry node's pages may open WebSockets to the other nodes (CSP connect-src)
    async with (
        run_sip_node(settings_factory, node_id="node-a", node_origins="http://127.0.0.1:*") as a,
        run_sip_node(settings_factory, node_id="node-b") as b,
        coloured_chromium(solid_y4m(tmp_path / "red.y4m", RED_YUV)) as browser,
    ):
        b.add_room(ROOM, enable_overlay_text=False)
        a.rooms.locator = Placed()
        a.rooms.locator.place(ROOM, info(b, "node-b"))
        phone = Baresip(tmp_path / "baresip", GREEN, 500.0, "vp8.so")
        try:
            await phone.dial(f"sip:55550070@127.0.0.1:{a.sip.port}")
            await until(lambda: _in_room(b, "sip") == 1, 20, lambda: f"baresip in the room: {phone.tail()}")

            page = await new_page(browser)
            violations: list[str] = []
            page.on(
                "console",
                lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
            )
            await page.goto(f"{a.base}/join/?conference={ROOM}")
            await wait_for(page, "window.vdxCall && window.vdxCall.ready", "preview ready")
            await page.get_by_label("Your name").fill("Anna")
            await page.get_by_role("button", name="Join").click()
            await wait_for(page, "window.vdxCall.state === 'call'", "Anna in the call")
            assert await page.evaluate("window.vdxCall.node") == "node-b"
            assert (await page.evaluate("window.vdxCall.url")).startswith(b.base.replace("http", "ws"))
            assert _in_room(b, "webrtc") == 1 and a.rooms.live_conference(ROOM) is None
            assert not violations

            await receives_media(page, "the room at Anna's")
            await wait_for(page, f"({GREEN_SHARE})() > 0.1", "baresip's green decoded in the page")

            def sees_red() -> bool:
                seen = phone.seen()
                return seen is not None and colour_close(seen, RED_YUV, 35)

            await until(sees_red, 20, lambda: f"Anna's red at baresip (last {phone.seen()})")
        finally:
            await phone.stop()


def _in_room(node: SipNode, protocol: str) -> int:
    conf = node.rooms.live_conference(ROOM)
    return 0 if conf is None else sum(p.protocol == protocol for p in conf.participants.values())


async def test_the_join_page_rejoins_by_itself_when_the_rooms_node_stops(
    settings_factory: Callable[..., Settings], browser: Any
) -> None:
    """The room's node stops (``bye`` ``node_shutdown``); while the room moves the entry node says
    ``moving``; once it hosts the room itself the page is back in it, with nobody's help."""
    async with run_sip_node(settings_factory, node_id="node-a", node_origins="http://127.0.0.1:*") as a:
        placed = Placed()
        a.rooms.locator = placed
        async with run_sip_node(settings_factory, node_id="node-b") as b:
            b.add_room(ROOM, enable_overlay_text=False)
            placed.place(ROOM, info(b, "node-b"))
            page = await new_page(browser)
            await page.goto(f"{a.base}/join/?conference={ROOM}")
            await wait_for(page, "window.vdxCall && window.vdxCall.ready", "preview ready")
            await page.get_by_label("Your name").fill("Anna")
            await page.get_by_role("button", name="Join").click()
            await wait_for(
                page, "window.vdxCall.state === 'call' && window.vdxCall.node === 'node-b'", "Anna on B"
            )
            first = await page.evaluate("window.vdxCall.participantId")
            placed.routes[ROOM] = MOVING
            asked = len(placed.asked)
        # B is gone; A answers "moving" until the room is placed on A
        await wait_for(page, "window.vdxCall.state === 'reconnecting'", "reconnecting")
        assert "Reconnecting" in await page.locator("#status").inner_text()
        await until(lambda: len(placed.asked) > asked, 20, "the page back at A, told the room moves")
        a.add_room(ROOM, enable_overlay_text=False)
        placed.routes.pop(ROOM)
        await wait_for(page, "window.vdxCall.state === 'call'", "Anna back in the call", timeout_ms=30000)
        assert await page.evaluate("window.vdxCall.participantId") != first
        assert (
            await page.evaluate("window.vdxCall.url")
            == f"{a.base.replace('http', 'ws')}/ws/rooms/{ROOM.replace('@', '%40')}"
        )
        conf = a.rooms.live_conference(ROOM)
        assert conf is not None and len(conf.participants) == 1
        await receives_media(page, "the room on A", sound=False)


@pytest.mark.slow
async def test_the_join_page_gives_up_after_a_minute_and_says_so(
    settings_factory: Callable[..., Settings], browser: Any
) -> None:
    """The room's node is gone and the room comes back nowhere: the page tries for a minute, then
    says the connection could not be restored (and offers to join again)."""
    async with run_sip_node(settings_factory, node_id="node-a", node_origins="http://127.0.0.1:*") as a:
        placed = Placed()
        a.rooms.locator = placed
        async with run_sip_node(settings_factory, node_id="node-b") as b:
            b.add_room(ROOM, enable_overlay_text=False)
            placed.place(ROOM, info(b, "node-b"))
            page = await new_page(browser, locale="da-DK")
            await page.goto(f"{a.base}/join/?conference={ROOM}")
            await wait_for(page, "window.vdxCall && window.vdxCall.ready", "preview ready")
            await page.locator("#name").fill("Anna")
            await page.locator("#join").click()
            await wait_for(page, "window.vdxCall.state === 'call'", "Anna on B")
            placed.routes[ROOM] = MOVING
        await wait_for(page, "window.vdxCall.state === 'reconnecting'", "reconnecting")
        assert "Forbinder igen" in await page.locator("#status").inner_text()
        await wait_for(page, "window.vdxCall.state === 'ended'", "the page gives up", timeout_ms=90000)
        assert "kunne ikke genoprettes" in await page.locator("#ended-text").inner_text()
        assert len(placed.asked) >= 3  # it did try again meanwhile
