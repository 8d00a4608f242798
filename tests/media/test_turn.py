"""TURN credentials that expire (issue 15, item 8): only a joiner the room let in gets them, a
local coturn honours them until they expire, and a call relayed through it carries media."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time

import pytest
from aioice.turn import create_turn_endpoint
from aiortc import RTCConfiguration, RTCIceServer
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from harness.bot import BLUE, RED
from harness.turn import TurnServer
from harness.waiting import until
from vdx.legs.turn_credentials import turn_credential

from .conftest import running_node
from .test_rooms import sees_others

pytestmark = pytest.mark.media
SECRET = TurnServer.SECRET


def _turn_server_of(ice_servers):
    [server] = [s for s in ice_servers if "username" in s]
    return server


async def test_credentials_only_for_a_joiner_the_room_let_in(settings_factory):
    """No TURN credential in the page configuration, for an unknown room or a wrong PIN; the
    joined participant gets one made from the secret, expiring after VDX_TURN_TTL."""
    async with running_node(
        settings_factory,
        stun_servers="stun:stun.vdx.test:3478",
        turn_servers="turn:turn.vdx.test:3478?transport=udp,turns:turn.vdx.test:5349",
        turn_secret=SECRET,
        turn_ttl=1800,
    ) as node:
        config = await node.http.get("/web/config")
        assert config.status_code == 200
        assert "iceServers" not in config.json() and SECRET not in config.text

        stranger = node.bot("0000@vdx.test", "Stranger")
        await stranger.connect()
        await stranger.until(lambda: stranger.closed.is_set(), 5, "socket closed")
        assert stranger.last("error")["code"] == "not_found"

        node.add_room("4100@vdx.test", host_pin="1234", guest_pin="5678")
        guesser = node.bot("4100@vdx.test", "Guesser")
        await guesser.connect()
        assert (await guesser.join())["code"] == "pin_required"
        assert (await guesser.join("0000"))["code"] == "wrong_pin"
        for b in (stranger, guesser):
            assert not any("iceServers" in m or "credential" in str(m) for m in b.messages), b.messages

        before = int(time.time())
        joined = await guesser.join("5678")
        assert joined["type"] == "joined"
        ice = joined["iceServers"]
        assert {"urls": "stun:stun.vdx.test:3478"} in ice
        turn = _turn_server_of(ice)
        assert turn["urls"] == ["turn:turn.vdx.test:3478?transport=udp", "turns:turn.vdx.test:5349"]
        expires, holder = turn["username"].split(":")
        assert holder == joined["participantId"]
        assert before + 1800 <= int(expires) <= int(time.time()) + 1800
        digest = hmac.new(SECRET.encode(), turn["username"].encode(), hashlib.sha1).digest()
        assert turn["credential"] == base64.b64encode(digest).decode()


class _Peer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.errors: list[Exception] = []

    def error_received(self, exc: Exception) -> None:
        self.errors.append(exc)


async def test_coturn_relays_for_a_fresh_credential_and_refuses_an_expired_one(turn):
    """coturn's own check, with aioice's TURN client: a fresh credential allocates a relay (which
    reaches the node's address and nothing else), an expired or forged one gets 401."""
    fresh = turn_credential(SECRET, 60, "p-fresh")
    transport, peer = await create_turn_endpoint(
        _Peer, ("127.0.0.1", turn.port), fresh.username, fresh.password
    )
    try:
        assert transport.get_extra_info("sockname")[0] == "127.0.0.1"
        transport.sendto(b"hello", ("127.0.0.2", 9))  # not the node: coturn forbids the peer
        await until(lambda: peer.errors, 5, "a refused channel to a peer that is not the node")
        assert "403" in str(peer.errors[0])
    finally:
        transport.close()
    # signed with the right secret, but its time is past
    expired = turn_credential(SECRET, 60, "p-expired", now=time.time() - 120)
    with pytest.raises(Exception, match="401"):
        await create_turn_endpoint(_Peer, ("127.0.0.1", turn.port), expired.username, expired.password)
    forged = turn_credential("not-the-secret", 60, "p-forged")
    with pytest.raises(Exception, match="401"):
        await create_turn_endpoint(_Peer, ("127.0.0.1", turn.port), forged.username, forged.password)
    log = turn.log()
    assert "p-expired" in log and "p-forged" in log  # refused by coturn, not lost on the way


class _Sink(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.got.append(data)


async def test_a_relay_allocated_in_time_outlives_its_credential(turn):
    """coturn checks the expiry when a relay is allocated; a call that began in time goes on (new
    peers included) after its credential expired, so a consultation may outlast VDX_TURN_TTL."""
    loop = asyncio.get_running_loop()
    sink_transport, sink = await loop.create_datagram_endpoint(_Sink, local_addr=("127.0.0.1", 0))
    cred = turn_credential(SECRET, 2, "p-long-call")
    transport, peer = await create_turn_endpoint(
        _Peer, ("127.0.0.1", turn.port), cred.username, cred.password
    )
    try:
        await until(lambda: time.time() > cred.expires + 1, 10, "the credential expired")
        transport.sendto(b"still here", sink_transport.get_extra_info("sockname"))
        await until(lambda: sink.got, 5, "data relayed after the credential expired")
        assert sink.got == [b"still here"] and not peer.errors
    finally:
        transport.close()
        sink_transport.close()


async def test_a_call_relayed_through_coturn_carries_media(settings_factory, turn):
    """A bot that may use relay candidates only (RTCConfiguration relay policy, the credentials of
    its ``joined``) meets a bot on a direct path: each sees the other's colour, and coturn logs
    the relay's allocation for the relayed participant."""
    async with running_node(settings_factory, turn_servers=turn.url, turn_secret=SECRET) as node:
        node.add_room("4200@vdx.test", host_view="four_mains_zero_pips", enable_overlay_text=False)
        direct = node.bot("4200@vdx.test", "Direct", colour=RED)
        relayed = node.bot("4200@vdx.test", "Relayed", colour=BLUE)
        await direct.connect()
        assert (await direct.join())["type"] == "joined"
        await direct.start_media()
        await relayed.connect()
        joined = await relayed.join()
        server = _turn_server_of(joined["iceServers"])
        config = RTCConfiguration(
            iceServers=[RTCIceServer(server["urls"][0], server["username"], server["credential"])],
            iceTransportPolicy=RTCIceTransportPolicy.RELAY,
        )
        await relayed.start_media(config=config)
        assert relayed.pc is not None
        assert "typ relay" in relayed.pc.localDescription.sdp
        assert "typ host" not in relayed.pc.localDescription.sdp
        colours = {direct.participant_id: RED, relayed.participant_id: BLUE}
        for b in (relayed, direct):
            await b.until(
                lambda b=b: sees_others(b, colours, "four_mains_zero_pips"), 25, "the other's colour"
            )
        # coturn allocated a relay for this participant's credential and bound a channel to the
        # node's address through it
        user = f"user <{server['username']}>"
        await until(
            lambda: (
                f"{user}: incoming packet ALLOCATE processed, success" in turn.log()
                and f"{user}: incoming packet CHANNEL_BIND processed, success" in turn.log()
            ),
            5,
            "coturn's log of the relay",
        )
        # the node's own leg gathered no relay candidate (VDX_NODE_USES_TURN is off)
        assert "typ relay" not in relayed.pc.remoteDescription.sdp


async def test_a_node_behind_nat_relays_its_own_legs_when_told(settings_factory, turn):
    """VDX_NODE_USES_TURN: the node's answer carries a relay candidate of its own, allocated with
    a credential made from the same secret."""
    async with running_node(
        settings_factory, turn_servers=turn.url, turn_secret=SECRET, node_uses_turn=True
    ) as node:
        node.add_room("4300@vdx.test")
        bot = node.bot("4300@vdx.test", "Bot")
        await bot.connect()
        assert (await bot.join())["type"] == "joined"
        await bot.start_media()
        assert bot.pc is not None
        assert "typ relay" in bot.pc.remoteDescription.sdp
        await until(
            lambda: ":vdx-node>: incoming packet ALLOCATE processed, success" in turn.log(), 5, "node's relay"
        )
        await bot.until(lambda: bot.video_frames > 5, 20, "the room's picture")
