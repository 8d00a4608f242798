"""Rooms end to end: aiortc bots join through the real WebSocket signalling of a real node."""

from __future__ import annotations

import pytest

from .bot import BLUE, GREEN, RED, Bot, colour_close

pytestmark = pytest.mark.media


def stage_matches(bot: Bot, colours: dict[str, tuple[int, int, int]], layout: str) -> bool:
    """The bot's latest picture shows, in every tile of its latest stage message, the colour of
    the participant that tile is for, and the stage is ``layout``."""
    stage = bot.last("stage")
    if stage is None or stage["layout"] != layout or bot.frame is None:
        return False
    if {t["participantId"] for t in stage["tiles"]} != set(colours):
        return False
    return all(colour_close(bot.tile_colour(t), colours[t["participantId"]]) for t in stage["tiles"])


async def test_three_bots_see_and_hear_each_other_and_follow_layout_changes(node):
    node.add_room("3000@vdx.test", host_view="four_mains_zero_pips", enable_overlay_text=False)
    bots = [
        node.bot("3000@vdx.test", "Red", colour=RED, tone=400.0),
        node.bot("3000@vdx.test", "Green", colour=GREEN, tone=700.0),
        node.bot("3000@vdx.test", "Blue", colour=BLUE, tone=1100.0),
    ]
    for b in bots:
        await b.connect()
        joined = await b.join()
        assert joined["type"] == "joined" and joined["role"] == "host"  # no PINs: everyone is a host
        await b.start_media()
    colours = {b.participant_id: b.colour for b in bots}
    for b in bots:
        # Each sees all three colours (the shared view) where the stage says they are.
        await b.until(lambda b=b: stage_matches(b, colours, "four_mains_zero_pips"), 20, "tiles in 2x2")
        # ...and hears the other two tones, not its own (mix-minus).
        others = [o.tone for o in bots if o is not b]

        def hears(b=b, others=others):
            return all(b.tone_power(f) > 50 for f in others) and b.tone_power(b.tone) < 0.1 * min(
                b.tone_power(f) for f in others
            )

        await b.until(hears, 15, "the other two tones only")
    # One encoder for the one distinct view, shared by all three.
    status = (await node.http.get(node.control("3000@vdx.test"), headers=node.admin())).json()
    assert len(status["views"]) == 1 and status["views"][0]["subscribers"] == 3
    assert {p["media"]["videoCodec"] for p in status["participants"]} == {"VP8"}
    assert all(p["media"]["videoFramesDecoded"] > 0 for p in status["participants"])

    # The control API switches the layout; the decoded geometry follows within a second or so.
    r = await node.http.post(
        node.control("3000@vdx.test", "/layout"), json={"layout": "one_main_seven_pips"}, headers=node.admin()
    )
    assert r.status_code == 204
    for b in bots:
        await b.until(lambda b=b: stage_matches(b, colours, "one_main_seven_pips"), 10, "tiles in 1+7")
        stage = b.last("stage")
        main = [t for t in stage["tiles"] if t["main"]]
        assert len(main) == 1 and main[0]["width"] == 320 and main[0]["height"] == 136
