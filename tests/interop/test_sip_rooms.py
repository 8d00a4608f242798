"""SIP callers in rooms (issue 5): the node's SIP server answers from the room directory with the
same rules as WebRTC signalling, and an answered call is an ordinary participant of the MCU.

A scripted caller (uac.py for SIP, rtp_peer.py for RTP) gives exact control of the wire; real
softphones are in test_sip_room_peers.py."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from harness.waiting import until
from vdx.conference.pin_guard import PinGuard, PinRules
from vdx.sip import rtcp
from vdx.sip.message import SipResponse
from vdx.sip.sdp import SessionDescription

from .conftest import SipUnderTest, run_sipp
from .rtp_peer import RtpPeer
from .sipnode import run_sip_node
from .uac import Uac

pytestmark = pytest.mark.interop

ROOM = "7000@vdx.test"


def offer(port: int, proto: str = "RTP/AVP", extra: str = "") -> str:
    return (
        "v=0\r\no=uac 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} {proto} 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
        f"a=fmtp:101 0-16\r\n{extra}a=sendrecv\r\n"
    )


async def recv_any(uac: Uac) -> SipResponse:
    return await asyncio.to_thread(uac.recv, False)


async def invite(uac: Uac, alias: str, body: str) -> SipResponse:
    uac.send(uac.build("INVITE", alias, body=body))
    return await asyncio.to_thread(uac.recv)


async def test_answers_follow_the_room_policy(settings_factory):
    """404 unknown alias, 480 not open / ended, 486 full, 488 forceEncryption over plain RTP,
    503 + Retry-After when the node's capacity is used up (two HD participants of one unit each)."""
    now = datetime.now(UTC)
    async with run_sip_node(settings_factory, node_capacity=2.0, clinical_reserve=0.0) as node:
        node.add_room("7001@vdx.test", start_time=now + timedelta(hours=2), vmr_available_before=10)
        node.add_room(
            "7002@vdx.test",
            start_time=now - timedelta(hours=2),
            end_time=now - timedelta(hours=1),
            end_meeting_on_end_time=True,
        )
        node.add_room("7003@vdx.test", max_participants=1)
        node.add_room("7004@vdx.test", force_encryption=True)
        node.add_room("7005@vdx.test")
        full = node.bot("7003@vdx.test", "Alone")
        await full.connect()
        assert (await full.join())["type"] == "joined"
        peer = await RtpPeer.open()
        cases = [("9999", 404), ("7001", 480), ("7002", 480), ("7003", 486), ("7004", 488)]
        for alias, status in cases:
            uac = Uac(node.sip.port)
            try:
                resp = await invite(uac, alias, offer(peer.port))
                assert resp.status == status, (alias, resp.status, resp.reason)
                uac.ack(alias)
            finally:
                uac.close()
        # A second HD participant: the node's 2 units are taken, so the next SIP call gets 503.
        other = node.bot("7005@vdx.test", "Other")
        await other.connect()
        assert (await other.join())["type"] == "joined"
        uac = Uac(node.sip.port)
        try:
            resp = await invite(uac, "7005", offer(peer.port))
            assert resp.status == 503 and resp.get("Retry-After") == "30"
            assert resp.reason == "Service full"
        finally:
            uac.close()
            peer.close()
        assert node.calls.refusals == {404: 1, 480: 2, 486: 1, 488: 1, 503: 1}


async def test_three_wrong_pins_by_info_end_with_403(settings_factory):
    async with run_sip_node(settings_factory) as node:
        node.add_room(ROOM, host_pin="1234", guest_pin="5678")
        peer = await RtpPeer.open()
        uac = Uac(node.sip.port)
        try:
            assert (await uac.early_dialog("7000", offer(peer.port))).status == 183
            uac.send_digits("7000", "1111#2222#3333#")
            assert (await uac.final()).status == 403
        finally:
            uac.close()
            peer.close()
        assert not node.rooms.live  # nobody got in


async def test_pin_guessing_over_many_invites_gets_403_and_another_source_gets_in(settings_factory):
    """Issue 15: a new INVITE no longer brings three fresh tries. After three wrong PINs from one
    address its next INVITEs get 403 at once, with the wait in the reason and no PIN entry; a
    room system at another address with the right PIN still gets in."""
    async with run_sip_node(settings_factory) as node:
        node.rooms.pin_guard = PinGuard(PinRules(backoff_base_s=60))  # no race with a slow machine
        node.add_room(ROOM, host_pin="1234", guest_pin="5678")
        peer = await RtpPeer.open()
        try:
            uac = Uac(node.sip.port)
            try:
                assert (await uac.early_dialog("7000", offer(peer.port))).status == 183
                uac.send_digits("7000", "1111#2222#3333#")
                assert (await uac.final()).status == 403
            finally:
                uac.close()
            for _ in range(5):  # bounded: five more INVITEs from 127.0.0.1
                uac = Uac(node.sip.port)
                try:
                    uac.send(uac.build("INVITE", "7000", body=offer(peer.port)))
                    first = await recv_any(uac)
                    while first.status == 100:
                        first = await recv_any(uac)
                    assert first.status == 403, (first.status, first.reason)  # no 183: no PIN entry
                    assert first.reason.startswith("Too many wrong PINs, retry in ")
                    uac.ack("7000")
                finally:
                    uac.close()
            other = Uac(node.sip.port, source="127.0.0.2")
            try:
                assert (await other.early_dialog("7000", offer(peer.port))).status == 183
                other.send_digits("7000", "5678#")
                answer = await other.final()
                assert answer.status == 200, (answer.status, answer.reason)
                other.send(other.build("ACK", "7000", cseq=1))  # the INVITE's CSeq, not the INFOs'
                conf = await until(lambda: node.rooms.live_conference(ROOM), 5, "the room live")
                await until(lambda: len(conf.participants) == 1, 5, "the guest in the room")
                assert next(iter(conf.participants.values())).role.value == "guest"
            finally:
                other.close()
        finally:
            peer.close()


async def test_throttled_during_pin_entry_gets_403_after_the_prompt(settings_factory):
    """Two INVITEs from one address take turns: once the address has used its free tries, the
    next PIN of the call still in PIN entry is not checked; the caller hears why, then 403."""
    async with run_sip_node(settings_factory) as node:
        node.rooms.pin_guard = PinGuard(PinRules(backoff_base_s=600))  # no race with a slow machine
        node.add_room(ROOM, host_pin="1234", guest_pin="5678")
        peer = await RtpPeer.open()
        guard = node.rooms.pin_guard
        a, b = Uac(node.sip.port), Uac(node.sip.port)
        try:
            assert (await a.early_dialog("7000", offer(peer.port))).status == 183
            a.send_digits("7000", "1111#2222#")
            await until(lambda: guard.failures(ROOM, "127.0.0.1") == 2, 5, "two wrong PINs")
            assert (await b.early_dialog("7000", offer(peer.port))).status == 183
            b.send_digits("7000", "3333#")
            await until(lambda: guard.waiting(ROOM, "127.0.0.1") > 0, 5, "the third wrong PIN")
            prompt_s = len(node.calls._prompts["pin_wait"]) * 0.02
            started = time.monotonic()
            a.sock.settimeout(prompt_s + 10)
            a.send_digits("7000", "1234#")  # the right PIN, unchecked
            final = await a.final()
            assert final.status == 403 and final.reason.startswith("Too many wrong PINs"), final.reason
            assert time.monotonic() - started >= 0.9 * prompt_s > 0  # the prompt played out first
            assert guard.failures(ROOM, "127.0.0.1") == 3  # the refused try did not count
            assert not node.rooms.live
        finally:
            a.close()
            b.close()
            peer.close()


async def test_pin_caller_hears_the_prompt_enters_by_rfc4733_and_talks_with_a_webrtc_bot(settings_factory):
    """183 + a spoken prompt as early media; the host PIN by RFC 4733 admits as host; then the
    caller's PCMU tone reaches the WebRTC bot and the bot's tone reaches the caller (48 kHz mix
    resampled to 8 kHz PCMU)."""
    async with run_sip_node(settings_factory) as node:
        node.add_room(ROOM, host_pin="1234", guest_pin="5678")
        bot = node.bot(ROOM, "Bot", tone=700.0)
        await bot.connect()
        assert (await bot.join("1234"))["role"] == "host"
        await bot.start_media()
        peer = await RtpPeer.open()
        uac = Uac(node.sip.port)
        try:
            uac.send(uac.build("INVITE", "7000", body=offer(peer.port)))
            progress = await recv_any(uac)
            while progress.status < 180:
                progress = await recv_any(uac)
            assert progress.status == 183
            early = SessionDescription.parse(progress.body)
            peer.remote = ("127.0.0.1", early.media[0].port)
            # The prompt: speech-like audio (loud, broadband, not one tone) on the early media.
            await until(lambda: len(peer.heard(2.0)) >= 16000, 10, "two seconds of prompt")
            speech = peer.heard(2.0)
            rms = float(np.sqrt(np.mean(speech**2)))
            spec = np.abs(np.fft.rfft(speech))
            freqs = np.fft.rfftfreq(len(speech), 1 / 8000)
            voiced = spec[(freqs > 100) & (freqs < 3500)]
            assert rms > 300, rms
            assert (voiced > 0.1 * voiced.max()).sum() > 50  # many frequencies: a voice, not a beep
            await peer.digits("1234#")
            final = await asyncio.to_thread(uac.recv)
            assert final.status == 200, (final.status, final.reason)
            uac.ack("7000")
            conf = node.rooms.live_conference(ROOM)
            assert conf is not None
            sip_p = await until(
                lambda: next((p for p in conf.participants.values() if p.protocol == "sip"), None), 5
            )
            assert sip_p.role.value == "host" and sip_p.in_conference
            peer.pcm.clear()
            talk = asyncio.get_running_loop().create_task(peer.tone(300.0, 6.0))
            try:
                await bot.until(lambda: bot.tone_power(300.0) > 50, 10, "the SIP caller's 300 Hz")
                await until(lambda: peer.tone_power(700.0) > 50, 10, "the bot's 700 Hz at the SIP caller")
                assert peer.tone_power(300.0) < 0.2 * peer.tone_power(700.0)  # mix-minus: not itself
                # five packets lost on the way (sequence numbers skipped): the dashboard's loss
                peer.seq = (peer.seq + 5) & 0xFFFF

                async def sip_media() -> dict[str, Any]:
                    status = await conf.status()
                    return next(p["media"] for p in status["participants"] if p["protocol"] == "sip")

                async def lost_five() -> bool:
                    return (await sip_media())["audioPacketsLost"] == 5

                for _ in range(50):
                    if await lost_five():
                        break
                    await asyncio.sleep(0.1)
                media = await sip_media()
                assert media["audioPacketsLost"] == 5, media
            finally:
                talk.cancel()
            assert media["audioFramesDecoded"] > 5 and media["audioPacketsSent"] > 5
            assert media["bytesReceived"] > 0 and media["audioRemotePacketsLost"] == 0
            # The caller hangs up: the participant leaves the room.
            uac.send(uac.build("BYE", "7000"))
            await until(lambda: all(p.protocol != "sip" for p in conf.participants.values()), 5, "SIP leaves")
        finally:
            uac.close()
            peer.close()


async def test_garbage_on_the_media_path_never_hurts_the_node(settings_factory):
    async with run_sip_node(settings_factory) as node:
        node.add_room(ROOM)
        bot = node.bot(ROOM, "Bot", tone=700.0)
        await bot.connect()
        await bot.join()
        await bot.start_media()
        peer = await RtpPeer.open()
        uac = Uac(node.sip.port)
        try:
            resp = await invite(uac, "7000", offer(peer.port))
            assert resp.status == 200
            uac.ack("7000")
            answer = SessionDescription.parse(resp.body)
            peer.remote = ("127.0.0.1", answer.media[0].port)
            rng = np.random.default_rng(5)
            for i in range(300):
                kind = i % 5
                if kind == 0:
                    peer.send_raw(rng.bytes(int(rng.integers(0, 200))))  # not RTP at all
                elif kind == 1:
                    peer.send(int(rng.integers(0, 128)), rng.bytes(160))  # any payload type
                elif kind == 2:
                    peer.send(0, rng.bytes(int(rng.integers(0, 400))))  # PCMU of any length
                elif kind == 3:
                    peer.send(101, rng.bytes(int(rng.integers(0, 8))))  # broken telephone-events
                else:
                    peer.send_raw(bytes([0x80, 0xC8]) + rng.bytes(30))  # bogus RTCP on the RTP port
            # Still a working participant: its tone reaches the bot.
            talk = asyncio.get_running_loop().create_task(peer.tone(300.0, 5.0))
            try:
                await bot.until(lambda: bot.tone_power(300.0) > 50, 10, "the SIP caller's tone after garbage")
            finally:
                talk.cancel()
            assert node.sip.task_failures == 0
            conf = node.rooms.live_conference(ROOM)
            assert conf is not None
            status = await conf.status()
            media = next(p["media"] for p in status["participants"] if p["protocol"] == "sip")
            assert media["packetsDropped"] > 0
        finally:
            uac.close()
            peer.close()


async def test_fifty_sipp_callers_in_one_room_and_a_flood_gets_503(settings_factory, tmp_path):
    """50 concurrent audio-only PCMU calls (sipp, media echoed back) are all answered and mixed;
    an INVITE flood meanwhile gets 503 + Retry-After (rate limit, then the node's capacity: 51
    audio-only participants of 1/16 HD unit), and the 50 calls keep sending and receiving audio
    through it."""
    async with run_sip_node(
        settings_factory, node_capacity=51 / 16, clinical_reserve=0.0, sip_max_invites_per_second=30.0
    ) as node:
        node.add_room(ROOM)
        bot = node.bot(ROOM, "Bot", tone=700.0)
        await bot.connect()
        await bot.join()
        await bot.start_media(video=False)
        sut = SipUnderTest(server=node.sip, policy=None, cert=tmp_path, tmp=tmp_path)  # type: ignore[arg-type]
        calls = asyncio.ensure_future(
            run_sipp(
                sut,
                "room_call.xml",
                "7000",
                "-r",
                "25",
                "-l",
                "50",
                "-d",
                "16000",
                "-rtp_echo",
                calls=50,
                deadline_s=26,
            )
        )
        conf = await until(lambda: node.rooms.live_conference(ROOM), 10, "the conference")
        await until(
            lambda: (
                sum(1 for p in conf.participants.values() if p.protocol == "sip" and p.in_conference) == 50
            ),
            16,
            lambda: (
                f"50 SIP participants (joined: {len(node.calls.joined)}, refused: {node.calls.refusals}, "
                f"sipp: {calls.result().describe() if calls.done() else 'running'})"
            ),
        )
        legs = [j.leg for j in node.calls.joined.values()]
        assert len(legs) == 50
        await until(
            lambda: all(leg.counters.audio_frames_in > 0 for leg in legs), 8, "echoed audio from every call"
        )
        before = [(leg.counters.audio_frames_in, leg.audio_out.sender.packets) for leg in legs]  # type: ignore[union-attr]
        flood = await run_sipp(sut, "flood.xml", "7000", "-r", "100", calls=100, deadline_s=20)
        assert flood.returncode == 0, flood.describe()
        assert node.calls.refusals.get(503, 0) + node.sip.rejected_overload >= 100
        # Every call still has media both ways after the flood.
        await until(
            lambda: all(
                leg.counters.audio_frames_in > b_in and leg.audio_out.sender.packets > b_out  # type: ignore[union-attr]
                for leg, (b_in, b_out) in zip(legs, before, strict=True)
            ),
            5,
            "audio on all 50 calls after the flood",
        )
        result = await calls
        assert result.returncode == 0, result.describe()
        assert node.sip.task_failures == 0


async def test_keyframe_requests_both_ways(settings_factory):
    """A PLI from the room system reaches the shared view encoder (a keyframe follows, within the
    rate limit); the node asks the room system for a keyframe when its video starts (PLI to the
    caller's RTCP port)."""
    async with run_sip_node(settings_factory) as node:
        node.add_room(ROOM)
        peer = await RtpPeer.open()
        rtcp_in = await RtpPeer.open()  # our "RTCP port": the offer names it with a=rtcp
        video_port = rtcp_in.port - 1 if rtcp_in.port % 2 else rtcp_in.port
        body = offer(peer.port) + (
            f"m=video {video_port} RTP/AVPF 100\r\na=rtpmap:100 VP8/90000\r\n"
            f"a=rtcp:{rtcp_in.port}\r\na=rtcp-fb:100 nack pli\r\na=rtcp-fb:100 ccm fir\r\na=sendrecv\r\n"
        )
        uac = Uac(node.sip.port)
        try:
            resp = await invite(uac, "7000", body)
            assert resp.status == 200
            uac.ack("7000")
            answer = SessionDescription.parse(resp.body)
            node_video = answer.media[1].port
            joined = await until(lambda: next(iter(node.calls.joined.values()), None), 5)
            leg = joined.leg
            assert leg.video_codec == "VP8"
            await until(lambda: leg.counters.keyframe_requests_out >= 1, 5, "our PLI to the caller")
            conf = joined.conference
            view = await until(lambda: next(iter(conf.views.values()), None), 5, "the caller's view")
            await until(lambda: view.keyframes >= 1, 5, "the first keyframe")
            before = view.keyframes
            sender = leg.video_out.sender
            assert sender is not None
            pli = rtcp.build_compound([rtcp.Pli(0x1234, sender.ssrc)])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(pli, ("127.0.0.1", node_video + 1))
            await until(lambda: leg.counters.keyframe_requests_in == 1, 5, "the PLI at the leg")
            await until(lambda: view.keyframes > before, 5, "a keyframe for the PLI")
        finally:
            uac.close()
            peer.close()
            rtcp_in.close()


async def test_a_caller_whose_media_stops_without_bye_leaves_and_frees_its_slot(settings_factory, tmp_path):
    """Issue 15: a room system that falls silent (no RTP, no RTCP) and never sends its BYE is hung
    up after VDX_SIP_MEDIA_TIMEOUT (2 s here): the node sends the BYE, the participant leaves the
    room's status, and its slot takes the next joiner. While its 7 s of audio flow it stays."""
    async with run_sip_node(settings_factory, sip_media_timeout=2.0) as node:
        node.add_room(ROOM, max_participants=2)
        bot = node.bot(ROOM, "Bot")
        await bot.connect()
        assert (await bot.join())["type"] == "joined"
        sut = SipUnderTest(server=node.sip, policy=None, cert=tmp_path, tmp=tmp_path)  # type: ignore[arg-type]
        caller = asyncio.ensure_future(run_sipp(sut, "media_stops.xml", "7000", deadline_s=25))
        conf = await until(lambda: node.rooms.live_conference(ROOM), 10, "the conference")

        async def sip_entries() -> list[dict[str, Any]]:
            return [p for p in (await conf.status())["participants"] if p["protocol"] == "sip"]

        joined = await until(lambda: next(iter(node.calls.joined.values()), None), 10, "the SIP caller joins")
        # Audio keeps it in the room well past the timeout (the recording lasts 7 s).
        await until(
            lambda: joined.leg.counters.audio_frames_in >= 150, 15, "five seconds of the caller's audio"
        )
        assert len(await sip_entries()) == 1 and not caller.done()
        full = node.bot(ROOM, "Third")
        await full.connect()
        assert (await full.join())["type"] == "error"  # two of two: the SIP caller holds a slot
        # Silence: within the timeout (plus a check's slack) the node hangs up with a BYE.
        endpoint = joined.leg.audio_ep
        assert endpoint is not None
        await until(lambda: not node.calls.joined and not node.sip.calls, 10, "the SIP call is gone")
        assert time.monotonic() - endpoint.last_received < 2.0 + 1.0
        assert await sip_entries() == []
        stopped = await caller
        assert stopped.returncode == 0, stopped.describe()  # it got the BYE, with the reason
        after = node.bot(ROOM, "After")
        await after.connect()
        assert (await after.join())["type"] == "joined"
