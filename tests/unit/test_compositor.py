"""Composition into yuv420p and name overlays, on real frames (architecture.md 3)."""

from __future__ import annotations

import av
from hypothesis import given, settings
from hypothesis import strategies as st

from vdx.conference.compositor import (
    BLACK_Y,
    GREY_Y,
    Canvases,
    Compositor,
    ScaleCache,
    TileSource,
    mean_yuv,
    solid_frame,
)
from vdx.conference.layouts import PRESENTATION, WITH_PRESENTATION, people, tiles

RED, GREEN = (81, 90, 240), (145, 54, 34)


def test_frames_are_scaled_into_their_tiles():
    ts = tiles("four_mains_zero_pips", 320, 180)
    c = Compositor(320, 180)
    big = solid_frame(1280, 720, RED)
    rgb = av.VideoFrame.from_ndarray(
        __import__("numpy").full((90, 160, 3), (0, 200, 0), dtype="uint8"), format="rgb24"
    )
    out = c.compose(
        ts, [TileSource(big, "A"), TileSource(rgb, "B"), TileSource(None, "C"), None], overlay=False
    )
    assert (out.width, out.height, out.format.name) == (320, 180, "yuv420p")
    y, u, v = mean_yuv(out, ts[0].x, ts[0].y, ts[0].width, ts[0].height)
    assert abs(y - RED[0]) < 2 and abs(u - RED[1]) < 2 and abs(v - RED[2]) < 2
    y, u, v = mean_yuv(out, ts[1].x, ts[1].y, ts[1].width, ts[1].height)
    assert y > 100 and u < 100 and v < 100  # green, converted from RGB
    assert mean_yuv(out, ts[2].x, ts[2].y, ts[2].width, ts[2].height)[0] == GREY_Y  # no video yet
    assert mean_yuv(out, ts[3].x, ts[3].y, ts[3].width, ts[3].height) == (BLACK_Y, 128, 128)  # empty


def test_names_are_drawn_only_with_overlay_text():
    ts = tiles("one_main_zero_pips", 640, 360)
    c = Compositor(640, 360)
    src = [TileSource(solid_frame(640, 360, GREEN), "Dr. Ærø 42")]
    plain = c.compose(ts, src, overlay=False).to_ndarray()[:360]  # the luma rows
    named = c.compose(ts, src, overlay=True).to_ndarray()[:360]
    # The label sits at the bottom left: white letters on a dark box, the rest untouched.
    diff = (plain != named).nonzero()
    assert len(diff[0]) > 0
    assert diff[0].min() > 300 and diff[1].max() < 200
    assert (named[330:360, 0:200] == 235).sum() > 50
    assert (named[:300] == plain[:300]).all()


def test_a_long_name_is_clipped_to_its_tile():
    ts = tiles("sixteen_mains_zero_pips", 320, 180)
    c = Compositor(320, 180)
    srcs = [TileSource(solid_frame(80, 44, RED), "A very long display name indeed") for _ in ts]
    out = c.compose(ts, srcs, overlay=True).to_ndarray()
    assert out.shape == (270, 320)


def test_two_views_compose_the_same_frames_in_two_threads():
    # Two views (e.g. VP8 and H.264) of one room scale the same decoded frames at the same time.
    import threading

    sources = [TileSource(solid_frame(1280, 720, RED), "A"), TileSource(solid_frame(640, 360, GREEN), "B")]
    errors: list[BaseException] = []

    def work(width: int, height: int) -> None:
        try:
            c = Compositor(width, height)
            ts = tiles("four_mains_zero_pips", width, height)
            for _ in range(150):
                out = c.compose(ts, sources, overlay=True)
            _y, u, v = mean_yuv(out, ts[0].x + 4, ts[0].y + 4, ts[0].width // 2, ts[0].height // 2)
            assert abs(u - RED[1]) < 3 and abs(v - RED[2]) < 3
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=size) for size in ((320, 180), (640, 360))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors


def test_views_sharing_a_scale_cache_scale_each_picture_once_and_never_show_a_stale_one():

    ts = tiles("four_mains_zero_pips", 320, 180)
    cache = ScaleCache()
    views = [Compositor(320, 180, cache) for _ in range(3)]
    red, green = solid_frame(640, 360, RED), solid_frame(640, 360, GREEN)
    outs = [
        v.compose(ts, [TileSource(red, "A", "a"), TileSource(green, "B", "b")], overlay=False) for v in views
    ]
    assert (cache.misses, cache.hits) == (2, 4)  # two pictures scaled once each, reused twice each
    plain = Compositor(320, 180).compose(ts, [TileSource(red, "A"), TileSource(green, "B")], overlay=False)
    for out in outs:
        assert (out.to_ndarray() == plain.to_ndarray()).all()
    # A's next picture (now green) is scaled anew, not taken from the cache.
    out = views[0].compose(ts, [TileSource(solid_frame(640, 360, GREEN), "A", "a")], overlay=False)
    y, u, v = mean_yuv(out, ts[0].x, ts[0].y, ts[0].width, ts[0].height)
    assert abs(y - GREEN[0]) < 2 and abs(u - GREEN[1]) < 2 and abs(v - GREEN[2]) < 2


def test_the_composed_presentation_fills_the_main_area_above_the_people():
    """What a receiver of one video (SIP) sees while someone presents: the presentation large,
    the people in a strip of small tiles below it (``layouts.WITH_PRESENTATION``)."""
    blue = (41, 240, 110)
    ts = tiles(WITH_PRESENTATION, 640, 360)
    assert people(WITH_PRESENTATION) == 7 and people(PRESENTATION) == 0
    c = Compositor(640, 360)
    screen = solid_frame(1280, 720, blue)
    out = c.compose(
        ts,
        [
            TileSource(screen, "", "presentation"),
            TileSource(solid_frame(160, 90, RED), "A"),
            TileSource(solid_frame(160, 90, GREEN), "B"),
        ],
        overlay=False,
    )
    main = ts[0]
    assert (main.x, main.y, main.width) == (0, 0, 640) and main.height >= 0.7 * 360
    got = mean_yuv(out, main.x, main.y, main.width, main.height)
    assert all(abs(g - w) < 2 for g, w in zip(got, blue, strict=True))
    for tile, want in zip(ts[1:3], (RED, GREEN), strict=True):
        assert tile.height < main.height / 2
        got = mean_yuv(out, tile.x, tile.y, tile.width, tile.height)
        assert all(abs(g - w) < 2 for g, w in zip(got, want, strict=True))


def test_names_are_drawn_once_per_picture_and_kept_apart_from_views_without_names():
    """A name is drawn into the scaled picture the views share, so views with names reuse it,
    a view without names gets its own copy, and a renamed participant is drawn anew."""

    ts = tiles("four_mains_zero_pips", 640, 360)
    cache = ScaleCache()
    green = solid_frame(640, 360, GREEN)
    named_views = [Compositor(640, 360, cache) for _ in range(2)]
    named = [v.compose(ts, [TileSource(green, "Anna", "a")], overlay=True).to_ndarray() for v in named_views]
    plain = Compositor(640, 360, cache).compose(ts, [TileSource(green, "Anna", "a")], overlay=False)
    assert (cache.misses, cache.hits) == (2, 1)  # named once and reused; plain scaled on its own
    tile = ts[0]
    label_rows = slice(tile.y + tile.height - 30, tile.y + tile.height)
    assert (named[0][label_rows, tile.x : tile.x + 100] == 235).sum() > 30
    assert (named[0] == named[1]).all()
    assert (plain.to_ndarray()[label_rows, tile.x : tile.x + 100] == 235).sum() == 0
    renamed = named_views[0].compose(ts, [TileSource(green, "Bo", "a")], overlay=True).to_ndarray()
    assert cache.misses == 3 and not (renamed == named[0]).all()


def test_the_canvas_drawn_again_keeps_no_trace_of_an_earlier_picture():
    """The compositor draws into one canvas: a tile that loses its video turns grey with no
    colour left, and a tile no longer shown turns black."""
    ts = tiles("four_mains_zero_pips", 320, 180)
    c = Compositor(320, 180)
    red, green = solid_frame(320, 180, RED), solid_frame(320, 180, GREEN)
    first = c.compose(ts, [TileSource(red, "A"), TileSource(green, "B")], overlay=False)
    assert abs(mean_yuv(first, ts[1].x, ts[1].y, ts[1].width, ts[1].height)[1] - GREEN[1]) < 2
    out = c.compose(ts, [TileSource(None, "A"), TileSource(green, "B")], overlay=False)  # same tiles
    assert mean_yuv(out, ts[0].x, ts[0].y, ts[0].width, ts[0].height) == (GREY_Y, 128, 128)
    out = c.compose(ts, [TileSource(red, "A"), None], overlay=False)
    assert mean_yuv(out, ts[1].x, ts[1].y, ts[1].width, ts[1].height) == (BLACK_Y, 128, 128)


def _without(pids: list[str], frames: dict[str, av.VideoFrame], viewer: str) -> list[TileSource | None]:
    return [TileSource(frames[p], p.upper(), p) for p in pids if p != viewer]


def test_views_sharing_a_canvas_repaint_only_the_tiles_that_differ():
    """Nine pictures without their viewer, drawn one after another on one canvas: each is the
    picture a canvas of its own draws, and after the first only the tile or two that differ are
    copied (a picture newly decoded is copied again)."""
    import numpy as np

    canvases = Canvases()
    ts = tiles("nine_mains_zero_pips", 320, 180)
    pids = [f"p{i}" for i in range(9)]
    frames = {p: solid_frame(64, 36, (40 + 20 * i, 90 + 5 * i, 200 - 10 * i)) for i, p in enumerate(pids)}
    canvas = canvases.compositor(320, 180)
    assert canvases.compositor(320, 180) is canvas  # one per thread and size
    for viewer in pids:
        before = canvas.painted
        shared = canvas.compose(ts, _without(pids, frames, viewer), overlay=True).to_ndarray()
        alone = Compositor(320, 180).compose(ts, _without(pids, frames, viewer), overlay=True).to_ndarray()
        assert np.array_equal(shared, alone), viewer
        assert canvas.painted - before == (8 if viewer == "p0" else 1)
    frames["p4"] = solid_frame(64, 36, RED)  # p4's next picture
    before = canvas.painted
    shared = canvas.compose(ts, _without(pids, frames, "p8"), overlay=True).to_ndarray()
    assert np.array_equal(
        shared, Compositor(320, 180).compose(ts, _without(pids, frames, "p8"), True).to_ndarray()
    )
    assert canvas.painted - before == 1


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["four_mains_zero_pips", "one_main_seven_pips", "nine_mains_zero_pips"]),
            st.lists(st.one_of(st.none(), st.integers(0, 5)), min_size=0, max_size=9),
            st.booleans(),
            st.integers(0, 3),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_a_shared_canvas_never_shows_what_a_canvas_of_its_own_would_not(steps):
    """Any sequence of layouts, stages (sources with video, without video yet, empty tiles),
    names on or off and new pictures: the shared canvas draws what a fresh one draws."""
    import numpy as np

    canvases = Canvases()
    pictures = [solid_frame(32, 18, (30 + 30 * i, 100 + 10 * i, 160 - 10 * i)) for i in range(6)]
    for layout, stage, overlay, renew in steps:
        pictures[renew] = solid_frame(32, 18, (30 + 30 * renew, 90, 170))  # a participant's next picture
        ts = tiles(layout, 160, 90)
        sources = [
            None if s is None else TileSource(pictures[s] if s < 4 else None, f"P{s}", f"p{s}") for s in stage
        ]
        shared = canvases.compositor(160, 90).compose(ts, sources, overlay).to_ndarray()
        alone = Compositor(160, 90).compose(ts, sources, overlay).to_ndarray()
        assert np.array_equal(shared, alone)


def test_a_shared_canvas_redraws_a_grey_tile_for_someone_else():
    import numpy as np

    ts = tiles("four_mains_zero_pips", 320, 180)
    canvas = Canvases().compositor(320, 180)
    for name in ("ANNA", "BO", "ANNA"):
        shared = canvas.compose(ts, [TileSource(None, name, name.lower())], overlay=True).to_ndarray()
        alone = Compositor(320, 180).compose(ts, [TileSource(None, name, name.lower())], True).to_ndarray()
        assert np.array_equal(shared, alone), name


def test_repaint_paints_every_tile_again():
    ts = tiles("four_mains_zero_pips", 320, 180)
    c = Compositor(320, 180, ScaleCache())
    sources = [TileSource(solid_frame(64, 36, RED), "A", "a"), TileSource(None, "B", "b")]
    c.compose(ts, sources, overlay=True)
    painted = c.painted
    c.compose(ts, sources, overlay=True)
    assert c.painted == painted
    c.repaint()
    c.compose(ts, sources, overlay=True)
    assert c.painted == painted + 2
