"""linphonec (Debian ``linphone-cli``, liblinphone 5.1) in a PIN room with a WebRTC bot: it types
the guest PIN as DTMF during the prompt, plays a 300 Hz WAV as its microphone and records what it
hears; its video (the static "no webcam" picture) reaches the MCU decoded, and the bot's picture
reaches linphone decoded."""

from __future__ import annotations

import shutil

import pytest

from harness.bot import GREEN, colour_close
from harness.waiting import until

from .sipnode import run_sip_node
from .softphones import Linphonec
from .test_sip_room_peers import early_media_flowing, heard_wav, tone_power

pytestmark = pytest.mark.interop

ROOM = "7200@vdx.test"


async def test_linphonec_enters_the_pin_and_exchanges_media_with_a_webrtc_bot(settings_factory, tmp_path):
    if shutil.which("linphonec") is None:
        pytest.fail("linphonec is missing: apt-get install -y linphone-cli (make test installs it)")
    async with run_sip_node(settings_factory) as node:
        node.add_room(ROOM, host_pin="1234", guest_pin="5678", enable_overlay_text=False)
        bot = node.bot(ROOM, "Bot", colour=GREEN, tone=700.0)
        await bot.connect()
        assert (await bot.join("1234"))["role"] == "host"
        await bot.start_media()
        phone = Linphonec(tmp_path / "linphone", 300.0)
        try:
            await phone.start()
            await phone.say(f"call sip:7200@127.0.0.1:{node.sip.port}")
            await until(lambda: early_media_flowing(node), 15, lambda: "PIN entry: " + phone.tail()[-1500:])
            await phone.say("5678#")
            conf = node.rooms.live_conference(ROOM)
            assert conf is not None
            sip_p = await until(
                lambda: next((p for p in conf.participants.values() if p.protocol == "sip"), None),
                15,
                "the SIP participant",
            )
            assert sip_p.role.value == "guest" and sip_p.in_conference
            await bot.until(lambda: bot.tone_power(300.0) > 50, 15, "linphone's 300 Hz at the bot")
            leg = next(j.leg for j in node.calls.joined.values() if j.participant is sip_p)
            await until(lambda: leg.counters.video_frames_in > 2, 15, "linphone's video decoded")
            # linphone negotiates plain RTP/AVP: its decoder asks for a picture by SIP INFO
            # (RFC 5168), and the bot's green is what it then decodes
            await until(
                lambda: (c := phone.seen()) is not None and colour_close(c, GREEN, 30),
                15,
                lambda: f"the bot's green at linphone (last {phone.seen()}): {phone.tail()[-800:]}",
            )

            # linphone writes its recording when the call ends: it hangs up (BYE), the node lets
            # the participant go, and the recording's last seconds hold the bot's tone.
            await until(lambda: leg.counters.audio_frames_in > 100, 10, "two seconds of linphone's audio")
            await phone.say("terminate")
            await until(lambda: sip_p.id not in conf.participants, 10, "linphone's BYE")
            pcm, rate = await until(
                lambda: (r := heard_wav(phone.home, 2.0, pattern="heard.wav")) and len(r[0]) >= r[1] and r, 10
            )
            assert tone_power(pcm, rate, 700.0) > 50
        finally:
            await phone.stop()
