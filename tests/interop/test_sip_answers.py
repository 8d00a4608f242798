"""The SIP server's answers to hostile, unusual and in-dialog requests, over a real UDP socket,
and the RTP/RTCP ports it binds for accepted calls (issue 5: "the right answer to everything")."""

from __future__ import annotations

import asyncio
import base64
import socket

import pylibsrtp
import pytest

from harness.ports import free_port
from vdx.sip import rtcp
from vdx.sip.dtmf import TelephoneEvent
from vdx.sip.media import PortAllocator
from vdx.sip.message import SipRequest, SipResponse, parse_message
from vdx.sip.rtp import RtpPacket
from vdx.sip.server import SipServer, SipServerConfig
from vdx.sip.transaction import Timers

from .conftest import SipUnderTest
from .policy import AliasTable
from .uac import SDP, Uac, status_of

pytestmark = pytest.mark.interop


@pytest.fixture
async def uac(sip: SipUnderTest):  # type: ignore[no-untyped-def]
    client = Uac(sip.server.port)
    yield client
    client.close()


def offer(
    port: int = 30000, direction: str = "sendrecv", version: int = 1, proto: str = "RTP/AVP", extra: str = ""
) -> str:
    return SDP.format(port=port, direction=direction, version=version, proto=proto, extra=extra)


async def first_response_after(uac: Uac, hostile: bytes) -> int | None:
    """Send hostile bytes, then an OPTIONS: the first response tells whether the hostile bytes
    were answered (and with what) or dropped — no timed wait for silence needed."""
    uac.send(hostile)
    uac.send(uac.build("OPTIONS"))
    first = await asyncio.to_thread(uac.recv_raw)
    return status_of(first)


@pytest.mark.parametrize(
    "hostile",
    [
        b"\x00\xff\x13garbage" * 10,
        b"INVITE sip:1000@vdx.local SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1",  # truncated
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKnobody\r\n\r\n",  # stray response
        b"OPTIONS sip:x SIP/2.0\r\n" + b"X-Big: " + b"a" * 60000 + b"\r\n\r\n",  # oversized header
        b"\r\n\r\n",  # keep-alive
    ],
    ids=["binary", "truncated", "stray-response", "oversized", "crlf-keepalive"],
)
async def test_unanswerable_input_is_dropped_and_server_keeps_serving(uac: Uac, hostile: bytes) -> None:
    assert await first_response_after(uac, hostile) == 200  # the OPTIONS answer came first


async def test_answerable_malformed_requests_get_400(uac: Uac) -> None:
    bad_length = uac.build("INVITE", body=offer()).replace(b"Content-Length: ", b"Content-Length: 9")
    assert await first_response_after(uac, bad_length) == 400
    await asyncio.to_thread(uac.recv)  # the OPTIONS
    bad_cseq = uac.build("OPTIONS").replace(b"CSeq: ", b"CSeq: x")
    assert await first_response_after(uac, bad_cseq) == 400
    await asyncio.to_thread(uac.recv)
    bad_sdp = uac.build("INVITE", body="v=0\r\nnonsense\r\n")
    uac.send(bad_sdp)
    resp = await asyncio.to_thread(uac.recv)
    assert resp.status == 400 and "SDP" in resp.reason


@pytest.mark.parametrize(
    ("method", "status"),
    [("REGISTER", 405), ("SUBSCRIBE", 405), ("FROB", 501), ("BYE", 481), ("INFO", 481)],
)
async def test_methods_we_do_not_serve(uac: Uac, method: str, status: int) -> None:
    resp = await uac.call(method)
    assert resp.status == status
    if status == 405:
        assert "INVITE" in (resp.get("Allow") or "")


async def test_extension_and_body_checks(uac: Uac) -> None:
    resp = await uac.call("INVITE", body=offer(), headers="Require: 100rel, foo\r\n")
    assert resp.status == 420 and resp.get("Unsupported") == "100rel, foo"
    resp = await uac.call("INVITE", body=offer(), headers="Supported: timer\r\nSession-Expires: 30\r\n")
    assert resp.status == 422 and resp.get("Min-SE") == "90"  # RFC 4028 §6
    resp = await uac.call("INVITE", body="hello", content_type="text/plain")
    assert resp.status == 415


async def test_policy_failure_gets_500(sip: SipUnderTest, uac: Uac) -> None:
    resp = await uac.call("INVITE", "broken", body=offer())
    assert resp.status == 500
    assert sip.server.task_failures == 1  # counted (and logged) as a failure of the node


async def test_no_common_codec_gets_488(uac: Uac) -> None:
    body = (
        offer()
        .replace("RTP/AVP 0 101", "RTP/AVP 18")
        .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:18 G729/8000")
    )
    resp = await uac.call("INVITE", body=body)
    assert resp.status == 488


async def test_overload_503_with_retry_after(sip: SipUnderTest, uac: Uac) -> None:
    sip.server._bucket.tokens = 0  # as after a burst of INVITEs
    sip.server._bucket.rate = 0.001
    resp = await uac.call("INVITE", body=offer())
    assert resp.status == 503 and resp.get("Retry-After") == "5"
    assert sip.server.rejected_overload == 1


async def test_call_with_session_timer_info_update_and_rtp(sip: SipUnderTest, uac: Uac) -> None:
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind(("127.0.0.1", 0))
    try:
        resp = await uac.call(
            "INVITE",
            body=offer(rtp.getsockname()[1]),
            headers="Supported: timer\r\nSession-Expires: 1800\r\n",
        )
        assert resp.status == 200
        assert resp.get("Session-Expires") == "1800;refresher=uac" and resp.get("Require") == "timer"
        answer = resp.body.decode()
        media_port = int(answer.split("m=audio ")[1].split()[0])
        uac.ack()
        await sip.policy.wait_for(lambda: len(sip.policy.established) == 1)
        call = sip.policy.established[0]

        # DTMF by SIP INFO and by RFC 4733 RTP on the port the answer named.
        resp = await uac.call(
            "INFO", body="Signal=1\r\nDuration=100\r\n", content_type="application/dtmf-relay"
        )
        assert resp.status == 200
        ev = RtpPacket(101, 1, 8000, 0x77, TelephoneEvent(2, True, 10, 800).serialise())
        rtp.sendto(ev.serialise(), ("127.0.0.1", media_port))
        rtp.sendto(RtpPacket(0, 2, 8160, 0x77, b"\xff" * 160).serialise(), ("127.0.0.1", media_port))
        await sip.policy.wait_for(lambda: [d for _, d in sip.policy.dtmf] == ["1", "2"])
        endpoint = call.media.endpoint("audio")
        assert endpoint is not None
        await sip.policy.wait_for(lambda: endpoint.stats.by_payload_type.get(0) == 1)

        # RTCP PLI on port+1 counts as a keyframe request (RFC 4585).
        rtp.sendto(rtcp.build(rtcp.Pli(0x77, 1)), ("127.0.0.1", media_port + 1))
        await sip.policy.wait_for(lambda: endpoint.stats.keyframe_requests == 1)

        # UPDATE with a new offer (hold), then UPDATE without SDP (session refresh).
        resp = await uac.call("UPDATE", body=offer(rtp.getsockname()[1], "sendonly", version=2))
        assert resp.status == 200 and "a=recvonly" in resp.body.decode()
        assert call.on_hold
        resp = await uac.call("UPDATE")
        assert resp.status == 200 and not resp.body

        # An out-of-order CSeq is refused (§12.2.2).
        resp = await uac.call("INFO", cseq=1, body="Signal=3", content_type="application/dtmf-relay")
        assert resp.status == 500

        # On hold (we are recvonly) nothing is sent; after resume our RTP goes to where the far
        # end's RTP came from (symmetric RTP).
        endpoint.send_rtp(RtpPacket(0, 9, 0, 0x99, b"\x00" * 160))
        resp = await uac.call("UPDATE", body=offer(rtp.getsockname()[1], "sendrecv", version=3))
        assert resp.status == 200 and "a=sendrecv" in resp.body.decode() and not call.on_hold
        endpoint.send_rtp(RtpPacket(0, 10, 0, 0x99, b"\x00" * 160))
        rtp.settimeout(5)
        data, _ = await asyncio.to_thread(rtp.recvfrom, 2048)
        assert RtpPacket.parse(data).sequence_number == 10

        resp = await uac.call("BYE")
        assert resp.status == 200
        await sip.policy.wait_for(lambda: len(sip.policy.ended) == 1)
        assert sip.policy.ended[0][1] == "remote hangup" and not sip.server.calls
    finally:
        rtp.close()


async def test_a_picture_update_by_sip_info_is_a_keyframe_request(sip: SipUnderTest, uac: Uac) -> None:
    """RFC 5168: endpoints on plain RTP/AVP (no PLI) ask for a fresh picture in an INFO."""
    video = "a=sendrecv\r\nm=video 30002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"
    resp = await uac.call("INVITE", body=offer(30000, extra=video))
    assert resp.status == 200 and "m=video" in resp.body.decode()
    uac.ack()
    await sip.policy.wait_for(lambda: len(sip.policy.established) == 1)
    endpoint = sip.policy.established[0].media.endpoint("video")
    assert endpoint is not None
    xml = "application/media_control+xml"
    update = (
        '<?xml version="1.0" encoding="utf-8" ?>\r\n<media_control><vc_primitive><to_encoder>'
        "<picture_fast_update/></to_encoder></vc_primitive></media_control>"
    )
    assert (await uac.call("INFO", body=update, content_type=xml)).status == 200
    await sip.policy.wait_for(lambda: endpoint.stats.keyframe_requests == 1)
    # other media control is taken and left alone; what is none is refused
    other = "<media_control><general_error>none</general_error></media_control>"
    assert (await uac.call("INFO", body=other, content_type=xml)).status == 200
    assert (await uac.call("INFO", body="<media_control>", content_type=xml)).status == 400
    assert (await uac.call("INFO", body=update, content_type=xml)).status == 200
    await sip.policy.wait_for(lambda: endpoint.stats.keyframe_requests == 2)


async def test_right_pin_by_rfc4733_after_a_wrong_one(sip: SipUnderTest, uac: Uac) -> None:
    """183 with early media; RFC 4733 digits to the answered port; wrong PIN, then the host PIN -> 200."""
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind(("127.0.0.1", 0))
    try:
        uac.send(uac.build("INVITE", "5000", body=offer(rtp.getsockname()[1])))
        progress = await asyncio.to_thread(lambda: _until(uac, 183))
        media_port = int(progress.body.decode().split("m=audio ")[1].split()[0])
        ts = 0
        for digit in "99#1234#":
            ts += 1600
            event = "0123456789*#".index(digit)
            for end in (False, True, True):  # start, then the End packet repeated (RFC 4733 §2.5.1.4)
                pkt = RtpPacket(101, ts % 65536, ts, 0x5, TelephoneEvent(event, end, 10, 400).serialise())
                rtp.sendto(pkt.serialise(), ("127.0.0.1", media_port))
        ok = await asyncio.to_thread(uac.recv)
        assert ok.status == 200 and ok.to.tag == progress.to.tag
        assert ok.body == progress.body  # the early answer stands (RFC 3264 without 100rel)
        uac.ack("5000")
        await sip.policy.wait_for(lambda: len(sip.policy.established) == 1)
        assert sip.policy.pins_tried == ["99", "1234"]
        assert sip.policy.established[0].context == "host"
        assert sip.policy.dtmf == []  # PIN digits are not passed on as in-call DTMF
    finally:
        rtp.close()


def _until(uac: Uac, status: int) -> SipResponse:
    while True:
        resp = uac.recv(skip_provisional=False)
        if resp.status == status:
            return resp


async def test_reinvite_codec_change_and_delayed_offer_reinvite(sip: SipUnderTest, uac: Uac) -> None:
    resp = await uac.call("INVITE", body=offer())
    assert resp.status == 200
    uac.ack()
    await sip.policy.wait_for(lambda: len(sip.policy.established) == 1)
    call = sip.policy.established[0]
    assert call.negotiation is not None
    assert [c.name for c in call.negotiation.streams[0].codecs] == ["PCMU", "telephone-event"]
    # Codec change: the new offer has only PCMA.
    pcma = (
        offer(version=2)
        .replace("RTP/AVP 0 101", "RTP/AVP 8")
        .replace("PCMU", "PCMA")
        .replace("rtpmap:0", "rtpmap:8")
    )
    resp = await uac.call("INVITE", body=pcma)
    assert resp.status == 200 and "m=audio" in resp.body.decode() and " RTP/AVP 8\r\n" in resp.body.decode()
    uac.ack()
    await sip.policy.wait_for(lambda: len(sip.policy.changed) == 1)
    assert [c.name for c in call.negotiation.streams[0].codecs] == ["PCMA"]
    endpoint = call.media.endpoint("audio")
    assert endpoint is not None and endpoint.stream is not None and endpoint.stream.codecs[0].name == "PCMA"
    # A re-INVITE without SDP: our offer in the 200, the answer in the ACK (RFC 3261 §14.2).
    resp = await uac.call("INVITE")
    assert resp.status == 200 and resp.body.decode().count("m=") == 2
    our_ports = [ln.split()[1] for ln in resp.body.decode().splitlines() if ln.startswith("m=")]
    reply = (
        "v=0\r\no=uac 1 3 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 30000 RTP/AVP 9\r\na=rtpmap:9 G722/8000\r\nm=video 0 RTP/AVP 97\r\n"
    )
    uac.ack(body=reply)
    await sip.policy.wait_for(lambda: len(sip.policy.changed) == 2)
    assert [c.name for c in call.negotiation.streams[0].codecs] == ["G722"]
    assert our_ports[0] == str(endpoint.port)  # the same RTP port across re-negotiations


async def test_session_timer_expiry_ends_the_call_with_bye(sip: SipUnderTest, uac: Uac) -> None:
    """RFC 4028 §10: no refresh within the interval -> BYE before it runs out (interval/3 early,
    at most 32 s). The node's minimum is lowered here so the test takes ~2 s instead of a minute."""
    sip.server.config.min_session_expires = 3
    resp = await uac.call("INVITE", body=offer(), headers="Supported: timer\r\nSession-Expires: 3\r\n")
    assert resp.status == 200 and resp.get("Session-Expires") == "3;refresher=uac"
    uac.ack()
    data = await asyncio.to_thread(uac.recv_raw)
    assert data is not None
    bye = parse_message(data)
    assert isinstance(bye, SipRequest) and bye.method == "BYE"
    assert "session timer expired" in (bye.get("Reason") or "")
    await sip.policy.wait_for(lambda: len(sip.policy.ended) == 1)
    assert sip.policy.ended[0][1] == "session timer expired"


async def _next_request(uac: Uac, deadline_s: float = 15.0) -> SipRequest:
    """The next request the node sends to this caller (responses to our own requests skipped)."""
    deadline = asyncio.get_running_loop().time() + deadline_s
    while asyncio.get_running_loop().time() < deadline:
        data = await asyncio.to_thread(uac.recv_raw)
        msg = parse_message(data) if data is not None else None
        if isinstance(msg, SipRequest):
            return msg
    raise TimeoutError("no request from the node")


def _answer(request: SipRequest, status: int, headers: str = "", body: str = "") -> bytes:
    """Our response to the node's request: its Via, From, To, Call-ID and CSeq copied."""
    copied = "".join(
        f"{k}: {v}\r\n" for k, v in request.headers if k in ("Via", "From", "To", "Call-ID", "CSeq")
    )
    ctype = "Content-Type: application/sdp\r\n" if body else ""
    return (
        f"SIP/2.0 {status} X\r\n{copied}{headers}{ctype}Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


@pytest.mark.parametrize("allow", ["INVITE, ACK, BYE, CANCEL, UPDATE", "INVITE, ACK, BYE, CANCEL"])
async def test_as_refresher_the_node_refreshes_and_a_refresh_left_unanswered_ends_the_call(
    sip: SipUnderTest, uac: Uac, allow: str
) -> None:
    """RFC 4028 §7.4/§10: asked to refresh (refresher=uas), the node sends UPDATE (when allowed,
    else re-INVITE) at half the interval with its current SDP, unchanged; the caller answers the
    first, then no more: the refresh times out and the node ends the call with BYE. Interval 4 s
    and T1 50 ms (Timer F/B 3.2 s) keep it within seconds."""
    sip.server.config.min_session_expires = 4
    sip.server.txn.timers = Timers(t1=0.05, t2=0.4, t4=0.5)
    headers = f"Supported: timer\r\nSession-Expires: 4;refresher=uas\r\nAllow: {allow}\r\n"
    resp = await uac.call("INVITE", body=offer(), headers=headers)
    assert resp.status == 200 and resp.get("Session-Expires") == "4;refresher=uas"
    assert resp.get("Require") == "timer"
    uac.ack()
    await sip.policy.wait_for(lambda: len(sip.policy.established) == 1)
    method = "UPDATE" if "UPDATE" in allow else "INVITE"
    first = await _next_request(uac)
    assert first.method == method and first.get("Session-Expires") == "4;refresher=uac"
    assert "timer" in first.tokens("Supported")
    assert first.body == resp.body  # the current session offered again, same o= version
    uac.send(_answer(first, 200, "Session-Expires: 4;refresher=uac\r\nRequire: timer\r\n", offer()))
    if method == "INVITE":
        ack = await _next_request(uac)
        assert ack.method == "ACK" and ack.cseq == (first.cseq[0], "ACK")
    second = await _next_request(uac)  # another one: we answered, it stays the refresher
    assert second.method == method and second.cseq[0] > first.cseq[0]
    while (bye := await _next_request(uac)).method != "BYE":
        assert bye.method == method and bye.cseq == second.cseq  # retransmissions, unanswered
    assert "session refresh failed" in (bye.get("Reason") or "")
    await sip.policy.wait_for(lambda: len(sip.policy.ended) == 1)
    assert sip.policy.ended[0][1] == "session refresh failed: no answer"
    assert not sip.server.calls


@pytest.mark.parametrize("status", [481, 408, 500])
async def test_a_refresh_answered_with_an_error_ends_the_call(
    sip: SipUnderTest, uac: Uac, status: int
) -> None:
    sip.server.config.min_session_expires = 4
    headers = "Supported: timer\r\nSession-Expires: 4;refresher=uas\r\nAllow: INVITE, ACK, BYE, UPDATE\r\n"
    resp = await uac.call("INVITE", body=offer(), headers=headers)
    assert resp.status == 200
    uac.ack()
    refresh = await _next_request(uac)
    assert refresh.method == "UPDATE"
    uac.send(_answer(refresh, status))
    bye = await _next_request(uac)
    assert bye.method == "BYE" and f"session refresh failed: {status}" in (bye.get("Reason") or "")
    await sip.policy.wait_for(lambda: len(sip.policy.ended) == 1)


async def test_an_offer_crossing_our_refresh_gets_491_and_the_call_goes_on(
    sip: SipUnderTest, uac: Uac
) -> None:
    """RFC 3311 §5.2 / RFC 3261 §14.2: while our refresh's offer is out, the caller's own offer
    gets 491; once the caller answers our refresh the session continues."""
    sip.server.config.min_session_expires = 4
    headers = "Supported: timer\r\nSession-Expires: 4;refresher=uas\r\nAllow: INVITE, ACK, BYE, UPDATE\r\n"
    resp = await uac.call("INVITE", body=offer(), headers=headers)
    assert resp.status == 200
    uac.ack()
    refresh = await _next_request(uac)
    crossing = await uac.call("UPDATE", body=offer(version=2))
    assert crossing.status == 491
    uac.send(_answer(refresh, 200, "Session-Expires: 4;refresher=uac\r\n", offer()))
    again = await _next_request(uac)  # the next refresh, two seconds on: the call lives
    while again.cseq == refresh.cseq:  # (after any retransmission of the first that crossed ours)
        again = await _next_request(uac)
    assert again.method == "UPDATE" and again.cseq[0] > refresh.cseq[0]
    assert not sip.policy.ended
    assert (await uac.call("BYE")).status == 200


async def test_no_free_rtp_ports_gets_503(sip: SipUnderTest, uac: Uac) -> None:
    low = 20000 + 2 * (free_port(socket.SOCK_DGRAM) % 10000)
    sip.server._allocator = PortAllocator("127.0.0.1", f"{low}-{low + 1}")  # room for one m-line
    resp = await uac.call("INVITE", body=offer())
    assert resp.status == 200
    uac.ack()
    other = Uac(sip.server.port)
    try:
        resp = await other.call("INVITE", body=offer())
        assert resp.status == 503 and resp.get("Retry-After") == "5"
    finally:
        other.close()


async def test_missing_ack_ends_the_call_with_bye() -> None:
    """§13.3.1.4: no ACK for our 2xx within 64*T1 -> the dialog is confirmed and ended with BYE
    (T1 shortened to 10 ms so Timer H runs out in 0.64 s)."""
    policy = AliasTable()
    policy.add("1000")
    server = SipServer(
        SipServerConfig(
            host="127.0.0.1",
            port=0,
            rtp_host="127.0.0.1",
            rtp_ports="46000-46999",
            timers=Timers(t1=0.01, t2=0.04, t4=0.05),
        ),
        policy,
    )
    await server.start()
    client = Uac(server.port)
    try:
        resp = await client.call("INVITE", body=offer())
        assert resp.status == 200
        bye = None
        while bye is None:  # skip the retransmitted 200s (Timer G) until the BYE comes
            data = await asyncio.to_thread(client.recv_raw)
            assert data is not None, "no BYE before the socket timeout"
            msg = parse_message(data)
            if isinstance(msg, SipRequest):
                bye = msg
        assert bye.method == "BYE" and "no ACK" in (bye.get("Reason") or "")
        await policy.wait_for(lambda: len(policy.ended) == 1)
        assert policy.ended[0][1] == "no ACK" and not policy.established
    finally:
        client.close()
        await server.stop()


async def test_hangup_from_our_side_sends_bye(sip: SipUnderTest, uac: Uac) -> None:
    resp = await uac.call("INVITE", body=offer())
    assert resp.status == 200
    uac.ack()
    await sip.policy.wait_for(lambda: len(sip.policy.established) == 1)
    hangup = asyncio.ensure_future(sip.policy.established[0].hangup("room ended"))
    data = await asyncio.to_thread(uac.recv_raw)
    assert data is not None
    bye = parse_message(data)
    assert isinstance(bye, SipRequest) and bye.method == "BYE"
    assert bye.from_.tag == uac.to_tag and bye.to.tag == uac.tag
    reply = (
        f"SIP/2.0 200 OK\r\nVia: {bye.get('Via')}\r\nFrom: {bye.get('From')}\r\nTo: {bye.get('To')}\r\n"
        f"Call-ID: {bye.call_id}\r\nCSeq: {bye.get('CSeq')}\r\nContent-Length: 0\r\n\r\n"
    )
    uac.send(reply.encode())
    await asyncio.wait_for(hangup, 5)
    assert sip.policy.ended[0][1] == "room ended"


async def test_sdes_srtp_media_is_decrypted(sip: SipUnderTest, uac: Uac) -> None:
    """RFC 4568 keys in SDP; RTP/SAVP packets protected with the offered key reach the endpoint."""
    key = bytes(range(30))
    extra = f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{base64.b64encode(key).decode()}\r\n"
    resp = await uac.call("INVITE", body=offer(proto="RTP/SAVP", extra=extra))
    assert resp.status == 200
    answer = resp.body.decode()
    assert "RTP/SAVP" in answer and "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" in answer
    media_port = int(answer.split("m=audio ")[1].split()[0])
    uac.ack()
    await sip.policy.wait_for(lambda: len(sip.policy.established) == 1)
    endpoint = sip.policy.established[0].media.endpoint("audio")
    assert endpoint is not None
    tx = pylibsrtp.Session(pylibsrtp.Policy(key, pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for seq in range(3):
            s.sendto(
                tx.protect(RtpPacket(0, seq, 160 * seq, 0x42, b"\xd5" * 160).serialise()),
                ("127.0.0.1", media_port),
            )
        s.sendto(
            RtpPacket(0, 3, 480, 0x42, b"\xd5" * 160).serialise(), ("127.0.0.1", media_port)
        )  # unprotected
    await sip.policy.wait_for(lambda: endpoint.stats.rtp_packets == 3 and endpoint.stats.bad_packets == 1)


async def test_tcp_garbage_closes_only_that_connection(sip: SipUnderTest, uac: Uac) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", sip.server.port)
    writer.write(b"INVITE sip:x SIP/2.0\r\nContent-Length: nope\r\n\r\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
    writer.close()
    resp = await uac.call("OPTIONS")
    assert resp.status == 200
