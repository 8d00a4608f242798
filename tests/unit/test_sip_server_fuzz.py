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


# The RFC 3261 shapes a strict-but-not-stricter parser must take: folds, Require, repeated lengths.
EXTRA_HEADERS = [
    "Require: foo",
    "Require: timer",
    "Require: timer,\r\n 100rel",
    "Supported:\r\n\ttimer",
    "Subject: one\r\n two\r\n\tthree",
    "Content-Length: 0",
    "l: 7",
    "Session-Expires: 1800;\r\n refresher=uas",
]


def _with(data: bytes, header: str) -> bytes:
    """The message with one more header line (possibly folded) before Content-Length."""
    return data.replace(b"Content-Length:", header.encode() + b"\r\nContent-Length:", 1)


shaped = st.builds(_with, messages, st.sampled_from(EXTRA_HEADERS))


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
@given(st.lists(st.one_of(messages, shaped, mutated(), st.binary(max_size=300)), min_size=1, max_size=8))
def test_hostile_sequences_are_answered_or_dropped(datagrams: list[bytes]) -> None:
    server, sent = asyncio.run(drive(datagrams))
    assert server.task_failures == 0
    for data in sent:
        if data.startswith(b"SIP/2.0 "):
            assert data[8:11].isdigit()
            continue
        msg = parse_message(data)  # requests we send (BYE on stop) are well-formed
        assert isinstance(msg, SipRequest | SipResponse)


# --- RFC 3261 strictness: as strict as it asks, and no stricter --------------------------------


def _answers(sent: list[bytes]) -> list[SipResponse]:
    out = [parse_message(d) for d in sent if d.startswith(b"SIP/2.0 ")]
    return [r for r in out if isinstance(r, SipResponse) and r.status >= 200]


async def _in_dialog(method: str, header: str) -> tuple[SipServer, list[SipResponse]]:
    """An answered call to 1000, then ``method`` inside its dialog with ``header`` added."""
    policy = AliasTable()
    policy.add("1000")
    server = SipServer(
        SipServerConfig(host="127.0.0.1", rtp_host="127.0.0.1", rtp_ports="47000-47999"), policy
    )
    server._txn = TransactionLayer(Timers(t1=0.005, t2=0.02, t4=0.02))
    sent: list[bytes] = []
    src = Source("UDP", "127.0.0.1", 5999, "127.0.0.1", 5060, sent.append)
    server._receive(template("INVITE", "1000", 1, False, SDP), src)
    await policy.wait_for(lambda: any(r.status == 200 for r in _answers(sent)), 5)
    tag = next(r for r in _answers(sent) if r.status == 200).to.tag or ""
    server._receive(template("ACK", "1000", 1, True, "").replace(b"TAG", tag.encode()), src)
    await policy.wait_for(lambda: bool(policy.established), 5)
    sent.clear()
    request = _with(template(method, "1000", 2, True, ""), header).replace(b"TAG", tag.encode())
    server._receive(request, src)
    await policy.wait_for(lambda: bool(_answers(sent)), 5)
    return server, _answers(sent)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["INVITE", "OPTIONS", "BYE", "INFO", "UPDATE"]),
    st.lists(st.sampled_from(["timer", "foo", "100rel", "replaces", "Timer"]), min_size=1, max_size=3),
    st.sampled_from([", ", ",\r\n ", " ,\r\n\t"]),
)
def test_require_of_an_unknown_option_gets_420_for_every_request(
    method: str, options: list[str], separator: str
) -> None:
    """§8.2.2.3: any request we serve (not only INVITE) with a Require naming an extension we do not
    support gets 420 listing those in Unsupported, whatever its folding; ``timer`` is supported."""
    request = _with(template(method, "1000", 1, False, ""), "Require: " + separator.join(options))
    _, sent = asyncio.run(drive([request]))
    final = _answers(sent)[0]
    unknown = sorted({o.lower() for o in options} - {"timer"})
    if unknown:
        assert final.status == 420 and final.get("Unsupported") == ", ".join(unknown)
    else:
        assert final.status != 420


def test_require_inside_a_dialog_gets_420_and_the_call_stays() -> None:
    async def run() -> None:
        for method in ("BYE", "INFO", "OPTIONS", "UPDATE", "INVITE"):
            server, answers = await _in_dialog(method, "Require: foo")
            # (an INVITE's 420 is retransmitted until ACKed: the same answer again)
            assert {(r.status, r.get("Unsupported")) for r in answers} == {(420, "foo")}, method
            assert len(server.calls) == 1
            await server.stop()

    asyncio.run(run())


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["INVITE", "OPTIONS", "BYE", "INFO"]),
    st.lists(st.integers(0, 3), min_size=2, max_size=3),
    st.sampled_from(["Content-Length", "l", "content-length"]),
)
def test_content_length_headers_that_disagree_get_400(method: str, extra: list[int], name: str) -> None:
    """§20.14: repeated Content-Length headers must agree; a request whose do not gets 400."""
    request = template(method, "1000", 1, False, "")
    for n in extra:
        request = _with(request, f"{name}: {n}")
    _, sent = asyncio.run(drive([request]))
    answers = _answers(sent)
    if len({0, *extra}) > 1:
        assert [r.status for r in answers] == [400]
        assert "conflicting Content-Length" in (answers[0].get("Warning") or "")
    else:
        assert answers and answers[0].status != 400
