"""`python -m bench.vp8_speed` on a few small pictures: each speed encodes at the view's bitrate
and decodes to a picture close to its input."""

from __future__ import annotations

from bench.vp8_speed import measure
from vdx.conference.views import bitrate_for


def test_each_speed_keeps_the_bitrate_and_the_picture():
    target = bitrate_for(320, 180) / 1e3
    for speed in (8, -6):
        ms, kbps, psnr = measure(320, 180, speed, 60)
        assert ms > 0
        assert 0.5 * target < kbps < 1.5 * target, (speed, kbps)
        assert psnr > 30, (speed, psnr)
