"""MCU capacity benchmark (not a test): how many SIP participants a node carries per core.

Real nodes (``vdx serve`` with the default of a view per distinct picture, nobody seeing themselves;
with one shared picture; with a view per participant) host rooms
booked through the booking API; ``sip_load`` places N SIP calls into rooms of the planned sizes,
each replaying a clip encoded once, and counts what comes back. A load point passes when every
participant receives the frame rate and loss of ``capacity_plan`` in every window; the node's CPU
gives participants and HD units per core. The search (``capacity_search``) fits the time budget;
the codec floor (``floor``) is measured in this process right before each cell's rooms, so MCU /
floor compares the node's CPU with the pure PyAV cost of the work it did on the machine as it was. Figures: BENCHMARKS.md.

    python -m bench.capacity                                  # full run, rewrites BENCHMARKS.md
    python -m bench.capacity --quick --json /tmp/c.json       # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import report
from bench.capacity_measure import Rooms, measure
from bench.capacity_plan import FPS, LAYERS, Cell, plan
from bench.capacity_report import assemble, publish, rederive
from bench.capacity_search import Budget, search
from bench.clips import SIZES, Clip, make_clip, opus_packets
from bench.floor import FloorCosts, audio_floor, floor_costs, half_size_floor, video_costs
from bench.served_node import Served, log
from vdx.conference.layouts import capacity
from vdx.legs.webrtc import restrict_host_addresses

# Each view mode has a node of its own, on RTP ports apart from the others'; its VDX_MEDIA_VIEWS.
NODE_PORTS = (
    ("shared", "30000-31999"),
    ("own", "32000-33999"),
    ("distinct", "34000-35999"),
    (LAYERS, "36000-37999"),
)
VIEWS_SETTING = {"shared": "shared", "own": "personal", "distinct": "distinct", LAYERS: "distinct"}


def make_clips(cells: list[Cell]) -> dict[tuple[str, str], Clip]:
    """One clip per (codec, size) some cell sends, encoded once before any room runs."""
    clips: dict[tuple[str, str], Clip] = {}
    video = [c for c in cells if not c.audio_only]
    for codec in sorted({c.codec for c in video}):
        for size in sorted({c.size for c in video}):
            if any(c.codec == codec and c.size == size for c in cells):
                w, h = SIZES[size]
                clips[codec, size] = make_clip(codec, w, h, FPS)
                log(
                    f"clip {codec} {size}: {len(clips[codec, size].video)} pictures, {clips[codec, size].kbps:.0f} kbps"
                )
    return clips


def warm_floor(cells: list[Cell], clips: dict[tuple[str, str], Clip]) -> None:
    """A process's first measurement runs cold (libraries loading, allocator, caches): once
    untimed, before any cell's floor."""
    video = next((c for c in cells if not c.audio_only), None)
    if video is not None:
        video_costs(clips[video.codec, video.size], min(video.room, capacity(video.layout)), video.layout)


def measure_floor(
    cell: Cell, clips: dict[tuple[str, str], Clip], speech: list[bytes]
) -> tuple[FloorCosts, FloorCosts | None]:
    """The floor of one cell and, with layers, what its views a size down add to it, measured
    right before the cell's rooms while no room runs (a running node would take the CPU the floor
    is measured with): this machine's speed drifts by a fifth over minutes, and a floor measured
    at the start of a run compared the node with another machine state."""
    if cell.audio_only:
        return audio_floor(speech, cell.room), None
    clip, shown = clips[cell.codec, cell.size], min(cell.room, capacity(cell.layout))
    half = half_size_floor(clip, shown, cell.layout) if cell.mode == LAYERS else None
    return floor_costs(clip, shown, cell.layout), half


def prepare_nodes(cells: list[Cell], tmp: Path, quick: bool) -> dict[str, Served]:
    """A node per view mode the cells use (not started), the second a copy of the first's data."""
    nodes: dict[str, Served] = {}
    for mode, ports in NODE_PORTS:
        if not any(c.mode == mode for c in cells):
            continue
        data_dir = tmp / mode
        data_dir.mkdir()
        env = {
            "VDX_MEDIA_FPS": str(FPS),
            "VDX_MEDIA_VIEWS": VIEWS_SETTING[mode],
            "VDX_MEDIA_SIZE_CAP": "320x180" if quick else "",
            "VDX_RTP_PORTS": ports,
            # The load generator places calls faster than a real node's admission allows and
            # more than its capacity: both are knobs, not the MCU's cost.
            "VDX_SIP_MAX_INVITES_PER_SECOND": "1000",
            "VDX_NODE_CAPACITY": "100000",
            # Layers follow each receiver's feedback; the load's callers give only TMMBR.
            "VDX_MEDIA_ADAPT": "true" if mode == LAYERS else "false",
        }
        node = Served(data_dir, env)
        node.prepare(like=next(iter(nodes.values()), None))
        nodes[mode] = node
    return nodes


def point_line(cell: Cell, n: int, phase: str, p: dict[str, Any], elapsed: float) -> str:
    """The log line of one load point."""
    s = p.get("summary")
    figures = (
        f"node {s['node_cpu_pct']['median']:5.0f}% ({s['node_cpu_pct']['median'] / n:4.1f}%/participant) "
        f"worst fps {s['fps_min']['min']:4.1f} loss {s['loss_max_pct']['max']:.2f}% "
        f"driver {s['driver_cpu_pct']['median']:3.0f}% "
        if s
        else ""
    )
    verdict = "PASS" if p["passed"] else f"FAIL {p.get('reason', '')}"
    return f"{cell.key:<34} N={n:<3} {phase:<7} {figures}{verdict} [{elapsed:.0f}s]"


@dataclass
class CapacityRun:
    """One run of the benchmark: its cells, media and budget, and the load points so far (written
    to ``args.json`` after each, so a run stopped midway leaves what it measured)."""

    args: argparse.Namespace
    cells: list[Cell]
    clips: dict[tuple[str, str], Clip]
    speech: list[bytes]
    hush: list[bytes]
    budget: Budget
    started: float
    host: dict[str, Any]
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    idle: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    nodes: dict[str, Served] = field(default_factory=dict)
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    rooms: dict[str, Rooms] = field(default_factory=dict)
    floors: dict[str, FloorCosts] = field(default_factory=dict)  # each measured before its cell
    half_floors: dict[str, FloorCosts] = field(default_factory=dict)  # of the cells with layers

    def assemble(self, complete: bool) -> dict[str, Any]:
        return assemble(
            self.cells, self.results, self.idle, self.failures, self.started, self.host, self.args, complete
        )

    async def measure_idle(self) -> None:
        for n in self.nodes.values():
            c0, t0 = n.cpu_seconds(), time.monotonic()
            await asyncio.sleep(self.args.idle)
            self.idle.append(100 * (n.cpu_seconds() - c0) / (time.monotonic() - t0))

    async def point(self, cell: Cell, n: int, phase: str) -> dict[str, Any]:
        """One load point of ``cell`` at ``n`` calls; a node that stopped answering on a loaded
        machine makes a failed point, not a failed run."""
        clip = None if cell.audio_only else self.clips[cell.codec, cell.size]
        mode = cell.mode
        try:
            p = await measure(
                self.nodes[mode],
                self.clients[mode],
                self.rooms[mode],
                cell,
                n,
                clip,
                self.speech,
                self.hush,
                self.floors[cell.key],
                self.args,
                phase,
                self.half_floors.get(cell.key),
            )
        except Exception as exc:
            p = {"cell": cell.key, "n": n, "phase": phase, "passed": False, "reason": repr(exc)}
        self.budget.learn(p)
        log(point_line(cell, n, phase, p, time.monotonic() - self.started))
        self.results[cell.key].append(p)
        if self.args.json:
            report.write_json(self.args.json, self.assemble(False))
        return p

    async def search_all(self) -> None:
        """The cells in order, each at least probed while time is left; a search steps further
        only while the probes of the cells still to come fit."""
        for i, cell in enumerate(self.cells):
            reserve = sum(self.budget.estimate(c.probe_n) for c in self.cells[i + 1 :])
            if not self.args.quick and not self.budget.allows(cell.probe_n, 0):
                self.failures.append(f"{cell.key}: skipped, out of time budget")
                continue
            began = time.monotonic()
            self.floors[cell.key], half = measure_floor(cell, self.clips, self.speech)
            if half is not None:
                self.half_floors[cell.key] = half
            self.budget.pause(time.monotonic() - began)  # the budget is the rooms'
            await search(self.point, cell, self.budget, reserve, self.args)

    async def on_nodes(self, tmp: Path) -> None:
        """Start the nodes, measure them idle, then search every cell; the nodes and their
        clients are closed on the way out."""
        self.nodes = prepare_nodes(self.cells, tmp, self.args.quick)
        try:
            for n in self.nodes.values():
                n.spawn()
            for n in self.nodes.values():
                n.wait_ready()
            log(f"nodes up [{time.monotonic() - self.started:.0f}s]")
            await self.measure_idle()
            self.rooms = {mode: Rooms() for mode in self.nodes}
            self.clients = {
                mode: httpx.AsyncClient(base_url=node.base_url, timeout=60)
                for mode, node in self.nodes.items()
            }
            try:
                await self.search_all()
            finally:
                for c in self.clients.values():
                    await c.aclose()
        finally:
            for n in self.nodes.values():
                n.stop()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    cells = plan(args)
    restrict_host_addresses(["127.0.0.1"])  # the bots' ICE candidates, as the node's
    clips = make_clips(cells)
    speech, hush = opus_packets(440.0, 6000), opus_packets(150.0, 40)
    warm_floor(cells, clips)
    budget = Budget(args.budget, args.warm + args.windows * args.window)
    host = report.machine(load_at="start")
    state = CapacityRun(args, cells, clips, speech, hush, budget, started, host)
    state.results = {c.key: [] for c in cells}
    with tempfile.TemporaryDirectory(prefix="vdx-bench-capacity-") as tmp:
        await state.on_nodes(Path(tmp))
    return state.assemble(True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--quick", action="store_true", help="a smoke run: two calls at 320x180, no search, no files"
    )
    ap.add_argument(
        "--budget",
        type=float,
        default=None,
        help="soft time budget of the rooms in seconds, after the floor (default 420)",
    )
    ap.add_argument(
        "--codec", default="H264", choices=["VP8", "H264"], help="codec of the searched 360p grid"
    )
    ap.add_argument("--rooms", nargs="+", type=int, default=[4, 9, 16], choices=[4, 9, 16])
    ap.add_argument("--windows", type=int, default=None, help="measurement windows per load point")
    ap.add_argument("--window", type=float, default=None, help="seconds per window")
    ap.add_argument(
        "--warm", type=float, default=None, help="seconds between everyone receiving and the windows"
    )
    ap.add_argument(
        "--only",
        nargs="+",
        metavar="TEXT",
        help='run only the cells whose name contains one of these (e.g. "shared WebRTC"); '
        "with no --json/--markdown of its own it writes neither",
    )
    ap.add_argument("--steps", type=int, default=3, help="runs after the probe per searched cell, at most")
    ap.add_argument("--idle", type=float, default=None, help="seconds an idle node is measured")
    ap.add_argument(
        "--json", type=Path, help="raw results (default bench/results/capacity.json; none with --quick)"
    )
    ap.add_argument("--markdown", type=Path, help="BENCHMARKS.md to update (default: it; none with --quick)")
    ap.add_argument("--from-json", type=Path, help="render the markdown and plots of an earlier run")
    args = ap.parse_args()
    pngs = [report.ROOT / "bench/results/capacity_cpu.png", report.ROOT / "bench/results/capacity_media.png"]
    if args.from_json:
        result = rederive(json.loads(args.from_json.read_text()))
        if args.json:
            report.write_json(args.json, result)
        publish(result, args.markdown or report.BENCHMARKS_MD, pngs)
        return
    if args.quick:
        args.budget = args.budget or 60.0
        args.windows = args.windows or 1
        args.window = args.window or 1.0
        args.warm = args.warm if args.warm is not None else 0.5
        args.idle = args.idle or 0.5
    else:
        args.budget = args.budget or 420.0
        args.windows = args.windows or 3
        args.window = args.window or 2.0
        args.warm = args.warm if args.warm is not None else 1.5
        args.idle = args.idle or 2.0
        if not args.only:  # a partial run does not overwrite the full run's results
            args.json = args.json or report.ROOT / "bench/results/capacity.json"
            args.markdown = args.markdown or report.BENCHMARKS_MD
    result = asyncio.run(run(args))
    if args.json:
        report.write_json(args.json, result)
    # --quick, --only: no plots; the section only where a file is named (bench/run_all.py --quick)
    publish(result, args.markdown, [] if args.quick or args.only else pngs)


if __name__ == "__main__":
    # SIGTERM unwinds like Ctrl-C, so the node processes are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with contextlib.suppress(KeyboardInterrupt):
        main()
