"""The SIP leg's pure parts: what the far end's SDP lets us send (RFC 6184 §8.1 level / max-fs /
max-mbps, RFC 7741 max-fs), the view codec per packetization mode, and the RTP picture assembly
that must survive any payload."""

from __future__ import annotations

import random

from vdx.conference.policy import RoomConfig
from vdx.legs.sip import size_cap_for, size_for_macroblocks, view_codec
from vdx.legs.video_decoding import VideoReceiver
from vdx.sip.rtp import RtpPacket
from vdx.sip.sdp import Codec


def h264(remote_fmtp: str) -> Codec:
    return Codec("video", 97, "H264", 90000, remote_fmtp=remote_fmtp)


def test_h264_level_bounds_the_picture() -> None:
    # Level 3.1 (3600 macroblocks): 1280x720 fits exactly.
    assert size_cap_for(h264("profile-level-id=42e01f;packetization-mode=1"), 20) == (1280, 720)
    # Level 3.0 (1620 MBs, 40500 MB/s): at 20 fps 1620 MBs a frame -> at most 848x477 -> 832x468.
    w, h = size_cap_for(h264("profile-level-id=42e01e"), 20)  # type: ignore[misc]
    assert ((w + 15) // 16) * ((h + 15) // 16) <= 1620 and w >= 800
    # Level 1.2 (396 MBs, 6000 MB/s): at 20 fps at most 300 MBs a frame, 368x207.
    w2, h2 = size_cap_for(h264("profile-level-id=42e00c"), 20)  # type: ignore[misc]
    assert ((w2 + 15) // 16) * ((h2 + 15) // 16) <= 300 and w2 >= 320
    # max-fs / max-mbps raise the level's limits (RFC 6184 §8.1).
    w4, _ = size_cap_for(h264("profile-level-id=42e00c;max-fs=3600;max-mbps=108000"), 20)  # type: ignore[misc]
    assert w4 == 1280
    # max-mbps bounds frame size times rate: 11880 MB/s at 20 fps -> 594 MBs a frame.
    w3, h3 = size_for_macroblocks(8192, 11880, 20)
    assert ((w3 + 15) // 16) * ((h3 + 15) // 16) <= 594


def test_vp8_max_fs_bounds_the_picture() -> None:
    assert size_cap_for(Codec("video", 100, "VP8", 90000, remote_fmtp="max-fs=920"), 20)[0] <= 640  # type: ignore[index]
    assert size_cap_for(Codec("video", 100, "VP8", 90000), 20) is None  # no limit stated


def test_packetization_mode_picks_the_view_codec() -> None:
    assert view_codec(h264("profile-level-id=42e01f;packetization-mode=1")) == "H264"
    assert view_codec(h264("profile-level-id=42e01f")) == "H264M0"  # mode 0 is the default
    assert view_codec(Codec("video", 100, "VP8", 90000)) == "VP8"


def test_force_encryption_comes_from_the_scheduling_info() -> None:
    si = {"uriWithDomain": "1@vdx.test", "forceEncryption": True}
    assert RoomConfig.from_scheduling_info(si).force_encryption is True
    assert RoomConfig.from_scheduling_info({"uriWithDomain": "1@vdx.test"}).force_encryption is False


def test_video_receiver_survives_any_payload() -> None:
    rng = random.Random(7)
    for codec in (h264("packetization-mode=1"), Codec("video", 100, "VP8", 90000)):
        rx = VideoReceiver(codec)
        needs = 0
        for i in range(400):
            payload = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 300)))
            frames, need = rx.feed(RtpPacket(codec.pt, i, i // 3 * 3000, 1, payload, marker=i % 3 == 2))
            needs += need
            assert all(f.width > 0 for f in frames)
        assert needs > 0  # garbage makes us ask for a keyframe


def _pictures(codec_name: str, count: int) -> tuple[Codec, list[list[RtpPacket]]]:
    """``count`` real pictures of a view encoder (the first a keyframe), packetised by the
    node's own sender."""
    import fractions

    from vdx.conference.compositor import solid_frame
    from vdx.conference.views import VideoEncoder
    from vdx.legs.sip import VideoSender

    codec = Codec("video", 96, codec_name, 90000, fmtp="packetization-mode=1")
    out: list[list[RtpPacket]] = []

    class Capture:
        def send_rtp(self, packet: RtpPacket) -> None:
            out[-1].append(packet)

    enc = VideoEncoder(codec_name, 160, 96, 20)
    sender = VideoSender(Capture(), codec, codec_name)  # type: ignore[arg-type]
    for i in range(count):
        for packet in enc.encode(solid_frame(160, 96, (40 + 5 * i, 128, 128)), i, keyframe=i == 0):
            packet.time_base = fractions.Fraction(1, 20)
            out.append([])
            sender.push(packet)
    return codec, [p for p in out if p]


def test_keyframes_are_told_from_the_depacketised_bitstream() -> None:
    for name in ("VP8", "H264"):
        codec, pictures = _pictures(name, 4)
        rx = VideoReceiver(codec)
        kinds = [rx.is_keyframe(data) for pic in pictures for p in pic for data, _ in rx.assemble(p)]
        assert kinds == [True, False, False, False], name


def test_a_decode_backlog_is_shed_up_to_the_next_keyframe() -> None:
    """A pool that falls behind: past the bound, pictures are dropped up to a keyframe (asked
    for), and decoding resumes there, in order."""
    import asyncio
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from vdx.legs.video_decoding import DecodeWorker

    codec, pictures = _pictures("VP8", 8)
    assembled = [(d, b) for pic in pictures for p in pic for d, b in VideoReceiver(codec).assemble(p)]
    rx = VideoReceiver(codec)
    key_again = [(d, b) for pic in _pictures("VP8", 1)[1] for p in pic for d, b in rx.assemble(p)]

    async def run() -> tuple[list[tuple[int, bool]], int]:
        results: list[tuple[int, bool]] = []
        done = asyncio.Event()

        loop = asyncio.get_running_loop()

        def on_done(_rx: VideoReceiver, frames: list) -> None:  # type: ignore[type-arg]
            results.append((len(frames), False))
            if len(frames) and len(results) > 1:
                loop.call_soon_threadsafe(done.set)

        def on_need(_rx: VideoReceiver) -> None:
            results.append((0, True))

        gate = threading.Event()
        with ThreadPoolExecutor(1) as pool:
            worker = DecodeWorker(pool, on_done, on_need)
            pool.submit(gate.wait)  # the pool is busy: pictures queue up
            for data, broken in [*assembled, *key_again]:
                worker.submit(rx, data, broken)
            gate.set()
            await asyncio.wait_for(done.wait(), 10)
        return results, worker.dropped

    results, dropped = asyncio.run(run())
    assert dropped >= len(assembled) - DecodeWorker.MAX_BACKLOG
    assert (0, True) in results  # a keyframe was asked for
    assert results[-1][0] == 1  # the keyframe that came decodes
