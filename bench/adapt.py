"""Link adaptation benchmark (not a test): what a receiver on a thin link gets.

A real node (``python -m vdx serve``, bench/served_node.py, ``VDX_MEDIA_ADAPT=true``) hosts an SD
meeting (640x360) booked through the API. A sender (an aiortc bot) sends a picture that costs an
encoder all its bits (noise under a colour, harness/bot.py ``busy``) and a tone. For each repeat a
fresh receiver joins, gets the full picture, then has its link held to ``--rate`` kb/s (harness
``Shaper``: a tbf-like queue of 200 ms at its ICE sockets, dropping past it) for ``--hold``
seconds, then lifted. Measured per repeat, from the decoded pictures and audio the receiver got:

- **adapt**: from the limit to the first decoded picture of a smaller layer;
- **freezes**: the sum of gaps over 500 ms between decoded pictures while limited, per minute
  (from the limit on, so the adaptation's own gap counts), and their count;
- **frame rate** while limited, after adapting; **audio**: the share of 20 ms frames that did not
  arrive while limited;
- **recover**: from lifting the limit to the first full-size picture again;
- **node CPU**: the node's CPU share while limited (the sender's view at full size plus the
  receiver's smaller layer) over while not (the full size only), as a ratio in the same repeat.

With ``--browser`` the receiver is Chromium (Playwright) in a network namespace whose downlink tc's
``tbf`` holds (harness/netns.py; needs root): the node listens on the host side of its veth pair.
Its figures come from ``getStats()``, polled every ``POLL_S``: pictures are decoded frames counted
between polls (so a freeze is seen to within a poll), audio lost is the share of samples concealed.

    python -m bench.adapt             # full run, rewrites its BENCHMARKS.md section
    python -m bench.adapt --quick     # one short repeat, writes nothing
    python -m bench.adapt --browser --quick   # Chromium on a tbf link (as root)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import re
import time
from pathlib import Path
from typing import Any

import httpx

from bench import report
from bench.join import CHROMIUM, CHROMIUM_ARGS
from bench.served_node import NO_PINS, Room, Served, book_meeting, log, prepared_node
from harness.bot import BLUE, RED, Bot, Shaper
from harness.netns import NetNamespace, netns
from harness.waiting import until
from vdx.legs.webrtc import restrict_host_addresses

FULL_WIDTH = 640
FREEZE_S = 0.5
AUDIO_PER_S = 50
POLL_S = 0.2  # how often the browser's stats are read
HEADING = "## Link adaptation (`bench/adapt.py`)"
BROWSER_HEADING = "## Chromium on a tbf link (`bench/adapt.py --browser`)"  # no prefix of HEADING
STATS = """async () => {
  const pc = window.vdxCall && window.vdxCall.pc;
  if (!pc) return null;
  const out = {width: 0, frames: 0, samples: 0, concealed: 0};
  (await pc.getStats()).forEach(r => {
    if (r.type !== 'inbound-rtp') return;
    if (r.kind === 'video') { out.width = r.frameWidth || out.width; out.frames += r.framesDecoded || 0; }
    if (r.kind === 'audio') { out.samples += r.totalSamplesReceived || 0; out.concealed += r.concealedSamples || 0; }
  });
  return out;
}"""


def freezes(times: list[float], start: float, end: float) -> list[float]:
    """Gaps over ``FREEZE_S`` between pictures decoded in [start, end], the edges included."""
    inside = [start, *[t for t in times if start <= t <= end], end]
    return [b - a for a, b in itertools.pairwise(inside) if b - a > FREEZE_S]


async def one_receiver(
    node: Served, alias: str, rate_bps: float, hold_s: float, rep: int
) -> tuple[dict[str, float], list[tuple[float, int]]]:
    """One receiver's figures, and its pictures (seconds from the limit, width)."""
    bot = Bot(f"{node.ws_base}/ws/rooms/{alias}", f"Receiver {rep + 1}", colour=BLUE, tone=300.0)
    try:
        await bot.connect()
        if (await bot.join()).get("type") != "joined":
            raise RuntimeError("the receiver could not join")
        await bot.start_media()
        await bot.until(
            lambda: bot.frame is not None and bot.frame.width == FULL_WIDTH, 30, "the full picture"
        )
        await asyncio.sleep(3)  # settled on the full size
        assert bot.pc is not None
        cpu0, t0 = node.cpu_seconds(), time.monotonic()
        await asyncio.sleep(hold_s / 3)
        cpu_full = (node.cpu_seconds() - cpu0) / (time.monotonic() - t0)

        limited_at = time.monotonic()
        audio_at_limit = bot.audio_frames
        shaper = Shaper(bot.pc, rate_bps)
        await bot.until(lambda: bot.frame is not None and bot.frame.width < FULL_WIDTH, 30, "a smaller layer")
        adapted_at = next(t for t, w in bot.pictures if t >= limited_at and w < FULL_WIDTH)
        cpu1, t1 = node.cpu_seconds(), time.monotonic()
        await asyncio.sleep(max(0.0, limited_at + hold_s - time.monotonic()))
        lifted_at = time.monotonic()
        cpu_layers = (node.cpu_seconds() - cpu1) / (lifted_at - t1)
        audio_heard = bot.audio_frames - audio_at_limit
        times = [t for t, _ in bot.pictures]
        frames_limited = sum(1 for t in times if adapted_at < t <= lifted_at)
        gaps = freezes(times, limited_at, lifted_at)
        dropped = shaper.dropped

        shaper.rate_bps = None
        await bot.until(
            lambda: bot.frame is not None and bot.frame.width == FULL_WIDTH, 90, "the full size again"
        )
        recovered_at = next(t for t, w in bot.pictures if t >= lifted_at and w == FULL_WIDTH)
        held = lifted_at - limited_at
        timeline = [(round(t - limited_at, 3), w) for t, w in bot.pictures if t >= limited_at - 5]
        figures = {
            "adapt_s": adapted_at - limited_at,
            "freeze_s_per_min": sum(gaps) * 60 / held,
            "freezes": float(len(gaps)),
            "fps_limited": frames_limited / max(1e-6, lifted_at - adapted_at),
            "audio_loss_pct": max(0.0, 100 * (1 - audio_heard / (held * AUDIO_PER_S))),
            "recover_s": recovered_at - lifted_at,
            "cpu_ratio": cpu_layers / cpu_full if cpu_full > 0 else 0.0,
            "dropped_packets": float(dropped),
        }
        return figures, timeline
    finally:
        await bot.close()


async def one_browser(
    node: Served, ns: NetNamespace, browser: Any, room: Room, rate_kbit: int, hold_s: float, rep: int
) -> tuple[dict[str, float], list[tuple[float, int]]]:
    """:func:`one_receiver`'s figures for Chromium in ``ns``, its downlink held by tbf."""
    link = room.portal_link or f"{node.base_url}/join/?conference={room.alias}"
    polls: list[tuple[float, dict[str, Any]]] = []  # (time, stats)
    context = await browser.new_context(locale="en-GB", viewport={"width": 1000, "height": 760})
    poller: asyncio.Task[None] | None = None
    try:
        await context.grant_permissions(["camera", "microphone"])
        page = await context.new_page()
        page.set_default_timeout(20000)
        await page.goto(link)
        await page.wait_for_function("() => window.vdxCall && window.vdxCall.ready", polling=100)
        await page.get_by_label("Your name").fill(f"Receiver {rep + 1}")
        await page.get_by_role("button", name="Join").click()
        await page.wait_for_function("() => window.vdxCall.state === 'call'", polling=100)

        async def poll() -> None:
            while True:
                got = await page.evaluate(STATS)
                if got:
                    polls.append((time.monotonic(), got))
                await asyncio.sleep(POLL_S)

        poller = asyncio.get_running_loop().create_task(poll())

        def width_since(t0: float, test: Any) -> float | None:
            return next((t for t, st in polls if t >= t0 and test(st["width"])), None)

        await until(lambda: width_since(0, lambda w: w == FULL_WIDTH), 30, "the full picture")
        await asyncio.sleep(3)  # settled on the full size
        cpu0, t0 = node.cpu_seconds(), time.monotonic()
        await asyncio.sleep(hold_s / 3)
        cpu_full = (node.cpu_seconds() - cpu0) / (time.monotonic() - t0)

        limited_at = time.monotonic()
        ns.shape(rate_kbit)
        adapted_at = await until(
            lambda: width_since(limited_at, lambda w: 0 < w < FULL_WIDTH), 30, "a smaller layer"
        )
        cpu1, t1 = node.cpu_seconds(), time.monotonic()
        await asyncio.sleep(max(0.0, limited_at + hold_s - time.monotonic()))
        lifted_at = time.monotonic()
        cpu_layers = (node.cpu_seconds() - cpu1) / (lifted_at - t1)
        dropped = re.search(r"dropped (\d+)", ns.qdisc())
        ns.lift()
        recovered_at = await until(
            lambda: width_since(lifted_at, lambda w: w == FULL_WIDTH), 90, "the full size again"
        )

        def at(t: float) -> dict[str, Any]:  # the last stats read by ``t``
            return next(st for tt, st in reversed(polls) if tt <= t)

        # each poll's new frames spread over the time since the one before (to within POLL_S)
        pictures = [
            (a + (k + 1) * (b - a) / (sb["frames"] - sa["frames"]), sb["width"])
            for (a, sa), (b, sb) in itertools.pairwise(polls)
            for k in range(max(0, sb["frames"] - sa["frames"]))
        ]
        times = [t for t, _ in pictures]
        held = lifted_at - limited_at
        gaps = freezes(times, limited_at, lifted_at)
        first, last = at(limited_at), at(lifted_at)
        timeline = [(round(t - limited_at, 3), w) for t, w in pictures if t >= limited_at - 5]
        figures = {
            "adapt_s": adapted_at - limited_at,
            "freeze_s_per_min": sum(gaps) * 60 / held,
            "freezes": float(len(gaps)),
            "fps_limited": (last["frames"] - at(adapted_at)["frames"]) / max(1e-6, lifted_at - adapted_at),
            "audio_loss_pct": 100
            * (last["concealed"] - first["concealed"])
            / max(1, last["samples"] - first["samples"]),
            "recover_s": recovered_at - lifted_at,
            "cpu_ratio": cpu_layers / cpu_full if cpu_full > 0 else 0.0,
            "dropped_packets": float(dropped.group(1)) if dropped else 0.0,
        }
        return figures, timeline
    finally:
        ns.lift()
        if poller is not None:
            poller.cancel()
        await context.close()


FIGURES = {
    "adapt_s": ("time to a layer that fits after the link drops", "s", 3.0, True),
    "freeze_s_per_min": ("freeze time per minute on the thin link", "s", 1.0, True),
    "fps_limited": ("frames per second on the thin link, adapted", "fps", None, False),
    "audio_loss_pct": ("audio frames lost on the thin link", "%", None, True),
    "recover_s": ("time back to the full size after the limit is lifted", "s", None, True),
    "cpu_ratio": ("node CPU with the smaller layer / without", "x", 1.5, True),
}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    samples: list[dict[str, float]] = []
    timelines: list[list[tuple[float, int]]] = []
    failures: list[str] = []
    env = {**NO_PINS, "VDX_MEDIA_ADAPT": "true", "VDX_MEDIA_FPS": "15"}
    with contextlib.ExitStack() as stack:
        ns = stack.enter_context(netns()) if args.browser else None
        host = ns.host_address if ns else "127.0.0.1"  # where the node is reached from the namespace
        restrict_host_addresses([host])
        node = stack.enter_context(prepared_node("adapt", env, host=host))
        log(f"node up in {node.start():.1f} s")
        async with contextlib.AsyncExitStack() as astack:
            http = await astack.enter_async_context(httpx.AsyncClient(base_url=node.base_url, timeout=30))
            browser = None
            if ns is not None:
                from playwright.async_api import async_playwright

                pw = await astack.enter_async_context(async_playwright())
                # http://10.x is no secure context: the camera and microphone need it said
                args_ = [*CHROMIUM_ARGS, f"--unsafely-treat-insecure-origin-as-secure={node.base_url}"]
                browser = await pw.chromium.launch(
                    executable_path=ns.wrapper(CHROMIUM), args=args_, headless=True
                )
                astack.push_async_callback(browser.close)
            room = await book_meeting(node, http, quality="sd", layout="one_main_zero_pips")
            sender = Bot(
                f"{node.ws_base}/ws/rooms/{room.alias}", "Sender", RED, 500.0, camera=(640, 360), busy=True
            )
            try:
                await sender.connect()
                await sender.join()
                await sender.start_media()
                await until(lambda: sender.video_frames > 0, 30, "the sender receives")
                for rep in range(args.repeats):
                    if rep and time.monotonic() - started > 0.8 * args.budget:
                        log(f"budget: stopping after {rep} repeats")
                        break
                    try:
                        if ns is not None:
                            r, timeline = await one_browser(
                                node, ns, browser, room, round(args.rate), args.hold, rep
                            )
                        else:
                            r, timeline = await one_receiver(
                                node, room.alias, args.rate * 1000, args.hold, rep
                            )
                    except Exception as exc:
                        failures.append(f"repeat {rep + 1}: {exc!r}")
                        log(f"repeat {rep + 1}: FAILED {exc!r}")
                        continue
                    samples.append(r)
                    timelines.append(timeline)
                    log(f"repeat {rep + 1}: " + " ".join(f"{k}={v:.2f}" for k, v in r.items()))
            finally:
                await sender.close()
    return assemble(samples, timelines, failures, started, args)


def assemble(
    samples: list[dict[str, float]],
    timelines: list[list[tuple[float, int]]],
    failures: list[str],
    started: float,
    args: Any,
) -> dict[str, Any]:
    summary = (
        {k: report.summarise([s[k] for s in samples]) if samples else None for k in samples[0]}
        if samples
        else {}
    )
    headline = []
    for key, (figure, unit, target, below) in FIGURES.items():
        s = summary.get(key)
        met = (
            None
            if target is None or s is None
            else (s["median"] <= target if below else s["median"] >= target)
        )
        headline.append(
            {
                "figure": f"{figure} ({args.rate:g} kb/s)",
                "value": s["median"] if s else None,
                "unit": unit,
                "min": s["min"] if s else None,
                "max": s["max"] if s else None,
                "target": None if target is None else f"{'<' if below else '>='} {target:g} {unit}",
                "met": met,
            }
        )
    return {
        **report.run_info(
            "adapt",
            args,
            started,
            *(["--browser"] if args.browser else []),
            f"--rate {args.rate:g} --hold {args.hold:g}",
        ),
        "meta": {
            "quick": args.quick,
            "rate_kbps": args.rate,
            "hold_s": args.hold,
            "repeats": len(samples),
            "browser": args.browser,
        },
        "samples": samples,
        "timelines": timelines,
        "summary": summary,
        "failures": failures,
        "headline": headline,
    }


def publish(result: dict[str, Any], markdown: Path | None, plot: Path | None) -> None:
    if plot is not None and result["timelines"]:
        draw(result, plot)
    browser = result["meta"].get("browser", False)
    lines = report.section_head(BROWSER_HEADING if browser else HEADING, result)
    how = (
        "Chromium in a network namespace, its downlink held by `tc` `tbf` (100 ms queue); its "
        "getStats() read every 0.2 s, audio lost = samples concealed"
        if browser
        else "a tbf-like queue of 200 ms at its sockets"
    )
    lines += [
        f"A receiver of an SD room (640x360, a picture of noise that takes all the encoder's bits) is held "
        f"to {result['meta']['rate_kbps']:g} kb/s for {result['meta']['hold_s']:g} s ({how}), then let "
        f"go; {result['meta']['repeats']} repeats, median (min-max).",
        "",
        "| figure | value | target |",
        "|---|---|---|",
    ]
    for h in result["headline"]:
        s = result["summary"].get(next(k for k, f in FIGURES.items() if h["figure"].startswith(f[0])))
        target = h["target"] or "-"
        met = "" if h["met"] is None else (" (met)" if h["met"] else " (NOT met)")
        lines.append(f"| {h['figure']} | {report.fmt_range(s, 2)} {h['unit']} | {target}{met} |")
    if result["failures"]:
        lines += ["", "Failures: " + "; ".join(result["failures"])]
    if plot is not None and markdown is not None:
        lines += ["", f"![picture width and frame rate over time]({plot.relative_to(report.ROOT)})"]
    section = "\n".join(lines) + "\n"
    if markdown is None:
        print(section)
        return
    report.write_section(markdown, (BROWSER_HEADING if browser else HEADING).split(" (")[0], section)


def draw(result: dict[str, Any], path: Path) -> None:
    """Each receiver's picture width and frame rate (per second) against time from the limit."""
    plt = report.pyplot()
    fig, (width_ax, fps_ax) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True)
    hold = result["meta"]["hold_s"]
    for i, timeline in enumerate(result["timelines"]):
        t = [p[0] for p in timeline]
        width_ax.step(t, [p[1] for p in timeline], where="post", label=f"receiver {i + 1}")
        seconds = range(math.ceil(min(t)), math.floor(max(t)))  # whole seconds: none cut short
        fps_ax.plot(list(seconds), [sum(1 for x in t if s <= x < s + 1) for s in seconds])
    for ax in (width_ax, fps_ax):
        ax.axvspan(0, hold, color="0.9", zorder=0)
    width_ax.set_ylabel("picture width (px)")
    fps_ax.set_ylabel("frames per second")
    fps_ax.set_xlabel(f"seconds from the limit ({result['meta']['rate_kbps']:g} kb/s while shaded)")
    width_ax.legend(loc="lower right", fontsize=8)
    report.save_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one short repeat; writes nothing")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rate", type=float, default=300.0, help="the thin link, kb/s")
    ap.add_argument("--hold", type=float, default=60.0, help="seconds the link stays thin")
    ap.add_argument("--budget", type=float, default=600.0, help="seconds for the whole run")
    ap.add_argument("--markdown", type=Path, help="BENCHMARKS.md to update (none with --quick)")
    ap.add_argument(
        "--browser", action="store_true", help="the receiver is Chromium on a tc tbf link (root: netns)"
    )
    report.output_args(ap, "adapt")
    args = ap.parse_args()
    if args.from_json:
        report.republish(args, publish)
        return
    if args.quick:
        args.repeats, args.hold = 1, 10.0
    else:
        report.default_outputs(args, "adapt-browser" if args.browser else "adapt")
    report.conclude(args, asyncio.run(run(args)), publish)


if __name__ == "__main__":
    main()
