"""What libvpx's speed setting costs and gives: the node's VP8 view encoder on camera-like
pictures at one size, for each ``cpu-used`` asked, paced as a view is (the thread asleep 5 ms
after each picture): CPU per picture, bitrate and PSNR of the luma against the input.

A positive ``cpu-used`` is libvpx's adaptive real-time speed (it slows itself down while a
picture takes less than (16 - cpu-used)/16 of the frame interval); a negative one is that speed,
fixed. The views use a fixed one (``vdx.conference.views``); this is how it was chosen.

    python -m bench.vp8_speed [--size 640x360] [--speeds 8 -6 -8 -10 -12] [--pictures 180]
"""

from __future__ import annotations

import argparse
import time

import av
import numpy as np

from vdx.conference.views import VideoEncoder
from vdx.node.self_test import camlike_frames

FPS = 30
GAP_S = 0.005
WARM = 30  # pictures left out of the PSNR while rate control settles


def measure(width: int, height: int, speed: int, pictures: int) -> tuple[float, float, float]:
    """(CPU ms per picture, kb/s, mean PSNR-Y dB) at ``cpu-used`` = ``speed``."""
    encoder = VideoEncoder("VP8", width, height, FPS)
    encoder.ctx.options = {**encoder.ctx.options, "cpu-used": str(speed)}
    decoder = av.CodecContext.create("vp8", "r")
    cpu, size, psnr = 0.0, 0, []
    for i, frame in enumerate(camlike_frames(width, height, pictures, seed=5)):
        source = frame.to_ndarray(format="yuv420p")[:height].astype(np.float64)
        t0 = time.thread_time()
        packets = encoder.encode(frame, i, keyframe=i == 0)
        cpu += time.thread_time() - t0
        for packet in packets:
            size += packet.size
            for out in decoder.decode(packet):
                luma = out.to_ndarray(format="yuv420p")[:height].astype(np.float64)
                mse = max(float(((luma - source) ** 2).mean()), 1e-9)
                if i >= WARM:
                    psnr.append(10 * np.log10(255**2 / mse))
        time.sleep(GAP_S)
    return 1e3 * cpu / pictures, size * 8 * FPS / pictures / 1e3, float(np.mean(psnr))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="640x360", help="WIDTHxHEIGHT")
    ap.add_argument("--speeds", nargs="+", type=int, default=[8, -6, -8, -10, -12])
    ap.add_argument("--pictures", type=int, default=180)
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    if args.pictures <= WARM:
        ap.error(f"--pictures must be more than {WARM}")
    print(f"VP8 {width}x{height}, {args.pictures} pictures, {GAP_S * 1e3:g} ms asleep after each")
    print("| cpu-used | encode CPU ms | kb/s | PSNR-Y dB |")
    print("|---|---|---|---|")
    for speed in args.speeds:
        ms, kbps, psnr = measure(width, height, speed, args.pictures)
        print(f"| {speed} | {ms:.2f} | {kbps:.0f} | {psnr:.2f} |")


if __name__ == "__main__":
    main()
