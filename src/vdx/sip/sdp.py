"""SDP (RFC 8866) parse/serialise and the offer/answer model (RFC 3264) for SIP legs.

What room systems and softphones send: audio + video m-lines over RTP/AVP, RTP/AVPF or their
SRTP variants, H.264 (RFC 6184), VP8 (RFC 7741), Opus, G.722, PCMU/PCMA and telephone-event
(RFC 4733). The answer lists the codecs we support in the *offerer's* order, echoes H.264's
packetization-mode (baresip sends no video otherwise), and rejects the whole session (488) only
when no m-line has a codec in common.
"""

from __future__ import annotations

import base64
import os
import secrets
import time
from dataclasses import dataclass, field

from .message import digits

MAX_SDP_BYTES = 32768
MAX_SDP_LINES = 512
MAX_MEDIA = 16

RTP_PROTOS = ("RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF")
SRTP_SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_REVERSE = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}

# Static payload types of RFC 3551 that may appear without an rtpmap line.
STATIC_PT = {0: ("PCMU", 8000, 1), 8: ("PCMA", 8000, 1), 9: ("G722", 8000, 1)}


class SdpError(ValueError):
    """The SDP cannot be parsed (the request gets 400)."""


class NoCommonCodec(Exception):
    """No offered m-line can be accepted (the request gets 488)."""


@dataclass
class Media:
    kind: str
    port: int
    proto: str
    formats: list[str]
    port_count: int = 1
    connection: str | None = None
    bandwidth: list[str] = field(default_factory=list)
    attributes: list[tuple[str, str | None]] = field(default_factory=list)

    def attr(self, name: str) -> str | None:
        for k, v in self.attributes:
            if k == name:
                return v
        return None

    def attrs(self, name: str) -> list[str]:
        return [v or "" for k, v in self.attributes if k == name]

    @property
    def direction(self) -> str:
        for k, _ in self.attributes:
            if k in DIRECTIONS:
                return k
        return "sendrecv"

    def rtpmap(self) -> dict[int, tuple[str, int, int]]:
        """Payload type -> (encoding name, clock rate, channels), with the static defaults."""
        out: dict[int, tuple[str, int, int]] = {}
        for fmt in self.formats:
            if digits(fmt) and int(fmt) in STATIC_PT:
                out[int(fmt)] = STATIC_PT[int(fmt)]
        for value in self.attrs("rtpmap"):
            pt, _, enc = value.partition(" ")
            parts = enc.strip().split("/")
            if not digits(pt) or len(parts) < 2 or not digits(parts[1]):
                continue
            channels = int(parts[2]) if len(parts) > 2 and digits(parts[2]) else 1
            out[int(pt)] = (parts[0], int(parts[1]), channels)
        return out

    def fmtp(self) -> dict[int, str]:
        out: dict[int, str] = {}
        for value in self.attrs("fmtp"):
            pt, _, params = value.partition(" ")
            if digits(pt):
                out[int(pt)] = params.strip()
        return out

    def rtcp_fb(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for value in self.attrs("rtcp-fb"):
            pt, _, fb = value.partition(" ")
            out.setdefault(pt, []).append(fb.strip())
        return out


@dataclass
class SessionDescription:
    origin: str = "- 0 0 IN IP4 0.0.0.0"
    name: str = "-"
    connection: str | None = None
    bandwidth: list[str] = field(default_factory=list)
    timing: str = "0 0"
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)

    @classmethod
    def parse(cls, data: bytes | str) -> SessionDescription:
        """Raises :class:`SdpError` for anything but a well-formed description (never another
        exception); i=, u=, e=, p=, z=, k= and r= lines are legal and ignored."""
        sd = cls()
        seen_origin = False
        cur: Media | None = None
        for line in _sdp_lines(data):
            if len(line) < 2 or line[1] != "=":
                raise SdpError(f"bad SDP line {line[:40]!r}")
            t, value = line[0], line[2:].strip()
            if t == "m":
                cur = _media_line(value)
                if len(sd.media) >= MAX_MEDIA:
                    raise SdpError("too many m= lines")
                sd.media.append(cur)
            elif t == "o":
                if len(value.split()) != 6:
                    raise SdpError("bad o= line")
                sd.origin = value
                seen_origin = True
            elif t == "s":
                sd.name = value or "-"
            elif t == "t":
                sd.timing = value
            else:
                _media_or_session_line(cur if cur is not None else sd, t, value)
        if not seen_origin:
            raise SdpError("SDP without o= line")
        for m in sd.media:
            if m.port and m.connection is None and sd.connection is None and m.proto in RTP_PROTOS:
                raise SdpError("media without connection address")
        return sd

    def serialise(self) -> bytes:
        out = ["v=0", f"o={self.origin}", f"s={self.name}"]
        if self.connection:
            out.append(f"c=IN {_ipver(self.connection)} {self.connection}")
        out += [f"b={b}" for b in self.bandwidth]
        out.append(f"t={self.timing}")
        out += [f"a={k}" if v is None else f"a={k}:{v}" for k, v in self.attributes]
        for m in self.media:
            port = f"{m.port}/{m.port_count}" if m.port_count > 1 else str(m.port)
            out.append(f"m={m.kind} {port} {m.proto} {' '.join(m.formats)}")
            if m.connection:
                out.append(f"c=IN {_ipver(m.connection)} {m.connection}")
            out += [f"b={b}" for b in m.bandwidth]
            out += [f"a={k}" if v is None else f"a={k}:{v}" for k, v in m.attributes]
        return ("\r\n".join(out) + "\r\n").encode()

    def address_for(self, media: Media) -> str | None:
        return media.connection or self.connection


def _sdp_lines(data: bytes | str) -> list[str]:
    """The non-empty lines after ``v=0``, within the size limits hostile input must respect."""
    if isinstance(data, bytes):
        if len(data) > MAX_SDP_BYTES:
            raise SdpError("SDP too large")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise SdpError("SDP is not UTF-8") from e
    lines = [ln for ln in data.replace("\r\n", "\n").split("\n") if ln.strip()]
    if len(lines) > MAX_SDP_LINES:
        raise SdpError("too many SDP lines")
    if not lines or lines[0].strip() != "v=0":
        raise SdpError("SDP must start with v=0")
    return lines[1:]


def _media_line(value: str) -> Media:
    """``m=<kind> <port>[/<count>] <proto> <formats...>``."""
    parts = value.split()
    if len(parts) < 4:
        raise SdpError(f"bad m= line {value[:60]!r}")
    port_text, _, count = parts[1].partition("/")
    if not digits(port_text) or int(port_text) > 65535 or (count and not digits(count)):
        raise SdpError(f"bad m= port {parts[1][:20]!r}")
    return Media(
        kind=parts[0],
        port=int(port_text),
        proto=parts[2],
        formats=parts[3:],
        port_count=int(count) if count else 1,
    )


def _media_or_session_line(target: Media | SessionDescription, t: str, value: str) -> None:
    """c=, b= and a= lines belong to the latest m= section, or to the session before the first."""
    if t == "c":
        parts = value.split()
        if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
            raise SdpError(f"bad c= line {value[:60]!r}")
        target.connection = parts[2].split("/", 1)[0]
    elif t == "b":
        target.bandwidth.append(value)
    elif t == "a":
        name, sep, val = value.partition(":")
        target.attributes.append((name.strip(), val if sep else None))


def _ipver(addr: str) -> str:
    return "IP6" if ":" in addr else "IP4"


# --- codecs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Codec:
    """One negotiated payload format."""

    kind: str
    pt: int
    name: str
    clock_rate: int
    channels: int = 1
    fmtp: str = ""
    rtcp_fb: tuple[str, ...] = ()
    remote_fmtp: str = ""  # what the far end declared: the limits for what we send it

    @property
    def params(self) -> dict[str, str]:
        return fmtp_params(self.fmtp)

    @property
    def send_limits(self) -> H264Params | None:
        """For H.264: the far end's level, max-fs and max-mbps (RFC 6184 §8.1), which bound the
        resolution and frame rate our encoder may send on this leg."""
        if self.name.lower() != "h264":
            return None
        return H264Params.from_fmtp(self.remote_fmtp)

    def rtpmap(self) -> str:
        s = f"{self.pt} {self.name}/{self.clock_rate}"
        return s + (f"/{self.channels}" if self.channels > 1 else "")


def fmtp_params(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(";"):
        k, sep, v = part.strip().partition("=")
        if k:
            out[k.strip().lower()] = v.strip() if sep else ""
    return out


# H.264 levels (RFC 6184 / H.264 Table A-1): level_idc -> (MaxFS macroblocks, MaxMBPS).
H264_LEVELS = {
    10: (99, 1485),
    11: (396, 3000),
    12: (396, 6000),
    13: (396, 11880),
    20: (396, 11880),
    21: (792, 19800),
    22: (1620, 20250),
    30: (1620, 40500),
    31: (3600, 108000),
    32: (5120, 216000),
    40: (8192, 245760),
    41: (8192, 245760),
    42: (8704, 522240),
    50: (22080, 589824),
    51: (36864, 983040),
    52: (36864, 2073600),
}
# Profiles we can decode and answer (profile_idc): Baseline/Constrained Baseline, Main, High.
H264_PROFILES = {0x42, 0x4D, 0x64}
H264_MAX_LEVEL = 31  # 720p30: what our encoders produce


@dataclass(frozen=True)
class H264Params:
    profile_idc: int
    profile_iop: int
    level_idc: int
    packetization_mode: int
    max_fs: int | None
    max_mbps: int | None

    @classmethod
    def from_fmtp(cls, fmtp: str) -> H264Params | None:
        p = fmtp_params(fmtp)
        pli = p.get("profile-level-id", "42000a")  # RFC 6184 §8.1 default
        try:
            raw = bytes.fromhex(pli)
            mode = int(p.get("packetization-mode", "0"))
            max_fs = int(p["max-fs"]) if "max-fs" in p else None
            max_mbps = int(p["max-mbps"]) if "max-mbps" in p else None
        except ValueError:
            return None
        if len(raw) != 3:
            return None
        return cls(raw[0], raw[1], raw[2], mode, max_fs, max_mbps)

    @property
    def max_frame_macroblocks(self) -> int:
        """Largest frame we may send: the level's MaxFS, raised by max-fs (RFC 6184 §8.1)."""
        level_fs = H264_LEVELS.get(self.level_idc, H264_LEVELS[10])[0]
        return max(level_fs, self.max_fs or 0)

    @property
    def max_macroblocks_per_second(self) -> int:
        level_mbps = H264_LEVELS.get(self.level_idc, H264_LEVELS[10])[1]
        return max(level_mbps, self.max_mbps or 0)


@dataclass(frozen=True)
class LocalCodec:
    """A codec we offer/accept, with the fmtp we state in offers."""

    kind: str
    name: str
    clock_rate: int
    channels: int = 1
    fmtp: str = ""
    preferred_pt: int = 96


DEFAULT_CODECS: tuple[LocalCodec, ...] = (
    LocalCodec("audio", "opus", 48000, 2, "minptime=10;useinbandfec=1", 111),
    LocalCodec("audio", "G722", 8000, 1, "", 9),
    LocalCodec("audio", "PCMU", 8000, 1, "", 0),
    LocalCodec("audio", "PCMA", 8000, 1, "", 8),
    LocalCodec("audio", "telephone-event", 8000, 1, "0-16", 101),
    LocalCodec("audio", "telephone-event", 48000, 1, "0-16", 110),
    LocalCodec("video", "H264", 90000, 1, "profile-level-id=42e01f;packetization-mode=1", 97),
    LocalCodec("video", "H264", 90000, 1, "profile-level-id=42e01f;packetization-mode=0", 98),
    LocalCodec("video", "VP8", 90000, 1, "max-fr=30;max-fs=3600", 100),
)
SUPPORTED_FB = ("nack", "nack pli", "ccm fir", "ccm tmmbr")


@dataclass(frozen=True)
class FloorControlPorts:
    """Where the node's BFCP floor control server listens (RFC 8855 section 6)."""

    tcp: int
    udp: int


@dataclass
class MediaConfig:
    """What this node accepts on SIP legs. With ``floor_control``, a presentation stream offered
    with BFCP is accepted (RFC 4796, RFC 8856); without, it is refused as any extra video."""

    codecs: tuple[LocalCodec, ...] = DEFAULT_CODECS
    require_srtp: bool = False
    floor_control: FloorControlPorts | None = None


@dataclass
class NegotiatedStream:
    """One accepted m-line: what the RTP endpoint of the leg needs to send and receive."""

    index: int
    kind: str
    local_port: int
    remote_address: str | None
    remote_port: int
    proto: str
    codecs: list[Codec]
    direction: str  # our direction, as in our SDP
    rtcp_mux: bool = False
    remote_rtcp_port: int | None = None
    srtp_suite: str | None = None
    srtp_local_key: bytes | None = None  # master key+salt we send with
    srtp_remote_key: bytes | None = None  # master key+salt the far end sends with
    content: str | None = None  # "slides": the presentation stream (RFC 4796), not the main video

    @property
    def dtmf_pt(self) -> int | None:
        for c in self.codecs:
            if c.name.lower() == "telephone-event":
                return c.pt
        return None


@dataclass(frozen=True)
class FloorAssignment:
    """The BFCP floor of a call's presentation stream, as our answer states it (RFC 8856): the
    far end is a floor participant of conference ``conference_id`` as user ``user_id``."""

    conference_id: int
    user_id: int
    floor_id: int
    transport: str  # "tcp" or "udp"
    content_index: int  # the m-line of the presentation stream


@dataclass
class Negotiation:
    local: SessionDescription
    streams: list[NegotiatedStream]
    floor: FloorAssignment | None = None

    def stream(self, kind: str) -> NegotiatedStream | None:
        """The main stream of a kind (never the presentation stream)."""
        for s in self.streams:
            if s.kind == kind and s.content is None:
                return s
        return None

    @property
    def content(self) -> NegotiatedStream | None:
        return next((s for s in self.streams if s.content is not None), None)


def _match(kind: str, name: str, clock: int, fmtp: str, config: MediaConfig) -> LocalCodec | None:
    for lc in config.codecs:
        if lc.kind != kind or lc.name.lower() != name.lower() or lc.clock_rate != clock:
            continue
        if lc.name.lower() == "h264":
            h = H264Params.from_fmtp(fmtp)
            mine = H264Params.from_fmtp(lc.fmtp)
            if h is None or mine is None or h.profile_idc not in H264_PROFILES:
                return None
            if h.packetization_mode != mine.packetization_mode:
                continue
        return lc
    return None


def _answer_fmtp(lc: LocalCodec, offered: str) -> str:
    if lc.name.lower() == "h264":
        h = H264Params.from_fmtp(offered)
        assert h is not None
        level = min(h.level_idc, H264_MAX_LEVEL)
        parts = [
            f"profile-level-id={h.profile_idc:02x}{h.profile_iop:02x}{level:02x}",
            f"packetization-mode={h.packetization_mode}",
        ]
        # Some room systems send level-asymmetry-allowed; echo it so the answer is read the same way.
        if "level-asymmetry-allowed" in fmtp_params(offered):
            parts.insert(0, "level-asymmetry-allowed=1")
        return ";".join(parts)
    if lc.name.lower() == "telephone-event":
        return offered or lc.fmtp
    return lc.fmtp


def _negotiate_codecs(media: Media, config: MediaConfig, avpf: bool) -> list[Codec]:
    rtpmap = media.rtpmap()
    fmtps = media.fmtp()
    fbs = media.rtcp_fb()
    chosen: list[Codec] = []
    dtmf: list[Codec] = []
    for fmt in media.formats:
        if not digits(fmt) or int(fmt) not in rtpmap:
            continue
        pt = int(fmt)
        name, clock, channels = rtpmap[pt]
        lc = _match(media.kind, name, clock, fmtps.get(pt, ""), config)
        if lc is None:
            continue
        fb: tuple[str, ...] = ()
        if avpf and media.kind == "video":
            offered_fb = fbs.get(str(pt), []) + fbs.get("*", [])
            fb = tuple(f for f in SUPPORTED_FB if f in offered_fb)
        codec = Codec(
            media.kind,
            pt,
            name,
            clock,
            channels if lc.channels > 1 else 1,
            _answer_fmtp(lc, fmtps.get(pt, "")),
            fb,
            fmtps.get(pt, ""),
        )
        (dtmf if name.lower() == "telephone-event" else chosen).append(codec)
    if not chosen:
        return []
    # telephone-event with a main codec at the same clock rate (RFC 4733 §7.1.1). Softphones
    # such as baresip offer Opus with only telephone-event/8000; refusing that would leave the
    # caller no way to type a PIN, so then the offered one is taken (digits carry no audio clock).
    rates = {c.clock_rate for c in chosen}
    return chosen + ([d for d in dtmf if d.clock_rate in rates] or dtmf[:1])


def _label(m: Media, index: int) -> str:
    """The stream's label (RFC 4574): the offerer's, which its floorid lines may name, or ours."""
    label = (m.attr("label") or "").strip()
    return label if label and len(label) <= 32 and " " not in label else str(index + 1)


def _parse_crypto(value: str) -> tuple[int, str, bytes] | None:
    """``1 AES_CM_128_HMAC_SHA1_80 inline:KEY|2^20|1:32`` -> (tag, suite, 30-byte key+salt)."""
    parts = value.split()
    if len(parts) < 3 or not digits(parts[0]) or not parts[2].startswith("inline:"):
        return None
    key_b64 = parts[2][len("inline:") :].split("|", 1)[0]
    try:
        key = base64.b64decode(key_b64, validate=True)
    except ValueError:
        return None
    if len(key) != 30:
        return None
    return int(parts[0]), parts[1], key


def _offered_crypto(m: Media) -> tuple[int, str, bytes] | None:
    """The first SDES key line (RFC 4568) with a suite we support."""
    for value in m.attrs("crypto"):
        parsed = _parse_crypto(value)
        if parsed and parsed[1] in SRTP_SUITES:
            return parsed
    return None


def _rtcp_port(m: Media) -> int | None:
    """The ``a=rtcp`` port (RFC 3605), when the far end does not use port + 1."""
    value = m.attr("rtcp")
    if value and digits(value.split()[0]):
        return int(value.split()[0])
    return None


def _answer_attributes(
    codecs: list[Codec],
    mux: bool,
    crypto: tuple[int, str, bytes] | None,
    local_key: bytes | None,
    direction: str,
) -> list[tuple[str, str | None]]:
    attributes: list[tuple[str, str | None]] = []
    for c in codecs:
        attributes.append(("rtpmap", c.rtpmap()))
        if c.fmtp:
            attributes.append(("fmtp", f"{c.pt} {c.fmtp}"))
        attributes += [("rtcp-fb", f"{c.pt} {fb}") for fb in c.rtcp_fb]
    if mux:
        attributes.append(("rtcp-mux", None))
    if crypto is not None and local_key is not None:
        key_text = base64.b64encode(local_key).decode()
        attributes.append(("crypto", f"{crypto[0]} {crypto[1]} inline:{key_text}"))
    attributes.append((direction, None))
    return attributes


BFCP_PROTOS = {"TCP/BFCP": "tcp", "UDP/BFCP": "udp"}  # TCP/TLS/BFCP is refused: no TLS listener
FLOOR_ID = 1  # the one floor of a call: its presentation stream


def _content(m: Media) -> str:
    return (m.attr("content") or "main").strip().lower()


def presentation_plan(offer: SessionDescription) -> tuple[int, int] | None:
    """(presentation m-line, BFCP m-line) when the offer has both in a form we take: a video with
    ``a=content:slides`` (RFC 4796) over RTP, and a BFCP stream over TCP or UDP where we may be
    the floor control server and, over TCP, the passive end (RFC 8856 sections 5 and 7)."""
    content = bfcp = None
    for i, m in enumerate(offer.media):
        if not m.port:
            continue
        if (
            content is None
            and m.kind == "video"
            and m.proto.upper() in RTP_PROTOS
            and _content(m) == "slides"
        ):
            content = i
        proto = m.proto.upper()
        if bfcp is None and m.kind == "application" and proto in BFCP_PROTOS:
            roles = (m.attr("floorctrl") or "c-only").split()
            setup = (m.attr("setup") or "active").strip().lower()
            client = "c-only" in roles or "c-s" in roles  # so that we may be the server
            if client and (BFCP_PROTOS[proto] == "udp" or setup in ("active", "actpass")):
                bfcp = i
    return (content, bfcp) if content is not None and bfcp is not None else None


def served(offer: SessionDescription, presentation: bool = False) -> list[int]:
    """The indexes of the offer's RTP m-lines the node takes: audio, the first main video and,
    with ``presentation`` and floor control offered with it (``presentation_plan``), the
    presentation stream. Any other video is answered with port 0 and the call goes on without."""
    plan = presentation_plan(offer) if presentation else None
    out: list[int] = []
    video = False
    for i, m in enumerate(offer.media):
        if not m.port or m.kind not in ("audio", "video") or m.proto.upper() not in RTP_PROTOS:
            continue
        if m.kind == "video" and not (plan is not None and i == plan[0]):
            if video or _content(m) != "main":
                continue
            video = True
        out.append(i)
    return out


class Negotiator:
    """Offer/answer state for one SIP dialog: our o= line, version and bound RTP ports.

    ``ports`` maps an m-line index to the local RTP port bound for it (allocated by the leg)."""

    def __init__(self, config: MediaConfig, address: str, session_id: int | None = None) -> None:
        self.config = config
        self.address = address
        self.session_id = session_id or int(time.time() * 1000) % 10**10
        self.version = 0
        # The call's own BFCP conference and user (RFC 8856 confid/userid), kept across re-offers.
        self.floor_ids = (secrets.randbelow(2**31 - 1) + 1, secrets.randbelow(2**16 - 1) + 1)
        self.current: Negotiation | None = None
        self._pending_offer: SessionDescription | None = None

    def _origin(self) -> str:
        self.version += 1
        return f"vdx {self.session_id} {self.version} IN {_ipver(self.address)} {self.address}"

    def served(self, offer: SessionDescription) -> list[int]:
        """The RTP m-lines of ``offer`` this negotiator takes (``served``)."""
        return served(offer, self.config.floor_control is not None)

    def answer(self, offer: SessionDescription, ports: dict[int, int]) -> Negotiation:
        """Answer a remote offer (RFC 3264 §6). Raises :class:`NoCommonCodec` (-> 488)."""
        local = SessionDescription(origin=self._origin(), name="vdx", connection=self.address)
        streams: list[NegotiatedStream] = []
        taken = self.served(offer)
        plan = presentation_plan(offer) if self.config.floor_control is not None else None
        for i, m in enumerate(offer.media):
            answered, stream = self._answer_media(i, m, offer, ports.get(i, 0) if i in taken else 0)
            local.media.append(answered)
            if stream is not None:
                streams.append(stream)
        floor = None
        content = next((s for s in streams if plan is not None and s.index == plan[0]), None)
        if plan is not None and content is not None:
            label = _label(offer.media[plan[0]], plan[0])
            local.media[plan[0]].attributes[-1:-1] = [("content", "slides"), ("label", label)]
            content.content = "slides"
            local.media[plan[1]], floor = self._answer_floor(plan[0], offer.media[plan[1]], label)
        if not [s for s in streams if s.content is None]:
            raise NoCommonCodec("no common codec in any m-line")
        result = Negotiation(local, streams, floor)
        self.current = result
        return result

    def _answer_floor(self, content: int, m: Media, label: str) -> tuple[Media, FloorAssignment]:
        """Our BFCP m-line (RFC 8856): we are the floor control server, and over TCP the end
        that listens, on the node's BFCP port; the floor is the presentation stream's."""
        ports = self.config.floor_control
        assert ports is not None
        transport = BFCP_PROTOS[m.proto.upper()]
        conference_id, user_id = self.floor_ids
        ans = Media("application", ports.tcp if transport == "tcp" else ports.udp, m.proto, ["*"])
        ans.attributes = [("floorctrl", "s-only")]
        if transport == "tcp":
            ans.attributes += [("setup", "passive"), ("connection", "new")]
        ans.attributes += [
            ("confid", str(conference_id)),
            ("userid", str(user_id)),
            ("floorid", f"{FLOOR_ID} mstrm:{label}"),
        ]
        if m.attr("bfcpver") is not None:
            ans.attributes.append(("bfcpver", "1" if transport == "tcp" else "2"))
        return ans, FloorAssignment(conference_id, user_id, FLOOR_ID, transport, content)

    def _answer_media(
        self, index: int, m: Media, offer: SessionDescription, port: int
    ) -> tuple[Media, NegotiatedStream | None]:
        """One m-line of the answer, and its stream when accepted (port 0 rejects it, RFC 3264 §6)."""
        rejected = Media(m.kind, 0, m.proto, m.formats[:1] or ["0"])
        if m.port == 0 or m.proto.upper() not in RTP_PROTOS or m.kind not in ("audio", "video") or not port:
            return rejected, None
        proto = m.proto.upper()
        crypto = _offered_crypto(m)
        if crypto is None and (proto in ("RTP/SAVP", "RTP/SAVPF") or self.config.require_srtp):
            return rejected, None  # SAVP without usable SDES keys (e.g. DTLS only) is not for us
        codecs = _negotiate_codecs(m, self.config, avpf=proto.endswith("F"))
        if not codecs:
            return rejected, None
        direction = _REVERSE[m.direction]
        mux = any(k == "rtcp-mux" for k, _ in m.attributes)
        local_key = os.urandom(30) if crypto is not None else None
        ans = Media(m.kind, port, m.proto, [str(c.pt) for c in codecs], connection=None)
        ans.attributes = _answer_attributes(codecs, mux, crypto, local_key, direction)
        stream = NegotiatedStream(
            index=index,
            kind=m.kind,
            local_port=port,
            remote_address=offer.address_for(m),
            remote_port=m.port,
            proto=m.proto,
            codecs=codecs,
            direction=direction,
            rtcp_mux=mux,
            remote_rtcp_port=_rtcp_port(m),
            srtp_suite=crypto[1] if crypto else None,
            srtp_local_key=local_key,
            srtp_remote_key=crypto[2] if crypto else None,
        )
        return ans, stream

    def offer(self, ports: dict[int, int]) -> SessionDescription:
        """Our offer (a dial-out's INVITE, or the 2xx to a delayed-offer INVITE, RFC 3261 §13.2.1):
        audio then video with every codec, feedback on video, SDES keys when SRTP is required."""
        secure = self.config.require_srtp
        local = SessionDescription(origin=self._origin(), name="vdx", connection=self.address)
        for i, kind in enumerate(("audio", "video")):
            codecs = [c for c in self.config.codecs if c.kind == kind]
            # Plain AVP even for video, with rtcp-fb lines: SIP phones and room systems refuse an
            # AVPF m-line (baresip answers port 0) but use the feedback it lists, as they offer it.
            proto = "RTP/SAVP" if secure else "RTP/AVP"
            m = Media(kind, ports.get(i, 0), proto, [])
            used: set[int] = set()
            for c in codecs:
                pt = c.preferred_pt
                while pt in used:
                    pt += 1
                used.add(pt)
                m.formats.append(str(pt))
                m.attributes.append(("rtpmap", Codec(kind, pt, c.name, c.clock_rate, c.channels).rtpmap()))
                if c.fmtp:
                    m.attributes.append(("fmtp", f"{pt} {c.fmtp}"))
                if kind == "video":
                    m.attributes += [("rtcp-fb", f"{pt} {fb}") for fb in SUPPORTED_FB]
            if secure:
                key = base64.b64encode(os.urandom(30)).decode()
                m.attributes.append(("crypto", f"1 {SRTP_SUITES[0]} inline:{key}"))
            m.attributes.append(("sendrecv", None))
            local.media.append(m)
        self._pending_offer = local
        return local

    def reoffer(self) -> SessionDescription | None:
        """The current session offered again unchanged (a session refresh: same o= version, RFC
        3264 §8); None before there is one."""
        if self.current is None:
            return None
        self._pending_offer = self.current.local
        return self.current.local

    def withdraw_offer(self) -> None:
        """The far end answered our re-offer without changing anything: nothing to apply."""
        self._pending_offer = None

    def accept_answer(self, answer: SessionDescription) -> Negotiation:
        """Apply the far end's answer to our pending offer. Raises :class:`NoCommonCodec`."""
        offer = self._pending_offer
        if offer is None:
            raise SdpError("no offer outstanding")
        self._pending_offer = None
        if len(answer.media) != len(offer.media):
            raise NoCommonCodec("answer does not match the offer's m-lines")
        streams: list[NegotiatedStream] = []
        for i, (mine, theirs) in enumerate(zip(offer.media, answer.media, strict=True)):
            if theirs.port == 0 or mine.port == 0 or theirs.kind != mine.kind:
                continue
            ours = {int(f) for f in mine.formats}
            # The answer's formats must be a subset of our offer (RFC 3264 §6.1), in their order.
            rtpmap = theirs.rtpmap()
            fmtps = theirs.fmtp()
            our_fmtps = mine.fmtp()
            codecs = [
                Codec(
                    mine.kind,
                    int(f),
                    *rtpmap[int(f)],
                    fmtp=our_fmtps.get(int(f), ""),
                    remote_fmtp=fmtps.get(int(f), ""),
                )
                for f in theirs.formats
                if digits(f) and int(f) in ours and int(f) in rtpmap
            ]
            if not [c for c in codecs if c.name.lower() != "telephone-event"]:
                continue
            crypto_remote = None
            crypto_local = None
            for value in theirs.attrs("crypto"):
                crypto_remote = _parse_crypto(value)
                break
            for value in mine.attrs("crypto"):
                crypto_local = _parse_crypto(value)
                break
            streams.append(
                NegotiatedStream(
                    index=i,
                    kind=mine.kind,
                    local_port=mine.port,
                    remote_address=answer.address_for(theirs),
                    remote_port=theirs.port,
                    proto=theirs.proto,
                    codecs=codecs,
                    direction=_REVERSE[theirs.direction],
                    rtcp_mux=any(k == "rtcp-mux" for k, _ in theirs.attributes),
                    srtp_suite=crypto_remote[1] if crypto_remote else None,
                    srtp_local_key=crypto_local[2] if crypto_local and crypto_remote else None,
                    srtp_remote_key=crypto_remote[2] if crypto_remote else None,
                )
            )
        if not streams:
            raise NoCommonCodec("answer accepts nothing we offered")
        result = Negotiation(offer, streams)
        self.current = result
        return result
