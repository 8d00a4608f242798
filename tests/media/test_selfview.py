"""Nobody sees themselves: every bot sends its own colour, and its decoded picture holds every
other colour where its stage says, never its own; identical pictures share one encoder."""

from __future__ import annotations

import pytest

from harness.bot import PALETTE, Bot

from .test_rooms import sees_others

pytestmark = pytest.mark.media

LAYOUT_FOR = {2: "one_main_seven_pips", 4: "four_mains_zero_pips", 9: "nine_mains_zero_pips"}


async def _room(node, alias: str, n: int, loudness: int = 6000, **room) -> list[Bot]:
    node.add_room(alias, enable_overlay_text=False, **room)
    bots = [
        node.bot(alias, f"P{i}", colour=PALETTE[i], tone=300.0 + 100 * i, loudness=loudness) for i in range(n)
    ]
    for b in bots:
        await b.connect()
        assert (await b.join())["type"] == "joined"
        await b.start_media()
    return bots


async def _status(node, alias: str) -> dict:
    r = await node.http.get(node.control(alias), headers=node.admin())
    assert r.status_code == 200
    return r.json()


@pytest.mark.parametrize("n", [2, 4, 9])
async def test_each_sees_everyone_else_and_never_themselves(node, n):
    alias = f"38{n:02d}@vdx.test"
    layout = LAYOUT_FOR[n]
    bots = await _room(node, alias, n, host_view=layout)
    colours = {b.participant_id: b.colour for b in bots}
    for b in bots:
        # every other colour in its tile, this bot's own nowhere in the decoded picture
        await b.until(lambda b=b: sees_others(b, colours, layout), 40, "the others' colours, not its own")
    status = await _status(node, alias)
    # everyone is on stage in these layouts: a picture each, each without its one receiver
    assert sorted(v["without"] for v in status["views"]) == sorted(colours)
    assert all(v["subscribers"] == 1 for v in status["views"])


async def test_everyone_off_stage_shares_one_view(node):
    # One main tile, four people: the one in it sees the next in line; the three others see them,
    # the same picture, from one encoder. Nobody speaks, so the first to come stays in it.
    alias = "3890@vdx.test"
    bots = await _room(node, alias, 4, loudness=0, host_view="one_main_zero_pips")
    await bots[0].until(lambda: len(node.rooms.live_conference(alias).views) == 2, 10, "two views")
    status = await _status(node, alias)
    assert sorted((v["without"], v["subscribers"]) for v in status["views"] if v["without"]) == [
        (bots[0].participant_id, 1)
    ]
    assert [v["subscribers"] for v in status["views"] if v["without"] is None] == [3]
    main = bots[0]
    colours = {b.participant_id: b.colour for b in bots}
    for b in bots:
        want = bots[1] if b is main else main
        await b.until(
            lambda b=b, want=want: sees_others(
                b, {want.participant_id: colours[want.participant_id]}, "one_main_zero_pips"
            ),
            30,
            "the main tile's person, never itself",
        )


async def test_auditorium_guests_share_one_view(node):
    alias = "3891@vdx.test"
    node.add_room(
        alias,
        host_pin="1234",
        guest_pin="5678",
        vmr_type="lecture",
        host_view="four_mains_zero_pips",
        guest_view="one_main_zero_pips",
        enable_overlay_text=False,
    )
    host = node.bot(alias, "Lecturer", colour=PALETTE[0])
    guests = [node.bot(alias, f"Student {i}", colour=PALETTE[i + 1]) for i in range(3)]
    for b, pin in [(host, "1234")] + [(g, "5678") for g in guests]:
        await b.connect()
        assert (await b.join(pin))["type"] == "joined"
        await b.start_media()
    for g in guests:
        await g.until(
            lambda g=g: sees_others(g, {host.participant_id: host.colour}, "one_main_zero_pips"),
            30,
            "the lecturer",
        )
    views = (await _status(node, alias))["views"]
    by_audience = sorted((v["audience"], v["without"] is None, v["subscribers"]) for v in views)
    assert by_audience == [("all", False, 1), ("hosts", True, 3)]
