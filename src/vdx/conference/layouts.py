"""Tile geometry of the reference layouts (Pexip names, spec 1.6 ``viewType``).

Pure: a layout name and an output size give the tiles, in priority order: mains first (tile 0 is
the main slot, where the active speaker goes), then pips. Edges are rounded to even pixels so
tiles map onto whole yuv420p chroma samples and never overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

# A tile in fractions of the output: (x0, y0, x1, y1).
_Rect = tuple[float, float, float, float]


@dataclass(frozen=True)
class Tile:
    x: int
    y: int
    width: int
    height: int
    main: bool


def _grid(
    cols: int, rows: int, x0: float = 0.0, y0: float = 0.0, x1: float = 1.0, y1: float = 1.0
) -> list[_Rect]:
    w = (x1 - x0) / cols
    h = (y1 - y0) / rows
    return [
        (x0 + c * w, y0 + r * h, x0 + (c + 1) * w, y0 + (r + 1) * h) for r in range(rows) for c in range(cols)
    ]


# (mains, pips) of every layout, in fractions.
_SPECS: dict[str, tuple[list[_Rect], list[_Rect]]] = {
    "one_main_zero_pips": ([(0, 0, 1, 1)], []),
    "four_mains_zero_pips": (_grid(2, 2), []),
    "nine_mains_zero_pips": (_grid(3, 3), []),
    "sixteen_mains_zero_pips": (_grid(4, 4), []),
    "twentyfive_mains_zero_pips": (_grid(5, 5), []),
    # The speaker above a strip of seven pips (Pexip's default 1+7).
    "one_main_seven_pips": ([(0, 0, 1, 0.75)], _grid(7, 1, 0, 0.75, 1, 1)),
    "one_main_twentyone_pips": ([(0, 0, 1, 4 / 7)], _grid(7, 3, 0, 4 / 7, 1, 1)),
    "two_mains_twentyone_pips": (_grid(2, 1, 0, 0, 1, 4 / 7), _grid(7, 3, 0, 4 / 7, 1, 1)),
    "five_mains_seven_pips": (
        _grid(2, 1, 0, 0, 1, 0.375) + _grid(3, 1, 0, 0.375, 1, 0.75),
        _grid(7, 1, 0, 0.75, 1, 1),
    ),
    "one_main_thirtythree_pips": ([(0, 0, 1, 0.625)], _grid(11, 3, 0, 0.625, 1, 1)),
}

# Pictures of a presentation, never a room's chosen layout: the presentation alone (what browsers
# get as their second video), and the composed fallback for receivers of one video (SIP), the
# presentation in the main area above a strip of seven people.
PRESENTATION = "presentation"
WITH_PRESENTATION = "presentation_seven_pips"
_SPECS[PRESENTATION] = ([(0, 0, 1, 1)], [])
_SPECS[WITH_PRESENTATION] = ([(0, 0, 1, 0.75)], _grid(7, 1, 0, 0.75, 1, 1))


def _spec(name: str) -> tuple[list[_Rect], list[_Rect]]:
    """(mains, pips) of a layout, in fractions."""
    spec = _SPECS.get(name)
    if spec is None:
        raise ValueError(f"unknown layout '{name}'")
    return spec


def _even(v: float) -> int:
    return round(v / 2.0) * 2


def tiles(name: str, width: int, height: int) -> list[Tile]:
    """The tiles of layout ``name`` in a ``width`` x ``height`` picture (both even)."""
    if width % 2 or height % 2 or width <= 0 or height <= 0:
        raise ValueError(f"output size {width}x{height} must be positive and even")
    mains, pips = _spec(name)
    out: list[Tile] = []
    for rects, main in ((mains, True), (pips, False)):
        for x0, y0, x1, y1 in rects:
            px0, py0 = _even(x0 * width), _even(y0 * height)
            px1, py1 = _even(x1 * width), _even(y1 * height)
            out.append(Tile(px0, py0, px1 - px0, py1 - py0, main))
    return out


def capacity(name: str) -> int:
    """How many participants a layout shows."""
    mains, pips = _spec(name)
    return len(mains) + len(pips)


def people(name: str) -> int:
    """How many participants' cameras a layout shows (a presentation layout's first tile is the
    presentation)."""
    shown = capacity(name)
    if name in (PRESENTATION, WITH_PRESENTATION):
        shown -= 1
    return shown


def mains(name: str) -> int:
    """How many main tiles a layout has."""
    return len(_spec(name)[0])


def fit_size(max_size: tuple[int, int], cap: tuple[int, int] | None) -> tuple[int, int]:
    """The output size: the room's ``vmrQuality`` size, shrunk (aspect kept, even) to fit a
    node-wide cap such as a test's 320x180."""
    w, h = max_size
    if cap is None:
        return w, h
    scale = min(1.0, cap[0] / w, cap[1] / h)
    return max(2, _even(w * scale)), max(2, _even(h * scale))
