"""Two nodes, the room on one (placed by hand): a caller who reaches the other is sent on. Over
WebSocket a ``redirect`` message the client follows; over SIP a 302 that baresip, linphonec and
sipp follow by themselves, landing in the room on the hosting node."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from harness.bot import GREEN
from harness.waiting import until
from vdx.node.routing import MOVING, NodeInfo

from .conftest import run_sipp_at
from .placed import Placed
from .sipnode import SipNode, run_sip_node
from .softphones import Baresip, Linphonec
from .test_sip_room_peers import RED_YUV

pytestmark = pytest.mark.interop

ROOM = "7300@vdx.test"


def info(node: SipNode, node_id: str) -> NodeInfo:
    """How the cluster's registry would announce ``node``."""
    address = f"127.0.0.1:{node.sip.port}"
    return NodeInfo(
        id=node_id,
        http_url=node.base,
        sip={"udp": address, "tcp": address, "tls": f"127.0.0.1:{node.sip.tls_port}"},
    )


@asynccontextmanager
async def two_nodes(settings_factory) -> AsyncIterator[tuple[SipNode, SipNode, Placed]]:  # type: ignore[no-untyped-def]
    """Node A (the entry, hosting nothing) and node B (hosting ROOM); A's locator says where."""
    async with (
        run_sip_node(settings_factory, node_id="node-a") as a,
        run_sip_node(settings_factory, node_id="node-b") as b,
    ):
        b.add_room(ROOM, enable_overlay_text=False)
        placed = Placed()
        placed.place(ROOM, info(b, "node-b"))
        a.rooms.locator = placed
        yield a, b, placed


def sip_participants(node: SipNode) -> int:
    conf = node.rooms.live_conference(ROOM)
    return 0 if conf is None else sum(p.protocol == "sip" for p in conf.participants.values())


async def test_websocket_join_is_redirected_and_a_moving_room_says_retry(settings_factory) -> None:
    async with two_nodes(settings_factory) as (a, b, placed):
        stay = a.bot(ROOM, "Stays")
        await stay.connect()
        answer = await stay.join(follow=0)
        assert answer == {
            "type": "redirect",
            "url": f"{b.base.replace('http', 'ws')}/ws/rooms/{ROOM}",
            "node": "node-b",
        }
        await stay.until(lambda: stay.closed.is_set(), 5, "the redirecting node closes")
        assert stay.close_code == 4307
        assert a.rooms.live_conference(ROOM) is None  # the entry node starts no conference

        follows = a.bot(ROOM, "Follows")
        await follows.connect()
        joined = await follows.join()
        assert joined["type"] == "joined" and follows.url.startswith(b.base.replace("http", "ws"))
        conf = b.rooms.live_conference(ROOM)
        assert conf is not None and follows.participant_id in conf.participants

        placed.routes[ROOM] = MOVING
        later = a.bot(ROOM, "Later")
        await later.connect()
        error = await later.join()
        assert (error["code"], error["retryAfter"]) == ("moving", 2)
        await later.until(lambda: later.closed.is_set(), 5, "the moving answer closes")
        assert later.close_code == 1013


async def test_sipp_follows_the_302_to_the_hosting_node(settings_factory, tmp_path: Path) -> None:
    async with two_nodes(settings_factory) as (a, b, _placed):
        bot = b.bot(ROOM, "Bot")
        await bot.connect()
        await bot.join()
        result = await run_sipp_at(a.sip.port, tmp_path, "follow_302.xml", "7300", "-d", "3000", "-rtp_echo")
        assert result.returncode == 0, result.describe()
        assert "SIP/2.0 302 Moved Temporarily" in result.messages
        assert f"Contact: <sip:7300@127.0.0.1:{b.sip.port};transport=udp>" in result.messages
        assert a.calls.refusals.get(302) == 1 and b.calls.refusals.get(302) is None
        assert not a.sip.calls  # the entry node keeps no dialog of a call it sent on


async def test_two_baresips_through_two_nodes_see_and_hear_each_other(
    settings_factory, tmp_path: Path
) -> None:
    """H.264 through the entry node (302), VP8 straight to the hosting node: each decodes the
    other's colour and hears the other's tone."""
    if shutil.which("baresip") is None:
        pytest.fail("baresip is missing: apt-get install -y baresip baresip-ffmpeg (make test installs it)")
    async with two_nodes(settings_factory) as (a, b, _placed):
        h264 = Baresip(tmp_path / "h264", RED_YUV, 300.0, "avcodec.so")
        vp8 = Baresip(tmp_path / "vp8", GREEN, 500.0, "vp8.so")
        try:
            await h264.dial(f"sip:7300@127.0.0.1:{a.sip.port}")
            await vp8.dial(f"sip:7300@127.0.0.1:{b.sip.port}")
            await until(lambda: sip_participants(b) == 2, 20, lambda: f"both in the room: {h264.tail()}")
            assert a.calls.refusals.get(302) == 1 and sip_participants(a) == 0
            await _see_and_hear(h264, vp8)
        finally:
            await h264.stop()
            await vp8.stop()


async def _see_and_hear(one: Baresip, other: Baresip) -> None:
    from harness.bot import colour_close

    for me, them in ((one, other), (other, one)):
        await until(
            lambda me=me, them=them: (c := me.seen()) is not None and colour_close(c, them.colour, 30),
            20,
            lambda me=me: f"{me.home.name} sees the other's colour (last {me.seen()}): {me.tail()}",
        )
        await until(lambda me=me, them=them: me.hears(them.hz) > 50, 15, f"{me.home.name} hears the other")


async def test_linphonec_follows_the_302(settings_factory, tmp_path: Path) -> None:
    if shutil.which("linphonec") is None:
        pytest.fail("linphonec is missing: apt-get install -y linphone-cli (make test installs it)")
    async with two_nodes(settings_factory) as (a, b, _placed):
        bot = b.bot(ROOM, "Bot", colour=GREEN, tone=700.0)
        await bot.connect()
        await bot.join()
        await bot.start_media()
        phone = Linphonec(tmp_path / "linphone", 300.0)
        try:
            await phone.start()
            await phone.say(f"call sip:7300@127.0.0.1:{a.sip.port}")
            await until(
                lambda: sip_participants(b) == 1, 20, lambda: f"linphonec in the room: {phone.tail()}"
            )
            await bot.until(lambda: bot.tone_power(300.0) > 50, 15, "linphonec's 300 Hz at the bot")
            assert a.calls.refusals.get(302) == 1 and sip_participants(a) == 0
        finally:
            await phone.stop()


async def test_a_tls_caller_is_sent_to_the_hosting_nodes_tls_port(settings_factory, tmp_path: Path) -> None:
    """TLS + SRTP through the entry node: the 302 names the host's TLS listener, never plain text."""
    if shutil.which("baresip") is None:
        pytest.fail("baresip is missing: apt-get install -y baresip baresip-ffmpeg (make test installs it)")
    async with two_nodes(settings_factory) as (a, b, _placed):
        cafile = b.settings.data_dir / "sip-tls-cert.pem"
        phone = Baresip(tmp_path / "tls", RED_YUV, 300.0, "vp8.so", cafile=cafile, srtp=True)
        try:
            await phone.dial(f"sip:7300@127.0.0.1:{a.sip.tls_port};transport=tls")
            await until(lambda: sip_participants(b) == 1, 20, lambda: f"baresip in the room: {phone.tail()}")
            call = next(iter(b.calls.joined))
            assert call.incoming.secure and call.incoming.transport == "tls"
            video = call.negotiation.stream("video") if call.negotiation else None
            assert video is not None and video.srtp_suite is not None
            assert a.calls.refusals.get(302) == 1
        finally:
            await phone.stop()
