"""Presentation with room systems over SIP (issue 18, item 3): a scripted room system offers a
presentation stream (RFC 4796 ``a=content:slides``) with BFCP (RFC 8856), receives a browser's
presentation on it while its main video stays the people's, takes the floor over BFCP (RFC 8855)
and presents to the browsers, and is revoked when a browser presents again. A guest where guests
may not present is refused the floor. No Debian SIP client speaks BFCP: the peer is scripted
(uac.py for SIP, rtp_peer.py for RTP, test_bfcp_peer's client over TCP)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from harness.bot import GREEN, PALETTE
from harness.waiting import until
from vdx.sip.bfcp import Attr, ErrorCode, Group, Message, Primitive, RequestStatus, decode, encode, u16
from vdx.sip.message import SipResponse
from vdx.sip.sdp import SessionDescription

from .rtp_peer import RtpPeer, VideoPeer
from .sipnode import SipNode, run_sip_node
from .test_bfcp_peer import TcpPeer, error_code, overall
from .uac import Uac

pytestmark = pytest.mark.interop

ROOM = "7410@vdx.test"
PIN_ROOM = "7411@vdx.test"
YELLOW, CYAN = PALETTE[3], PALETTE[4]


def content_offer(audio: int, video: int, content: int, udp: bool = False, codec: str = "VP8") -> str:
    """What a Cisco or Poly room system offers: audio, its camera, a presentation stream (in
    ``codec``) and BFCP over TCP where it connects to us (RFC 8856 ``setup:active``,
    ``floorctrl:c-only``), or UDP."""
    slides = (
        "a=rtpmap:100 VP8/90000\r\n"
        if codec == "VP8"
        else "a=rtpmap:100 H264/90000\r\na=fmtp:100 profile-level-id=42e01f;packetization-mode=1\r\n"
    )
    bfcp = (
        "m=application 9 UDP/BFCP *\r\na=floorctrl:c-only\r\n"
        if udp
        else "m=application 9 TCP/BFCP *\r\na=setup:active\r\na=connection:new\r\na=floorctrl:c-only\r\n"
    )
    return (
        "v=0\r\no=room 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {audio} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:101 0-16\r\na=sendrecv\r\n"
        f"m=video {video} RTP/AVP 100\r\na=rtpmap:100 VP8/90000\r\na=content:main\r\na=label:11\r\na=sendrecv\r\n"
        f"m=video {content} RTP/AVP 100\r\n{slides}a=content:slides\r\na=label:12\r\n"
        "a=sendrecv\r\n" + bfcp
    )


class RoomSystem:
    """A scripted room system: SIP, its three RTP streams and, once answered, its BFCP ids."""

    def __init__(
        self, node: SipNode, audio: RtpPeer, video: VideoPeer, content: VideoPeer, udp: bool = False
    ) -> None:
        self.uac = Uac(node.sip.port)
        self.udp = udp
        self.audio, self.video, self.content = audio, video, content
        self.answer: SessionDescription | None = None
        self.bfcp: TcpPeer | None = None

    @classmethod
    async def open(cls, node: SipNode, udp: bool = False, codec: str = "VP8") -> RoomSystem:
        """``codec``: of the presentation stream (the camera's is VP8)."""
        content = await VideoPeer.open(codec=codec)
        return cls(node, await RtpPeer.open(), await VideoPeer.open(), content, udp)

    @property
    def offer(self) -> str:
        return content_offer(
            self.audio.port, self.video.port, self.content.port, self.udp, self.content.codec
        )

    def answered(self, resp: SipResponse) -> SessionDescription:
        assert resp.status == 200, (resp.status, resp.reason)
        self.answer = SessionDescription.parse(resp.body)
        self.content.remote = ("127.0.0.1", self.answer.media[2].port)
        return self.answer

    async def call(self, alias: str) -> SessionDescription:
        answer = self.answered(await self.uac.call("INVITE", alias, body=self.offer))
        self.uac.ack(alias)
        return answer

    async def floor_client(self) -> TcpPeer:
        """Connect to the node's BFCP port (we are active) as the user the answer names."""
        assert self.answer is not None
        bfcp = self.answer.media[3]
        self.bfcp = await TcpPeer.connect(bfcp.port, int(bfcp.attr("userid") or 0))
        return self.bfcp

    def send(self, primitive: Primitive, *attrs: object) -> None:
        assert self.bfcp is not None and self.answer is not None
        self.bfcp.send(primitive, *attrs, conf=int(self.answer.media[3].attr("confid") or 0))

    def close(self) -> None:
        if self.bfcp is not None:
            self.bfcp.close()
        self.uac.close()
        for peer in (self.audio, self.video, self.content):
            peer.close()


def sees(peer: VideoPeer, colour: tuple[int, int, int], share: float = 0.9) -> bool:
    return peer.share(colour) > share


@pytest.mark.parametrize("codec", ["VP8", "H264"])
async def test_a_room_system_receives_takes_and_loses_the_presentation(settings_factory, codec: str) -> None:
    async with run_sip_node(settings_factory, sip_media_timeout=0.0) as node:
        node.add_room(ROOM, enable_overlay_text=False)
        anna = node.bot(ROOM, "Anna", colour=GREEN, tone=700.0)
        await anna.connect()
        assert (await anna.join())["type"] == "joined"
        await anna.start_media()
        room = await RoomSystem.open(node, codec=codec)
        sending = asyncio.Event()
        try:
            # (a) the answer takes the presentation stream and BFCP, the node as floor server
            answer = await room.call(ROOM.split("@")[0])
            audio, video, content, bfcp = answer.media
            assert audio.port and video.port and content.port and content.port != video.port
            assert content.attr("content") == "slides" and content.attr("label") == "12"
            assert video.attr("content") is None and content.formats == ["100"]
            assert (bfcp.proto, bfcp.port, bfcp.formats) == ("TCP/BFCP", node.calls.bfcp.tcp_port, ["*"])  # type: ignore[union-attr]
            assert bfcp.attr("floorctrl") == "s-only" and bfcp.attr("setup") == "passive"
            assert bfcp.attr("connection") == "new" and bfcp.attr("floorid") == "1 mstrm:12"
            assert bfcp.attr("confid") and bfcp.attr("userid")
            room.video.remote = ("127.0.0.1", video.port)

            # (b) Anna presents: the room system's presentation stream shows her yellow screen,
            # its main video still her green camera (not the composed fallback).
            await until(
                lambda: sees(room.video, GREEN, 0.3), 20, lambda: f"Anna's camera ({room.video.colour()})"
            )
            assert (await anna.present(YELLOW))["type"] == "presenting"
            await until(
                lambda: sees(room.content, YELLOW), 20, lambda: f"the presentation ({room.content.colour()})"
            )
            await until(
                lambda: sees(room.video, GREEN, 0.3), 5, lambda: f"her camera ({room.video.colour()})"
            )
            assert room.video.share(YELLOW) < 0.02, "the presentation composed into the main video"

            # (c) the room system asks for the floor, is granted it and presents cyan: a browser
            # watching sees it, and Anna is told her presentation was taken over.
            floor = await room.floor_client()
            room.send(Primitive.HELLO)
            assert (await floor.receive()).primitive == Primitive.HELLO_ACK
            room.send(Primitive.FLOOR_REQUEST, u16(Attr.FLOOR_ID, 1))
            granted = await floor.receive()
            assert granted.primitive == Primitive.FLOOR_REQUEST_STATUS
            assert overall(granted) is RequestStatus.GRANTED
            room.content.frame = None  # what it sees from now on: Anna's screen again, below
            presenting = asyncio.get_running_loop().create_task(room.content.send_colour(CYAN, sending))
            taken = await anna.expect("presentation_taken")
            conf = node.rooms.live_conference(ROOM)
            assert conf is not None
            sip_id = next(p.id for p in conf.participants.values() if p.protocol == "sip")
            assert taken["participantId"] == sip_id and conf.presenter == sip_id
            bo = node.bot(ROOM, "Bo", colour=PALETTE[0])
            await bo.connect()
            assert (await bo.join())["type"] == "joined"
            await bo.start_media()
            assert (await bo.watch())["type"] == "watching"
            await bo.until(lambda: bo.colour_share_of_presentation(CYAN) > 0.9, 20, "the room system's cyan")

            # Anna presents again: the room system's floor is revoked, and its presentation
            # stream shows her screen again.
            assert (await anna.present(YELLOW))["type"] == "presenting"
            revoked = await floor.receive()
            assert revoked.primitive == Primitive.FLOOR_REQUEST_STATUS
            assert overall(revoked) is RequestStatus.REVOKED
            sending.set()
            await presenting
            await until(lambda: conf.presenter == anna.participant_id, 10, "Anna presents again")
            await until(
                lambda: sees(room.content, YELLOW), 20, lambda: f"yellow again ({room.content.colour()})"
            )
            frames = room.content.frames
            await until(lambda: room.content.frames > frames + 5, 10, "the presentation goes on")

            # A re-INVITE drops the presentation stream: its main video is the composed picture.
            alias = ROOM.split("@")[0]
            parts = room.offer.replace("o=room 1 1", "o=room 1 2").split("m=video ")
            parts[2] = "0" + parts[2][parts[2].index(" ") :]
            reoffer = "m=video ".join(parts).replace("m=application 9", "m=application 0")
            reanswer = await room.uac.call("INVITE", alias, body=reoffer)
            assert reanswer.status == 200
            room.uac.ack(alias)
            assert [m.port for m in SessionDescription.parse(reanswer.body).media][2:] == [0, 0]
            await until(lambda: room.video.share(YELLOW) > 0.3, 20, "the presentation composed in")
            assert not conf.participants[sip_id].separate_presentation
        finally:
            sending.set()
            room.close()


async def test_a_guest_room_system_is_refused_the_floor_where_guests_may_not_present(
    settings_factory,
) -> None:
    async with run_sip_node(settings_factory, sip_media_timeout=0.0) as node:
        node.add_room(
            PIN_ROOM, host_pin="1234", guest_pin="5678", guests_can_present=False, enable_overlay_text=False
        )
        host = node.bot(PIN_ROOM, "Host", colour=GREEN)
        await host.connect()
        assert (await host.join("1234"))["type"] == "joined"
        await host.start_media()
        room = await RoomSystem.open(node)
        alias = PIN_ROOM.split("@")[0]
        try:
            assert (await room.uac.early_dialog(alias, room.offer)).status == 183
            room.uac.send_digits(alias, "5678#")
            room.answered(await room.uac.final())
            room.uac.send(room.uac.build("ACK", alias, cseq=1))  # the INVITE's CSeq, not the INFOs'
            conf = await until(lambda: node.rooms.live_conference(PIN_ROOM), 5, "the room live")
            await until(lambda: len(conf.participants) == 2, 10, "the guest in the room")
            floor = await room.floor_client()
            room.send(Primitive.FLOOR_REQUEST, u16(Attr.FLOOR_ID, 1))
            assert error_code(await floor.receive()) is ErrorCode.UNAUTHORIZED_OPERATION
            assert conf.presenter is None
            # the connection goes on: the floor is there, held by nobody
            room.send(Primitive.FLOOR_QUERY, u16(Attr.FLOOR_ID, 1))
            status = await floor.receive()
            assert status.primitive == Primitive.FLOOR_STATUS
            assert status.first(Attr.FLOOR_REQUEST_INFORMATION) is None
            # a room system whose BFCP connection dropped connects again, still the call's user
            floor.close()
            assert room.answer is not None
            conf_id, user = (int(room.answer.media[3].attr(a) or 0) for a in ("confid", "userid"))
            await until(lambda: user not in node.calls.floors[conf_id].users, 5, "the connection gone")
            floor = await room.floor_client()
            room.send(Primitive.HELLO)
            assert (await floor.receive()).primitive == Primitive.HELLO_ACK
        finally:
            room.close()


async def test_over_udp_a_release_or_a_bye_ends_the_room_systems_presentation(settings_factory) -> None:
    async with run_sip_node(settings_factory, sip_media_timeout=0.0) as node:
        node.add_room(ROOM, enable_overlay_text=False)
        room = await RoomSystem.open(node, udp=True)
        alias = ROOM.split("@")[0]
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        try:
            answer = room.answered(await room.uac.call("INVITE", alias, body=room.offer))
            room.uac.ack(alias)
            bfcp = answer.media[3]
            assert (bfcp.proto, bfcp.port) == ("UDP/BFCP", node.calls.bfcp.udp_port)  # type: ignore[union-attr]
            assert bfcp.attr("setup") is None and bfcp.attr("floorctrl") == "s-only"
            conf_id, user = int(bfcp.attr("confid") or 0), int(bfcp.attr("userid") or 0)

            def ask(primitive: Primitive, transaction: int, *attrs: object) -> Message:
                m = Message(primitive, conf_id, transaction, user, tuple(attrs), version=2)  # type: ignore[arg-type]
                sock.sendto(encode(m), ("127.0.0.1", bfcp.port))
                return decode(sock.recv(2048))

            conf = await until(lambda: node.rooms.live_conference(ROOM), 5, "the room live")
            sip_id = await until(lambda: next(iter(conf.participants), None), 5, "the room system in")
            granted = await asyncio.to_thread(ask, Primitive.FLOOR_REQUEST, 1, u16(Attr.FLOOR_ID, 1))
            assert granted.responder and overall(granted) is RequestStatus.GRANTED
            assert conf.presenter == sip_id
            info = granted.first(Attr.FLOOR_REQUEST_INFORMATION)
            assert info is not None and isinstance(info.value, Group)
            released = await asyncio.to_thread(
                ask, Primitive.FLOOR_RELEASE, 2, u16(Attr.FLOOR_REQUEST_ID, info.value.id)
            )
            assert overall(released) is RequestStatus.RELEASED and conf.presenter is None

            again = await asyncio.to_thread(ask, Primitive.FLOOR_REQUEST, 3, u16(Attr.FLOOR_ID, 1))
            assert overall(again) is RequestStatus.GRANTED and conf.presenter == sip_id
            assert (await room.uac.call("BYE", alias)).status == 200
            await until(lambda: conf.presenter is None, 5, "the presentation to end with the call")
            assert node.calls.floor(conf_id) is None
        finally:
            sock.close()
            room.close()
