"""Softphones as separate processes that show what they received: baresip sends a picture of one
colour and a tone (generated files), records what it hears (``sndfile``) and saves the picture it
decodes on request (``snapshot``), so a test needs no access to the node's insides; linphonec
plays a tone and records. Both dial a SIP URI as a room system would, and follow a 302; both
answer a room that dials them (``sip_port``)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import wave
from pathlib import Path

import av
import numpy as np

from harness.ports import free_port, free_sip_port
from harness.waiting import until
from vdx.conference.compositor import mean_yuv, solid_frame

from .test_sip_room_peers import CONFIG, heard_wav, make_media, tone_power

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
    t = np.arange(int(rate * seconds)) / rate
    pcm = (9000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def write_still(path: Path, yuv: tuple[int, int, int], size: tuple[int, int] = (320, 240)) -> None:
    """A JPEG of one colour (BT.601 YUV), for a softphone's still-picture camera."""
    frame = solid_frame(size[0], size[1], yuv).reformat(format="yuvj420p")
    with av.open(str(path), "w", format="image2") as out:
        stream = out.add_stream("mjpeg")
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuvj420p"
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)


def middle_of_latest(shots: list[Path]) -> tuple[float, float, float] | None:
    """The mean colour (Y, U, V) of the middle of the last of a softphone's snapshots."""
    if not shots:
        return None
    try:
        with av.open(str(shots[-1])) as picture:
            frame = next(picture.decode(video=0)).reformat(format="yuv420p")
    except (av.error.FFmpegError, StopIteration):
        return None  # written as we read it
    return mean_yuv(frame, frame.width // 4, frame.height // 4, frame.width // 2, frame.height // 3)


class Baresip:
    """One baresip: ``colour`` and ``hz`` are its camera and microphone; ``video_module``
    ``avcodec.so`` (H.264) or ``vp8.so``."""

    def __init__(
        self,
        home: Path,
        colour: tuple[int, int, int],
        hz: float,
        video_module: str,
        *,
        cafile: Path | None = None,
        srtp: bool = False,
        answer: bool = False,
        certificate: Path | None = None,
        audio_codec: str | None = None,
    ) -> None:
        """``cafile``: the nodes' TLS certificate, to dial ``transport=tls``; ``srtp``: SDES-SRTP
        only; ``answer``: pick up incoming calls at once (after :meth:`start`); ``certificate``
        (PEM, certificate and key): also listen for TLS, on ``tls_port``; ``audio_codec``
        (``PCMU``, ``G722/16000/1``): that codec only, instead of Opus."""
        self.home = home
        home.mkdir(parents=True)
        self.colour, self.hz = colour, hz
        self.log = home / "baresip.log"
        self.proc: asyncio.subprocess.Process | None = None
        make_media(home / "camera.mkv", home / "tone.wav", colour=colour, hz=hz)
        self._settings = (cafile, video_module, certificate, audio_codec)
        self._configure()
        account = "<sip:roomsystem@127.0.0.1>;regint=0" + (";mediaenc=srtp-mand" if srtp else "")
        account += ";answermode=auto" if answer else ""
        account += f";audio_codecs={audio_codec}" if audio_codec else ""
        (home / "accounts").write_text(account + "\n")

    def _configure(self) -> None:
        """Ports free now, and the config naming them."""
        cafile, video_module, certificate, audio_codec = self._settings
        self.cons_port = free_sip_port()  # its console listens on UDP and TCP both
        low = 20000 + 2 * (free_port(socket.SOCK_DGRAM) % 10000)
        self.sip_port = free_sip_port()
        while certificate is not None and not _tcp_free(self.sip_port + 1):
            self.sip_port = free_sip_port()
        self.tls_port = self.sip_port + 1  # where baresip listens for TLS, given a certificate
        config = CONFIG.format(
            sip_port=self.sip_port,
            cafile=cafile or "/etc/ssl/certs/ca-certificates.crt",
            tmp=self.home,
            media=self.home / "camera.mkv",
            tone=self.home / "tone.wav",
            rtp_low=low,
            rtp_high=low + 99,
            video_module=video_module,
            cons_port=self.cons_port,
        )
        # snapshot: the decoded picture as a PNG on "/snapshot"; fakevideo: a display to decode for
        config += "module\t\t\tsnapshot.so\nmodule\t\t\tfakevideo.so\nvideo_display\t\tfakevideo,nil\n"
        if certificate is not None:
            config += f"sip_certificate\t\t{certificate}\n"
        if audio_codec is not None:  # loaded before account.so reads the account that names it
            config = config.replace(
                "module\t\t\topus.so", "module\t\t\topus.so\nmodule\t\t\tg711.so\nmodule\t\t\tg722.so"
            )
            config += "ausrc_srate\t\t48000\nauplay_srate\t\t48000\nausrc_channels\t\t2\nauplay_channels\t\t2\n"  # the tone as it is, resampled
        (self.home / "config").write_text(config)

    async def listen(self, seconds: int = 60) -> None:
        """Run for ``seconds``, waiting for calls, once baresip says it is ready. A port taken
        between choosing it and baresip binding it (another process got there first) is chosen
        again, up to three times: ``sip_port`` may change."""
        for _ in range(3):
            await self.start(seconds)
            await until(
                lambda: "baresip is ready" in self.tail() or "init failed" in self.tail(),
                10,
                lambda: f"baresip up: {self.tail()}",
            )
            if "baresip is ready" in self.tail():
                return
            await self.stop()
            self._configure()
        raise RuntimeError(f"baresip found no free port three times: {self.tail()}")

    async def dial(self, uri: str, seconds: int = 60) -> None:
        await self.start(seconds, "-e", f"/dial {uri}")

    async def start(self, seconds: int = 60, *args: str) -> None:
        """Run for ``seconds`` (waiting for a call unless ``args`` dial one)."""
        with self.log.open("w") as out:
            self.proc = await asyncio.create_subprocess_exec(
                "baresip",
                "-f",
                str(self.home),
                *args,
                "-t",
                str(seconds),
                cwd=self.home,  # where snapshots are written
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )

    def command(self, text: str) -> None:
        """A command on baresip's UDP console (``/snapshot``, ``/hangup``)."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(text.encode() + b"\n", ("127.0.0.1", self.cons_port))

    def seen(self) -> tuple[float, float, float] | None:
        """The mean colour (Y, U, V) of the middle of the latest picture baresip decoded (the
        main tile: in a call of two, the other one), asking for a new snapshot meanwhile."""
        self.command("/snapshot")
        return middle_of_latest(sorted(self.home.glob("snapshot-recv-*.png")))

    def hears(self, hz: float) -> float:
        """How strongly ``hz`` stands out in the last second baresip decoded."""
        pcm, rate = heard_wav(self.home)
        return tone_power(pcm, rate, hz) if len(pcm) >= rate // 2 else 0.0

    def tail(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(line for line in text.splitlines() if "efps=" not in line)[-2000:]

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 10)
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()


def _tcp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Linphonec:
    """linphonec on its console: plays a ``hz`` tone, records what it hears to ``heard.wav``
    (written when the call ends), sends a still picture of ``colour`` (its "static image" camera;
    None: linphone's own) and saves what it decodes on request (``seen``). With ``answer`` it
    picks up incoming calls at once."""

    def __init__(
        self, home: Path, hz: float = 300.0, colour: tuple[int, int, int] | None = None, answer: bool = False
    ) -> None:
        self.home = home
        self.colour, self.answer = colour, answer
        home.mkdir(parents=True)
        self.rc = home / "linphonerc"
        self.rc.write_text(
            RC.format(audio_port=free_port(socket.SOCK_DGRAM), video_port=free_port(socket.SOCK_DGRAM))
        )
        self.tone = home / "tone.wav"
        write_tone(self.tone, hz)
        self.heard = home / "heard.wav"
        self.log = home / "linphonec.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.sip_port = 0  # where it listens, once started
        self._shots = 0

    async def start(self) -> None:
        # without its database folder linphone's core never comes up: every incoming call gets 503
        (self.home / ".local/share/linphone").mkdir(parents=True, exist_ok=True)
        with self.log.open("w") as out:
            self.proc = await asyncio.create_subprocess_exec(
                "linphonec",
                "-c",
                str(self.rc),
                "-V",
                "-d",
                "3",
                stdin=asyncio.subprocess.PIPE,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                env={"HOME": str(self.home), "PATH": "/usr/bin:/bin"},
            )
        self.sip_port = free_sip_port()
        await self.say(f"ports sip {self.sip_port}")
        await self.say(f"play {self.tone}")
        await self.say(f"record {self.heard}")
        if self.colour is not None:
            picture = self.home / "camera.jpg"
            write_still(picture, self.colour)
            await self.say(f"staticpic set {picture}")
        if self.answer:
            await self.say("autoanswer enable")

    async def dial(self, uri: str) -> None:
        """Start (unless started) and call ``uri``, as :meth:`Baresip.dial` does."""
        if self.proc is None:
            await self.start()
        await self.say(f"call {uri}")

    async def say(self, line: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((line + "\n").encode())
        await self.proc.stdin.drain()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""

    def seen(self) -> tuple[float, float, float] | None:
        """The mean colour (Y, U, V) of the middle of the latest picture linphonec decoded, asking
        for a new snapshot meanwhile (it writes one once a picture has decoded)."""
        assert self.proc is not None and self.proc.stdin is not None
        self._shots += 1
        self.proc.stdin.write(f"snapshot {self.home / f'snapshot-{self._shots:05d}.jpg'}\n".encode())
        return middle_of_latest(sorted(self.home.glob("snapshot-*.jpg")))

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            with contextlib.suppress(ConnectionError):
                await self.say("quit")
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
