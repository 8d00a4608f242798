"""SIP messages (RFC 3261 §7, §20, §25): parse bytes into requests/responses and serialise them back.

The parser is deliberately strict about size (hostile input must not cost memory or time) and
lenient about style (compact header names, folded lines, any case). It never raises anything but
:class:`SipParseError`; a message whose start line and core headers parsed but which is otherwise
broken comes back as a message with ``defect`` set, so the server can answer it with 400 instead of
dropping it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_MESSAGE_BYTES = 65535
MAX_HEADERS = 128
MAX_HEADER_LINE = 8192

SIP_VERSION = "SIP/2.0"
BRANCH_COOKIE = "z9hG4bK"

COMPACT = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "x": "Session-Expires",
    "o": "Event",
    "r": "Refer-To",
    "u": "Allow-Events",
}
_CANONICAL = {
    name.lower(): name
    for name in (
        "Accept",
        "Allow",
        "Call-ID",
        "Contact",
        "Content-Disposition",
        "Content-Encoding",
        "Content-Length",
        "Content-Type",
        "CSeq",
        "From",
        "Max-Forwards",
        "Min-SE",
        "Record-Route",
        "Require",
        "Retry-After",
        "Route",
        "Server",
        "Session-Expires",
        "Supported",
        "To",
        "Unsupported",
        "User-Agent",
        "Via",
        "Warning",
        "WWW-Authenticate",
    )
}
# Headers whose values may be comma-joined lists (RFC 3261 §7.3.1).
LIST_HEADERS = frozenset(
    {"Via", "Route", "Record-Route", "Contact", "Allow", "Supported", "Require", "Unsupported", "Accept"}
)
REQUIRED_REQUEST_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")

_TOKEN = re.compile(r"^[A-Za-z0-9.!%*_+`'~-]+$")
_HEADER_NAME = _TOKEN


def digits(text: str | bytes) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts '²' and other Unicode digits ``int`` refuses."""
    return bool(text) and text.isascii() and text.isdigit()


class SipParseError(ValueError):
    """The bytes are not a SIP message we can answer; the caller drops them."""


def canonical_name(name: str) -> str:
    low = name.strip().lower()
    if low in COMPACT:
        return COMPACT[low]
    if low in _CANONICAL:
        return _CANONICAL[low]
    return "-".join(part.capitalize() for part in low.split("-"))


def split_list(value: str) -> list[str]:
    """Split a comma-joined header value, respecting quotes and <...> (RFC 3261 §7.3.1)."""
    out: list[str] = []
    buf: list[str] = []
    quoted = angle = False
    escape = False
    for ch in value:
        if escape:
            buf.append(ch)
            escape = False
            continue
        if quoted and ch == "\\":
            escape = True
            buf.append(ch)
            continue
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            angle = True
        elif not quoted and ch == ">":
            angle = False
        if ch == "," and not quoted and not angle:
            item = "".join(buf).strip()
            if item:
                out.append(item)
            buf = []
            continue
        buf.append(ch)
    item = "".join(buf).strip()
    if item:
        out.append(item)
    return out


def parse_params(text: str) -> dict[str, str | None]:
    """``;a=b;c`` -> {"a": "b", "c": None}; names lower-cased."""
    params: dict[str, str | None] = {}
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        name, sep, val = part.partition("=")
        params[name.strip().lower()] = val.strip().strip('"') if sep else None
    return params


@dataclass
class SipUri:
    """``sip:user@host:port;params`` — enough of RFC 3261 §19.1 for routing and alias lookup."""

    scheme: str
    user: str | None
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> SipUri:
        text = text.strip()
        scheme, sep, rest = text.partition(":")
        if not sep or scheme.lower() not in ("sip", "sips", "tel"):
            raise SipParseError(f"not a SIP URI: {text[:80]!r}")
        rest = rest.split("?", 1)[0]
        hostport, _, params = rest.partition(";")
        user: str | None = None
        if "@" in hostport:
            user, _, hostport = hostport.rpartition("@")
            user = user.split(":", 1)[0]  # drop a password
        if scheme.lower() == "tel":
            return cls("tel", hostport, "", None, parse_params(params))
        port: int | None = None
        if hostport.startswith("["):
            host, _, tail = hostport[1:].partition("]")
            if tail.startswith(":"):
                port = _port(tail[1:])
        else:
            host, psep, p = hostport.partition(":")
            if psep:
                port = _port(p)
        if not host:
            raise SipParseError("SIP URI without host")
        return cls(scheme.lower(), user, host, port, parse_params(params))

    def __str__(self) -> str:
        s = f"{self.scheme}:"
        if self.user is not None:
            s += f"{self.user}@"
        s += f"[{self.host}]" if ":" in self.host else self.host
        if self.port is not None:
            s += f":{self.port}"
        for k, v in self.params.items():
            s += f";{k}" if v is None else f";{k}={v}"
        return s


def _port(text: str) -> int:
    if not digits(text) or not 0 < int(text) < 65536:
        raise SipParseError(f"bad port {text[:10]!r}")
    return int(text)


@dataclass
class NameAddr:
    """A From/To/Contact value: optional display name, URI, header parameters (``tag``...)."""

    display: str
    uri: str
    params: dict[str, str | None]

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        text = text.strip()
        if "<" in text:
            display, _, rest = text.partition("<")
            uri, sep, tail = rest.partition(">")
            if not sep:
                raise SipParseError("unterminated <uri>")
            return cls(display.strip().strip('"'), uri.strip(), parse_params(tail))
        uri, _, tail = text.partition(";")
        return cls("", uri.strip(), parse_params(tail))

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def __str__(self) -> str:
        s = f'"{self.display}" ' if self.display else ""
        s += f"<{self.uri}>"
        for k, v in self.params.items():
            s += f";{k}" if v is None else f";{k}={v}"
        return s


@dataclass
class Via:
    """One Via entry (RFC 3261 §20.42): transport, sent-by, params (branch, rport, received)."""

    transport: str
    host: str
    port: int | None
    params: dict[str, str | None]

    @classmethod
    def parse(cls, text: str) -> Via:
        proto, _, rest = text.strip().partition(" ")
        parts = proto.split("/")
        if len(parts) != 3 or parts[0].upper() != "SIP":
            raise SipParseError(f"bad Via protocol {proto[:40]!r}")
        sent_by, _, params = rest.strip().partition(";")
        sent_by = sent_by.strip()
        port: int | None = None
        if sent_by.startswith("["):
            host, _, tail = sent_by[1:].partition("]")
            if tail.startswith(":"):
                port = _port(tail[1:])
        else:
            host, sep, p = sent_by.partition(":")
            if sep:
                port = _port(p.strip())
        if not host:
            raise SipParseError("Via without host")
        return cls(parts[2].strip().upper(), host.strip(), port, parse_params(params))

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        s = f"SIP/2.0/{self.transport} {host}"
        if self.port is not None:
            s += f":{self.port}"
        for k, v in self.params.items():
            s += f";{k}" if v is None else f";{k}={v}"
        return s


@dataclass
class SipMessage:
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    defect: str | None = None  # why this message deserves a 400, if it does

    def get(self, name: str) -> str | None:
        name = canonical_name(name)
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def get_all(self, name: str) -> list[str]:
        """All values of a header; list headers are split on commas."""
        name = canonical_name(name)
        out: list[str] = []
        for k, v in self.headers:
            if k == name:
                out.extend(split_list(v) if name in LIST_HEADERS else [v])
        return out

    def add(self, name: str, value: str) -> None:
        self.headers.append((canonical_name(name), value))

    def tokens(self, name: str) -> set[str]:
        """Option tags of Supported/Require/Allow as a lower-case set."""
        return {t.strip().lower() for t in self.get_all(name) if t.strip()}

    # --- core headers, parsed on demand --------------------------------------------------------
    @property
    def call_id(self) -> str:
        return self.get("Call-ID") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        raw = self.get("CSeq") or ""
        num, _, method = raw.strip().partition(" ")
        if not digits(num) or len(num) > 10 or not method.strip():
            raise SipParseError(f"bad CSeq {raw[:40]!r}")
        return int(num), method.strip().upper()

    @property
    def from_(self) -> NameAddr:
        return NameAddr.parse(self.get("From") or "")

    @property
    def to(self) -> NameAddr:
        return NameAddr.parse(self.get("To") or "")

    @property
    def vias(self) -> list[Via]:
        return [Via.parse(v) for v in self.get_all("Via")]

    @property
    def content_type(self) -> str:
        return (self.get("Content-Type") or "").split(";", 1)[0].strip().lower()

    def _serialise(self, start: str) -> bytes:
        lines = [start]
        lines += [f"{k}: {v}" for k, v in self.headers if k != "Content-Length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass
class SipRequest(SipMessage):
    method: str = ""
    uri: str = ""

    def serialise(self) -> bytes:
        return self._serialise(f"{self.method} {self.uri} {SIP_VERSION}")

    @property
    def branch(self) -> str | None:
        vias = self.vias
        return vias[0].branch if vias else None


@dataclass
class SipResponse(SipMessage):
    status: int = 0
    reason: str = ""

    def serialise(self) -> bytes:
        return self._serialise(f"{SIP_VERSION} {self.status} {self.reason}")


REASONS = {
    100: "Trying",
    180: "Ringing",
    183: "Session Progress",
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    420: "Bad Extension",
    422: "Session Interval Too Small",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "Version Not Supported",
}


def parse_message(data: bytes, *, stream: bool = False) -> SipRequest | SipResponse:
    """Parse one complete SIP message (a datagram, or one framed message from a stream).

    Raises :class:`SipParseError` when the start line or header block is unusable; returns a message
    with ``defect`` set when it is answerable but wrong (RFC 3261 §18.3: a request whose body is
    shorter than Content-Length gets 400)."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise SipParseError("message too large")
    head, body = _split_head(data)
    raw_lines = head.replace("\r\n", "\n").split("\n")
    msg = _parse_start_line(raw_lines[0])
    _parse_headers(msg, raw_lines[1:])
    _check_body(msg, body, stream)
    _check_core(msg)
    return msg


def _split_head(data: bytes) -> tuple[str, bytes]:
    """The header block as text and the bytes after it; bare-LF line ends are tolerated."""
    data = data.lstrip(b"\r\n")
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
        if not sep:
            raise SipParseError("no end of headers")
    try:
        return head.decode("utf-8"), body
    except UnicodeDecodeError as e:
        raise SipParseError("headers are not UTF-8") from e


def _parse_start_line(start: str) -> SipRequest | SipResponse:
    if len(start) > MAX_HEADER_LINE:
        raise SipParseError("start line too long")
    if start.startswith("SIP/"):
        parts = start.split(" ", 2)
        if len(parts) < 2 or parts[0] != SIP_VERSION or not digits(parts[1]) or len(parts[1]) != 3:
            raise SipParseError(f"bad status line {start[:80]!r}")
        response = SipResponse(status=int(parts[1]), reason=parts[2] if len(parts) > 2 else "")
        if not 100 <= response.status <= 699:
            raise SipParseError("status code out of range")
        return response
    parts = start.split(" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]) or not parts[1]:
        raise SipParseError(f"bad request line {start[:80]!r}")
    request = SipRequest(method=parts[0], uri=parts[1])
    if parts[2] != SIP_VERSION:
        request.defect = "unsupported SIP version"
    return request


def _parse_headers(msg: SipMessage, raw_lines: list[str]) -> None:
    """Unfold continuation lines (RFC 3261 §7.3.1) and add each header under its canonical name;
    a line that is no header makes the message a defect rather than unparseable."""
    lines = _unfold(raw_lines)
    if len(lines) > MAX_HEADERS:
        raise SipParseError("too many headers")
    for line in lines:
        if len(line) > MAX_HEADER_LINE:
            raise SipParseError("header line too long")
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not _HEADER_NAME.match(name):
            msg.defect = msg.defect or f"malformed header line {line[:60]!r}"
            continue
        msg.headers.append((canonical_name(name), value.strip()))


def _unfold(raw_lines: list[str]) -> list[str]:
    """§7.3.1: a line starting with SP or HTAB continues the header before it (as one SP)."""
    lines: list[str] = []
    for line in raw_lines:
        if line[:1] in (" ", "\t") and lines:
            lines[-1] = lines[-1].rstrip(" \t") + " " + line.strip(" \t")
        else:
            lines.append(line)
    return lines


def _check_body(msg: SipRequest | SipResponse, body: bytes, stream: bool) -> None:
    values = [v.strip() for v in msg.get_all("Content-Length")]
    if not values:
        if stream:
            msg.defect = msg.defect or "Content-Length required on stream transports"
        msg.body = body
        return
    if any(not digits(v) or len(v) > 6 for v in values):
        msg.defect = msg.defect or "bad Content-Length"
        msg.body = b""
        return
    if len({int(v) for v in values}) > 1:
        # §20.14: the body's size must be unambiguous, or two parsers could split it differently.
        msg.defect = msg.defect or "conflicting Content-Length headers"
        msg.body = b""
        return
    length = int(values[0])
    if length > len(body):
        msg.defect = msg.defect or "body shorter than Content-Length"
        msg.body = body
        return
    msg.body = body[:length]


def _check_core(msg: SipRequest | SipResponse) -> None:
    """Core headers must parse for us to answer at all; anything subtler becomes a defect."""
    try:
        if not msg.vias:
            raise SipParseError("no Via")
        for name in REQUIRED_REQUEST_HEADERS:
            if not msg.get(name):
                raise SipParseError(f"missing {name}")
        _, method = msg.cseq
    except SipParseError:
        if isinstance(msg, SipResponse):
            raise
        # A request we cannot even route a response for is dropped; one we can is answered 400.
        if not msg.get("Via") or not msg.get("Call-ID") or not msg.get("CSeq"):
            raise
        msg.vias  # noqa: B018 - re-raises when even Via (where the 400 goes) is unusable
        msg.defect = msg.defect or "malformed core header"
        return
    try:
        msg.from_  # noqa: B018
        msg.to  # noqa: B018
    except SipParseError:
        msg.defect = msg.defect or "malformed From/To"
    if isinstance(msg, SipRequest):
        _check_request(msg, method)


def _check_request(msg: SipRequest, cseq_method: str) -> None:
    if cseq_method != msg.method.upper():
        msg.defect = msg.defect or "CSeq method does not match the request method"
    mf = msg.get("Max-Forwards")
    if mf is not None and (not digits(mf.strip()) or len(mf.strip()) > 3):
        msg.defect = msg.defect or "bad Max-Forwards"
    try:
        SipUri.parse(msg.uri)
    except SipParseError:
        msg.defect = msg.defect or "bad Request-URI"


def frame_stream(buffer: bytearray) -> bytes | None:
    """Cut one complete message off the front of a stream buffer (RFC 3261 §18.3), or None.

    Leading CRLFs (keep-alives, RFC 5626 §4.4.1) are skipped. Raises :class:`SipParseError` when the
    stream cannot be framed (no Content-Length, oversize): the connection must then be closed."""
    while buffer[:2] == b"\r\n":
        del buffer[:2]
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > MAX_MESSAGE_BYTES:
            raise SipParseError("header block too large")
        return None
    lengths = set()
    for line in _unfold(bytes(buffer[:end]).decode("latin-1").split("\r\n")[1:]):
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() in ("content-length", "l"):
            v = value.strip()
            if not digits(v) or len(v) > 6:
                raise SipParseError("bad Content-Length on a stream")
            lengths.add(int(v))
    if len(lengths) > 1:
        raise SipParseError("conflicting Content-Length headers on a stream")
    total = end + 4 + (lengths.pop() if lengths else 0)
    if total > MAX_MESSAGE_BYTES:
        raise SipParseError("message too large")
    if len(buffer) < total:
        return None
    data = bytes(buffer[:total])
    del buffer[:total]
    return data


def make_response(
    request: SipRequest, status: int, reason: str | None = None, *, to_tag: str | None = None
) -> SipResponse:
    """A response copying Via, From, To (+ our tag), Call-ID and CSeq (RFC 3261 §8.2.6), and, when
    it creates a dialog, Record-Route in order (§12.1.1): a proxy in front (Kamailio) stays on the
    call's path."""
    resp = SipResponse(status=status, reason=reason or REASONS.get(status, "Unknown"))
    forms_dialog = request.method == "INVITE" and 100 < status < 300 and not request.to.tag
    for k, v in request.headers:
        if k in ("Via", "From", "Call-ID", "CSeq") or (k == "Record-Route" and forms_dialog):
            resp.headers.append((k, v))
        elif k == "To":
            if to_tag and ";tag=" not in v.replace(" ", "").lower():
                v = f"{v};tag={to_tag}"
            resp.headers.append((k, v))
    return resp
