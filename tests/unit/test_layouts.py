"""Tile geometry of the reference layouts (spec 1.6 viewType)."""

from __future__ import annotations

import pytest

from vdx.conference.layouts import PRESENTATION, WITH_PRESENTATION, capacity, fit_size, tiles
from vdx.conference.policy import LAYOUTS

EXPECTED = {
    "one_main_zero_pips": (1, 0),
    "one_main_seven_pips": (1, 7),
    "one_main_twentyone_pips": (1, 21),
    "two_mains_twentyone_pips": (2, 21),
    "four_mains_zero_pips": (4, 0),
    "five_mains_seven_pips": (5, 7),
    "one_main_thirtythree_pips": (1, 33),
    "nine_mains_zero_pips": (9, 0),
    "sixteen_mains_zero_pips": (16, 0),
    "twentyfive_mains_zero_pips": (25, 0),
    # the presentation's own pictures: alone, and composed above a strip of seven people
    PRESENTATION: (1, 0),
    WITH_PRESENTATION: (1, 7),
}


@pytest.mark.parametrize("name", (*LAYOUTS, PRESENTATION, WITH_PRESENTATION))
@pytest.mark.parametrize("size", [(320, 180), (640, 360), (1280, 720), (1920, 1080)])
def test_every_layout_tiles_without_overlap_inside_the_picture(name, size):
    w, h = size
    ts = tiles(name, w, h)
    mains, pips = EXPECTED[name]
    assert [t.main for t in ts] == [True] * mains + [False] * pips  # mains first
    assert capacity(name) == mains + pips
    for t in ts:
        assert t.width > 0 and t.height > 0
        assert t.x % 2 == 0 and t.y % 2 == 0 and t.width % 2 == 0 and t.height % 2 == 0
        assert t.x >= 0 and t.x + t.width <= w and t.y >= 0 and t.y + t.height <= h
    for i, a in enumerate(ts):
        for b in ts[i + 1 :]:
            overlap_x = a.x < b.x + b.width and b.x < a.x + a.width
            overlap_y = a.y < b.y + b.height and b.y < a.y + a.height
            assert not (overlap_x and overlap_y), (a, b)
    # The main tile is the biggest one (grid tiles differ by even-pixel rounding only).
    assert ts[0].width * ts[0].height >= 0.95 * max(t.width * t.height for t in ts)


def test_grid_layouts_cover_the_whole_picture():
    for name, n in (("four_mains_zero_pips", 2), ("nine_mains_zero_pips", 3), ("one_main_zero_pips", 1)):
        ts = tiles(name, 1280, 720)
        assert sum(t.width * t.height for t in ts) == 1280 * 720
        assert len({t.x for t in ts}) == n and len({t.y for t in ts}) == n


def test_one_main_seven_pips_geometry():
    ts = tiles("one_main_seven_pips", 1280, 720)
    assert (ts[0].x, ts[0].y, ts[0].width, ts[0].height) == (0, 0, 1280, 540)
    assert all(t.y == 540 and t.height == 180 for t in ts[1:])
    assert ts[1].x == 0 and ts[-1].x + ts[-1].width == 1280


def test_bad_layout_or_size_is_refused():
    with pytest.raises(ValueError, match="unknown layout"):
        tiles("seven_mains", 640, 360)
    with pytest.raises(ValueError, match="even"):
        tiles("one_main_zero_pips", 641, 360)


def test_fit_size_caps_keeping_aspect():
    assert fit_size((1280, 720), None) == (1280, 720)
    assert fit_size((1280, 720), (320, 180)) == (320, 180)
    assert fit_size((640, 360), (1920, 1080)) == (640, 360)
    assert fit_size((1920, 1080), (640, 640)) == (640, 360)


def test_view_bitrates_follow_the_picture_size():
    from vdx.conference.views import bitrate_for

    assert bitrate_for(640, 360) == 600_000
    assert 1_300_000 < bitrate_for(1280, 720) < 1_700_000
    assert 2_200_000 < bitrate_for(1920, 1080) < 2_800_000
    assert bitrate_for(16, 16) == 150_000
