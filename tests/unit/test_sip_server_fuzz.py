"""Hostile request sequences through the UAS core (parser -> transactions -> dialogs -> policy),
with an in-memory transport: every message is answered with a parseable response or dropped, and
nothing raises or leaves a failed task (issue 5: "never crash or hang the server")."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.interop.policy import CLOSED, AliasTable
from vdx.sip.message import SipRequest, SipResponse, parse_message
from vdx.sip.server import SipServer, SipServerConfig
from vdx.sip.transaction import Timers, TransactionLayer
from vdx.sip.transport import Source

SDP = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8\r\n"


def template(method: str, alias: str, cseq: int, to_tag: bool, body: str) -> bytes:
    to = f"<sip:{alias}@vdx.local>" + (";tag=TAG" if to_tag else "")
    head = (
        f"{method} sip:{alias}@vdx.local SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK{cseq}{method}\r\n"
        f"From: <sip:a@b>;tag=f\r\nTo: {to}\r\nCall-ID: fuzz\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n"
        f"Contact: <sip:a@127.0.0.1:5999>\r\n"
    )
    if body:
        head += "Content-Type: application/sdp\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n" + body).encode()


messages = st.builds(
    template,
    st.sampled_from(["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "UPDATE", "PRACK", "XYZ"]),
    st.sampled_from(["1000", "2000", "9999", ""]),
    st.integers(1, 5),
    st.booleans(),
    st.sampled_from(["", SDP, SDP.replace("0 8", "18"), "v=0\r\nzzz\r\n", "Signal=5"]),
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(messages))
    for _ in range(draw(st.integers(0, 3))):
        pos = draw(st.integers(0, len(raw) - 1))
        choice = draw(st.integers(0, 2))
        if choice == 0:
            raw[pos] = draw(st.integers(0, 255))
        elif choice == 1:
            del raw[pos : pos + draw(st.integers(1, 40))]
        else:
            raw[pos:pos] = draw(st.binary(min_size=1, max_size=20))
    return bytes(raw)


async def drive(datagrams: list[bytes]) -> tuple[SipServer, list[bytes]]:
    policy = AliasTable()
    policy.add("1000")
    policy.add("2000", CLOSED)
    server = SipServer(
        SipServerConfig(host="127.0.0.1", rtp_host="127.0.0.1", rtp_ports="47000-47999"), policy
    )
    server._txn = TransactionLayer(Timers(t1=0.005, t2=0.02, t4=0.02))
    sent: list[bytes] = []
    src = Source("UDP", "127.0.0.1", 5999, "127.0.0.1", 5060, sent.append)
    for data in datagrams:
        server._receive(data, src)
        for _ in range(20):  # let the spawned handlers run
            await asyncio.sleep(0)
    if server._tasks:
        await asyncio.wait(set(server._tasks), timeout=5)
    await server.stop()
    return server, sent


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(messages, mutated(), st.binary(max_size=300)), min_size=1, max_size=8))
def test_hostile_sequences_are_answered_or_dropped(datagrams: list[bytes]) -> None:
    server, sent = asyncio.run(drive(datagrams))
    assert server.task_failures == 0
    for data in sent:
        if data.startswith(b"SIP/2.0 "):
            assert data[8:11].isdigit()
            continue
        msg = parse_message(data)  # requests we send (BYE on stop) are well-formed
        assert isinstance(msg, SipRequest | SipResponse)
