"""The point-to-point page (issue 19): a browser signed in as a device waits for calls that a
routing rule sends to ``browser:NAME``. A room system (baresip) dials the device's alias, the page
rings with the caller's name and answers, and each side decodes the other's colour through the
bridge. A raw SIP client shows the other outcomes: nobody waiting is 480, a decline 603, a call
that rings out 480, a caller that hangs up while it rings stops the ringing; a wrong secret on the
page is a readable message and no waiting."""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.bot import BLUE
from harness.ports import free_sip_port
from harness.waiting import until
from tests.interop.softphones import Baresip
from tests.interop.uac import SDP, Uac
from tests.web.pictures import colour_share
from tests.web.test_join_redirect import RED_YUV, coloured_chromium, solid_y4m
from vdx.booking.roles import ADMIN
from vdx.settings import Settings
from vdx.sip.message import SipResponse

from .conftest import WebNode, check_accessibility, new_page, running_node, wait_for
from .test_csp import no_violations, open_page
from .test_gateway_browser import bridged
from .test_join import portal_link

RED_SHARE = colour_share("red")
RULE = {"match": r"desk(@.*)?", "replace": "browser:reception", "priority": 10}


def _sip() -> dict[str, Any]:
    return {
        "sip_enabled": True,
        "sip_host": "127.0.0.1",
        "sip_port": free_sip_port(),
        "sip_tls_port": 0,
        "node_provisioner": True,  # what checks a page's device with the API
    }


async def _device_and_rule(web: WebNode) -> str:
    """The device ``reception`` (its secret) and a rule sending ``desk`` to it, through the API;
    the node has the rule once its refresher has read it."""
    ops = web.settings.node_organisation
    admin = web.auth(ops, "ops@vdx.test", ADMIN)
    ctx = f"{web.settings.api_context}/node/v1"
    r = await web.http.post(f"{ctx}/devices", json={"name": "reception"}, headers=admin)
    assert r.status_code == 201, r.text
    secret = str(r.json()["secret"])
    r = await web.http.put(f"{ctx}/routing-rules/desk", json=RULE, headers=admin)
    assert r.status_code == 201, r.text
    await until(lambda: bool(web.rooms.call_routing.rules), 20, "the node has read the rule")
    return secret


async def sign_in(page: Any, base: str, secret: str, expect: str = "waiting") -> None:
    """The point-to-point page at ``base`` signed in as ``reception``; ``expect``: its state after."""
    await page.goto(f"{base}/wait")
    await page.get_by_label("Device name").fill("reception")
    await page.get_by_label("Secret").fill(secret)
    await page.get_by_role("button", name="Wait for calls").click()
    await wait_for(page, f"window.vdxCall.state === '{expect}'", f"the page {expect}")


async def test_a_room_system_calls_a_waiting_browser_and_each_sees_the_other(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    if shutil.which("baresip") is None:
        pytest.fail("baresip is missing: apt-get install -y baresip baresip-ffmpeg (make test installs it)")
    sip = _sip()
    phone = Baresip(tmp_path / "roomsystem", RED_YUV, 300.0, "vp8.so")
    async with (
        running_node(settings_factory, **sip) as web,
        coloured_chromium(solid_y4m(tmp_path / "blue.y4m", BLUE)) as browser,
    ):
        secret = await _device_and_rule(web)
        page = await new_page(browser)
        await sign_in(page, web.base, secret)
        try:
            await phone.dial(f"sip:desk@127.0.0.1:{sip['sip_port']}")
            await wait_for(page, "window.vdxCall.state === 'ringing'", "the page rings")
            assert "roomsystem" in await page.locator("#caller").inner_text()
            await page.get_by_role("button", name="Answer").click()
            await wait_for(page, "window.vdxCall.state === 'call'", "the page in the call")
            await bridged(web, page, phone)
        finally:
            await phone.stop()
        # the room system hangs up: the bridge ends, nothing of it is left, the page waits again
        await until(lambda: not web.rooms.live, 15, "the bridge gone")
        assert not any(a.startswith("gw-") for a in web.rooms.aliases())
        await wait_for(page, "window.vdxCall.state === 'waiting'", "the page waiting again")
        await until(lambda: "reception" in web.rooms.waiting.waiting, 10, "the device waiting again")


class DeskCaller:
    """One raw SIP call to ``desk`` (audio only), a socket of its own."""

    def __init__(self, port: int, domain: str = "vdx.test") -> None:
        self.uac = Uac(port, domain=domain)
        self.branch = "z9hG4bK" + secrets.token_hex(6)
        body = SDP.format(version=1, port=40000, proto="RTP/AVP", extra="", direction="sendrecv")
        self.uac.send(self.uac.build("INVITE", "desk", body=body, branch=self.branch))
        self.cseq = self.uac.cseq

    async def ringing(self) -> int:
        """The first provisional answer above 100 Trying."""
        while True:
            progress = await asyncio.to_thread(self.uac.recv, False)
            if progress.status > 100:
                return progress.status

    def cancel(self) -> None:
        self.uac.send(self.uac.build("CANCEL", "desk", branch=self.branch, cseq=self.cseq))

    async def answer(self) -> SipResponse:
        """The INVITE's final answer, acknowledged (§17.1.1.3: the same transaction)."""
        answer = await self.uac.final()
        self.uac.send(self.uac.build("ACK", "desk", branch=self.branch, cseq=self.cseq))
        self.uac.close()
        return answer

    async def final(self) -> int:
        return (await self.answer()).status


async def test_nobody_waiting_decline_ring_out_hang_up_and_a_wrong_secret(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    sip = _sip()
    async with (
        running_node(settings_factory, **sip) as web,
        coloured_chromium(solid_y4m(tmp_path / "blue.y4m", BLUE)) as browser,
    ):
        secret = await _device_and_rule(web)
        port = sip["sip_port"]
        # nobody waiting: 480
        assert await DeskCaller(port).final() == 480

        # a wrong secret: a readable message, no waiting (the page under its CSP throughout)
        page, console = await open_page(browser, f"{web.base}/wait")
        await check_accessibility(page, "the point-to-point page")
        await sign_in(page, web.base, secret + "x", expect="signin")
        await wait_for(page, "window.vdxCall.lastError === 'bad_credentials'", "the refusal")
        assert "Wrong device name or secret" in await page.locator("#problem").inner_text()
        assert not web.rooms.waiting.waiting

        # declined: 180 Ringing, the caller's name on the page, then 603
        await sign_in(page, web.base, secret)
        caller = DeskCaller(port)
        assert await caller.ringing() == 180
        await wait_for(page, "window.vdxCall.state === 'ringing'", "the page rings")
        assert "room" in await page.locator("#caller").inner_text()
        await check_accessibility(page, "the point-to-point page ringing")
        await page.get_by_role("button", name="Decline").click()
        assert await caller.final() == 603

        # the caller hangs up while it rings: 487 to the INVITE, the page stops ringing
        caller = DeskCaller(port)
        assert await caller.ringing() == 180
        await wait_for(page, "window.vdxCall.state === 'ringing'", "the page rings again")
        caller.cancel()
        assert await caller.final() == 487
        await wait_for(page, "window.vdxCall.state === 'waiting'", "the ringing stopped")
        assert "hung up" in await page.locator("#ended-text").inner_text()

        # nobody answers: 480 once the ring timeout passes, and the page waits on
        web.rooms.waiting.ring_timeout = 1.0
        caller = DeskCaller(port)
        assert await caller.ringing() == 180
        assert await caller.final() == 480
        await wait_for(page, "window.vdxCall.state === 'waiting'", "the page waiting on")
        assert "reception" in web.rooms.waiting.waiting
        assert not web.rooms.live and not any(a.startswith("gw-") for a in web.rooms.aliases())
        # the device removed: its page waits no more, and says so
        ops = web.auth(web.settings.node_organisation, "ops@vdx.test", ADMIN)
        r = await web.http.delete(f"{web.settings.api_context}/node/v1/devices/reception", headers=ops)
        assert r.status_code == 204, r.text
        await wait_for(page, "window.vdxCall.state === 'signin'", "the page let go")
        assert "removed" in await page.locator("#problem").inner_text()
        assert not web.rooms.waiting.waiting
        assert await DeskCaller(port).final() == 480
        await no_violations(page, console, "the point-to-point page")


async def test_a_browser_calls_a_waiting_browser(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """A join link to the device's alias rings the page as a SIP call would; answered, the two
    pages see each other (red camera on one side, blue on the other)."""
    async with (
        running_node(settings_factory, **_sip()) as web,
        coloured_chromium(solid_y4m(tmp_path / "blue.y4m", BLUE)) as blue,
        coloured_chromium(solid_y4m(tmp_path / "red.y4m", RED_YUV)) as red,
    ):
        secret = await _device_and_rule(web)
        desk = await new_page(blue)
        await sign_in(desk, web.base, secret)

        citizen = await new_page(red)
        await citizen.goto(portal_link(web, "desk@vdx.test"))
        await wait_for(citizen, "window.vdxCall && window.vdxCall.ready", "preview ready")
        await citizen.get_by_label("Your name").fill("Citizen")
        await citizen.get_by_role("button", name="Join").click()
        await wait_for(desk, "window.vdxCall.state === 'ringing'", "the page rings")
        assert "Citizen" in await desk.locator("#caller").inner_text()
        await desk.get_by_role("button", name="Answer").click()
        await wait_for(citizen, "window.vdxCall.state === 'call'", "the citizen in the call")
        await wait_for(desk, f"({RED_SHARE})() > 0.3", "the citizen's red on the page")
        await wait_for(citizen, f"({colour_share('blue')})() > 0.3", "the page's blue at the citizen's")
        (bridge,) = [c for c in web.rooms.live.values() if c.alias.startswith("gw-")]
        assert [p.protocol for p in bridge.participants.values()] == ["webrtc", "webrtc"]

        # the citizen leaves: the bridge ends and the page waits again
        await citizen.get_by_role("button", name="Leave").click()
        await until(lambda: not web.rooms.live, 15, "the bridge gone")
        await wait_for(desk, "window.vdxCall.state === 'waiting'", "the page waiting again")

        # declined: the caller reads so
        await citizen.goto(portal_link(web, "desk@vdx.test"))
        await wait_for(citizen, "window.vdxCall && window.vdxCall.ready", "preview ready")
        await citizen.get_by_label("Your name").fill("Citizen")
        await citizen.get_by_role("button", name="Join").click()
        await wait_for(desk, "window.vdxCall.state === 'ringing'", "the page rings again")
        await desk.get_by_role("button", name="Decline").click()
        await wait_for(citizen, "window.vdxCall.lastError === 'declined'", "the citizen told")
        assert "declined" in await citizen.locator("#problem").inner_text()
