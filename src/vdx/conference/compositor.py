"""Compose decoded frames into one yuv420p picture for a view; draw names on tiles.

Each tile's source frame is scaled by swscale (PyAV ``reformat``: area averaging, in the calling
thread) straight to the tile size and copied into the Y, U and V planes (the scaling is the
cost, the copies are not). A conference's views share a
:class:`ScaleCache`, so each decoded picture is scaled once per tile size however many views show
it (a view per participant would otherwise scale every picture once per participant) and not
again when a view composes before the next picture comes.
Names are drawn with a built-in 5x7 bitmap font, so no font files are needed, into the scaled
picture before it is cached: once per picture and tile size, not once per view, and a view's
compose is then three copies per tile.
A canvas remembers what each of its tiles shows and repaints only those that differ: the views
of a conference share a canvas per thread and size (:class:`Canvases`), and a picture without
one viewer differs from the next viewer's in a tile or two (and any picture newly decoded).
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import av
import av.video.reformatter
import numpy as np
import numpy.typing as npt

from vdx.conference.layouts import Tile
from vdx.legs.media_cpu import MEDIA_CPU, VIDEO_COMPOSE, VIDEO_SCALE, clock

# swscale's area averaging: tiles are mostly smaller than the picture, and for shrinking it is at
# least as sharp as bilinear and cheaper. One thread per scale: the views already compose in the
# node's thread pool, and PyAV's default hands a tile's few rows to a pool of its own and back.
SCALING = "AREA"

# Background of empty tiles and of the canvas (BT.601 limited range).
BLACK_Y, GREY_Y, CHROMA_0 = 16, 40, 128

# Classic 5x7 font: five column bytes per glyph, bit 0 at the top.
_FONT: dict[str, tuple[int, int, int, int, int]] = {
    " ": (0, 0, 0, 0, 0),
    "0": (0x3E, 0x51, 0x49, 0x45, 0x3E),
    "1": (0x00, 0x42, 0x7F, 0x40, 0x00),
    "2": (0x42, 0x61, 0x51, 0x49, 0x46),
    "3": (0x21, 0x41, 0x45, 0x4B, 0x31),
    "4": (0x18, 0x14, 0x12, 0x7F, 0x10),
    "5": (0x27, 0x45, 0x45, 0x45, 0x39),
    "6": (0x3C, 0x4A, 0x49, 0x49, 0x30),
    "7": (0x01, 0x71, 0x09, 0x05, 0x03),
    "8": (0x36, 0x49, 0x49, 0x49, 0x36),
    "9": (0x06, 0x49, 0x49, 0x29, 0x1E),
    "A": (0x7E, 0x11, 0x11, 0x11, 0x7E),
    "B": (0x7F, 0x49, 0x49, 0x49, 0x36),
    "C": (0x3E, 0x41, 0x41, 0x41, 0x22),
    "D": (0x7F, 0x41, 0x41, 0x22, 0x1C),
    "E": (0x7F, 0x49, 0x49, 0x49, 0x41),
    "F": (0x7F, 0x09, 0x09, 0x09, 0x01),
    "G": (0x3E, 0x41, 0x49, 0x49, 0x7A),
    "H": (0x7F, 0x08, 0x08, 0x08, 0x7F),
    "I": (0x00, 0x41, 0x7F, 0x41, 0x00),
    "J": (0x20, 0x40, 0x41, 0x3F, 0x01),
    "K": (0x7F, 0x08, 0x14, 0x22, 0x41),
    "L": (0x7F, 0x40, 0x40, 0x40, 0x40),
    "M": (0x7F, 0x02, 0x0C, 0x02, 0x7F),
    "N": (0x7F, 0x04, 0x08, 0x10, 0x7F),
    "O": (0x3E, 0x41, 0x41, 0x41, 0x3E),
    "P": (0x7F, 0x09, 0x09, 0x09, 0x06),
    "Q": (0x3E, 0x41, 0x51, 0x21, 0x5E),
    "R": (0x7F, 0x09, 0x19, 0x29, 0x46),
    "S": (0x46, 0x49, 0x49, 0x49, 0x31),
    "T": (0x01, 0x01, 0x7F, 0x01, 0x01),
    "U": (0x3F, 0x40, 0x40, 0x40, 0x3F),
    "V": (0x1F, 0x20, 0x40, 0x20, 0x1F),
    "W": (0x3F, 0x40, 0x38, 0x40, 0x3F),
    "X": (0x63, 0x14, 0x08, 0x14, 0x63),
    "Y": (0x07, 0x08, 0x70, 0x08, 0x07),
    "Z": (0x61, 0x51, 0x49, 0x45, 0x43),
    "-": (0x08, 0x08, 0x08, 0x08, 0x08),
    ".": (0x00, 0x60, 0x60, 0x00, 0x00),
    "_": (0x40, 0x40, 0x40, 0x40, 0x40),
    "@": (0x32, 0x49, 0x79, 0x41, 0x3E),
    "?": (0x02, 0x01, 0x51, 0x09, 0x06),
}
_FOLD = {"Æ": "AE", "Ø": "O", "Å": "A", "æ": "AE", "ø": "O", "å": "A", "ß": "SS"}


def _fold(text: str) -> str:
    """Upper-case ASCII for the bitmap font (Danish letters folded, unknown ones as ``?``)."""
    out: list[str] = []
    for ch in text:
        ch = _FOLD.get(ch, ch)
        ch = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode() or "?"
        out.extend(c if c in _FONT else "?" for c in ch.upper())
    return "".join(out)


@lru_cache(maxsize=512)
def _glyph_mask(text: str, scale: int) -> npt.NDArray[np.bool_]:
    """The name's pixels (cached: the same names are drawn every frame; callers only read it)."""
    chars = _fold(text)
    mask = np.zeros((7, max(len(chars) * 6 - 1, 1)), dtype=bool)
    for i, ch in enumerate(chars):
        for col, bits in enumerate(_FONT[ch]):
            for row in range(7):
                if bits >> row & 1:
                    mask[row, i * 6 + col] = True
    return np.kron(mask, np.ones((scale, scale), dtype=bool)).astype(bool)


@dataclass(frozen=True)
class TileSource:
    """What goes into one tile: the latest decoded frame (None = no video yet), a name, and whose
    picture it is (``key``, the participant: scaled pictures are cached under it; None = not
    cached)."""

    frame: av.VideoFrame | None
    name: str = ""
    key: str | None = None


Planes = tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint8]]


class ScaleCache:
    """The latest picture of each source scaled to each tile size, shared by the views of a
    conference (thread-safe; two views missing at once both scale, one result is kept)."""

    MAX_ENTRIES = 256  # sources x tile sizes of one room, with room to spare

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, int, int, str], tuple[av.VideoFrame, Planes]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: str, frame: av.VideoFrame, w: int, h: int, label: str) -> Planes | None:
        """``frame`` scaled to ``w`` x ``h`` with ``label`` drawn on it ("": no name)."""
        with self._lock:
            entry = self._entries.get((key, w, h, label))
            if entry is not None and entry[0] is frame:
                self.hits += 1
                return entry[1]
            self.misses += 1
            return None

    def put(self, key: str, frame: av.VideoFrame, w: int, h: int, label: str, planes: Planes) -> None:
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()  # participants who left: start again
            self._entries[key, w, h, label] = (frame, planes)


class Compositor:
    """Composes into a reusable canvas of one output size.

    Scaling uses this compositor's own swscale contexts (one per tile size), never the source frame's
    ``reformat()``: that caches one context on the frame, and two views composing the same
    participant's frame in two threads would share it (a crash, seen with a VP8 and an H.264
    view of one room)."""

    def __init__(self, width: int, height: int, cache: ScaleCache | None = None) -> None:
        self.width = width
        self.height = height
        self._cache = cache
        self._scalers: dict[tuple[int, int], av.video.reformatter.VideoReformatter] = {}
        self._scaling = 0.0
        # The canvas, drawn again by each call, and which tiles its last call drew: while they
        # stay the same, every pixel outside them is still background and needs no fill.
        self._frame = av.VideoFrame(width, height, "yuv420p")
        self._y = _plane_array(self._frame.planes[0], width, height)
        self._u = _plane_array(self._frame.planes[1], width // 2, height // 2)
        self._v = _plane_array(self._frame.planes[2], width // 2, height // 2)
        self._drawn: tuple[tuple[int, int, int, int], ...] | None = None
        # What each drawn tile shows: the cached planes copied there (held, so compared by
        # identity), or "grey:<name>" for a participant without video.
        self._shown: dict[tuple[int, int, int, int], Planes | str] = {}
        self.painted = 0  # tiles copied into the canvas (the rest were there already)

    def repaint(self) -> None:
        """Paint every tile at the next call, as on a new canvas (for measuring what painting
        costs: the same tiles again are otherwise left as they are)."""
        self._shown.clear()

    def compose(
        self, tiles: Sequence[Tile], sources: Sequence[TileSource | None], overlay: bool
    ) -> av.VideoFrame:
        """A yuv420p frame with ``sources[i]`` scaled into ``tiles[i]``. Tiles without a source
        stay black; a participant without video yet is a grey tile with their name.

        The frame is this compositor's canvas, valid until its next call (an encoder copies
        it): a new frame and a fill of the background each time cost more than the tiles."""
        started = clock()
        self._scaling = 0.0  # CPU of the tiles scaled in this call, counted apart
        drawn = tuple(
            (t.x, t.y, t.width, t.height) for t, src in zip(tiles, sources, strict=False) if src is not None
        )
        if drawn != self._drawn:
            self._y.fill(BLACK_Y)
            self._u.fill(CHROMA_0)
            self._v.fill(CHROMA_0)
            self._drawn = drawn
            self._shown.clear()
        for tile, src in zip(tiles, sources, strict=False):
            if src is not None:
                self._paint(tile, src, src.name if overlay else "")
        MEDIA_CPU.add(VIDEO_COMPOSE, clock() - started - self._scaling)
        return self._frame

    def _paint(self, tile: Tile, src: TileSource, label: str) -> None:
        x, y, w, h = rect = tile.x, tile.y, tile.width, tile.height
        shown = self._shown.get(rect)
        if src.frame is None:
            grey = f"grey:{label}"
            if isinstance(shown, str) and shown == grey:
                return
            self._shown[rect] = grey
            self.painted += 1
            ys = self._y[y : y + h, x : x + w]
            us = self._u[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2]
            vs = self._v[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2]
            ys[...] = GREY_Y
            us[...] = CHROMA_0  # the canvas may hold the colours of a picture drawn here before
            vs[...] = CHROMA_0
            if label:
                _draw_label((ys, us, vs), label)
            return
        cache = self._cache if src.key is not None else None
        planes = (
            cache.get(src.key, src.frame, w, h, label) if cache is not None and src.key is not None else None
        )
        if planes is None:
            scaling = clock()
            scaler = self._scalers.get((w, h))
            if scaler is None:
                scaler = self._scalers[w, h] = av.video.reformatter.VideoReformatter()
            # A new frame each call: the plane views below stay valid while the cache holds them.
            scaled = scaler.reformat(
                src.frame, width=w, height=h, format="yuv420p", interpolation=SCALING, threads=1
            )
            planes = (
                _plane_array(scaled.planes[0], w, h),
                _plane_array(scaled.planes[1], w // 2, h // 2),
                _plane_array(scaled.planes[2], w // 2, h // 2),
            )
            if label:
                _draw_label(planes, label)
            if cache is not None and src.key is not None:
                cache.put(src.key, src.frame, w, h, label, planes)
            spent = clock() - scaling
            self._scaling += spent
            MEDIA_CPU.add(VIDEO_SCALE, spent)
        if shown is planes:
            return  # the same scaled picture is there already
        self._shown[rect] = planes
        self.painted += 1
        ys, us, vs = planes
        self._y[y : y + h, x : x + w] = ys
        self._u[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2] = us
        self._v[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2] = vs


class Canvases:
    """A conference's canvases: a compositor per thread and picture size, shared by its views of
    that size. A thread composes and encodes one view at a time, so no canvas is drawn by two
    threads at once, and a view's picture is encoded before the next view draws on the canvas."""

    def __init__(self) -> None:
        self.scale_cache = ScaleCache()  # each picture scaled once per tile size for all views
        self._lock = threading.Lock()
        self._compositors: dict[tuple[int, int, int], Compositor] = {}

    def compositor(self, width: int, height: int) -> Compositor:
        """The calling thread's canvas of this size."""
        key = (threading.get_ident(), width, height)
        with self._lock:
            compositor = self._compositors.get(key)
            if compositor is None:
                compositor = self._compositors[key] = Compositor(width, height, self.scale_cache)
            return compositor


def _draw_label(planes: Planes, name: str) -> None:
    """A dark box at the bottom-left of one tile's planes (Y full size, U and V half), white
    letters in it."""
    y_plane, u_plane, v_plane = planes
    height, width = y_plane.shape
    scale = 2 if height >= 160 else 1
    mask = _glyph_mask(name, scale)
    pad = 2 * scale
    mh, mw = mask.shape
    max_w = width - 2 * pad
    if max_w <= 0 or mh + 2 * pad > height:
        return
    mask = mask[:, :max_w]
    mh, mw = mask.shape
    by = height - mh - 2 * pad
    by -= by % 2  # chroma rows cover two luma rows
    bw, bh = min(mw + 2 * pad, width), min(mh + 2 * pad + 1, height - by)
    bw += bw % 2
    bh -= bh % 2
    y_plane[by : by + bh, :bw] = BLACK_Y
    u_plane[by // 2 : (by + bh) // 2, : bw // 2] = CHROMA_0
    v_plane[by // 2 : (by + bh) // 2, : bw // 2] = CHROMA_0
    region = y_plane[by + pad : by + pad + mh, pad : pad + mw]
    region[mask[: region.shape[0], : region.shape[1]]] = 235


def copy_picture(frame: av.VideoFrame) -> av.VideoFrame:
    """A yuv420p picture of one's own, for a caller that keeps a composed picture past the
    compositor's next call."""
    return av.VideoFrame.from_ndarray(frame.to_ndarray(), format="yuv420p")


def _plane_array(plane: av.video.plane.VideoPlane, width: int, height: int) -> npt.NDArray[np.uint8]:
    """A plane's visible pixels (planes are padded to ``line_size``)."""
    buf = np.frombuffer(memoryview(plane), dtype=np.uint8)  # type: ignore[arg-type]
    return buf.reshape(height, plane.line_size)[:, :width]


def _copy_into_plane(plane: av.video.plane.VideoPlane, data: npt.NDArray[np.uint8]) -> None:
    height, width = data.shape
    if plane.line_size == width:
        plane.update(data.tobytes())
        return
    padded = np.zeros((height, plane.line_size), dtype=np.uint8)
    padded[:, :width] = data
    plane.update(padded.tobytes())


def solid_frame(width: int, height: int, yuv: tuple[int, int, int]) -> av.VideoFrame:
    """A yuv420p frame of one colour (tests and the test bots)."""
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane, value, (w, h) in zip(
        frame.planes,
        yuv,
        ((width, height), (width // 2, height // 2), (width // 2, height // 2)),
        strict=True,
    ):
        _copy_into_plane(plane, np.full((h, w), value, dtype=np.uint8))
    return frame


def mean_yuv(frame: av.VideoFrame, x: int, y: int, w: int, h: int) -> tuple[float, float, float]:
    """Mean Y, U, V over a rectangle of a frame (for checks of what a tile shows)."""
    f = frame if frame.format.name == "yuv420p" else frame.reformat(format="yuv420p")
    ys = _plane_array(f.planes[0], f.width, f.height)[y : y + h, x : x + w]
    us = _plane_array(f.planes[1], f.width // 2, f.height // 2)[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2]
    vs = _plane_array(f.planes[2], f.width // 2, f.height // 2)[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2]
    return float(ys.mean()), float(us.mean()), float(vs.mean())
