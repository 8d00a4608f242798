"""SDP parse/serialise (RFC 8866) and offer/answer (RFC 3264) for SIP legs."""

from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vdx.sip.sdp import (
    FloorControlPorts,
    H264Params,
    MediaConfig,
    Negotiator,
    NoCommonCodec,
    SdpError,
    SessionDescription,
)

KEY = base64.b64encode(bytes(range(30))).decode()

# A room system offer: G.722 first, H.264 in both packetization modes, BFCP-less.
ROOM_SYSTEM = """v=0
o=tandberg 7 2 IN IP4 192.0.2.10
s=-
c=IN IP4 192.0.2.10
b=AS:2048
t=0 0
m=audio 2326 RTP/AVP 9 0 8 101
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
m=video 2328 RTP/AVPF 126 97 34
b=TIAS:1920000
a=rtpmap:126 H264/90000
a=fmtp:126 profile-level-id=42e028;packetization-mode=1;max-mbps=245000;max-fs=8160
a=rtpmap:97 H264/90000
a=fmtp:97 profile-level-id=42e028;packetization-mode=0
a=rtpmap:34 H263/90000
a=rtcp-fb:* nack pli
a=rtcp-fb:* ccm fir
a=rtcp-fb:* ccm tmmbr
a=sendrecv
"""


def offer(text: str = ROOM_SYSTEM) -> SessionDescription:
    return SessionDescription.parse(text.replace("\n", "\r\n").encode())


def answer(text: str = ROOM_SYSTEM, config: MediaConfig | None = None):  # type: ignore[no-untyped-def]
    neg = Negotiator(config or MediaConfig(), "198.51.100.1", session_id=42)
    return neg.answer(offer(text), {0: 40000, 1: 40002, 2: 40004})


def test_parse_and_round_trip() -> None:
    sd = offer()
    assert sd.connection == "192.0.2.10" and sd.bandwidth == ["AS:2048"]
    audio, video = sd.media
    assert (audio.kind, audio.port, audio.proto, audio.formats) == (
        "audio",
        2326,
        "RTP/AVP",
        ["9", "0", "8", "101"],
    )
    assert audio.rtpmap()[9] == ("G722", 8000, 1)  # static payload type without rtpmap (RFC 3551)
    assert video.fmtp()[126].startswith("profile-level-id=42e028")
    assert video.rtcp_fb()["*"] == ["nack pli", "ccm fir", "ccm tmmbr"]
    again = SessionDescription.parse(sd.serialise())
    assert again.serialise() == sd.serialise()


def test_answer_keeps_offerer_order_and_echoes_h264_packetization_mode() -> None:
    """RFC 3264 §6.1 (offerer's preference order) and RFC 6184 §8.2.2 (echo packetization-mode)."""
    result = answer()
    audio, video = result.streams
    assert [c.name for c in audio.codecs] == ["G722", "PCMU", "PCMA", "telephone-event"]
    assert [(c.pt, c.params["packetization-mode"]) for c in video.codecs] == [(126, "1"), (97, "0")]
    # Level capped at our 3.1 (0x1f); profile echoed; H.263 (34) not supported -> left out.
    assert video.codecs[0].params["profile-level-id"] == "42e01f"
    sdp = result.local.serialise().decode()
    assert "m=video 40002 RTP/AVPF 126 97\r\n" in sdp
    assert "a=fmtp:126 profile-level-id=42e01f;packetization-mode=1\r\n" in sdp
    assert "a=rtcp-fb:126 nack pli\r\n" in sdp and "a=rtcp-fb:126 ccm fir\r\n" in sdp
    assert "a=rtcp-fb:126 ccm tmmbr\r\n" in sdp  # the node keeps to a receiver's TMMBR
    assert "c=IN IP4 198.51.100.1" in sdp


def test_h264_max_fs_and_max_mbps_raise_the_level_limits() -> None:
    """RFC 6184 §8.1: max-fs/max-mbps state what the receiver can take beyond its level."""
    h = H264Params.from_fmtp("profile-level-id=42e01f;packetization-mode=1;max-fs=8160;max-mbps=245000")
    assert h is not None
    assert h.max_frame_macroblocks == 8160 and h.max_macroblocks_per_second == 245000
    # The far end's declared limits travel with the negotiated codec, for the encoder of the leg.
    limits = answer().streams[1].codecs[0].send_limits
    assert limits is not None and (limits.level_idc, limits.max_fs, limits.max_mbps) == (0x28, 8160, 245000)
    plain = H264Params.from_fmtp("profile-level-id=42e01f")
    assert plain is not None and plain.max_frame_macroblocks == 3600  # level 3.1 = 720p
    assert plain.packetization_mode == 0  # RFC 6184 default


def test_hold_direction_is_mirrored() -> None:
    """RFC 3264 §8.4: sendonly offer -> recvonly answer; inactive -> inactive."""
    held = answer(ROOM_SYSTEM.replace("a=sendrecv", "a=sendonly"))
    assert all(s.direction == "recvonly" for s in held.streams)
    assert held.local.serialise().decode().count("a=recvonly") == 2
    off = answer(ROOM_SYSTEM.replace("a=sendrecv", "a=inactive"))
    assert all(s.direction == "inactive" for s in off.streams)


def test_unsupported_m_line_is_rejected_with_port_zero() -> None:
    text = ROOM_SYSTEM + "m=application 5070 UDP/BFCP *\r\na=floorctrl:c-s\r\n"
    result = answer(text)
    assert len(result.local.media) == 3 and result.local.media[2].port == 0
    assert len(result.streams) == 2


def test_no_common_codec_raises_for_488() -> None:
    text = """v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=audio 4000 RTP/AVP 18 3
a=rtpmap:18 G729/8000
m=video 4002 RTP/AVP 34
a=rtpmap:34 H263/90000
"""
    with pytest.raises(NoCommonCodec):
        answer(text)


def test_opus_with_only_8k_telephone_event_keeps_dtmf() -> None:
    """baresip offers Opus with telephone-event/8000 only: PIN digits must still be possible."""
    text = """v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=audio 4000 RTP/AVP 96 101
a=rtpmap:96 opus/48000/2
a=rtpmap:101 telephone-event/8000
"""
    (audio,) = answer(text).streams
    assert [(c.name, c.pt) for c in audio.codecs] == [("opus", 96), ("telephone-event", 101)]
    assert audio.dtmf_pt == 101


def test_vp8_opus_and_48k_telephone_event() -> None:
    text = """v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=audio 4000 RTP/AVP 111 110 0
a=rtpmap:111 opus/48000/2
a=rtpmap:110 telephone-event/48000
a=rtpmap:0 PCMU/8000
m=video 4002 RTP/AVP 100
a=rtpmap:100 VP8/90000
a=rtcp-mux
"""
    result = answer(text)
    audio, video = result.streams
    assert [(c.name, c.pt) for c in audio.codecs] == [("opus", 111), ("PCMU", 0), ("telephone-event", 110)]
    assert audio.codecs[0].channels == 2 and audio.dtmf_pt == 110
    assert video.codecs[0].name == "VP8" and video.rtcp_mux


def test_sdes_srtp_is_answered_with_our_key() -> None:
    """RFC 4568: pick the first supported crypto line, answer with the same tag and a fresh key."""
    text = (
        ROOM_SYSTEM.replace("RTP/AVP ", "RTP/SAVP ")
        .replace("RTP/AVPF", "RTP/SAVPF")
        .replace(
            "a=sendrecv\nm=video",
            f"a=crypto:1 AES_CM_256_HMAC_SHA1_80 inline:{KEY}\na=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^31\n"
            "a=sendrecv\nm=video",
        )
    )
    result = answer(text)
    audio = result.streams[0]
    assert audio.srtp_suite == "AES_CM_128_HMAC_SHA1_80"
    assert audio.srtp_remote_key == bytes(range(30))
    assert audio.srtp_local_key is not None and len(audio.srtp_local_key) == 30
    assert "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:" in result.local.serialise().decode()
    # RTP/SAVPF video without crypto lines (DTLS-only) cannot be served: rejected line, audio stays.
    assert [s.kind for s in result.streams] == ["audio"]


def test_require_srtp_refuses_plain_rtp() -> None:
    with pytest.raises(NoCommonCodec):
        answer(config=MediaConfig(require_srtp=True))


def test_delayed_offer_then_answer() -> None:
    """RFC 3261 §13.2.1: INVITE without SDP -> our offer in the 200, the answer in the ACK."""
    neg = Negotiator(MediaConfig(), "198.51.100.1", session_id=7)
    ours = neg.offer({0: 40000, 1: 40002})
    text = ours.serialise().decode()
    assert "m=audio 40000 RTP/AVP 111 9 0 8 101 110" in text
    assert "m=video 40002 RTP/AVP 97 98 100" in text
    reply = """v=0
o=- 5 5 IN IP4 192.0.2.9
s=-
c=IN IP4 192.0.2.9
t=0 0
m=audio 5000 RTP/AVP 9 101
a=rtpmap:9 G722/8000
a=rtpmap:101 telephone-event/8000
m=video 5002 RTP/AVPF 98
a=rtpmap:98 H264/90000
a=fmtp:98 profile-level-id=42e01f;packetization-mode=0
a=recvonly
"""
    result = neg.accept_answer(offer(reply))
    audio, video = result.streams
    assert [c.name for c in audio.codecs] == ["G722", "telephone-event"]
    assert video.codecs[0].pt == 98 and video.direction == "sendonly"
    assert (video.remote_address, video.remote_port) == ("192.0.2.9", 5002)
    with pytest.raises(SdpError):
        neg.accept_answer(offer(reply))  # no offer outstanding any more


def test_origin_version_increments_per_answer() -> None:
    neg = Negotiator(MediaConfig(), "198.51.100.1", session_id=9)
    first = neg.answer(offer(), {0: 40000, 1: 40002}).local.origin
    second = neg.answer(offer(), {0: 40000, 1: 40002}).local.origin
    assert first.split()[1:3] == ["9", "1"] and second.split()[1:3] == ["9", "2"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "v=1\r\n",
        "v=0\r\ns=-\r\n",  # no o=
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio x RTP/AVP 0\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 99999 RTP/AVP 0\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio ٤٠٠٠ RTP/AVP 0\r\n",  # Arabic-Indic digits
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP9 x\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 0\r\n",  # media without c=
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nbogus\r\n",
    ],
)
def test_malformed_sdp_raises_sdp_error(text: str) -> None:
    with pytest.raises(SdpError):
        SessionDescription.parse(text.encode())


# --- property tests ------------------------------------------------------------------------------

lines = st.one_of(
    st.sampled_from(ROOM_SYSTEM.splitlines()),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=80),
    st.builds(
        lambda kind, port, proto, fmts: f"m={kind} {port} {proto} {' '.join(fmts)}",
        st.sampled_from(["audio", "video", "application", "x"]),
        st.integers(-5, 70000),
        st.sampled_from(["RTP/AVP", "RTP/AVPF", "RTP/SAVP", "UDP/BFCP", "x"]),
        st.lists(st.sampled_from(["0", "8", "9", "96", "97", "126", "*", "abc"]), max_size=6),
    ),
    st.builds(
        lambda pt, enc: f"a=rtpmap:{pt} {enc}",
        st.sampled_from(["0", "97", "126", "x"]),
        st.sampled_from(["H264/90000", "VP8/90000", "opus/48000/2", "telephone-event/8000", "H264", "/"]),
    ),
    st.builds(
        lambda pt, f: f"a=fmtp:{pt} {f}",
        st.sampled_from(["97", "126", "101"]),
        st.sampled_from(["profile-level-id=zz", "profile-level-id=42e0", "packetization-mode=x", "0-15", ""]),
    ),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(lines, max_size=40))
def test_hostile_sdp_parses_or_raises_sdp_error_and_negotiates_or_488(body: list[str]) -> None:
    text = "v=0\r\n" + "\r\n".join(body) + "\r\n"
    try:
        sd = SessionDescription.parse(text.encode())
    except SdpError:
        return
    assert SessionDescription.parse(sd.serialise()).serialise() == sd.serialise()
    neg = Negotiator(MediaConfig(), "198.51.100.1")
    try:
        result = neg.answer(sd, {i: 40000 + 2 * i for i in range(len(sd.media))})
    except NoCommonCodec:
        return
    assert len(result.local.media) == len(sd.media)
    assert result.streams


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=1500))
def test_binary_sdp_never_crashes(data: bytes) -> None:
    with contextlib.suppress(SdpError):
        SessionDescription.parse(data)


# A Cisco-style offer with a presentation: a second video with a=content:slides and BFCP.
WITH_CONTENT = (
    "a=content:main\na=sendrecv\n".join(ROOM_SYSTEM.rsplit("a=sendrecv\n", 1))  # on the main video
    + """m=video 2330 RTP/AVPF 126
a=rtpmap:126 H264/90000
a=fmtp:126 profile-level-id=42e028;packetization-mode=1
a=content:slides
a=label:3
a=sendrecv
m=application 5070 TCP/BFCP *
a=setup:actpass
a=connection:new
a=floorctrl:c-s
a=confid:1
a=userid:2
a=floorid:1 mstrm:3
"""
)


def test_a_presentation_stream_the_node_cannot_serve_is_refused_and_the_call_goes_on() -> None:
    """RFC 3264 section 6: port 0 for the content video (RFC 4796) and for BFCP, the rest as ever."""
    neg = answer(WITH_CONTENT)
    ports = [m.port for m in neg.local.media]
    assert [m.kind for m in neg.local.media] == ["audio", "video", "video", "application"]
    assert ports[0] and ports[1] and ports[2:] == [0, 0]
    assert [s.kind for s in neg.streams] == ["audio", "video"]
    plain = answer()
    assert [(m.kind, m.formats) for m in plain.local.media] == [
        (m.kind, m.formats) for m in neg.local.media[:2]
    ]


FLOORS = MediaConfig(floor_control=FloorControlPorts(tcp=5071, udp=5072))


def test_a_presentation_stream_with_bfcp_is_answered_with_the_node_as_floor_server() -> None:
    """RFC 4796 + RFC 8856: the content video with its label, BFCP where the node listens."""
    neg = Negotiator(FLOORS, "198.51.100.1", session_id=42)
    result = neg.answer(offer(WITH_CONTENT), {0: 40000, 1: 40002, 2: 40004})
    _audio, video, content, bfcp = result.local.media
    assert (content.port, content.formats) == (40004, ["126"])
    assert content.attr("content") == "slides" and content.attr("label") == "3"
    assert content.direction == "sendrecv" and video.attr("content") is None
    assert (bfcp.kind, bfcp.port, bfcp.proto, bfcp.formats) == ("application", 5071, "TCP/BFCP", ["*"])
    confid, userid = neg.floor_ids
    assert bfcp.attr("floorctrl") == "s-only" and bfcp.attr("setup") == "passive"
    assert bfcp.attr("connection") == "new" and bfcp.attr("floorid") == "1 mstrm:3"
    assert (bfcp.attr("confid"), bfcp.attr("userid")) == (str(confid), str(userid))
    assert result.floor is not None and (result.floor.transport, result.floor.content_index) == ("tcp", 2)
    assert (result.floor.conference_id, result.floor.user_id) == (confid, userid)
    assert result.stream("video") is not None and result.stream("video").index == 1  # type: ignore[union-attr]
    assert result.content is not None and result.content.index == 2
    # the serialised answer parses back with the same lines; a re-offer keeps the ids
    again = SessionDescription.parse(result.local.serialise()).media[3]
    assert again.attrs("floorid") == ["1 mstrm:3"]
    second = neg.answer(offer(WITH_CONTENT), {0: 40000, 1: 40002, 2: 40004}).local.media[3]
    assert second.attr("confid") == str(confid)


def test_bfcp_over_udp_is_answered_on_the_udp_port_without_setup() -> None:
    text = WITH_CONTENT.replace("TCP/BFCP", "UDP/BFCP").replace("a=setup:actpass\na=connection:new\n", "")
    bfcp = answer(text, FLOORS).local.media[3]
    assert (bfcp.port, bfcp.proto, bfcp.attr("setup")) == (5072, "UDP/BFCP", None)


@pytest.mark.parametrize(
    "change",
    [
        ("TCP/BFCP", "TCP/TLS/BFCP"),  # no TLS listener for BFCP
        ("a=setup:actpass", "a=setup:passive"),  # it would have us connect to it
        ("a=floorctrl:c-s", "a=floorctrl:s-only"),  # it wants to be the server itself
        ("m=application 5070", "m=application 0"),
        ("a=content:slides", "a=content:speaker"),
    ],
)
def test_a_presentation_the_node_cannot_control_is_refused_as_before(change: tuple[str, str]) -> None:
    result = answer(WITH_CONTENT.replace(*change), FLOORS)
    assert [m.port for m in result.local.media][2:] == [0, 0] and result.floor is None
    assert [s.kind for s in result.streams] == ["audio", "video"]


def test_content_without_bfcp_is_refused_and_plain_calls_answer_as_before() -> None:
    """Without floor control there is no way to say when the presentation changes hands, and the
    composed picture already shows it: the content stream alone is refused."""
    text = WITH_CONTENT.split("m=application")[0]
    assert [m.port for m in answer(text, FLOORS).local.media][2] == 0
    with_floors = answer(ROOM_SYSTEM, FLOORS).local
    plain = answer(ROOM_SYSTEM).local
    assert with_floors.serialise().split(b"\r\n")[4:] == plain.serialise().split(b"\r\n")[4:]
