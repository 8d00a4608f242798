"""A SIP leg resends the video packets its far end reports lost (generic NACK, RFC 4585 section
6.2.1): byte for byte, SRTP ones too, each at most once per interval and a bounded number per
NACK, and never audio. The far end is a UDP socket of this test on loopback."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pylibsrtp
import pytest

from harness.ports import free_port
from harness.waiting import until
from vdx.sip import rtcp
from vdx.sip.media import MAX_RESENT_PER_NACK, PortAllocator, RtpEndpoint
from vdx.sip.rtp import RtpPacket
from vdx.sip.sdp import Codec, NegotiatedStream

pytestmark = pytest.mark.interop

SUITE = "AES_CM_128_HMAC_SHA1_80"


@dataclass
class FarEnd:
    sock: socket.socket

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def drain(self) -> list[bytes]:
        out = []
        while True:
            try:
                out.append(self.sock.recv(2048))
            except BlockingIOError:
                return out

    async def receive(self, count: int) -> list[bytes]:
        got: list[bytes] = []

        async def enough() -> bool:
            got.extend(self.drain())
            return len(got) >= count

        await until(enough, 5, f"{count} packets at the far end", poll_s=0.01)
        return got


@pytest.fixture
async def far() -> AsyncIterator[FarEnd]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # bursts of a hundred packets
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    yield FarEnd(sock)
    sock.close()


async def endpoint(far: FarEnd, kind: str, keys: tuple[bytes, bytes] | None = None) -> RtpEndpoint:
    low = 20000 + 2 * (free_port(socket.SOCK_DGRAM) % 10000)
    ep = await PortAllocator("127.0.0.1", f"{low}-{low + 99}").allocate()
    codec = Codec(kind, 97, "H264", 90000) if kind == "video" else Codec(kind, 0, "PCMU", 8000)
    ep.configure(
        NegotiatedStream(
            index=0,
            kind=kind,
            local_port=ep.port,
            remote_address="127.0.0.1",
            remote_port=far.port,
            proto="RTP/SAVP" if keys else "RTP/AVP",
            codecs=[codec],
            direction="sendrecv",
            rtcp_mux=True,  # the NACK comes to the RTP port
            srtp_suite=SUITE if keys else None,
            srtp_local_key=keys[0] if keys else None,
            srtp_remote_key=keys[1] if keys else None,
        )
    )
    return ep


def nack(lost: list[int], protect: pylibsrtp.Session | None = None) -> bytes:
    data = rtcp.build_compound([rtcp.Nack(sender_ssrc=7, media_ssrc=1234, lost=lost)])
    return protect.protect_rtcp(data) if protect is not None else data


def send(ep: RtpEndpoint, count: int, kind: str = "video") -> list[RtpPacket]:
    pt = 97 if kind == "video" else 0
    packets = [RtpPacket(pt, 100 + i, 9000 * i, 1234, bytes([i]) * 200) for i in range(count)]
    for p in packets:
        ep.send_rtp(p)
    return packets


async def test_lost_video_packets_are_sent_again_once_per_nack(far: FarEnd) -> None:
    ep = await endpoint(far, "video")
    try:
        send(ep, 20)
        originals = await far.receive(20)
        far.sock.sendto(nack([103, 107, 108, 999]), ("127.0.0.1", ep.port))  # 999 was never sent
        again = await far.receive(3)
        assert sorted(again) == sorted(originals[i] for i in (3, 7, 8))
        assert (ep.stats.nacks, ep.stats.retransmitted) == (1, 3)

        # the same NACK at once again (a duplicate): nothing more for a moment
        far.sock.sendto(nack([103]), ("127.0.0.1", ep.port))
        await until(lambda: ep.stats.nacks == 2, 5, "the second NACK to arrive", poll_s=0.01)
        assert far.drain() == [] and ep.stats.retransmitted == 3

        # a NACK naming everything gets at most its share
        more = send(ep, 100)
        await far.receive(100)
        far.sock.sendto(nack([p.sequence_number for p in more]), ("127.0.0.1", ep.port))
        await until(lambda: ep.stats.nacks == 3, 5, "the long NACK to arrive", poll_s=0.01)
        await asyncio.sleep(0.2)  # would-be extra resends have had time to arrive
        assert len(far.drain()) == MAX_RESENT_PER_NACK
    finally:
        ep.close()


async def test_audio_is_not_resent(far: FarEnd) -> None:
    ep = await endpoint(far, "audio")
    try:
        send(ep, 5, "audio")
        await far.receive(5)
        far.sock.sendto(nack([101, 102]), ("127.0.0.1", ep.port))
        await until(lambda: ep.stats.nacks == 1, 5, "the NACK to arrive", poll_s=0.01)
        await asyncio.sleep(0.1)
        assert far.drain() == [] and ep.stats.retransmitted == 0
    finally:
        ep.close()


async def test_a_resent_srtp_packet_decrypts_where_the_first_was_lost(far: FarEnd) -> None:
    ours, theirs = os.urandom(30), os.urandom(30)
    ep = await endpoint(far, "video", (ours, theirs))
    profile = pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80
    receive = pylibsrtp.Session(
        pylibsrtp.Policy(ours, pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=profile)
    )
    far_out = pylibsrtp.Session(
        pylibsrtp.Policy(theirs, pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile)
    )
    try:
        sent = send(ep, 6)
        wire = await far.receive(6)
        # packet 104 is "lost": all but it are decrypted as they come
        for data in wire[:4] + wire[5:]:
            receive.unprotect(data)
        far.sock.sendto(nack([104], far_out), ("127.0.0.1", ep.port))
        (again,) = await far.receive(1)
        assert RtpPacket.parse(receive.unprotect(again)).payload == sent[4].payload
    finally:
        ep.close()
