"""sipp scenarios against the SIP server (RFC 3261 UAS behaviour; issue 5).

Each scenario file under ``sipp/`` says what it checks; sipp's exit code is 0 only when every
expected message arrived (with ``check_it`` regexps on headers and SDP bodies)."""

from __future__ import annotations

import asyncio
import re
import socket
import ssl

import pytest

from vdx.sip.message import SipResponse, parse_message

from .conftest import SipUnderTest, run_sipp

pytestmark = pytest.mark.interop


async def test_options_keepalive_udp_and_tcp(sip: SipUnderTest) -> None:
    for transport in ("u1", "t1"):
        result = await run_sipp(sip, "options.xml", "1000", "-r", "10", calls=3, transport=transport)
        assert result.returncode == 0, result.describe()


@pytest.mark.parametrize(
    ("alias", "scenario"),
    [("9999", "reject_404.xml"), ("2000", "reject_480.xml"), ("3000", "reject_486.xml")],
    ids=["unknown-alias-404", "room-not-open-480", "room-full-486"],
)
async def test_invite_rejected_by_policy(sip: SipUnderTest, alias: str, scenario: str) -> None:
    result = await run_sipp(sip, scenario, alias)
    assert result.returncode == 0, result.describe()
    assert [c.alias for c in sip.policy.invites] == [alias]
    assert not sip.server.calls


async def test_three_wrong_pins_get_403(sip: SipUnderTest) -> None:
    """PIN entry in the early dialog (183), digits by SIP INFO; the third wrong PIN ends it with 403."""
    result = await run_sipp(sip, "pin_wrong.xml", "5000")
    assert result.returncode == 0, result.describe()
    assert sip.policy.pins_tried == ["9", "9", "9"]
    assert not sip.policy.established and not sip.server.calls


async def test_cancel_before_answer_gets_487(sip: SipUnderTest) -> None:
    gate = sip.policy.gate("4000")  # the policy holds this INVITE until the gate opens
    result = await run_sipp(sip, "cancel.xml", "4000")
    assert result.returncode == 0, result.describe()
    gate.set()
    await sip.policy.wait_for(lambda: sip.policy.decided >= 1)
    assert not sip.policy.established and not sip.server.calls


async def test_delayed_offer_answer_in_ack(sip: SipUnderTest) -> None:
    result = await run_sipp(sip, "delayed_offer.xml", "1000")
    assert result.returncode == 0, result.describe()
    await sip.policy.wait_for(lambda: len(sip.policy.ended) == 1)
    call = sip.policy.established[0]
    negotiation = call.negotiation
    assert negotiation is not None
    audio, video = negotiation.stream("audio"), negotiation.stream("video")
    assert audio is not None and [c.name for c in audio.codecs] == ["PCMU"]
    assert video is not None and video.codecs[0].name == "H264"
    assert "packetization-mode=1" in video.codecs[0].fmtp
    assert sip.policy.ended[0][1] == "remote hangup"


@pytest.mark.parametrize("transport", ["u1", "t1"], ids=["udp", "tcp"])
async def test_reinvite_hold_and_resume(sip: SipUnderTest, transport: str) -> None:
    result = await run_sipp(sip, "reinvite_hold.xml", "1000", transport=transport)
    assert result.returncode == 0, result.describe()
    await sip.policy.wait_for(lambda: len(sip.policy.ended) == 1)
    assert len(sip.policy.changed) == 2  # hold, then resume


async def test_lost_ack_200_is_retransmitted(sip: SipUnderTest) -> None:
    result = await run_sipp(sip, "lost_ack.xml", "1000")
    assert result.returncode == 0, result.describe()
    oks = [m for m in _received(result.messages) if m.status == 200 and m.cseq[1] == "INVITE"]
    # Sent at 0, then Timer G: T1 (0.5 s) and 2*T1 (1.5 s) before sipp's ACK at 1.8 s.
    assert len(oks) >= 3, result.describe()
    await sip.policy.wait_for(lambda: len(sip.policy.ended) == 1)
    assert len(sip.policy.established) == 1


async def test_invite_retransmission_is_absorbed(sip: SipUnderTest) -> None:
    gate = sip.policy.gate("4000")
    running = asyncio.ensure_future(run_sipp(sip, "invite_retransmission.xml", "4000"))
    await sip.policy.wait_for(lambda: sip.server.retransmissions_absorbed >= 1 or running.done())
    gate.set()
    result = await running
    assert result.returncode == 0, result.describe()
    await sip.policy.wait_for(lambda: len(sip.policy.ended) == 1)
    assert len(sip.policy.invites) == 1 and len(sip.policy.established) == 1
    received = _received(result.messages)
    # The 100 is repeated for the retransmission (§17.2.1). sipp answers every repeated 100 by
    # re-sending its last message, the INVITE, so more 100s follow until the policy decides.
    assert len([m for m in received if m.status == 100]) >= 2, result.describe()
    assert len([m for m in received if m.status >= 200 and m.cseq[1] == "INVITE"]) == 1


async def test_malformed_request_gets_400(sip: SipUnderTest) -> None:
    result = await run_sipp(sip, "malformed.xml", "1000")
    assert result.returncode == 0, result.describe()
    assert not sip.policy.invites


async def test_options_over_tls(sip: SipUnderTest) -> None:
    """The Debian sipp is built without TLS (``sipp -v``: SCTP-PCAP-RTPSTREAM), so a Python TLS client
    checks port 5061's listener, verifying the node's self-signed certificate."""
    ctx = ssl.create_default_context(cafile=str(sip.cert))
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", sip.server.tls_port, ssl=ctx, server_hostname="vdx.local"
    )
    try:
        writer.write(_options("TLS", writer.get_extra_info("sockname")[1]))
        await writer.drain()
        resp = await _read_response(reader)
    finally:
        writer.close()
    assert resp.status == 200
    assert "INVITE" in (resp.get("Allow") or "")


async def test_invite_flood_is_rate_limited(sip: SipUnderTest) -> None:
    """A flood well above VDX_SIP_MAX_INVITES_PER_SECOND (10 here) for ~2 s: the excess gets 503 with
    Retry-After, nothing crashes, and an existing call and out-of-dialog OPTIONS are still answered."""
    long_call = asyncio.ensure_future(run_sipp(sip, "long_call.xml", "1000", "-d", "3500"))
    await sip.policy.wait_for(lambda: len(sip.policy.established) == 1)
    flood = asyncio.ensure_future(run_sipp(sip, "flood.xml", "3000", "-r", "100", calls=200))
    await sip.policy.wait_for(lambda: sip.server.rejected_overload >= 20)
    options = await asyncio.to_thread(_udp_options, sip.server.port)
    assert options.status == 200
    flooded, call = await flood, await long_call
    assert flooded.returncode == 0, flooded.describe()
    assert call.returncode == 0, call.describe()
    assert sip.server.rejected_overload >= 100
    admitted = [c for c in sip.policy.invites if c.alias == "3000"]
    assert 0 < len(admitted) < 100
    assert any(d == "5" for _, d in sip.policy.dtmf)  # the INFO of the long call got through


# --- helpers -------------------------------------------------------------------------------------


def _received(trace: str) -> list[SipResponse]:
    """Responses sipp logged as received (its -trace_msg file)."""
    out: list[SipResponse] = []
    for block in re.split(r"-{20,} [^\n]*\n", trace):
        if "message received" not in block.split("\n", 1)[0]:
            continue
        text = block.split("\n", 1)[1] if "\n" in block else ""
        text = text.replace("\r\n", "\n").replace("\n", "\r\n")
        msg = parse_message(text.encode())
        if isinstance(msg, SipResponse):
            out.append(msg)
    return out


def _options(transport: str, local_port: int) -> bytes:
    return (
        f"OPTIONS sip:1000@vdx.local SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 127.0.0.1:{local_port};branch=z9hG4bK-opt-{local_port}\r\n"
        f"From: <sip:probe@127.0.0.1>;tag=probe\r\nTo: <sip:1000@vdx.local>\r\n"
        f"Call-ID: probe-{local_port}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


async def _read_response(reader: asyncio.StreamReader) -> SipResponse:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    msg = parse_message(head, stream=True)
    assert isinstance(msg, SipResponse)
    return msg


def _udp_options(port: int) -> SipResponse:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        s.sendto(_options("UDP", s.getsockname()[1]), ("127.0.0.1", port))
        data, _ = s.recvfrom(65535)
    msg = parse_message(data)
    assert isinstance(msg, SipResponse)
    return msg
