"""Any node takes any caller, on one ``vdx api`` and three ``vdx node`` processes: SIP room systems
that dial a node without the room are sent on with 302 (baresip, linphonec, SIPp follow it), a
browser that opens a node's join link is redirected to the room's node, and when that node is
SIGKILLed the browser is back in the room on its new node by itself while a SIP caller who redials
gets in. Every check is what a caller decodes: colours and tones."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from harness.bot import BLUE, GREEN, Bot, colour_close
from harness.waiting import until
from tests.cluster.conftest import Cluster
from tests.interop.conftest import run_sipp_at
from tests.interop.softphones import Baresip, Linphonec
from tests.interop.test_sip_room_peers import RED_YUV
from tests.web.conftest import new_page, receives_media, wait_for
from tests.web.test_join_redirect import GREEN_SHARE, coloured_chromium, solid_y4m

pytestmark = [pytest.mark.cluster, pytest.mark.pg, pytest.mark.slow]


@pytest.fixture
async def media_cluster(tmp_path: Path, database_url: str | None) -> AsyncIterator[Cluster]:
    """The cluster with media sized for two shared cores, and join pages that may follow a
    redirect to any node on this machine (CSP connect-src)."""
    if not database_url:
        pytest.fail("cluster tests run on PostgreSQL: set VDX_TEST_DATABASE_URL (make test does)")
    c = Cluster(tmp_path, database_url)
    for node in c.nodes.values():
        node.env.update(
            {
                "VDX_MEDIA_SIZE_CAP": "320x180",
                "VDX_MEDIA_FPS": "15",
                "VDX_MEDIA_KEYFRAME_INTERVAL": "0.3",
                "VDX_NODE_ORIGINS": "http://127.0.0.1:*",
            }
        )
    async with c.serving():
        yield c


async def open_room(cluster: Cluster) -> tuple[str, str, list[str]]:
    """A meeting open now without PINs: its alias, its host and the other nodes."""
    uuid, _ = await cluster.book(enable_overlay_text=False)
    si = await cluster.provisioned(uuid)
    host = cluster.host_of(si)
    return si["uriWithDomain"], host, [n for n in cluster.nodes if n != host]


def sip_uri(cluster: Cluster, node_id: str, alias: str) -> str:
    return f"sip:{alias.split('@')[0]}@127.0.0.1:{cluster.sip_ports[node_id]}"


def sent_on(cluster: Cluster, node_id: str) -> int:
    """How many INVITEs ``node_id`` answered with a 302 (its log says so)."""
    return cluster.log(node_id).count(" answered 302 ")


async def sees_and_hears(me: Baresip, colour: tuple[int, int, int], hz: float, what: str) -> None:
    await until(
        lambda: (c := me.seen()) is not None and colour_close(c, colour, 35),
        30,
        lambda: f"{me.home.name} sees {what} (last {me.seen()}): {me.tail()}",
    )
    await until(lambda: me.hears(hz) > 50, 20, lambda: f"{me.home.name} hears {what}: {me.tail()}")


async def test_h264_and_vp8_callers_through_two_other_nodes_see_and_hear_each_other(
    media_cluster: Cluster, tmp_path: Path
) -> None:
    if shutil.which("baresip") is None:
        pytest.fail("baresip is missing: apt-get install -y baresip baresip-ffmpeg (make test installs it)")
    cluster = media_cluster
    alias, host, (one, other) = await open_room(cluster)
    h264 = Baresip(tmp_path / "h264", RED_YUV, 300.0, "avcodec.so")
    vp8 = Baresip(tmp_path / "vp8", GREEN, 500.0, "vp8.so")
    try:
        await h264.dial(sip_uri(cluster, one, alias))
        await vp8.dial(sip_uri(cluster, other, alias))
        await sees_and_hears(h264, GREEN, 500.0, "the VP8 caller")
        await sees_and_hears(vp8, RED_YUV, 300.0, "the H.264 caller")
        # each was sent on by the node it dialled; the host carries both calls
        assert sent_on(cluster, one) == 1 and sent_on(cluster, other) == 1 and sent_on(cluster, host) == 0
        assert (await cluster.view(host, alias))["route"]["where"] == "here"
        # three nodes on one data directory made their spoken prompts side by side without a clash
        assert not [n for n in cluster.nodes if "could not make the IVR prompts" in cluster.log(n)]
    finally:
        await h264.stop()
        await vp8.stop()


async def test_sipp_and_linphonec_follow_the_302_into_the_room(
    media_cluster: Cluster, tmp_path: Path
) -> None:
    if shutil.which("linphonec") is None:
        pytest.fail("linphonec is missing: apt-get install -y linphone-cli (make test installs it)")
    cluster = media_cluster
    alias, host, (one, other) = await open_room(cluster)
    # a bot in the room on its node hears who gets there
    bot = Bot(cluster.ws_url(host, alias), "Bot", colour=BLUE, tone=700.0)
    await bot.connect()
    assert (await bot.join())["type"] == "joined"
    await bot.start_media()
    phone = Linphonec(tmp_path / "linphone", 300.0)
    try:
        number = alias.split("@")[0]
        result = await run_sipp_at(
            cluster.sip_ports[one], tmp_path, "follow_302.xml", number, "-d", "2000", "-rtp_echo"
        )
        assert result.returncode == 0, result.describe()
        assert f"Contact: <sip:{number}@127.0.0.1:{cluster.sip_ports[host]};transport=udp>" in result.messages
        assert "SIP sip:sipp@" in cluster.log(host)  # it joined there
        # sipp has left: the room is quiet before linphonec comes (no tone of its own in the bot's ear)
        await bot.until(lambda: bot.tone_power(300.0) < 10, 10, "quiet after sipp")
        await phone.start()
        await phone.say(f"call {sip_uri(cluster, other, alias)}")
        await until(
            lambda: "SIP sip:linphone@" in cluster.log(host),
            30,
            lambda: f"linphonec on the host: {phone.tail()}",
        )
        await bot.until(lambda: bot.tone_power(300.0) > 50, 30, lambda: f"linphonec's tone: {phone.tail()}")
        assert sent_on(cluster, one) == 1 and sent_on(cluster, other) == 1
    finally:
        await phone.stop()
        await bot.close()


async def test_a_browser_through_another_node_meets_a_sip_caller_and_survives_its_node(
    media_cluster: Cluster, tmp_path: Path
) -> None:
    """Chromium (a red camera) opens the join link of a node without the room and lands on the
    room's node, with a baresip (green) that dialled the third node. SIGKILL the room's node: the
    page is back in the room on its new node by itself, and the room system's redial through
    another node gets in; colours both ways again."""
    if shutil.which("baresip") is None:
        pytest.fail("baresip is missing: apt-get install -y baresip baresip-ffmpeg (make test installs it)")
    cluster = media_cluster
    alias, host, (entry, third) = await open_room(cluster)
    phone = Baresip(tmp_path / "baresip", GREEN, 500.0, "vp8.so")
    again = Baresip(tmp_path / "redial", GREEN, 500.0, "vp8.so")
    async with coloured_chromium(solid_y4m(tmp_path / "red.y4m", RED_YUV)) as browser:
        try:
            await phone.dial(sip_uri(cluster, third, alias))
            page = await new_page(browser)
            await page.goto(f"{cluster.nodes[entry].base_url}/join/?conference={alias}")
            await wait_for(page, "window.vdxCall && window.vdxCall.ready", "preview ready")
            await page.get_by_label("Your name").fill("Anna")
            await page.get_by_role("button", name="Join").click()
            await wait_for(page, "window.vdxCall.state === 'call'", "Anna in the call", 30000)
            assert await page.evaluate("window.vdxCall.node") == host
            await _both_ways(page, phone, "before the kill")
            first = await page.evaluate("window.vdxCall.participantId")

            cluster.kill(host)
            # the page notices, says so, and rejoins through its own node by itself
            await wait_for(page, "window.vdxCall.state === 'reconnecting'", "Anna reconnecting", 20000)
            assert "Reconnecting" in await page.locator("#status").inner_text()
            await phone.stop()  # its call died with the node; a room system redials
            await wait_for(
                page,
                f"window.vdxCall.state === 'call' && window.vdxCall.participantId !== {first!r}",
                "Anna back in the room by herself",
                60000,
            )
            new_host = await until(
                lambda: _host_now(cluster, alias, entry), 30, "the room's new node, as the entry node says"
            )
            assert new_host in (entry, third)
            url = await page.evaluate("window.vdxCall.url")
            assert url.startswith(cluster.nodes[new_host].ws_base)
            # a redial through the node that does not host the room now (302, or straight in)
            through = third if new_host == entry else entry
            await again.dial(sip_uri(cluster, through, alias))
            await _both_ways(page, again, "after the kill")
        finally:
            await phone.stop()
            await again.stop()


async def _host_now(cluster: Cluster, alias: str, asked: str) -> str | None:
    route: dict[str, Any] = (await cluster.view(asked, alias))["route"]
    if route["where"] == "here":
        return asked
    return str(route["node"]) if route["where"] == "elsewhere" else None


async def _both_ways(page: Any, phone: Baresip, when: str) -> None:
    await receives_media(page, f"the room at Anna's {when}", deadline_s=40)
    await wait_for(page, f"({GREEN_SHARE})() > 0.1", f"the room system's green in the page {when}", 40000)
    await until(
        lambda: (c := phone.seen()) is not None and colour_close(c, RED_YUV, 35),
        40,
        lambda: f"Anna's red at the room system {when} (last {phone.seen()}): {phone.tail()}",
    )
