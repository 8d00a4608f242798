"""Reconnect without losing your place: media that fails is restarted on the same participant
over the same socket, and a participant whose socket dropped comes back with their resume token
as the same participant, admitted if they were, with media flowing again; a stale or forged
token is refused with a clear error and a fresh join still works on the same socket."""

from __future__ import annotations

import secrets

import pytest

from harness.bot import GREEN, RED

from .conftest import running_node
from .test_rooms import sees_others

pytestmark = pytest.mark.media


async def test_a_media_restart_on_the_same_socket_keeps_the_participant(node):
    alias = "3900@vdx.test"
    node.add_room(alias, enable_overlay_text=False)
    stays, moves = node.bot(alias, "Stays", colour=RED), node.bot(alias, "Moves", colour=GREEN)
    for b in (stays, moves):
        await b.connect()
        assert (await b.join())["type"] == "joined"
        await b.start_media()
    colours = {stays.participant_id: RED, moves.participant_id: GREEN}
    for b in (stays, moves):
        await b.until(lambda b=b: sees_others(b, colours, "one_main_seven_pips"), 20, "each other")
    conf = node.rooms.live_conference(alias)
    first = moves.participant_id
    old_leg = conf.participants[first].leg

    moves.cut_media()  # the network under the media goes; the page offers again
    await moves.start_media()
    assert moves.participant_id == first and set(conf.participants) == set(colours)
    assert conf.participants[first].leg is not old_leg
    # the new media path carries both ways: decoded colours again
    await moves.until(lambda: sees_others(moves, colours, "one_main_seven_pips"), 20, "the room again")
    frames = conf.participants[first].leg.counters.video_frames_in
    await stays.until(
        lambda: conf.participants[first].leg.counters.video_frames_in > frames + 5, 20, "Moves' new video"
    )
    assert sees_others(stays, colours, "one_main_seven_pips")


async def test_a_dropped_socket_resumes_as_the_same_admitted_participant(node):
    alias = "3901@vdx.test"
    node.add_room(alias, host_pin="1234", guest_pin="5678", enable_overlay_text=False)
    guest, host = node.bot(alias, "Guest", colour=GREEN), node.bot(alias, "Host", colour=RED)
    await guest.connect()
    joined = await guest.join("5678")
    assert joined["state"] == "lobby" and joined["resumeToken"]
    await guest.start_media()
    await host.connect()
    await host.join("1234")
    await host.start_media()
    await guest.expect("admitted")
    colours = {guest.participant_id: GREEN, host.participant_id: RED}
    await guest.until(lambda: sees_others(guest, colours, "one_main_seven_pips"), 20, "the host")
    first, token = guest.participant_id, guest.resume_token
    conf = node.rooms.live_conference(alias)

    # the socket dies; the participant is kept, on stage, for the grace period
    await guest.drop_signalling()
    await guest.connect()
    since = len(guest.messages)
    back = await guest.join(resume=token)
    assert back["type"] == "joined" and back["resumed"] is True
    assert back["participantId"] == first and back["state"] == "conference" and back["role"] == "guest"
    assert back["resumeToken"] != token  # a token works once
    assert all(m["type"] != "lobby" for m in guest.messages[since:])
    assert set(conf.participants) == set(colours)
    # the page starts its media again: the room's picture decodes, the host sees the guest
    await guest.start_media()
    await guest.until(lambda: sees_others(guest, colours, "one_main_seven_pips"), 20, "the host again")
    await host.until(lambda: sees_others(host, colours, "one_main_seven_pips"), 20, "the guest again")

    # the used token is refused with a clear error; the socket stays for a join
    other = node.bot(alias, "Thief")
    await other.connect()
    refused = await other.join(resume=token)
    assert refused["type"] == "error" and refused["code"] == "resume_refused"
    assert "join again" in refused["message"]


async def test_a_forged_or_stale_token_is_refused_and_a_fresh_join_still_works(settings_factory):
    async with running_node(settings_factory, resume_grace=0.5) as node:
        alias = "3902@vdx.test"
        node.add_room(alias, host_pin="1234", guest_pin="5678")
        host = node.bot(alias, "Host")
        await host.connect()
        await host.join("1234")
        forger = node.bot(alias, "Forger")
        await forger.connect()
        refused = await forger.join(resume=secrets.token_urlsafe(24))
        assert refused["type"] == "error" and refused["code"] == "resume_refused"
        assert (await forger.join("5678"))["type"] == "joined"  # same socket, a plain join

        # past the grace period the place is gone: stale
        leaver = node.bot(alias, "Leaver")
        await leaver.connect()
        await leaver.join("5678")
        conf = node.rooms.live_conference(alias)
        gone, token = leaver.participant_id, leaver.resume_token
        await leaver.drop_signalling()
        await host.until(lambda: gone not in conf.participants, 10, "the dropped one removed after the grace")
        await leaver.connect()
        stale = await leaver.join(resume=token)
        assert stale["type"] == "error" and stale["code"] == "resume_refused"
        fresh = await leaver.join("5678")
        assert fresh["type"] == "joined" and fresh["participantId"] != gone
        bad = node.bot(alias, "Bad")
        await bad.connect()
        await bad.send({"type": "join", "resume": 42})
        assert (await bad.expect("error"))["code"] == "resume_refused"
