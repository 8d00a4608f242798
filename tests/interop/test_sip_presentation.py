"""The presentation's composed fallback (issue 18, item 3): a SIP caller has one video, so while a
browser presents, its picture shows the presentation large and the people small; when the
presentation ends it is the people's picture again. baresip and linphonec decode what the node sends."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.bot import GREEN, PALETTE, colour_close
from harness.waiting import until
from vdx.conference import layouts

from .sipnode import run_sip_node
from .softphones import Baresip, Linphonec
from .test_sip_room_peers import RED_YUV

pytestmark = pytest.mark.interop

ROOM = "7400@vdx.test"
YELLOW = PALETTE[3]


@pytest.mark.parametrize("softphone", ["baresip", "linphonec"])
async def test_a_sip_caller_sees_the_presentation_large_in_its_picture(
    softphone: str, settings_factory, tmp_path: Path
) -> None:
    if shutil.which(softphone) is None:
        pytest.fail(f"{softphone} is missing: make test installs it (scripts/install-test-deps.sh)")
    async with run_sip_node(settings_factory) as node:
        node.add_room(ROOM, enable_overlay_text=False)
        bot = node.bot(ROOM, "Anna", colour=GREEN, tone=700.0)
        await bot.connect()
        assert (await bot.join())["type"] == "joined"
        await bot.start_media()
        phone: Baresip | Linphonec = (
            Baresip(tmp_path / "phone", RED_YUV, 300.0, "vp8.so")
            if softphone == "baresip"
            else Linphonec(tmp_path / "phone", 300.0)
        )

        def phone_sees(colour: tuple[int, int, int], what: str):  # type: ignore[no-untyped-def]
            return until(
                lambda: (c := phone.seen()) is not None and colour_close(c, colour, 30),
                25,
                lambda: f"{softphone} sees {what} (last {phone.seen()}): {phone.tail()[-800:]}",
            )

        try:
            await phone.dial(f"sip:{ROOM.split('@')[0]}@127.0.0.1:{node.sip.port}")
            await phone_sees(GREEN, "Anna's camera in its main tile")
            assert (await bot.present(YELLOW))["type"] == "presenting"
            await phone_sees(YELLOW, "Anna's yellow screen in its main area")
            conf = node.rooms.live_conference(ROOM)
            assert conf is not None
            sip_views = [k for k in conf.views if k.layout == layouts.WITH_PRESENTATION]
            assert len(sip_views) == 1 and len(conf.views[sip_views[0]].subscribers) == 1
            # Anna stops: the SIP caller's picture is the people's again, as before.
            await bot.send({"type": "stop_presenting"})
            await phone_sees(GREEN, "Anna's camera again")
            assert not [k for k in conf.views if k.layout == layouts.WITH_PRESENTATION]
        finally:
            await phone.stop()
