"""Presentation from a browser (issue 18, item 2), with aiortc bots through the real signalling:
one presenter at a time, a takeover tells the one before, guests present only where the room
lets them, the presentation ends with its presenter, and the presenter's camera takes the main
tile where ``forcePresenterIntoMain`` says so. Every check is on decoded pictures or on what the
node says on the socket."""

from __future__ import annotations

import pytest

from harness.bot import GREEN, PALETTE, RED, Bot, colour_close

pytestmark = pytest.mark.media

YELLOW, CYAN = PALETTE[3], PALETTE[4]


async def _joined(node, alias: str, name: str, pin: str | None = None, **kw) -> Bot:
    b = node.bot(alias, name, **kw)
    await b.connect()
    assert (await b.join(pin))["type"] == "joined"
    await b.start_media()
    return b


async def _presenter(node, alias: str) -> str | None:
    r = await node.http.get(node.control(alias), headers=node.admin())
    assert r.status_code == 200
    presenter: str | None = r.json()["presenter"]
    return presenter


def _told(bot: Bot, presenter: str | None) -> bool:
    last = bot.last("presentation")
    return last is not None and last["presenterId"] == presenter


async def test_one_presenter_at_a_time_and_the_presentation_ends_with_them(node):
    alias = "3950@vdx.test"
    node.add_room(alias, enable_overlay_text=False)
    a = await _joined(node, alias, "Anna", colour=RED)
    b = await _joined(node, alias, "Bo", colour=GREEN)
    c = await _joined(node, alias, "Carl", colour=PALETTE[2])

    # Anna shares a yellow screen: everyone is told, Bo watches it as a second video.
    assert (await a.present(YELLOW))["type"] == "presenting"
    await b.until(lambda: _told(b, a.participant_id), 10, "Anna presents")
    roster = b.last("participants")
    assert roster is not None
    assert [p["participantId"] for p in roster["participants"] if p["presenting"]] == [a.participant_id]
    assert (await b.watch())["type"] == "watching"
    await b.until(lambda: b.colour_share_of_presentation(YELLOW) > 0.9, 20, "Anna's yellow screen")
    assert await _presenter(node, alias) == a.participant_id
    # the screen weighs as one more participant of the room's quality (HD: 1 unit)
    assert node.rooms.capacity.units_in_use() == 4.0

    # Carl takes over with a cyan screen: Anna is told who took it, Bo's second video turns cyan.
    assert (await c.present(CYAN))["type"] == "presenting"
    taken = await a.expect("presentation_taken")
    assert (taken["participantId"], taken["displayName"]) == (c.participant_id, "Carl")
    await b.until(lambda: b.colour_share_of_presentation(CYAN) > 0.9, 20, "Carl's cyan screen")
    assert await _presenter(node, alias) == c.participant_id

    # Carl leaves: the presentation ends for everyone, and nobody watches anything.
    await c.leave()
    await b.until(lambda: _told(b, None), 10, "the presentation ended")
    await a.until(lambda: _told(a, None), 10, "the presentation ended")
    assert await _presenter(node, alias) is None
    assert node.rooms.capacity.units_in_use() == 2.0  # Anna and Bo
    again = await b.watch()
    assert again["type"] == "error" and again["code"] == "no_presentation"


async def test_stopping_or_dropping_the_socket_ends_the_presentation(node):
    alias = "3951@vdx.test"
    node.add_room(alias, enable_overlay_text=False)
    a = await _joined(node, alias, "Anna", colour=RED)
    b = await _joined(node, alias, "Bo", colour=GREEN)
    assert (await a.present(YELLOW))["type"] == "presenting"
    await b.until(lambda: _told(b, a.participant_id), 10, "Anna presents")
    await a.send({"type": "stop_presenting"})
    await b.until(lambda: _told(b, None), 10, "Anna stopped")
    assert (await a.present(YELLOW))["type"] == "presenting"
    await b.until(lambda: _told(b, a.participant_id), 10, "Anna presents again")
    # Anna's network goes (her socket drops without a goodbye): kept for a resume, but not as
    # the presenter.
    await a.drop_signalling()
    await b.until(lambda: _told(b, None), 10, "the presentation ended with Anna's connection")
    assert await _presenter(node, alias) is None


async def test_guests_present_only_where_the_room_lets_them(node):
    closed, open_ = "3952@vdx.test", "3953@vdx.test"
    for alias, may in ((closed, False), (open_, True)):
        node.add_room(alias, host_pin="1234", guest_pin="5678", guests_can_present=may)
        await _joined(node, alias, "Host", "1234", colour=RED)
    guest = await _joined(node, closed, "Guest", "5678", colour=GREEN)
    refused = await guest.present(YELLOW)
    assert refused["type"] == "error" and refused["code"] == "presentation_not_allowed"
    assert "guests may not present" in refused["message"]
    assert await _presenter(node, closed) is None
    # A crafted stop of what it may not start changes nothing either.
    await guest.send({"type": "stop_presenting"})
    assert await _presenter(node, closed) is None

    guest2 = await _joined(node, open_, "Guest", "5678", colour=GREEN)
    assert (await guest2.present(YELLOW))["type"] == "presenting"
    assert await _presenter(node, open_) == guest2.participant_id
    # The booking changes to keep guests from presenting: the guest's presentation ends.
    node.add_room(open_, host_pin="1234", guest_pin="5678", guests_can_present=False)
    await guest2.until(lambda: _told(guest2, None), 10, "the guest's presentation ended")
    assert await _presenter(node, open_) is None


@pytest.mark.parametrize("force", [True, False])
async def test_the_presenters_camera_takes_the_main_tile_when_the_room_says_so(node, force):
    alias = f"395{4 + int(force)}@vdx.test"
    node.add_room(alias, enable_overlay_text=False, force_presenter_into_main=force)
    # Nobody speaks: the first to come keeps the main tile until a presenter is put there.
    a, b, c = [
        await _joined(node, alias, name, colour=colour, loudness=0)
        for name, colour in (("Anna", RED), ("Bo", GREEN), ("Carl", PALETTE[2]))
    ]

    def main_of(bot: Bot, who: Bot) -> bool:
        stage = bot.last("stage")
        if stage is None:
            return False
        main = next((t for t in stage["tiles"] if t["main"]), None)
        return (
            main is not None
            and main["participantId"] == who.participant_id
            and colour_close(bot.tile_colour(main), who.colour)
        )

    await b.until(lambda: main_of(b, a), 20, "Anna in the main tile")
    assert (await c.present(YELLOW))["type"] == "presenting"
    await b.until(
        lambda: (b.last("stage") or {}).get("presenter") == c.participant_id, 10, "stage names Carl"
    )
    want = c if force else a
    await b.until(lambda: main_of(b, want), 20, f"{want.name} in the main tile")
