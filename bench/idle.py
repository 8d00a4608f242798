"""What idling between pictures costs a codec: the CPU of one H.264 encode and one decode of a
360p picture (the node's own encoder and decoder settings), back to back and with the thread
asleep for a while after each, as a real-time MCU is between frames.

No MCU, no threads, no GIL: only the codec and the gaps. A processor that idles comes back to
cold caches (and, on a virtual machine, to a physical core the host lent to others meanwhile), so
the same work costs more CPU when it comes at a pace than in a tight loop. This is why the
capacity benchmark measures its floor paced as well as tight (``bench/floor.py``).

    python -m bench.idle [--pictures 300] [--gaps 0 1 5 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import av

from bench.clips import make_clip
from vdx.conference.views import VideoEncoder
from vdx.legs.video_decoding import video_decoder
from vdx.node.self_test import camlike_frames

WIDTH, HEIGHT, FPS = 640, 360, 30


def encode_ms(gap_ms: float, pictures: int) -> float:
    """Median CPU ms of one encode, the thread asleep ``gap_ms`` after each."""
    encoder = VideoEncoder("H264", WIDTH, HEIGHT, FPS)
    frames = list(camlike_frames(WIDTH, HEIGHT, pictures, seed=3))
    spent = []
    for i, frame in enumerate(frames):
        t0 = time.thread_time()
        encoder.encode(frame, i, keyframe=i == 0)
        spent.append(time.thread_time() - t0)
        if gap_ms:
            time.sleep(gap_ms / 1e3)
    return 1e3 * statistics.median(spent[1:])


def decode_ms(gap_ms: float, pictures: int) -> float:
    """Median CPU ms of one decode, the thread asleep ``gap_ms`` after each."""
    clip = make_clip("H264", WIDTH, HEIGHT, FPS)
    decoder = video_decoder("H264")
    spent = []
    for i in range(pictures):
        packet = av.Packet(clip.video[i % len(clip.video)])
        t0 = time.thread_time()
        decoder.decode(packet)
        spent.append(time.thread_time() - t0)
        if gap_ms:
            time.sleep(gap_ms / 1e3)
    return 1e3 * statistics.median([s for i, s in enumerate(spent) if i % len(clip.video)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pictures", type=int, default=300)
    ap.add_argument(
        "--gaps", type=float, nargs="+", default=[0.0, 1.0, 5.0, 20.0], help="ms asleep after each"
    )
    args = ap.parse_args()
    rows = [(gap, encode_ms(gap, args.pictures), decode_ms(gap, args.pictures)) for gap in args.gaps]
    enc0, dec0 = rows[0][1], rows[0][2]
    print("| asleep after each picture | encode, CPU ms (x back to back) | decode, CPU ms (x back to back) |")
    print("|---|---|---|")
    for gap, enc, dec in rows:
        print(f"| {gap:g} ms | {enc:.3f} ({enc / enc0:.2f}x) | {dec:.3f} ({dec / dec0:.2f}x) |")


if __name__ == "__main__":
    main()
