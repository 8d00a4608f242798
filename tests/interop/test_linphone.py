"""linphonec (Debian ``linphone-cli``, liblinphone 5.1) in a PIN room with a WebRTC bot: it types
the guest PIN as DTMF during the prompt, plays a 300 Hz WAV as its microphone and records what it
hears; its video (the static "no webcam" picture) reaches the MCU decoded."""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

from harness.bot import GREEN
from harness.ports import free_port
from harness.waiting import until

from .sipnode import run_sip_node
from .test_sip_room_peers import early_media_flowing, heard_wav, tone_power

pytestmark = pytest.mark.interop

ROOM = "7200@vdx.test"

RC = """[sip]
sip_port=-1
sip_tcp_port=-1
sip_tls_port=-1
default_proxy=-1
[rtp]
audio_rtp_port={audio_port}
video_rtp_port={video_port}
[video]
display=0
capture=1
show_local=0
size=qvga
automatically_initiate=1
automatically_accept=1
[sound]
echocancellation=0
"""


def write_tone(path: Path, hz: float = 300.0, seconds: float = 30.0, rate: int = 16000) -> None:
    import wave

    t = np.arange(int(rate * seconds)) / rate
    pcm = (9000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


async def test_linphonec_enters_the_pin_and_exchanges_media_with_a_webrtc_bot(settings_factory, tmp_path):
    if shutil.which("linphonec") is None:
        pytest.fail("linphonec is missing: apt-get install -y linphone-cli (make test installs it)")
    async with run_sip_node(settings_factory) as node:
        node.add_room(ROOM, host_pin="1234", guest_pin="5678", enable_overlay_text=False)
        bot = node.bot(ROOM, "Bot", colour=GREEN, tone=700.0)
        await bot.connect()
        assert (await bot.join("1234"))["role"] == "host"
        await bot.start_media()
        home = tmp_path / "linphone"
        home.mkdir()
        rc = home / "linphonerc"
        rc.write_text(
            RC.format(audio_port=free_port(socket.SOCK_DGRAM), video_port=free_port(socket.SOCK_DGRAM))
        )
        tone = home / "tone.wav"
        write_tone(tone)
        heard = home / "heard.wav"
        log = home / "linphonec.log"
        with log.open("w") as out:
            proc = await asyncio.create_subprocess_exec(
                "linphonec",
                "-c",
                str(rc),
                "-V",
                "-d",
                "3",
                stdin=asyncio.subprocess.PIPE,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
            )
        assert proc.stdin is not None

        async def say(line: str) -> None:
            assert proc.stdin is not None
            proc.stdin.write((line + "\n").encode())
            await proc.stdin.drain()

        try:
            await say(f"ports sip {free_port(socket.SOCK_DGRAM)}")
            await say(f"play {tone}")
            await say(f"record {heard}")
            await say(f"call sip:7200@127.0.0.1:{node.sip.port}")
            await until(
                lambda: early_media_flowing(node),
                15,
                lambda: "PIN entry: " + log.read_text(errors="replace")[-1500:],
            )
            await say("5678#")
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

            # linphone writes its recording when the call ends: it hangs up (BYE), the node lets
            # the participant go, and the recording's last seconds hold the bot's tone.
            await until(lambda: leg.counters.audio_frames_in > 100, 10, "two seconds of linphone's audio")
            await say("terminate")
            await until(lambda: sip_p.id not in conf.participants, 10, "linphone's BYE")
            pcm, rate = await until(
                lambda: (r := heard_wav(home, 2.0, pattern="heard.wav")) and len(r[0]) >= r[1] and r, 10
            )
            assert tone_power(pcm, rate, 700.0) > 50
        finally:
            if proc.returncode is None:
                with_quit = proc.stdin is not None and not proc.stdin.is_closing()
                if with_quit:
                    await say("quit")
                try:
                    await asyncio.wait_for(proc.wait(), 5)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
