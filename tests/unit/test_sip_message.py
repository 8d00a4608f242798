"""SIP message parsing and serialisation (RFC 3261 §7, §18.3, §20), including hostile input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vdx.sip.message import (
    MAX_MESSAGE_BYTES,
    NameAddr,
    SipParseError,
    SipRequest,
    SipResponse,
    SipUri,
    Via,
    frame_stream,
    make_response,
    parse_message,
    split_list,
)

INVITE = (
    "INVITE sip:12345678@vdx.local SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK776asdhds;rport\r\n"
    "v: SIP/2.0/UDP proxy.example.org;branch=z9hG4bKproxy, SIP/2.0/TCP 10.1.1.1:5070;branch=z9hG4bKx\r\n"
    "Max-Forwards: 70\r\n"
    'From: "Room 4" <sip:room4@hospital.example>;tag=1928301774\r\n'
    "t: <sip:12345678@vdx.local>\r\n"
    "i: a84b4c76e66710@pc33.example\r\n"
    "CSeq: 314159 INVITE\r\n"
    "m: <sip:room4@10.0.0.5:5060>\r\n"
    "Subject: folded\r\n  over two lines\r\n"
    "c: application/sdp\r\n"
    "l: 4\r\n"
    "\r\n"
    "v=0\r\n"
)


def test_parses_request_with_compact_and_folded_headers() -> None:
    msg = parse_message(INVITE.encode())
    assert isinstance(msg, SipRequest)
    assert msg.defect is None
    assert msg.method == "INVITE" and msg.uri == "sip:12345678@vdx.local"
    assert msg.call_id == "a84b4c76e66710@pc33.example"
    assert msg.cseq == (314159, "INVITE")
    assert msg.from_.tag == "1928301774" and msg.from_.display == "Room 4"
    assert msg.to.tag is None
    assert [v.host for v in msg.vias] == ["10.0.0.5", "proxy.example.org", "10.1.1.1"]
    assert msg.vias[0].branch == "z9hG4bK776asdhds" and "rport" in msg.vias[0].params
    assert msg.get("Subject") == "folded over two lines"
    assert msg.content_type == "application/sdp"
    assert msg.body == b"v=0\r"  # Content-Length cuts the body (RFC 3261 §18.3)


def test_serialise_round_trip() -> None:
    msg = parse_message(INVITE.encode())
    assert isinstance(msg, SipRequest)
    again = parse_message(msg.serialise())
    assert isinstance(again, SipRequest)
    assert again.headers == [*msg.headers[:-1], ("Content-Length", "4")]
    assert again.body == msg.body


def test_response_copies_dialog_headers_and_adds_to_tag() -> None:
    req = parse_message(INVITE.encode())
    assert isinstance(req, SipRequest)
    resp = make_response(req, 486, to_tag="abc")
    parsed = parse_message(resp.serialise())
    assert isinstance(parsed, SipResponse)
    assert parsed.status == 486 and parsed.reason == "Busy Here"
    assert parsed.to.tag == "abc"
    assert parsed.get_all("Via") == req.get_all("Via")
    assert parsed.cseq == (314159, "INVITE")


def test_a_dialog_forming_response_keeps_the_proxies_record_route_in_order() -> None:
    # RFC 3261 §12.1.1: a proxy in front (Kamailio) that record-routes stays on the call's path
    routed = INVITE.replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nRecord-Route: <sip:10.9.9.9;lr>\r\nRecord-Route: <sip:10.8.8.8;lr>, <sip:x;lr>\r\n",
    )
    req = parse_message(routed.encode())
    assert isinstance(req, SipRequest)
    rr = ["<sip:10.9.9.9;lr>", "<sip:10.8.8.8;lr>", "<sip:x;lr>"]
    for status in (183, 200):
        answer = parse_message(make_response(req, status, to_tag="abc").serialise())
        assert isinstance(answer, SipResponse) and answer.get_all("Record-Route") == rr
    # a refusal forms no dialog, and a re-INVITE (To has our tag) does not change the route set
    assert make_response(req, 486, to_tag="abc").get_all("Record-Route") == []
    req.headers = [(k, f"{v};tag=abc" if k == "To" else v) for k, v in req.headers]
    assert make_response(req, 200).get_all("Record-Route") == []


def test_body_shorter_than_content_length_is_a_defect_answered_400() -> None:
    # RFC 3261 §18.3: a truncated request over UDP SHOULD get 400.
    msg = parse_message(INVITE.replace("l: 4", "l: 400").encode())
    assert msg.defect == "body shorter than Content-Length"


@pytest.mark.parametrize(
    ("change", "defect"),
    [
        (("CSeq: 314159 INVITE", "CSeq: 314159 BYE"), "CSeq method does not match the request method"),
        (("l: 4", "l: -1"), "bad Content-Length"),
        (("l: 4", "l: ²"), "bad Content-Length"),  # a Unicode digit int() refuses (found by hypothesis)
        (("Max-Forwards: 70", "Max-Forwards: many"), "bad Max-Forwards"),
        (("SIP/2.0\r\nVia", "SIP/3.0\r\nVia"), "unsupported SIP version"),
        (("CSeq: 314159 INVITE", "CSeq: abc INVITE"), "malformed core header"),
    ],
)
def test_answerable_defects(change: tuple[str, str], defect: str) -> None:
    msg = parse_message(INVITE.replace(*change, 1).encode())
    assert isinstance(msg, SipRequest)
    assert msg.defect == defect


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x01\x02garbage",
        b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n",  # no end of headers
        b"HELLO\r\n\r\n",
        b"SIP/2.0 99 Too Low\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nFrom: <sip:x@y>\r\n\r\n",  # no Via/Call-ID/CSeq: nowhere to answer
        b"INVITE sip:a@b SIP/2.0\r\nVia: nonsense\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n",
        "INVITE sip:a@b SIP/2.0\r\nSubject: \udcff\r\n\r\n".encode("utf-8", "surrogateescape"),
    ],
)
def test_unanswerable_input_raises_parse_error(data: bytes) -> None:
    with pytest.raises(SipParseError):
        parse_message(data)


def test_oversized_input_is_refused() -> None:
    huge = INVITE.replace("Subject: folded", "Subject: " + "x" * 9000).encode()
    with pytest.raises(SipParseError):
        parse_message(huge)
    with pytest.raises(SipParseError):
        parse_message(b"x" * (MAX_MESSAGE_BYTES + 1))
    many = INVITE.replace("Max-Forwards: 70\r\n", "X-A: 1\r\n" * 200).encode()
    with pytest.raises(SipParseError):
        parse_message(many)


def test_stream_framing_by_content_length() -> None:
    one = INVITE.replace("l: 4", "l: 5").encode()
    buf = bytearray(b"\r\n\r\n" + one + one[:50])  # CRLF keep-alives first
    first = frame_stream(buf)
    assert first is not None and parse_message(first, stream=True).body == b"v=0\r\n"
    assert frame_stream(buf) is None  # the second message is incomplete
    buf += one[50:]
    assert frame_stream(buf) is not None and not buf
    with pytest.raises(SipParseError):
        frame_stream(bytearray(b"INVITE x SIP/2.0\r\nContent-Length: 99999999\r\n\r\n"))


def test_folded_core_headers_parse_as_unfolded() -> None:
    """§7.3.1: any header, core ones and Content-Length included, may continue on lines that start
    with SP or HTAB; each fold reads as one SP."""
    folded = (
        INVITE.replace("Max-Forwards: 70", "Max-Forwards:\r\n\t70")
        .replace("CSeq: 314159 INVITE", "CSeq: 314159\r\n    INVITE")
        .replace("l: 4", "l:\r\n 4")
        .replace("t: <sip:12345678@vdx.local>", "t:\r\n  <sip:12345678@vdx.local>\r\n\t ;x=1")
    )
    msg = parse_message(folded.encode())
    assert isinstance(msg, SipRequest) and msg.defect is None
    assert msg.get("Max-Forwards") == "70" and msg.cseq == (314159, "INVITE")
    assert msg.get("To") == "<sip:12345678@vdx.local> ;x=1"
    assert msg.body == b"v=0\r"
    buf = bytearray(folded.encode())
    framed = frame_stream(buf)
    assert framed is not None and parse_message(framed, stream=True).body == b"v=0\r"


def test_content_length_headers_must_agree() -> None:
    """§20.14: the body size must be unambiguous. Repeats that agree are harmless; ones that
    disagree are a 400 on datagrams and close a stream (where framing is no longer possible)."""
    agree = parse_message(INVITE.replace("l: 4\r\n", "l: 4\r\nContent-Length: 004\r\n").encode())
    assert agree.defect is None and agree.body == b"v=0\r"
    conflict = INVITE.replace("l: 4\r\n", "l: 4\r\nContent-Length: 5\r\n").encode()
    msg = parse_message(conflict)
    assert isinstance(msg, SipRequest) and msg.defect == "conflicting Content-Length headers"
    assert parse_message(make_response(msg, 400).serialise()).defect is None
    with pytest.raises(SipParseError):
        frame_stream(bytearray(conflict))


def test_uri_name_addr_and_via_parsing() -> None:
    uri = SipUri.parse("sips:12345678@[2001:db8::1]:5061;transport=tls")
    assert (uri.scheme, uri.user, uri.host, uri.port) == ("sips", "12345678", "2001:db8::1", 5061)
    assert uri.params == {"transport": "tls"}
    assert str(SipUri.parse("sip:alice:secret@example.com")) == "sip:alice@example.com"
    na = NameAddr.parse('"A, B" <sip:a@b;lr>;tag=x')
    assert (na.display, na.uri, na.tag) == ("A, B", "sip:a@b;lr", "x")
    via = Via.parse("SIP/2.0/tls host.example:5061;branch=z9hG4bKabc;received=1.2.3.4")
    assert (via.transport, via.host, via.port, via.branch) == ("TLS", "host.example", 5061, "z9hG4bKabc")
    assert split_list('"a,b" <sip:x>, <sip:y,z>') == ['"a,b" <sip:x>', "<sip:y,z>"]
    with pytest.raises(SipParseError):
        SipUri.parse("http://example.com")
    with pytest.raises(SipParseError):
        SipUri.parse("sip:user@host:99999")


# --- property tests: hostile input never crashes the parser ----------------------------------------


def _parse_or_reject(data: bytes) -> None:
    try:
        msg = parse_message(data)
    except SipParseError:
        return
    # Whatever parsed must be serialisable and answerable without raising.
    msg.serialise()
    if isinstance(msg, SipRequest):
        make_response(msg, 400).serialise()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_binary_garbage_never_crashes(data: bytes) -> None:
    _parse_or_reject(data)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=len(INVITE)), st.data())
def test_truncated_and_mutated_requests_never_crash(cut: int, data: st.DataObject) -> None:
    raw = bytearray(INVITE.encode()[:cut])
    for _ in range(data.draw(st.integers(0, 5))):
        if raw:
            pos = data.draw(st.integers(0, len(raw) - 1))
            raw[pos] = data.draw(st.integers(0, 255))
    _parse_or_reject(bytes(raw))


header_names = st.sampled_from(["Via", "v", "From", "To", "Call-ID", "CSeq", "Content-Length", "l", "X-Junk"])
header_values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=120
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["INVITE", "OPTIONS", "BYE", "FOO", "ACK", "CANCEL", "i n v"]),
    st.lists(st.tuples(header_names, header_values), max_size=20),
    st.binary(max_size=200),
)
def test_random_headers_never_crash(method: str, headers: list[tuple[str, str]], body: bytes) -> None:
    text = f"{method} sip:1@vdx.local SIP/2.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    _parse_or_reject(text.encode() + body)


def _fold(text: str, where: list[int], ws: str) -> str:
    """Break a header value at some of its spaces into continuation lines."""
    parts = text.split(" ")
    out = parts[0]
    for i, part in enumerate(parts[1:]):
        out += ("\r\n" + ws if i in where else " ") + part
    return out


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 8), max_size=4),
    st.sampled_from([" ", "\t", "  ", " \t"]),
    st.sampled_from(["Via", "v", "From", "CSeq", "Subject", "m"]),
)
def test_folding_any_header_changes_nothing(where: list[int], ws: str, name: str) -> None:
    plain = INVITE.replace("Subject: folded\r\n  over two lines", "Subject: folded over two lines")
    lines = plain.split("\r\n")
    i = next(n for n, line in enumerate(lines) if line.startswith(name + ":"))
    key, value = lines[i].split(": ", 1)
    lines[i] = f"{key}: " + _fold(value, where, ws)
    a, b = parse_message(plain.encode()), parse_message("\r\n".join(lines).encode())
    assert b.defect is None and a.headers == b.headers and a.body == b.body


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 12), min_size=1, max_size=4), st.booleans())
def test_repeated_content_lengths_parse_only_when_they_agree(lengths: list[int], stream: bool) -> None:
    head = INVITE.split("l: 4\r\n")[0]
    data = (head + "".join(f"Content-Length: {n}\r\n" for n in lengths) + "\r\n" + "x" * 12).encode()
    msg = parse_message(data, stream=stream)
    if len(set(lengths)) == 1:
        assert msg.defect is None and len(msg.body) == lengths[0]
    else:
        assert msg.defect == "conflicting Content-Length headers" and msg.body == b""
        with pytest.raises(SipParseError):
            frame_stream(bytearray(data))
