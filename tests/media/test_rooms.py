"""Rooms end to end: aiortc bots join through the real WebSocket signalling of a real node."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.bot import BLUE, GREEN, RED, Bot, colour_close
from vdx.conference.pin_guard import PinGuard, PinRules

from .conftest import running_node

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


def sees_others(bot: Bot, colours: dict[str, tuple[int, int, int]], layout: str) -> bool:
    """``stage_matches`` for everyone in ``colours`` but the bot itself, whose own colour is
    nowhere in its picture (nobody sees themselves)."""
    others = {pid: c for pid, c in colours.items() if pid != bot.participant_id}
    return stage_matches(bot, others, layout) and bot.colour_share(bot.colour) < 0.002


async def media_cpu(node) -> dict[str, tuple[float, float]]:
    """Operation -> (calls, CPU seconds) from the node's ``/manage/metrics``."""
    text = (await node.http.get("/manage/metrics")).text
    out: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name in ("vdx_media_operations", "vdx_media_cpu_seconds"):
            for s in family.samples:
                if s.name.endswith("_total"):
                    out.setdefault(s.labels["operation"], [0.0, 0.0])[family.name.endswith("seconds")] = (
                        s.value
                    )
    return {op: (v[0], v[1]) for op, v in out.items()}


async def test_three_bots_see_and_hear_each_other_and_follow_layout_changes(node):
    node.add_room("3000@vdx.test", host_view="four_mains_zero_pips", enable_overlay_text=False)
    before = await media_cpu(node)
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
        # Each sees the other two colours where the stage says they are, never its own.
        await b.until(lambda b=b: sees_others(b, colours, "four_mains_zero_pips"), 20, "tiles in 2x2")
        # ...and hears the other two tones, not its own (mix-minus).
        others = [o.tone for o in bots if o is not b]

        def hears(b=b, others=others):
            return all(b.tone_power(f) > 50 for f in others) and b.tone_power(b.tone) < 0.1 * min(
                b.tone_power(f) for f in others
            )

        await b.until(hears, 15, "the other two tones only")
    # All three on stage: a picture each, each without its receiver.
    status = (await node.http.get(node.control("3000@vdx.test"), headers=node.admin())).json()
    assert sorted(v["without"] for v in status["views"]) == sorted(colours)
    assert {p["media"]["videoCodec"] for p in status["participants"]} == {"VP8"}
    assert all(p["media"]["videoFramesDecoded"] > 0 for p in status["participants"])
    # The work was counted by operation, each with the CPU it took (the process's counters).
    after = await media_cpu(node)
    for op in (
        "video_decode",
        "video_scale",
        "video_compose",
        "video_encode",
        "audio_decode",
        "audio_encode",
    ):
        assert after[op][0] > before[op][0] and after[op][1] > before[op][1], op

    # The control API switches the layout; the decoded geometry follows within a second or so.
    r = await node.http.post(
        node.control("3000@vdx.test", "/layout"), json={"layout": "one_main_seven_pips"}, headers=node.admin()
    )
    assert r.status_code == 204
    for b in bots:
        await b.until(lambda b=b: sees_others(b, colours, "one_main_seven_pips"), 10, "tiles in 1+7")
        stage = b.last("stage")
        main = [t for t in stage["tiles"] if t["main"]]
        assert len(main) == 1 and main[0]["width"] == 320 and main[0]["height"] == 136


async def test_guest_waits_in_lobby_without_media_until_a_host_arrives(node):
    # peers.md 1.2 (Pexip): guests who arrive before a host wait in the lobby, admitted when one comes.
    node.add_room("3001@vdx.test", host_pin="1234", guest_pin="5678")
    guest = node.bot("3001@vdx.test", "Guest", colour=GREEN, tone=700.0)
    await guest.connect()
    joined = await guest.join("5678")
    assert joined["type"] == "joined" and joined["role"] == "guest" and joined["state"] == "lobby"
    assert (await guest.expect("lobby"))["reason"] == "waiting_for_host"
    await guest.start_media()
    await guest.until(lambda: guest.pc.connectionState == "connected", 15, "ICE+DTLS connected")
    conf = node.rooms.live_conference("3001@vdx.test")
    # Let the room run: the mixer ticks 20 ms at a time; half a second of ticks sends nothing.
    ticks = {"n": 0}
    original = conf.mix_once

    def counting() -> None:
        ticks["n"] += 1
        original()

    conf.mix_once = counting
    await guest.until(lambda: ticks["n"] >= 25, 10, "25 mixer ticks")
    assert guest.video_frames == 0 and guest.audio_frames == 0
    assert (
        conf.participants[guest.participant_id].voice.maxlen
        and not conf.participants[guest.participant_id].voice
    )

    host = node.bot("3001@vdx.test", "Host", colour=RED, tone=400.0)
    await host.connect()
    assert (await host.join("1234"))["role"] == "host"
    await guest.expect("admitted")
    await host.start_media()
    colours = {host.participant_id: RED, guest.participant_id: GREEN}
    await guest.until(
        lambda: sees_others(guest, colours, "one_main_seven_pips"), 20, "host on the guest's stage"
    )
    await guest.until(lambda: guest.tone_power(400.0) > 50, 15, "the host's voice")


async def test_pins_three_wrong_attempts_end_the_attempt(node):
    node.add_room("3002@vdx.test", host_pin="1234", guest_pin="5678")
    # No PIN: asked for one, and that is not an attempt.
    b = node.bot("3002@vdx.test", "Guesser")
    await b.connect()
    r = await b.join()
    assert r["code"] == "pin_required" and r["attemptsLeft"] == 3
    assert (await b.join("0000"))["attemptsLeft"] == 2
    assert (await b.join("1111"))["attemptsLeft"] == 1
    r = await b.join("2222")
    assert r["type"] == "error" and r["code"] == "too_many_pin_attempts"
    await b.until(lambda: b.closed.is_set(), 5, "socket closed")
    assert b.close_code == 4403
    # Two wrong and then the right one is fine; the host PIN (with the DTMF '#') makes a host.
    # From another address: this one's three failures make it wait (test_pin_guessing_...).
    c = node.bot("3002@vdx.test", "Host", source="127.0.0.2")
    await c.connect()
    assert (await c.join("9999"))["code"] == "wrong_pin"
    assert (await c.join("9998"))["code"] == "wrong_pin"
    assert (await c.join("1234#"))["role"] == "host"


async def test_pin_guessing_over_many_connections_is_throttled(node):
    """Issue 15: a new socket no longer brings three fresh tries. After three wrong PINs from
    one address its next tries, on any socket, are refused unchecked with how long to wait,
    even the right PIN; another address with the right PIN still gets in."""
    node.rooms.pin_guard = PinGuard(PinRules(backoff_base_s=60))  # no race with a slow machine
    node.add_room("3012@vdx.test", host_pin="1234", guest_pin="5678")
    answers: list[str] = []
    for i in range(6):  # bounded: six sockets from 127.0.0.1
        b = node.bot("3012@vdx.test", f"Guesser {i}")
        await b.connect()
        for pin in (f"{i}000", f"{i}001", f"{i}002"):
            r = await b.join(pin)
            answers.append(r["code"])
            if r["code"] != "wrong_pin":
                break
        await b.until(lambda b=b: b.closed.is_set(), 5, "socket closed")
        assert b.close_code == (4403 if i == 0 else 4429)
    assert answers[:3] == ["wrong_pin", "wrong_pin", "too_many_pin_attempts"]
    assert answers[3:] == ["pin_wait"] * 5
    refused = next(m for m in reversed(b.messages) if m.get("code") == "pin_wait")
    assert 1 <= refused["retryAfter"] <= 60 and "wait" in refused["message"]
    # The right PIN from the throttled address is not even checked.
    right = node.bot("3012@vdx.test", "Guesser with the PIN")
    await right.connect()
    assert (await right.join("1234"))["code"] == "pin_wait"
    # Another address of the same clinic joins with the right PIN meanwhile.
    guest = node.bot("3012@vdx.test", "Guest", source="127.0.0.2")
    await guest.connect()
    assert (await guest.join("5678"))["role"] == "guest"


async def test_a_room_under_attack_still_lets_a_newcomer_with_the_right_pin_in(node):
    """Wrong PINs from many addresses slow the whole room down, but a newcomer's right PIN is
    checked (after its turn on the line) and admits; a guesser is told to wait."""
    rules = PinRules(room_failures=4, room_spacing_s=30.0, room_max_delay_s=1.0)
    node.rooms.pin_guard = PinGuard(rules)
    node.add_room("3014@vdx.test", host_pin="1234")
    for source in ("127.0.0.3", "127.0.0.4"):  # bounded: two guessers, two wrong PINs each
        b = node.bot("3014@vdx.test", "Guesser", source=source)
        await b.connect()
        for pin in ("0000", "0001"):
            assert (await b.join(pin))["code"] == "wrong_pin"
    assert node.rooms.pin_guard.under_attack("3014@vdx.test")
    clinic = node.bot("3014@vdx.test", "Clinic", source="127.0.0.5")
    await clinic.connect()
    assert (await clinic.join("1234"))["role"] == "host"
    late = node.bot("3014@vdx.test", "Guesser again", source="127.0.0.3")
    await late.connect()
    assert (await late.join("0002"))["code"] == "pin_wait"  # the line is longer than a second


async def test_a_forwarded_for_header_from_a_client_does_not_make_a_new_source(node):
    """X-Forwarded-For counts only from a trusted proxy (VDX_TRUSTED_PROXIES, loopback 127.0.0.1
    by default): a client at 127.0.0.2 naming a new address per socket is still one source."""
    node.rooms.pin_guard = PinGuard(PinRules(backoff_base_s=60))  # no race with a slow machine
    node.add_room("3013@vdx.test", host_pin="1234")
    codes = []
    for i in range(5):  # bounded: five sockets, five made-up addresses
        b = node.bot(
            "3013@vdx.test", f"Spoofer {i}", source="127.0.0.2", headers={"X-Forwarded-For": f"10.9.0.{i}"}
        )
        await b.connect()
        codes.append((await b.join(f"{i}111"))["code"])
    assert codes == ["wrong_pin"] * 3 + ["pin_wait"] * 2


async def test_full_room_refuses_the_next_participant(node):
    # spec 2.8 maxParticipants ("locked when max is reached"), Pexip participant_limit.
    node.add_room("3003@vdx.test", max_participants=2)
    a, b, c = (node.bot("3003@vdx.test", n) for n in ("A", "B", "C"))
    for x in (a, b):
        await x.connect()
        assert (await x.join())["type"] == "joined"
    await c.connect()
    r = await c.join()
    assert r["type"] == "error" and r["code"] == "room_full" and "2 participants" in r["message"]
    await c.until(lambda: c.closed.is_set(), 5, "socket closed")
    assert c.close_code == 4409
    # One leaves; there is room again.
    await a.send({"type": "leave"})
    await a.expect("bye")
    d = node.bot("3003@vdx.test", "D")
    await d.connect()
    assert (await d.join())["type"] == "joined"


async def test_end_meeting_on_end_time_ends_the_conference(node):
    # spec 2.8 endMeetingOnEndTime: "users are kicked from the meeting when it ends".
    from datetime import UTC, datetime, timedelta

    end = datetime.now(UTC) + timedelta(seconds=2)
    node.add_room("3004@vdx.test", end_time=end, end_meeting_on_end_time=True)
    b = node.bot("3004@vdx.test", "Late")
    await b.connect()
    assert (await b.join())["type"] == "joined"
    bye = await b.expect("bye", 10)
    assert bye["reason"] == "end_time"
    await b.until(lambda: b.closed.is_set(), 5, "socket closed")
    assert node.rooms.live_conference("3004@vdx.test") is None
    # Too late to join now.
    c = node.bot("3004@vdx.test", "Later")
    await c.connect()
    await c.until(lambda: c.last("error"), 5, "an error")
    assert (
        c.last("error")["code"] == "ended"
        and (await c.until(lambda: c.closed.is_set()))
        and c.close_code == 4410
    )


async def test_room_not_open_before_its_window(node):
    from datetime import UTC, datetime, timedelta

    # spec 2.8: the VMR opens vmrAvailableBefore minutes before the start.
    node.add_room(
        "3005@vdx.test", start_time=datetime.now(UTC) + timedelta(minutes=20), vmr_available_before=15
    )
    b = node.bot("3005@vdx.test", "Early")
    await b.connect()
    await b.until(lambda: b.last("error"), 5, "an error")
    assert b.last("error")["code"] == "not_open"
    node.add_room(
        "3006@vdx.test", start_time=datetime.now(UTC) + timedelta(minutes=10), vmr_available_before=15
    )
    c = node.bot("3006@vdx.test", "InWindow")
    await c.connect()
    assert (await c.join())["type"] == "joined"


async def test_locked_room_holds_newcomers_until_a_host_admits_them(node):
    node.add_room("3007@vdx.test", host_pin="1234", guest_pin="5678")
    host = node.bot("3007@vdx.test", "Host")
    await host.connect()
    assert (await host.join("1234"))["role"] == "host"
    # The host locks the room with their own participant token.
    own = {"Authorization": f"Bearer {host.token}"}
    assert (await node.http.post(node.control("3007@vdx.test", "/lock"), headers=own)).status_code == 204
    guest = node.bot("3007@vdx.test", "Guest")
    await guest.connect()
    joined = await guest.join("5678")
    assert joined["state"] == "lobby" and joined["lobbyReason"] == "locked"
    # A guest's token controls nothing.
    r = await node.http.post(
        node.control("3007@vdx.test", "/unlock"), headers={"Authorization": f"Bearer {guest.token}"}
    )
    assert r.status_code == 403
    # The host hears the guest knock, sees them in the roster's lobby and admits them.
    knock = await host.expect("knock")
    assert (knock["participantId"], knock["displayName"]) == (guest.participant_id, "Guest")
    await host.until(
        lambda: any(p["state"] == "lobby" for p in (host.last("participants") or {}).get("participants", [])),
        5,
        "the guest in the roster's lobby",
    )
    r = await node.http.post(
        node.control("3007@vdx.test", f"/participants/{guest.participant_id}/admit"), headers=own
    )
    assert r.status_code == 204
    await guest.expect("admitted")
    # Still locked: the next guest waits too; unlocking lets them in.
    g2 = node.bot("3007@vdx.test", "Guest2")
    await g2.connect()
    assert (await g2.join("5678"))["lobbyReason"] == "locked"
    assert (
        await node.http.post(node.control("3007@vdx.test", "/unlock"), headers=node.admin())
    ).status_code == 204
    await g2.expect("admitted")


async def test_bad_input_gets_clear_errors_and_the_node_keeps_serving(node):
    node.add_room("3010@vdx.test")
    node.add_room("3011@vdx.test")
    # Unknown alias: refused and closed.
    ghost = node.bot("nobody@vdx.test", "Ghost")
    await ghost.connect()
    await ghost.until(lambda: ghost.closed.is_set(), 5, "socket closed")
    assert ghost.last("error")["code"] == "not_found" and ghost.close_code == 4404

    a = node.bot("3010@vdx.test", "A", colour=RED, tone=400.0)
    await a.connect()
    # Malformed JSON, a non-object, an unknown type: errors, the socket stays usable.
    await a.send("{not json")
    assert (await a.expect("error"))["code"] == "bad_request"
    n = len(a.messages)
    await a.send("[1, 2]")
    assert (await a.expect("error", since=n))["code"] == "bad_request"
    n = len(a.messages)
    await a.send({"type": "offer", "sdp": "v=0"})  # before join
    assert "expected a join" in (await a.expect("error", since=n))["message"]
    assert (await a.join())["type"] == "joined"
    n = len(a.messages)
    await a.send({"type": "offer", "sdp": "this is not SDP"})
    assert (await a.expect("error", since=n))["code"] == "bad_sdp"
    n = len(a.messages)
    await a.send({"type": "offer", "sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"})
    assert (await a.expect("error", since=n))["code"] == "bad_sdp"
    n = len(a.messages)
    await a.send({"type": "dance"})
    assert "unknown message type" in (await a.expect("error", since=n))["message"]
    await a.start_media()  # after all that, a good offer still works

    # A participant who vanishes without a goodbye is removed cleanly.
    v = node.bot("3010@vdx.test", "Vanisher", colour=GREEN, tone=700.0)
    await v.connect()
    await v.join()
    await v.start_media()
    conf = node.rooms.live_conference("3010@vdx.test")
    await a.until(
        lambda: (
            v.participant_id in conf.participants
            and sees_others(a, {a.participant_id: RED, v.participant_id: GREEN}, "one_main_seven_pips")
        ),
        20,
        "both on stage",
    )
    await v.vanish()
    await a.until(lambda: v.participant_id not in conf.participants, 10, "the vanished participant removed")
    await a.until(
        lambda: sees_others(a, {a.participant_id: RED}, "one_main_seven_pips"), 10, "alone: nobody shown"
    )

    # The other room serves as ever.
    b = node.bot("3011@vdx.test", "B", colour=BLUE, tone=1100.0)
    await b.connect()
    await b.join()
    await b.start_media()
    await b.until(
        lambda: sees_others(b, {b.participant_id: BLUE}, "one_main_seven_pips") and b.video_frames > 5,
        20,
        "own room works",
    )


async def test_control_api_mutes_and_disconnects_and_checks_callers(node):
    node.add_room("3020@vdx.test", host_pin="1234", guest_pin="5678")
    host = node.bot("3020@vdx.test", "Host", colour=RED, tone=400.0)
    guest = node.bot("3020@vdx.test", "Guest", colour=GREEN, tone=700.0)
    for b, pin in ((host, "1234"), (guest, "5678")):
        await b.connect()
        await b.join(pin)
        await b.start_media()
    await host.until(lambda: host.tone_power(700.0) > 50, 15, "the guest's voice")
    # Callers: no token 401, a non-admin 403, unknown conference 404 (for an operator).
    assert (await node.http.get(node.control("3020@vdx.test"))).status_code == 401
    user = node.auth("meeting-user")
    assert (await node.http.get(node.control("3020@vdx.test"), headers=user)).status_code == 403
    assert (await node.http.get(node.control("9999@vdx.test"), headers=node.admin())).status_code == 404
    r = await node.http.post(node.control("3020@vdx.test", "/participants/nope/mute"), headers=node.admin())
    assert r.status_code == 404
    r = await node.http.post(
        node.control("3020@vdx.test", "/layout"), json={"layout": "seven_mains"}, headers=node.admin()
    )
    assert r.status_code == 400
    listing = (
        await node.http.get(f"{node.settings.api_context}/node/v1/conferences", headers=node.admin())
    ).json()
    assert [c["alias"] for c in listing] == ["3020@vdx.test"] and listing[0]["participantCount"] == 2

    # Mute the guest: the host stops hearing them; unmute: back.
    own = {"Authorization": f"Bearer {host.token}"}
    r = await node.http.post(
        node.control("3020@vdx.test", f"/participants/{guest.participant_id}/mute"), headers=own
    )
    assert r.status_code == 204
    assert (await guest.expect("muted"))["muted"] is True
    await host.until(lambda: host.tone_power(700.0) < 5, 10, "silence from the muted guest")
    r = await node.http.post(
        node.control("3020@vdx.test", f"/participants/{guest.participant_id}/unmute"), headers=own
    )
    await host.until(lambda: host.tone_power(700.0) > 50, 10, "the guest again")

    # Disconnect the guest: told why, gone from the roster.
    r = await node.http.post(
        node.control("3020@vdx.test", f"/participants/{guest.participant_id}/disconnect"), headers=own
    )
    assert r.status_code == 204
    assert (await guest.expect("bye"))["reason"] == "disconnected_by_host"
    status = (await node.http.get(node.control("3020@vdx.test"), headers=node.admin())).json()
    assert [p["displayName"] for p in status["participants"]] == ["Host"]
    assert status["participants"][0]["media"]["audioPacketsReceived"] > 0


async def test_guests_microphone_rules(node):
    # muteAllGuests: guests join muted and may not unmute themselves; guestMicrophone=muted: they may.
    from vdx.conference.policy import GuestMicrophone

    node.add_room("3030@vdx.test", host_pin="1234", guest_pin="5678", mute_all_guests=True)
    node.add_room("3031@vdx.test", host_pin="1234", guest_pin="5678", guest_microphone=GuestMicrophone.MUTED)
    for alias, can_unmute in (("3030@vdx.test", False), ("3031@vdx.test", True)):
        host = node.bot(alias, "Host")
        await host.connect()
        assert (await host.join("1234"))["muted"] is False
        g = node.bot(alias, "Guest")
        await g.connect()
        assert (await g.join("5678"))["muted"] is True
        n = len(g.messages)
        await g.send({"type": "mute", "muted": False})
        if can_unmute:
            assert (await g.expect("muted", since=n))["muted"] is False
        else:
            assert (await g.expect("error", since=n))["code"] == "microphone_locked"


async def test_h264_participant_gets_its_own_h264_view(node):
    node.add_room("3040@vdx.test", host_view="four_mains_zero_pips", enable_overlay_text=False)
    v = node.bot("3040@vdx.test", "VP8", colour=RED, tone=400.0)
    h = node.bot("3040@vdx.test", "H264", colour=BLUE, tone=700.0)
    await v.connect()
    await v.join()
    await v.start_media(codec="VP8")
    await h.connect()
    await h.join()
    await h.start_media(codec="H264")
    colours = {v.participant_id: RED, h.participant_id: BLUE}
    for b in (v, h):
        await b.until(lambda b=b: sees_others(b, colours, "four_mains_zero_pips"), 20, "the other's colour")
    assert h.last("stage")["codec"] == "H264" and v.last("stage")["codec"] == "VP8"
    status = (await node.http.get(node.control("3040@vdx.test"), headers=node.admin())).json()
    assert sorted(x["codec"] for x in status["views"]) == ["H264", "VP8"]


async def test_auditorium_guests_see_hosts_only(node):
    # vmrType=lecture: hostView for hosts, guestView (hosts only) for guests.
    node.add_room(
        "3050@vdx.test",
        host_pin="1234",
        guest_pin="5678",
        vmr_type="lecture",
        host_view="four_mains_zero_pips",
        guest_view="one_main_zero_pips",
        enable_overlay_text=False,
    )
    host = node.bot("3050@vdx.test", "Lecturer", colour=RED, tone=400.0)
    guest = node.bot("3050@vdx.test", "Student", colour=GREEN, tone=700.0)
    await host.connect()
    await host.join("1234")
    await host.start_media()
    await guest.connect()
    await guest.join("5678")
    await guest.start_media()
    await guest.until(
        lambda: stage_matches(guest, {host.participant_id: RED}, "one_main_zero_pips"),
        20,
        "the lecturer only",
    )
    both = {host.participant_id: RED, guest.participant_id: GREEN}
    await host.until(lambda: sees_others(host, both, "four_mains_zero_pips"), 20, "everyone else")


async def test_receiver_keyframe_request_reaches_the_shared_encoder_rate_limited(node):
    # A PLI from any member of a view forces a (rate-limited) keyframe on it.
    node.add_room("3060@vdx.test")
    b = node.bot("3060@vdx.test", "Viewer")
    await b.connect()
    await b.join()
    await b.start_media()
    await b.until(lambda: b.video_frames > 3, 15, "video")
    conf = node.rooms.live_conference("3060@vdx.test")
    p = conf.participants[b.participant_id]
    view = conf.views[p.view]
    sender = next(t.sender for t in p.leg.pc.getTransceivers() if t.kind == "video")
    receiver = next(t.receiver for t in b.pc.getTransceivers() if t.kind == "video")
    keyframes, encoded = view.keyframes, view.frames_encoded
    for _ in range(5):
        await receiver._send_rtcp_pli(sender._ssrc)  # real RTCP over the wire
    await b.until(lambda: p.leg.counters.keyframe_requests_in >= 5, 10, "5 PLIs seen by the node")
    await b.until(lambda: view.keyframes > keyframes, 10, "a forced keyframe")
    await b.until(lambda: view.frames_encoded >= encoded + 3, 10, "three more frames")
    assert view.keyframes - keyframes <= 2  # five requests at once: not five keyframes


async def test_the_active_speaker_takes_the_main_tile_and_sees_the_previous_one(node):
    node.add_room("3070@vdx.test", host_view="one_main_seven_pips", enable_overlay_text=False)
    quiet = node.bot("3070@vdx.test", "Quiet", colour=GREEN, tone=700.0, loudness=0)
    talker = node.bot("3070@vdx.test", "Talker", colour=RED, tone=400.0)
    for b in (quiet, talker):  # the quiet one arrives first, so starts in the main tile
        await b.connect()
        await b.join()
        await b.start_media()
    colours = {quiet.participant_id: GREEN, talker.participant_id: RED}

    def in_main(b: Bot, who: Bot) -> bool:
        stage = b.last("stage")
        return bool(
            stage
            and stage["tiles"][0]["participantId"] == who.participant_id
            and sees_others(b, colours, "one_main_seven_pips")
        )

    # Everyone sees the talker in the main tile; the talker sees the one before them there
    # (never themselves).
    await quiet.until(lambda: in_main(quiet, talker), 20, "the talker in the main tile")
    await talker.until(lambda: in_main(talker, quiet), 20, "the quiet one in the talker's main tile")
    assert (await quiet.expect("speaker"))["participantId"] == talker.participant_id
    status = (await node.http.get(node.control("3070@vdx.test"), headers=node.admin())).json()
    assert sorted(v["without"] for v in status["views"]) == sorted(colours)


async def test_one_to_one_consultation_each_sees_the_other_full_size(node):
    node.add_room("3071@vdx.test", host_view="one_main_zero_pips", enable_overlay_text=False)
    doctor = node.bot("3071@vdx.test", "Doctor", colour=BLUE, tone=400.0)
    patient = node.bot("3071@vdx.test", "Patient", colour=GREEN, tone=700.0)
    for b in (doctor, patient):
        await b.connect()
        await b.join()
        await b.start_media()
    await doctor.until(
        lambda: stage_matches(doctor, {patient.participant_id: GREEN}, "one_main_zero_pips"),
        20,
        "the patient",
    )
    await patient.until(
        lambda: stage_matches(patient, {doctor.participant_id: BLUE}, "one_main_zero_pips"), 20, "the doctor"
    )


async def test_a_changed_booking_reaches_the_live_conference(node):
    # The directory's new settings (the booking moved its end) apply to the running conference.
    from dataclasses import replace
    from datetime import UTC, datetime, timedelta

    config = node.add_room("3080@vdx.test", host_view="four_mains_zero_pips")
    b = node.bot("3080@vdx.test", "Stayer")
    await b.connect()
    await b.join()
    node.rooms.put(
        replace(
            config,
            host_view="nine_mains_zero_pips",
            end_time=datetime.now(UTC) + timedelta(seconds=1),
            end_meeting_on_end_time=True,
        )
    )
    assert node.rooms.live_conference("3080@vdx.test").config.host_view == "nine_mains_zero_pips"
    assert (await b.expect("bye", 10))["reason"] == "end_time"


async def test_operator_mutes_all_guests_and_ends_the_conference(node):
    node.add_room("3090@vdx.test", host_pin="1234", guest_pin="5678")
    host, guest = node.bot("3090@vdx.test", "Host"), node.bot("3090@vdx.test", "Guest")
    await host.connect()
    await host.join("1234")
    await guest.connect()
    assert (await guest.join("5678"))["muted"] is False
    r = await node.http.post(node.control("3090@vdx.test", "/mute_guests"), headers=node.admin())
    assert r.status_code == 204
    assert (await guest.expect("muted"))["muted"] is True
    n = len(guest.messages)
    await guest.send({"type": "mute", "muted": False})
    assert (await guest.expect("error", since=n))["code"] == "microphone_locked"
    late = node.bot("3090@vdx.test", "Late guest")
    await late.connect()
    assert (await late.join("5678"))["muted"] is True  # newcomers too
    r = await node.http.post(node.control("3090@vdx.test", "/disconnect"), headers=node.admin())
    assert r.status_code == 204
    for b in (host, guest, late):
        assert (await b.expect("bye"))["reason"] == "ended_by_host"
        await b.until(lambda b=b: b.closed.is_set(), 5, "socket closed")
    assert node.rooms.live_conference("3090@vdx.test") is None


async def test_an_audio_only_participant_hears_and_is_shown_by_name(node):
    node.add_room("3100@vdx.test", host_view="four_mains_zero_pips")
    cam = node.bot("3100@vdx.test", "Camera", colour=RED, tone=400.0)
    phone = node.bot("3100@vdx.test", "Phone", tone=700.0)
    await cam.connect()
    await cam.join()
    await cam.start_media()
    await phone.connect()
    await phone.join()
    await phone.start_media(video=False)
    await phone.until(lambda: phone.tone_power(400.0) > 50, 15, "the camera's voice")
    await cam.until(lambda: cam.tone_power(700.0) > 50, 15, "the phone's voice")
    assert phone.video_frames == 0

    def phone_tile_is_grey() -> bool:
        stage = cam.last("stage")
        tiles = {t["participantId"]: t for t in (stage or {}).get("tiles", [])}
        got = cam.tile_colour(tiles[phone.participant_id]) if phone.participant_id in tiles else None
        return got is not None and abs(got[0] - 40) < 8 and abs(got[1] - 128) < 8

    await cam.until(phone_tile_is_grey, 15, "a grey named tile for the phone")


async def test_joined_comes_first_and_admitted_only_after_a_lobby(node):
    node.add_room("3110@vdx.test", host_pin="1234", guest_pin="5678")
    guest = node.bot("3110@vdx.test", "Guest")
    await guest.connect()
    await guest.join("5678")
    await guest.expect("lobby")
    assert [m["type"] for m in guest.messages[:2]] == ["joined", "lobby"]
    host = node.bot("3110@vdx.test", "Host")
    await host.connect()
    await host.join("1234")
    await guest.expect("admitted")
    await host.until(
        lambda: len((host.last("participants") or {}).get("participants", [])) == 2, 5, "roster of 2"
    )
    assert host.messages[0]["type"] == "joined"
    assert all(m["type"] != "admitted" for m in host.messages)  # straight in: nothing to admit


async def test_control_api_reports_what_a_bot_sends_and_loss_both_ways(node):
    """The dashboard's data: bytes received from a participant grow (its inbound bitrate), and
    loss is reported both ways (ours of theirs, and theirs of ours from their receiver reports)."""
    node.add_room("3030@vdx.test")
    bot = node.bot("3030@vdx.test", "Sender", colour=BLUE)
    await bot.connect()
    await bot.join()
    await bot.start_media()

    async def media() -> dict:
        r = await node.http.get(node.control("3030@vdx.test"), headers=node.admin())
        return r.json()["participants"][0]["media"]

    await bot.until(lambda: bot.video_frames > 5, 15, "media flowing")
    first = await media()
    for _ in range(50):
        later = await media()
        if later["bytesReceived"] > first["bytesReceived"] and "videoRemotePacketsLost" in later:
            break
        await asyncio.sleep(0.2)
    assert later["bytesReceived"] > first["bytesReceived"] > 0
    assert later["videoPacketsLost"] == 0 and later["videoRemotePacketsLost"] == 0


async def test_a_participant_whose_network_goes_is_removed(settings_factory, monkeypatch):
    """Issue 15: a bot whose media transport vanishes (sockets closed, no bye, the WebSocket still
    open) fails the node's ICE consent checks (RFC 7675): its connection fails and, when its page
    offers no new media within the grace period (issue 18), the participant leaves the room's
    live status. aioice's check interval and the grace are shortened so it takes seconds."""
    import aioice.ice

    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.2)
    async with running_node(settings_factory, resume_grace=0.5) as node:
        await _network_goes(node)


async def _network_goes(node) -> None:
    node.add_room("3030@vdx.test")
    stays, goes = (
        node.bot("3030@vdx.test", "Stays", colour=RED),
        node.bot("3030@vdx.test", "Goes", colour=GREEN),
    )
    for b in (stays, goes):
        await b.connect()
        assert (await b.join())["type"] == "joined"
        await b.start_media()
    await stays.until(lambda: stays.video_frames > 10 and goes.video_frames > 10, 20, "media both ways")

    async def names() -> set[str]:
        status = (await node.http.get(node.control("3030@vdx.test"), headers=node.admin())).json()
        return {p["displayName"] for p in status["participants"]}

    assert await names() == {"Stays", "Goes"}
    goes.cut_media()
    deadline = asyncio.get_running_loop().time() + 20
    while await names() != {"Stays"}:
        assert asyncio.get_running_loop().time() < deadline, (
            "the participant without a network is still listed"
        )
        await asyncio.sleep(0.1)
    bye = goes.last("bye")  # the node's word on the still open WebSocket: why it was removed
    assert bye is not None and bye["reason"] == "media_failed"
