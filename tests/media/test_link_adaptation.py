"""Video that bends with the link: a receiver held to 300 kb/s (as tc's tbf would hold its link)
goes on receiving pictures, smaller, and the far end's tone, and gets the full size back once the
limit is lifted."""

from __future__ import annotations

import asyncio

import pytest

from harness.bot import BLUE, RED, Shaper

from .conftest import running_node

pytestmark = pytest.mark.media


async def test_a_receiver_on_a_thin_link_gets_a_smaller_picture_then_the_full_one(settings_factory) -> None:
    async with running_node(settings_factory, media_size_cap="640x360", media_adapt=True) as node:
        alias = "3950@vdx.test"
        node.add_room(alias, enable_overlay_text=False, host_view="one_main_zero_pips")
        sender = node.bot(alias, "Sender", colour=RED, tone=500.0, camera=(640, 360), busy=True)
        receiver = node.bot(alias, "Receiver", colour=BLUE, tone=300.0)
        for b in (sender, receiver):
            await b.connect()
            assert (await b.join())["type"] == "joined"
            await b.start_media()
        await receiver.until(
            lambda: receiver.frame is not None and receiver.frame.width == 640, 20, "640x360"
        )
        assert receiver.pc is not None
        shaper = Shaper(receiver.pc, 300_000)

        await receiver.until(
            lambda: receiver.frame is not None and receiver.frame.width < 640, 30, "a smaller layer"
        )
        smaller = receiver.frame.width  # type: ignore[union-attr]
        frames, heard = receiver.video_frames, receiver.audio_frames
        await asyncio.sleep(5)
        # still moving pictures and the sender's voice: at least a few per second of each
        assert receiver.video_frames - frames >= 15, (receiver.video_frames - frames, shaper.dropped)
        assert receiver.audio_frames - heard >= 150, receiver.audio_frames - heard
        assert receiver.tone_power(500.0) > 50
        assert (
            receiver.frame is not None and receiver.frame.width <= smaller * 2 and receiver.frame.width < 640
        )

        shaper.rate_bps = None  # the limit lifted
        await receiver.until(
            lambda: receiver.frame is not None and receiver.frame.width == 640, 60, "the full size again"
        )
