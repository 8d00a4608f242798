"""Join-time benchmark (not a test): how long until a newcomer sees the room.

A real node (``python -m vdx serve``, bench/served_node.py) hosts a meeting booked through the API,
without PINs (a person typing digits is not the node's time). One participant is already in the
room (a SIP participant sending a small VP8 picture), so each newcomer joins a live conference
with a running view, the everyday case. Then, in turn and again and again:

- **SIP**: a plain SIP caller (bench/sip_peer.py) sends an INVITE with a PCMU + VP8 (or H.264)
  offer; measured from the INVITE leaving to the 200 OK, to the first video RTP packet back, and to
  the first picture that decodes.
- **WebRTC bot**: an aiortc participant (harness/bot.py's tracks) connects to the signalling
  WebSocket and joins; measured from the start of its offer (createOffer, ICE gathering) to the
  first decoded frame, with the signalling and the answer along the way.
- **Dial-out**: the room calls a SIP peer (``POST .../participants/dial`` as an operator); the
  peer answers and starts its VP8 camera once acknowledged; measured from the API call to the
  INVITE reaching the peer, to the ACK, and to the peer's first video RTP packet leaving for the
  node (loopback: it arrives within the same millisecond), and to the first picture of the room
  the peer decodes.
- **Browser**: Debian's Chromium driven by Playwright with a fake camera and microphone opens the
  meeting's portal link, types a name and clicks Join; measured in the page from the click to the
  first decoded frame (RTCPeerConnection stats ``framesDecoded > 0``, polled every 10 ms) and to the
  first frame presented by the video element (``requestVideoFrameCallback``).

Each newcomer leaves before the next one comes. Figures are min, median and max over the repeats;
nothing here is asserted (the smoke test checks the JSON's shape only).

    python -m bench.join             # full run, rewrites its BENCHMARKS.md section
    python -m bench.join --quick     # one of each, writes nothing
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription

from bench import report
from bench.served_node import NO_PINS, Room, Served, book_meeting, log, prepared_node
from bench.sip_peer import SipPeer, encode_clip
from harness.bot import Bot, ColourTrack, ToneTrack
from harness.waiting import until
from vdx.conference.compositor import solid_frame
from vdx.legs.webrtc import restrict_host_addresses

CHROMIUM = os.environ.get("VDX_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
FPS = 20
TARGETS_MS = {"sip": 300.0, "webrtc": 1000.0, "browser": 2000.0, "dial": 500.0}
HEADING = "## Join time (`bench/join.py`)"


def resident_clip() -> list[bytes]:
    """Two seconds of a slowly changing colour at 320x180: the resident's camera."""
    frames = [solid_frame(320, 180, (60 + 2 * i, 90 + i, 160 - i)) for i in range(2 * FPS)]
    return encode_clip("VP8", frames, FPS)


# --- the three newcomers ------------------------------------------------------------------------


async def join_sip(node: Served, room: Room, codec: str) -> dict[str, float]:
    peer = await SipPeer(node.sip_port, room.number, codec, decode=True).open()
    try:
        times = await peer.call()
        await until(lambda: peer.received.first_picture_at, 10, f"SIP {codec}: a picture", poll_s=0.005)
        assert peer.video is not None and times.answered is not None
        assert peer.video.first_packet_at is not None and peer.received.first_picture_at is not None
        return {
            "to_answer_ms": 1e3 * (times.answered - times.invite),
            "to_first_video_packet_ms": 1e3 * (peer.video.first_packet_at - times.invite),
            "to_first_picture_ms": 1e3 * (peer.received.first_picture_at - times.invite),
            "picture_width": float(max(w for w, _ in peer.received.sizes)),
        }
    finally:
        await peer.hangup()
        peer.close()


async def dial_out(node: Served, room: Room, http: httpx.AsyncClient, clip: list[bytes]) -> dict[str, float]:
    peer = await SipPeer(node.sip_port, room.number, "VP8", decode=True).open()
    sending: asyncio.Task[None] | None = None
    first_sent: list[float] = []
    try:
        started = time.monotonic()
        r = await http.post(
            f"/api/node/v1/conferences/{room.alias}/participants/dial",
            json={"destination": f"sip:bench@127.0.0.1:{peer.sip_port}", "role": "guest"},
            headers=node.headers("meeting-admin"),
        )
        accepted = time.monotonic()
        if r.status_code != 202:
            raise RuntimeError(f"dial-out refused: {r.status_code} {r.text}")
        times = await peer.answer()
        sending = asyncio.get_running_loop().create_task(
            peer.send_video(clip, FPS, 60, on_sent=lambda _i, at: first_sent.append(at))
        )
        await until(lambda: first_sent, 10, "the dialled peer's first picture", poll_s=0.002)
        await until(
            lambda: peer.received.first_picture_at, 10, "the room's picture at the peer", poll_s=0.005
        )
        # the first picture's first packet leaves before its last: the send time of the packet
        assert peer.video is not None and times.invite is not None and times.answered is not None
        first_packet = peer.video.first_sent_at or first_sent[0]
        assert peer.received.first_picture_at is not None
        return {
            "api_answer_ms": 1e3 * (accepted - started),
            "to_invite_ms": 1e3 * (times.invite - started),
            "to_ack_ms": 1e3 * (times.answered - started),
            "to_first_video_packet_ms": 1e3 * (first_packet - started),
            "to_first_picture_back_ms": 1e3 * (peer.received.first_picture_at - started),
            "picture_width": float(max(w for w, _ in peer.received.sizes)),
        }
    finally:
        if sending is not None:
            sending.cancel()
        await peer.hangup()
        peer.close()


async def join_webrtc(node: Served, room: Room) -> dict[str, float]:
    bot = Bot(f"{node.ws_base}/ws/rooms/{room.alias}", "Newcomer")
    try:
        t0 = time.monotonic()
        await bot.connect()
        joined = await bot.join()
        if joined.get("type") != "joined":
            raise RuntimeError(f"join refused: {joined}")
        t_joined = time.monotonic()
        pc = bot.pc = RTCPeerConnection()
        pc.addTrack(ColourTrack(bot.colour))
        pc.addTrack(ToneTrack(bot.tone))

        @pc.on("track")
        def on_track(track: Any) -> None:
            bot._tasks.append(asyncio.get_running_loop().create_task(bot._consume(track)))

        t_offer = time.monotonic()
        await pc.setLocalDescription(await pc.createOffer())
        since = len(bot.messages)
        await bot.send({"type": "offer", "sdp": pc.localDescription.sdp})
        t_sent = time.monotonic()
        answer = await bot.expect("answer", 15, since)
        t_answer = time.monotonic()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        await bot.until(lambda: bot.video_frames > 0, 15, "a decoded frame")
        t_frame = time.monotonic()
        return {
            "join_ms": 1e3 * (t_joined - t0),
            "offer_ready_ms": 1e3 * (t_sent - t_offer),
            "offer_to_answer_ms": 1e3 * (t_answer - t_offer),
            "offer_to_first_frame_ms": 1e3 * (t_frame - t_offer),
            "connect_to_first_frame_ms": 1e3 * (t_frame - t0),
            "picture_width": float(bot.frame.width if bot.frame is not None else 0),
        }
    finally:
        await bot.close()


# In the page: the click, the offer leaving, the first decoded frame (stats) and the first frame
# the <video> presents, all on the page's clock (performance.now()).
INSTRUMENT = """() => {
  const b = window.__bench = {click: null, offer: null, frame: null, presented: null, width: 0};
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (b.offer === null && typeof data === 'string' && data.indexOf('"offer"') >= 0) b.offer = performance.now();
    return send.call(this, data);
  };
  document.getElementById('join').addEventListener('click', () => { b.click = performance.now(); }, {capture: true});
  const poll = async () => {
    const pc = window.vdxCall && window.vdxCall.pc;
    if (pc && b.click !== null) {
      const report = await pc.getStats();
      let frames = 0;
      report.forEach(r => { if (r.type === 'inbound-rtp' && r.kind === 'video') { frames += r.framesDecoded || 0; b.width = r.frameWidth || b.width; } });
      if (frames > 0) { b.frame = performance.now(); return; }
    }
    setTimeout(poll, 10);
  };
  poll();
  const v = document.getElementById('remote');
  if (v.requestVideoFrameCallback) v.requestVideoFrameCallback(() => { b.presented = performance.now(); });
}"""


async def join_browser(browser: Any, room: Room) -> dict[str, float]:
    assert room.portal_link is not None
    context = await browser.new_context(locale="en-GB", viewport={"width": 1000, "height": 760})
    try:
        await context.grant_permissions(["camera", "microphone"])
        page = await context.new_page()
        page.set_default_timeout(20000)
        await page.goto(room.portal_link)
        await page.wait_for_function("() => window.vdxCall && window.vdxCall.ready", polling=50)
        await page.get_by_label("Your name").fill("Browser")
        await page.evaluate(INSTRUMENT)
        await page.get_by_role("button", name="Join").click()
        await page.wait_for_function(
            "() => window.__bench.frame !== null && window.__bench.presented !== null",
            polling=50,
            timeout=20000,
        )
        b = await page.evaluate("window.__bench")
        with contextlib.suppress(Exception):
            await page.get_by_role("button", name="Leave").first.click(timeout=3000)
            await page.wait_for_function("() => window.vdxCall.state === 'ended'", timeout=3000)
        return {
            "click_to_offer_ms": b["offer"] - b["click"],
            "click_to_first_frame_ms": b["frame"] - b["click"],
            "click_to_presented_ms": b["presented"] - b["click"],
            "picture_width": float(b["width"]),
        }
    finally:
        await context.close()


# --- the run ------------------------------------------------------------------------------------

CELLS = {
    "sip-vp8": ("sip", "SIP, VP8 offer", "to_first_video_packet_ms"),
    "sip-h264": ("sip", "SIP, H.264 offer", "to_first_video_packet_ms"),
    "webrtc": ("webrtc", "WebRTC bot (aiortc)", "offer_to_first_frame_ms"),
    "browser": ("browser", "Browser (Chromium)", "click_to_first_frame_ms"),
    "dial-out": ("dial", "Dial-out to a SIP peer (VP8)", "to_first_video_packet_ms"),
}


async def one_join(
    cell: str, node: Served, room: Room, http: httpx.AsyncClient, browser: Any, clip: list[bytes]
) -> dict[str, float]:
    kind = CELLS[cell][0]
    if kind == "sip":
        return await join_sip(node, room, "VP8" if cell == "sip-vp8" else "H264")
    if kind == "webrtc":
        return await join_webrtc(node, room)
    if kind == "dial":
        return await dial_out(node, room, http, clip)
    return await join_browser(browser, room)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    restrict_host_addresses(["127.0.0.1"])
    started = time.monotonic()
    samples: dict[str, list[dict[str, float]]] = {c: [] for c in args.cells}
    failures: list[str] = []
    clip = resident_clip()
    with prepared_node("join", {**NO_PINS, "VDX_MEDIA_FPS": str(FPS)}) as node:
        startup_s = node.start()
        log(f"node up in {startup_s:.1f} s")
        resident: SipPeer | None = None
        pw_cm: Any = None
        browser: Any = None
        talk: asyncio.Task[None] | None = None
        try:
            async with httpx.AsyncClient(base_url=node.base_url, timeout=30) as http:
                room = await book_meeting(node, http, quality=args.quality)
                resident = await SipPeer(node.sip_port, room.number, "VP8").open()
                await resident.call()
                talk = asyncio.get_running_loop().create_task(resident.send_video(clip, FPS, 3600))
                await until(
                    lambda: resident and resident.video and resident.video.first_packet_at,
                    10,
                    "resident",
                    poll_s=0.005,
                )
                if "browser" in args.cells:
                    from playwright.async_api import async_playwright

                    pw_cm = async_playwright()
                    pw = await pw_cm.__aenter__()
                    browser = await pw.chromium.launch(
                        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
                    )
                    # A first page warms Chromium up (its first page pays for process start-up).
                    warm = await browser.new_page()
                    await warm.goto(f"{node.base_url}/join/?conference={room.alias}")
                    await warm.close()
                await asyncio.sleep(1.0)
                for rep in range(args.repeats):
                    if rep >= args.min_repeats and time.monotonic() - started > 0.8 * args.budget:
                        log(f"budget: stopping after {rep} repeats")
                        break
                    for cell in args.cells:
                        try:
                            r = await one_join(cell, node, room, http, browser, clip)
                        except Exception as exc:
                            failures.append(f"{cell} repeat {rep + 1}: {exc!r}")
                            log(f"{cell} repeat {rep + 1}: FAILED {exc!r}")
                            continue
                        samples[cell].append(r)
                        main = CELLS[cell][2]
                        log(f"repeat {rep + 1} {cell:<9} {main} {r[main]:7.1f} ms  {fmt_sample(r)}")
                        await asyncio.sleep(args.gap)  # the room settles: only the resident in it
        finally:
            if talk is not None:
                talk.cancel()
            if resident is not None:
                with contextlib.suppress(Exception):
                    await resident.hangup()
                resident.close()
            if browser is not None:
                with contextlib.suppress(Exception):
                    await browser.close()
            if pw_cm is not None:
                with contextlib.suppress(Exception):
                    await pw_cm.__aexit__(None, None, None)
    return assemble(samples, failures, started, startup_s, args)


def fmt_sample(r: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.0f}" for k, v in r.items() if k.endswith("_ms"))


def assemble(
    samples: dict[str, list[dict[str, float]]],
    failures: list[str],
    started: float,
    startup_s: float,
    args: argparse.Namespace,
) -> dict[str, Any]:
    cells = []
    for cell, reps in samples.items():
        kind, label, main = CELLS[cell]
        summary = {k: report.summarise([r[k] for r in reps]) for k in (reps[0] if reps else {})}
        cells.append(
            {
                "cell": cell,
                "kind": kind,
                "label": label,
                "main": main,
                "target_ms": TARGETS_MS[kind],
                "repeats": reps,
                "summary": summary,
            }
        )
    headline = [
        report.headline_row(
            f"Join time, {c['label']}: {c['main'].removesuffix('_ms').replace('_', ' ')} (bench/join.py)",
            c["summary"].get(c["main"]),
            "ms",
            c["target_ms"],
            digits=0,
        )
        for c in cells
    ]
    return {
        "headline": headline,
        **report.run_info(
            "join", args, started, "--repeats", str(args.repeats), "--budget", f"{args.budget:g}"
        ),
        "quality": args.quality,
        "fps": FPS,
        "node_startup_s": startup_s,
        "failures": failures,
        "cells": cells,
    }


# --- reporting ----------------------------------------------------------------------------------


def markdown(result: dict[str, Any], plot_refs: list[str]) -> str:
    lines = [
        *report.section_head(HEADING, result),
        "What it measures: a real `vdx serve` process hosts a meeting booked through the API "
        f"(vmrQuality `{result['quality']}`, no PINs, {result['fps']} fps views); a SIP participant is "
        "already in it, sending video, so every newcomer joins a live conference. Newcomers come one at "
        "a time and leave again. **SIP**: a plain SIP/RTP caller (bench/sip_peer.py), from the INVITE "
        "to the first video RTP packet back (target), to the 200 OK and to the first picture that "
        "decodes. **WebRTC bot**: aiortc, from the start of its offer (createOffer with ICE gathering) "
        "to the first decoded frame; *join* is the signalling WebSocket's connect and `join`. "
        "**Browser**: Chromium (Playwright, fake camera) at the meeting's portal link, from the click "
        "on Join to the first decoded frame (`getStats` framesDecoded > 0, polled every 10 ms) and to "
        "the first frame the video element presents (`requestVideoFrameCallback`). **Dial-out**: the "
        "room calls a plain SIP peer (`POST .../participants/dial` as an operator), from the API call to "
        "the peer's first video RTP packet leaving for the node once the call is acknowledged (target), "
        "to the API's 202, to the INVITE at the peer, to the ACK and to the first picture of the room "
        "the peer decodes. Times in ms: "
        "median (min-max) over the repeats.",
        "",
        "| newcomer | target ms | measured ms (main figure) | met | repeats | along the way |",
        "|---|---|---|---|---|---|",
    ]
    for c in result["cells"]:
        s = c["summary"]
        if not c["repeats"]:
            lines.append(f"| {c['label']} | {c['target_ms']:.0f} | no measurement | | 0 | |")
            continue
        main = s[c["main"]]
        met = "yes" if main["median"] < c["target_ms"] else "**no**"
        others = "; ".join(
            f"{k.removesuffix('_ms').replace('_', ' ')} {report.fmt_range(v)}"
            for k, v in s.items()
            if k.endswith("_ms") and k != c["main"]
        )
        lines.append(
            f"| {c['label']} | < {c['target_ms']:.0f} | {c['main'].removesuffix('_ms').replace('_', ' ')}: "
            f"**{report.fmt_range(main)}** | {met} | {len(c['repeats'])} | {others} |"
        )
    lines.append("")
    lines.append(
        f"The node started in {result['node_startup_s']:.1f} s (process start to a healthy answer; not "
        "part of any figure). Noise: the newcomers, the resident and Chromium run on the same machine "
        "as the node."
    )
    lines.append("")
    return report.section_end(
        lines, "Joins that failed (left out above)", result["failures"], "Join times", plot_refs
    )


def plot(result: dict[str, Any], path: Path) -> None:
    plt = report.pyplot()

    cells = [c for c in result["cells"] if c["repeats"]]
    fig, ax = plt.subplots(figsize=(7, 0.8 + 0.7 * len(cells)))
    for i, c in enumerate(cells):
        values = [r[c["main"]] for r in c["repeats"]]
        ax.scatter(values, [i] * len(values), s=22, alpha=0.7)
        ax.plot([c["target_ms"]] * 2, [i - 0.35, i + 0.35], color="red", lw=1.5)
        ax.plot([c["summary"][c["main"]]["median"]] * 2, [i - 0.25, i + 0.25], color="black", lw=2)
    ax.set_yticks(range(len(cells)), [c["label"] for c in cells])
    ax.set_xscale("log")
    ax.set_xlabel("ms to the first video (dots: repeats, black: median, red: target)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"vdx join time, {result['date'][:10]}", fontsize=10)
    report.save_figure(fig, path)


def publish(result: dict[str, Any], md: Path | None, png: Path | None) -> None:
    pngs = [png] if png else []
    report.render(
        result, HEADING, markdown, plot, md, pngs, drawable=any(c["repeats"] for c in result["cells"])
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a seconds-long smoke run: one join of each kind")
    ap.add_argument("--repeats", type=int, default=None, help="joins of each kind (default 7; quick 1)")
    ap.add_argument("--budget", type=float, default=90.0, help="soft time budget in seconds")
    ap.add_argument("--cells", nargs="+", default=list(CELLS), choices=list(CELLS))
    ap.add_argument(
        "--quality", default="sd", choices=["sd", "hd", "full_hd"], help="the meeting's vmrQuality"
    )
    ap.add_argument("--gap", type=float, default=0.7, help="seconds between one newcomer and the next")
    ap.add_argument("--markdown", type=Path, help="BENCHMARKS.md to update (none with --quick)")
    report.output_args(ap, "join")
    args = ap.parse_args()
    if args.from_json:
        report.republish(args, publish)
        return
    if args.quick:
        args.repeats = args.repeats or 1
        args.min_repeats = 1
        args.gap = min(args.gap, 0.3)
    else:
        args.repeats = args.repeats or 7
        args.min_repeats = min(3, args.repeats)
        report.default_outputs(args, "join")
    report.conclude(args, asyncio.run(run(args)), publish)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    np.seterr(all="ignore")
    main()
