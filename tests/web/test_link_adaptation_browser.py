"""Video that bends with a real link (issue 18): Chromium in a network namespace whose downlink tc's
tbf holds to 300 kbit/s keeps decoding pictures, smaller, and keeps hearing the far end; it gets
the full size back once the limit is lifted. Its own feedback (REMB, receiver reports) drives it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import pytest

from harness.bot import RED, Bot
from harness.netns import NetnsUnavailable, netns
from vdx.conference.policy import RoomConfig

from .conftest import CHROMIUM, CHROMIUM_ARGS, new_page, running_node, wait_for
from .test_join import join, portal_link

FULL = 640  # the room's size: media_size_cap 640x360

STATS = """async () => {
  const pc = window.vdxCall && window.vdxCall.pc;
  if (!pc) return null;
  const out = {width: 0, frames: 0, freezes: null, freezeS: null, samples: 0, concealed: 0, bytes: 0};
  (await pc.getStats()).forEach(r => {
    if (r.type !== 'inbound-rtp') return;
    if (r.kind === 'video') {
      out.width = r.frameWidth || out.width; out.frames += r.framesDecoded || 0;
      out.bytes += r.bytesReceived || 0;
      if (r.freezeCount !== undefined) { out.freezes = r.freezeCount; out.freezeS = r.totalFreezesDuration; }
    }
    if (r.kind === 'audio') { out.samples += r.totalSamplesReceived || 0; out.concealed += r.concealedSamples || 0; }
  });
  return out;
}"""


async def stats_until(
    page: Any,
    test: Callable[[dict[str, Any]], bool],
    deadline_s: float,
    what: str,
    detail: Callable[[], str] = str,
) -> dict[str, Any]:
    """Poll the receiver's inbound-rtp stats until ``test`` holds (a bound against hangs, not a
    measure of speed); ``detail`` adds to the failure's message."""
    last = None
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        last = await page.evaluate(STATS)
        if last and test(last):
            return dict(last)
        await page.wait_for_timeout(500)
    raise AssertionError(f"{what}: not within {deadline_s:.0f} s (last stats {last}) {detail()}")


async def test_chromium_on_a_tbf_link_gets_a_smaller_picture_then_the_full_one(settings_factory) -> None:
    with contextlib.ExitStack() as stack:
        try:
            ns = stack.enter_context(netns())
        except NetnsUnavailable as exc:
            pytest.fail(f"this test needs a network namespace and tc (run as root): {exc}")
        async with running_node(
            settings_factory, host=ns.host_address, media_size_cap="640x360", media_adapt=True
        ) as web:
            from playwright.async_api import async_playwright

            alias = "55550018@vdx.test"
            web.rooms.put(RoomConfig(alias=alias, enable_overlay_text=False, host_view="one_main_zero_pips"))
            sender = Bot(web.ws(alias), "Sender", colour=RED, tone=500.0, camera=(640, 360), busy=True)

            async def close_sender() -> None:
                await sender.close()

            web.cleanups.append(close_sender)
            await sender.connect()
            assert (await sender.join())["type"] == "joined"
            await sender.start_media()

            # http://10.x is no secure context: the camera and microphone need it said
            args = [*CHROMIUM_ARGS, f"--unsafely-treat-insecure-origin-as-secure={web.base}"]
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(
                    executable_path=ns.wrapper(CHROMIUM), args=args, headless=True
                )
                try:
                    page = await new_page(browser)
                    await join(page, portal_link(web, alias), "Receiver")
                    await wait_for(page, "window.vdxCall.pc", "a peer connection")
                    full = await stats_until(page, lambda s: s["width"] == FULL, 30, "the full picture")

                    ns.shape(300)
                    small = await stats_until(
                        page, lambda s: 0 < s["width"] < FULL, 60, "a smaller layer on 300 kbit", ns.qdisc
                    )
                    await page.wait_for_timeout(8000)
                    later = await page.evaluate(STATS)
                    concealed = (later["concealed"] - small["concealed"]) / max(
                        1, later["samples"] - small["samples"]
                    )
                    facts = (
                        f"{(later['frames'] - small['frames']) / 8:.1f} fps, audio concealed"
                        f" {concealed:.1%}, from {small} to {later}; {ns.qdisc()}"
                    )
                    # still moving pictures, still smaller, and the far end's voice (loosely: a
                    # thin link may conceal some of it)
                    assert later["frames"] >= small["frames"] + 20, facts
                    assert 0 < later["width"] < FULL, facts
                    assert later["samples"] >= small["samples"] + 48000 * 4, facts
                    assert concealed < 0.5, facts

                    ns.lift()
                    back = await stats_until(
                        page,
                        lambda s: s["width"] == FULL,
                        90,
                        "the full size after the limit is lifted",
                        ns.qdisc,
                    )
                    assert back["frames"] > later["frames"] > full["frames"]
                finally:
                    await browser.close()
