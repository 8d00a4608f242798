"""What the capacity benchmark measures: its cells (codec, picture size, room size, views, leg),
the pass criteria of a load point and the bounds of the search."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from vdx.conference import layouts

LAYOUTS = {
    2: "four_mains_zero_pips",
    4: "four_mains_zero_pips",
    9: "nine_mains_zero_pips",
    16: "sixteen_mains_zero_pips",
}
ONE_PLUS_SEVEN = "one_main_seven_pips"
FPS = 30
FPS_OK = 0.9 * FPS  # "~30 fps": at least 27 pictures a second for every participant
LOSS_OK = 0.01
AUDIO_PPS = 50  # 20 ms packets
UTILISATION = 0.9  # the share of all cores the extrapolation aims at
MAX_CALLS = 240  # bounded: RTP ports and the load generator's own CPU
TARGETS = {"shared_360p": 20.0, "own_360p": 8.0, "mcu_over_floor": 1.5}
# The view modes, as the report names them: the default first.
MODES = {"distinct": "a view per distinct picture", "shared": "shared views", "own": "a view per participant"}
# The default with layers: every other caller asks (TMMBR) for no more than the half size needs,
# so the node encodes their views a size down, as for receivers on thin links.
LAYERS = "layers"


@dataclass(frozen=True)
class Cell:
    codec: str  # "VP8" | "H264" | "audio"
    size: str  # "360p" ... or "audio"
    room: int
    mode: str  # "distinct" (the default) | "shared" | "own" (views) | LAYERS
    search: bool
    leg: str = "sip"  # "sip" (sip_load) | "webrtc" (aiortc bots, webrtc_load)
    speaker_layout: bool = False  # Pexip's default 1+7 instead of a grid with a tile for everyone

    @property
    def layout(self) -> str:
        return ONE_PLUS_SEVEN if self.speaker_layout else LAYOUTS[self.room]

    @property
    def key(self) -> str:
        if self.codec == "audio":
            return f"audio-only rooms of {self.room}"
        return (
            f"{self.codec} {self.size} rooms of {self.room} {self.mode}"
            + (" 1+7" if self.speaker_layout else "")
            + (" WebRTC" if self.leg == "webrtc" else "")
        )

    @property
    def audio_only(self) -> bool:
        return self.codec == "audio"

    @property
    def probe_n(self) -> int:
        return self.room if self.room >= 8 or self.room < 4 else 2 * self.room


def views_for(cell: Cell, per_room: list[int]) -> int:
    """The views the node runs for rooms of these sizes: one per room shared; one per
    participant own; distinct, one per participant on stage and one shared by all off it."""
    if cell.mode == "shared":
        return len(per_room)
    if cell.mode == "own":
        return sum(per_room)
    cap = layouts.capacity(cell.layout)  # distinct; with layers too, some a size down
    return sum(min(n, cap) + (n > cap) for n in per_room)


def plan(args: argparse.Namespace) -> list[Cell]:
    if args.quick:
        return [
            Cell("VP8", "180p", 2, "shared", False),
            Cell("VP8", "180p", 2, "own", False),
            Cell("VP8", "180p", 2, "distinct", False),
            Cell("VP8", "180p", 2, LAYERS, False),
            Cell("audio", "audio", 2, "shared", False),
            Cell("VP8", "180p", 2, "shared", False, leg="webrtc"),
        ]
    cells = [Cell(args.codec, "360p", room, mode, True) for room in args.rooms for mode in MODES]
    # Where pictures repeat: in 1+7 everyone past the eighth shares one picture.
    cells += [
        Cell(args.codec, "360p", room, mode, True, speaker_layout=True)
        for room in args.rooms
        if room > layouts.capacity(ONE_PLUS_SEVEN)
        for mode in ("distinct", "own")
    ]
    # What layers cost: half the callers of the default's rooms on the half size.
    cells += [Cell(args.codec, "360p", room, LAYERS, True) for room in (4, 9) if room in args.rooms]
    cells.append(Cell("audio", "audio", 16, "shared", True))
    # What a WebRTC leg (ICE, DTLS-SRTP, aiortc's RTP stack) costs beside a SIP leg: the same room.
    cells.append(Cell("VP8", "360p", 9, "shared", False, leg="webrtc"))
    for codec, size in (("VP8", "360p"), (args.codec, "720p"), ("VP8", "720p")):
        if codec != args.codec or size != "360p":
            cells += [Cell(codec, size, 9, mode, False) for mode in ("shared", "own")]
    if args.only:
        cells = [c for c in cells if any(o.lower() in c.key.lower() for o in args.only)]
    return cells


def layered(cell: Cell, k: int) -> bool:
    """Whether the ``k``-th caller of a room asks for the half size (every other one)."""
    return cell.mode == LAYERS and k % 2 == 1


def half_views(cell: Cell, per_room: list[int]) -> int:
    """The views the node encodes a size down: one per layered caller (in a grid of everyone,
    each caller's view is their own)."""
    return sum(sum(1 for k in range(n) if layered(cell, k)) for n in per_room)
