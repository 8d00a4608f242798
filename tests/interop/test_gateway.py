"""Gateway calls through routing rules: a SIP call to an alias that is no room is bridged to where
a rule sends it, transcoded between peers that share no codec, and a rule kept for other sources
refuses the call (403) while an alias no rule matches stays 404."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from harness.bot import GREEN, PALETTE, colour_close
from harness.waiting import until
from vdx.booking.routing import Rule, check_rule

from .sipnode import run_sip_node
from .softphones import Baresip, Linphonec
from .test_sip_room_peers import RED_YUV, heard_wav, tone_power
from .uac import SDP, Uac

pytestmark = pytest.mark.interop


def rule(destination: str, **sources: tuple[str, ...]) -> Rule:
    return check_rule(Rule("municipality", r"(\d{4})@vdx\.test", destination, **sources))  # type: ignore[arg-type]


async def test_a_gateway_call_bridges_vp8_and_g711_to_h264_and_g722(settings_factory, tmp_path: Path) -> None:
    if shutil.which("baresip") is None:
        pytest.fail("baresip is missing: apt-get install -y baresip baresip-ffmpeg (make test installs it)")
    async with run_sip_node(settings_factory) as node:
        callee = Baresip(
            tmp_path / "callee", GREEN, 700.0, "avcodec.so", answer=True, audio_codec="G722/16000/1"
        )
        caller = Baresip(tmp_path / "caller", RED_YUV, 300.0, "vp8.so", audio_codec="PCMU")
        try:
            await callee.listen(60)
            node.rooms.call_routing.replace(
                # baresip answers its own user only
                [rule(rf"sip:roomsystem@127.0.0.1:{callee.sip_port}", source_networks=("127.0.0.0/8",))],
                [],
            )
            await caller.dial(f"sip:4321@127.0.0.1:{node.sip.port}")

            def bridged() -> bool:
                return any(len(c.participants) == 2 for c in node.rooms.live.values())

            await until(bridged, 20, lambda: f"the bridge: {caller.tail()} / {callee.tail()}")
            (bridge,) = [c for c in node.rooms.live.values() if c.alias.startswith("gw-")]
            calls = {j.participant.id: c for c, j in node.calls.joined.items() if j.conference is bridge}
            codecs = sorted(
                (c.negotiation.stream("video").codecs[0].name, c.negotiation.stream("audio").codecs[0].name)  # type: ignore[union-attr]
                for c in calls.values()
                if c.negotiation is not None
            )
            assert codecs == [("H264", "G722"), ("VP8", "PCMU")], codecs  # no codec in common

            for viewer, colour, who in ((callee, RED_YUV, "callee"), (caller, GREEN, "caller")):
                try:
                    await until(
                        lambda v=viewer, c=colour: (
                            (seen := v.seen()) is not None and colour_close(seen, c, 30)
                        ),
                        20,
                        lambda v=viewer, w=who: f"the {w} sees the other's colour (last {v.seen()})",
                    )
                except TimeoutError as e:  # what each leg sent and received, and what baresip said
                    legs = [await j.leg.stats() for j in node.calls.joined.values()]
                    raise AssertionError(f"{e}; legs: {legs}; {who}: {viewer.tail()}") from e
            await until(lambda: callee.hears(300.0) > 50, 15, "the callee hears the caller")
            await until(lambda: caller.hears(700.0) > 50, 15, "the caller hears the callee")

            # one side hangs up: so does the other, and nothing of the bridge is left
            caller.command("/hangup")
            await until(lambda: not node.sip.calls and not node.rooms.live, 15, "the bridge gone")
            assert not any(a.startswith("gw-") for a in node.rooms.aliases())
        finally:
            await caller.stop()
            await callee.stop()


async def test_a_gateway_call_bridges_baresip_on_g711_to_linphonec_on_opus(
    settings_factory, tmp_path: Path
) -> None:
    for tool in ("baresip", "linphonec"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: apt-get install -y baresip baresip-ffmpeg linphone-cli")
    yellow = PALETTE[3]
    async with run_sip_node(settings_factory) as node:
        callee = Linphonec(tmp_path / "callee", 500.0, colour=yellow, answer=True)
        caller = Baresip(tmp_path / "caller", RED_YUV, 300.0, "vp8.so", audio_codec="PCMU")
        try:
            await callee.start()
            await until(lambda: "Auto answer enabled" in callee.tail(), 10, "linphonec ready")
            node.rooms.call_routing.replace([rule(f"sip:desk@127.0.0.1:{callee.sip_port}")], [])
            await caller.dial(f"sip:4321@127.0.0.1:{node.sip.port}")
            await until(
                lambda: any(len(c.participants) == 2 for c in node.rooms.live.values()),
                20,
                lambda: f"the bridge: {caller.tail()} / {callee.tail()[-600:]}",
            )
            (bridge,) = [c for c in node.rooms.live.values() if c.alias.startswith("gw-")]
            audio = sorted(
                c.negotiation.stream("audio").codecs[0].name.upper()  # type: ignore[union-attr]
                for c, j in node.calls.joined.items()
                if j.conference is bridge and c.negotiation is not None
            )
            assert audio == ["OPUS", "PCMU"], audio  # no audio codec in common: transcoded

            await until(
                lambda: (c := callee.seen()) is not None and colour_close(c, RED_YUV, 30),
                20,
                lambda: f"linphonec sees baresip's red (last {callee.seen()})",
            )
            await until(
                lambda: (c := caller.seen()) is not None and colour_close(c, yellow, 30),
                20,
                lambda: f"baresip sees linphonec's yellow (last {caller.seen()})",
            )
            await until(lambda: caller.hears(500.0) > 50, 15, "baresip hears linphonec")
            leg = next(  # linphonec's: the leg on Opus
                j.leg
                for c, j in node.calls.joined.items()
                if j.conference is bridge
                and c.negotiation
                and c.negotiation.stream("audio").codecs[0].name.upper() == "OPUS"  # type: ignore[union-attr]
            )
            await until(lambda: leg.counters.audio_frames_in > 100, 10, "two seconds of linphonec's call")
            # linphonec hangs up (and writes what it heard): the bridge ends, nothing of it is left
            await callee.say("terminate")
            await until(lambda: not node.sip.calls and not node.rooms.live, 15, "the bridge gone")
            pcm, rate = await until(
                lambda: (r := heard_wav(callee.home, 2.0, pattern="heard.wav")) and len(r[0]) >= r[1] and r,
                10,
            )
            assert tone_power(pcm, rate, 300.0) > 50
        finally:
            await caller.stop()
            await callee.stop()


async def test_a_rule_for_other_sources_refuses_and_no_rule_is_404(settings_factory) -> None:
    async with run_sip_node(settings_factory) as node:
        node.rooms.call_routing.replace([rule("sip:\\1@127.0.0.1:9", source_networks=("10.0.0.0/8",))], [])
        uac = Uac(node.sip.port, domain="vdx.test")
        try:
            offer = SDP.format(port=30000, direction="sendrecv", version=1, proto="RTP/AVP", extra="")
            refused = await uac.call("INVITE", "4321", body=offer)  # from 127.0.0.1, not 10.0.0.0/8
            assert refused.status == 403, refused
            unknown = await uac.call("INVITE", "nobody", body=offer)
            assert unknown.status == 404, unknown
            assert not node.rooms.live and not node.sip.calls
        finally:
            uac.close()


async def test_a_rule_for_one_caller_domain_admits_that_domain_only(settings_factory) -> None:
    async with run_sip_node(settings_factory) as node:
        # nothing listens on TCP port 9: an admitted call fails there, after the rule let it through
        node.rooms.call_routing.replace(
            [rule("sip:\\1@127.0.0.1:9;transport=tcp", source_domains=("partner.test",))], []
        )
        offer = SDP.format(port=30000, direction="sendrecv", version=1, proto="RTP/AVP", extra="")
        other = Uac(node.sip.port, domain="vdx.test", caller_domain="elsewhere.test")
        partner = Uac(node.sip.port, domain="vdx.test", caller_domain="Partner.Test")
        try:
            refused = await other.call("INVITE", "4321", body=offer)
            assert refused.status == 403, refused
            through = await partner.call("INVITE", "4321", body=offer)
            assert through.status == 200, through  # into the bridge, which then dials the destination
            partner.ack("4321")

            def bye() -> bool:  # the destination refused: the bridge ends, hanging up on the caller
                data = partner.recv_raw()
                return data is not None and data.startswith(b"BYE ")

            await until(lambda: asyncio.to_thread(bye), 15, "a BYE from the bridge")
            await until(lambda: not node.sip.calls and not node.rooms.live, 15, "nothing left of the attempt")
        finally:
            other.close()
            partner.close()
