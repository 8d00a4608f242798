"""A browser calls a SIP address through a routing rule (issue 19): its join link names an alias
that is no room, a rule sends it to a room system (baresip, auto-answering), and the two see each
other through the bridge the node makes, each decoding the other's colour."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.bot import BLUE, colour_close
from harness.ports import free_sip_port
from harness.waiting import until
from tests.interop.softphones import Baresip
from tests.web.pictures import colour_share
from tests.web.test_join_redirect import RED_YUV, coloured_chromium, solid_y4m
from vdx.booking.routing import Rule, check_rule
from vdx.settings import Settings

from .conftest import WebNode, new_page, receives_media, running_node, wait_for
from .test_join import join, portal_link

RED_SHARE = colour_share("red")


async def bridged(web: WebNode, page: Any, phone: Baresip) -> None:
    """The page and the room system (red) see each other through one gateway bridge: the red
    decoded on the page, the page's blue at the room system."""
    await receives_media(page, "the room system at the page")
    await wait_for(page, f"({RED_SHARE})() > 0.3", "the room system's red on the page")
    await until(
        lambda: (c := phone.seen()) is not None and colour_close(c, BLUE, 30),
        20,
        lambda: f"the room system sees the page's blue (last {phone.seen()})",
    )
    (bridge,) = [c for c in web.rooms.live.values() if c.alias.startswith("gw-")]
    assert sorted(p.protocol for p in bridge.participants.values()) == ["sip", "webrtc"]


async def test_a_browser_calls_a_room_system_through_a_rule(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    if shutil.which("baresip") is None:
        pytest.fail("baresip is missing: apt-get install -y baresip baresip-ffmpeg (make test installs it)")
    sip = {
        "sip_enabled": True,
        "sip_host": "127.0.0.1",
        "sip_port": free_sip_port(),
        "sip_tls_port": 0,
    }
    phone = Baresip(tmp_path / "roomsystem", RED_YUV, 300.0, "avcodec.so", answer=True)
    async with (
        running_node(settings_factory, **sip) as web,
        coloured_chromium(solid_y4m(tmp_path / "blue.y4m", BLUE)) as browser,
    ):
        try:
            await phone.listen(60)
            rule = Rule("roomsystems", r"7(\d{3})@vdx\.test", f"sip:roomsystem@127.0.0.1:{phone.sip_port}")
            web.rooms.call_routing.replace([check_rule(rule)], [])

            page = await new_page(browser)
            await join(page, portal_link(web, "7123@vdx.test"), "Citizen")
            await bridged(web, page, phone)
        finally:
            await phone.stop()
        # the room system hangs up: the bridge ends and nothing of it is left
        await until(lambda: not web.rooms.live, 15, "the bridge gone")
        assert not any(a.startswith("gw-") for a in web.rooms.aliases())
