"""Presenting from the join page (issue 18, item 2) in Chromium: the host's "screen" is a canvas
of one colour (getDisplayMedia replaced in the page), a guest's page shows it in its second
video, decoded there, and a guest of a room where guests may not present is told so."""

from __future__ import annotations

from typing import Any

from tests.web.pictures import colour_share
from vdx.conference.policy import RoomConfig

from .conftest import WebNode, check_accessibility, new_page, receives_media, wait_for
from .test_join import join, portal_link

BLUE_SCREEN = """
navigator.mediaDevices.getDisplayMedia = async () => {
  const colour = window.vdxScreenColour || "rgb(0, 0, 255)";
  const c = document.createElement("canvas");
  c.width = 640; c.height = 360;
  const g = c.getContext("2d");
  const paint = () => { g.fillStyle = colour; g.fillRect(0, 0, c.width, c.height); };
  paint();
  setInterval(paint, 100);  // a canvas stream sends a frame when the canvas is drawn
  window.vdxScreenShared = (window.vdxScreenShared || 0) + 1;
  window.vdxScreen = c.captureStream(15);
  return window.vdxScreen;
};
"""
RED_SCREEN = 'window.vdxScreenColour = "rgb(255, 0, 0)";' + BLUE_SCREEN


async def test_a_host_presents_and_a_guest_sees_it_but_may_not_present(web: WebNode, browser: Any) -> None:
    alias = "55550090@vdx.test"
    web.rooms.put(RoomConfig(alias=alias, host_pin="1234", guest_pin="5678", guests_can_present=False))

    host = await new_page(browser)
    await host.add_init_script(BLUE_SCREEN)
    await join(host, portal_link(web, alias, pin=1234), "Anna")
    guest = await new_page(browser)
    await guest.add_init_script(BLUE_SCREEN)
    await join(guest, portal_link(web, alias, pin=5678), "Bo")
    await receives_media(guest, "the room at Bo's")

    await host.get_by_role("button", name="Present").click()
    await wait_for(
        host, "window.vdxCall.presenting && window.vdxScreenShared === 1", "Anna shares her screen"
    )
    assert await host.get_by_role("button", name="Stop presenting").get_attribute("aria-pressed") == "true"
    # Bo's page shows Anna's blue screen in its second video, beside the room's picture.
    await wait_for(guest, f"({colour_share('blue', 'presentation')})() > 0.8", "the blue screen at Bo's")
    assert await guest.locator("#presentation").is_visible() and await guest.locator("#remote").is_visible()
    assert await guest.locator("#presenter-note").inner_text() == "Anna is presenting"
    assert await host.locator("#presenter-note").inner_text() == "You are presenting your screen"
    assert web.rooms.live_conference(alias).presenter == await host.evaluate("window.vdxCall.participantId")

    # Bo is a guest where guests may not present: the page says so and shares nothing.
    await guest.get_by_role("button", name="Present").click()
    await wait_for(
        guest,
        "document.getElementById('problem').textContent.includes('Guests may not present')",
        "the refusal on Bo's page",
    )
    assert await guest.evaluate("window.vdxScreenShared === undefined && !window.vdxCall.presenting")
    assert await guest.evaluate("window.vdxCall.state") == "call"
    await check_accessibility(guest, "join page with a presentation")

    # Anna stops: Bo's second video goes away.
    await host.get_by_role("button", name="Stop presenting").click()
    await wait_for(
        guest, "document.getElementById('presentation-stage').hidden", "the presentation gone at Bo's"
    )
    assert web.rooms.live_conference(alias).presenter is None


async def test_a_second_presenter_takes_over_and_the_first_page_stops_sharing(
    web: WebNode, browser: Any
) -> None:
    alias = "55550091@vdx.test"
    web.rooms.put(RoomConfig(alias=alias))  # no PINs: both are hosts
    anna = await new_page(browser)
    await anna.add_init_script(BLUE_SCREEN)
    await join(anna, portal_link(web, alias), "Anna")
    bo = await new_page(browser)
    await bo.add_init_script(RED_SCREEN)
    await join(bo, portal_link(web, alias), "Bo")
    await receives_media(anna, "the room at Anna's")

    await anna.get_by_role("button", name="Present").click()
    await wait_for(bo, f"({colour_share('blue', 'presentation')})() > 0.8", "Anna's blue screen at Bo's")
    await bo.get_by_role("button", name="Present").click()
    # Anna's page says who took over, stops capturing, and shows Bo's red screen instead.
    await wait_for(
        anna,
        "document.getElementById('status').textContent.includes('Bo took over the presentation')",
        "the takeover told at Anna's",
    )
    await wait_for(
        anna,
        "!window.vdxCall.presenting && window.vdxScreen.getVideoTracks()[0].readyState === 'ended'",
        "Anna's capture stopped",
    )
    await wait_for(anna, f"({colour_share('red', 'presentation')})() > 0.8", "Bo's red screen at Anna's")
    assert await anna.locator("#presenter-note").inner_text() == "Bo is presenting"
    assert await anna.get_by_role("button", name="Present").get_attribute("aria-pressed") == "false"
