"""`vdx serve` answers SIP (VDX_SIP_ENABLED, on by default outside tests): the real process binds
its SIP port and answers from its room directory. (`vdx api` hosts no rooms, so it starts no SIP.)"""

from __future__ import annotations

import socket

import pytest

from harness.ports import free_port, free_sip_port

from .uac import status_of

pytestmark = pytest.mark.interop


def _invite(port: int, alias: str) -> bytes:
    body = (
        "v=0\r\no=u 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    )
    return (
        f"INVITE sip:{alias}@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-serve-{alias};rport\r\n"
        f"From: <sip:probe@127.0.0.1>;tag=p1\r\nTo: <sip:{alias}@127.0.0.1>\r\n"
        f"Call-ID: serve-{alias}@127.0.0.1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
        f"Contact: <sip:probe@127.0.0.1:{port}>\r\nContent-Type: application/sdp\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def _final_status(sip_port: int, alias: str) -> int | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        s.sendto(_invite(s.getsockname()[1], alias), ("127.0.0.1", sip_port))
        while True:
            try:
                status = status_of(s.recvfrom(65535)[0])
            except TimeoutError:
                return None
            if status is not None and status >= 200:
                return status


async def test_vdx_serve_answers_sip_from_its_rooms(live_server_factory):
    sip_port = free_sip_port()
    low = 20000 + 2 * (free_port(socket.SOCK_DGRAM) % 10000)
    env = {
        "VDX_SIP_ENABLED": "true",
        "VDX_SIP_HOST": "127.0.0.1",
        "VDX_SIP_PORT": str(sip_port),
        "VDX_SIP_TLS_PORT": str(free_port(socket.SOCK_STREAM)),
        "VDX_RTP_PORTS": f"{low}-{low + 19}",
    }
    live_server_factory("serve", extra_env=env)
    assert _final_status(sip_port, "99999999") == 404  # no such room in the node's directory
