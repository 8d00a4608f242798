"""A raw-socket SIP client for tests that need exact bytes on the wire (hostile input, in-dialog
requests after our own INVITE). Blocking sockets, run through ``asyncio.to_thread``."""

from __future__ import annotations

import asyncio
import secrets
import socket

from vdx.sip.message import SipResponse, parse_message

SDP = (
    "v=0\r\no=uac 1 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio {port} {proto} 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    "{extra}a={direction}\r\n"
)


class Uac:
    def __init__(
        self,
        server_port: int,
        domain: str = "vdx.local",
        source: str = "127.0.0.1",
        caller_domain: str = "127.0.0.1",
    ) -> None:
        """``source``: the local address to send from (127.0.0.2 is another loopback caller);
        ``caller_domain``: the host of the From URI, the domain a routing rule may admit."""
        self.server = ("127.0.0.1", server_port)
        self.domain = domain
        self.caller_domain = caller_domain
        self.source = source
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((source, 0))
        self.sock.settimeout(5)
        self.port = self.sock.getsockname()[1]
        self.call_id = secrets.token_hex(8)
        self.tag = secrets.token_hex(4)
        self.to_tag: str | None = None
        self.cseq = 0

    def close(self) -> None:
        self.sock.close()

    def build(
        self,
        method: str,
        alias: str = "1000",
        *,
        body: str = "",
        headers: str = "",
        content_type: str = "application/sdp",
        branch: str | None = None,
        cseq: int | None = None,
    ) -> bytes:
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        to = f"<sip:{alias}@{self.domain}>" + (f";tag={self.to_tag}" if self.to_tag else "")
        head = (
            f"{method} sip:{alias}@{self.domain} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.source}:{self.port};branch={branch or 'z9hG4bK' + secrets.token_hex(6)};rport\r\n"
            f"From: <sip:room@{self.caller_domain}>;tag={self.tag}\r\nTo: {to}\r\nCall-ID: {self.call_id}\r\n"
            f"CSeq: {cseq} {method}\r\nContact: <sip:room@{self.source}:{self.port}>\r\nMax-Forwards: 70\r\n"
            f"{headers}"
        )
        if body:
            head += f"Content-Type: {content_type}\r\n"
        return (head + f"Content-Length: {len(body.encode())}\r\n\r\n" + body).encode()

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.server)

    def recv(self, skip_provisional: bool = True) -> SipResponse:
        while True:
            data, _ = self.sock.recvfrom(65535)
            msg = parse_message(data)
            if not isinstance(msg, SipResponse):
                continue  # a request from the server (BYE); tests read those with recv_raw
            if skip_provisional and msg.status < 200:
                continue
            if msg.to.tag and 200 <= msg.status < 300 and msg.cseq[1] == "INVITE":
                self.to_tag = msg.to.tag
            return msg

    def recv_raw(self) -> bytes | None:
        try:
            data, _ = self.sock.recvfrom(65535)
        except TimeoutError:
            return None
        return data

    def ack(self, alias: str = "1000", body: str = "") -> None:
        self.send(self.build("ACK", alias, body=body, cseq=self.cseq))

    async def early_dialog(self, alias: str, body: str) -> SipResponse:
        """INVITE a PIN room and wait for its 183 (early media: the PIN prompt)."""
        self.send(self.build("INVITE", alias, body=body))
        progress = await asyncio.to_thread(self.recv, False)
        while progress.status < 180:
            progress = await asyncio.to_thread(self.recv, False)
        self.to_tag = progress.to.tag
        return progress

    def send_digits(self, alias: str, digits: str) -> None:
        """DTMF by SIP INFO (application/dtmf-relay), one request a digit."""
        for d in digits:
            body = f"Signal={d}\r\nDuration=160\r\n"
            self.send(self.build("INFO", alias, body=body, content_type="application/dtmf-relay"))

    async def final(self) -> SipResponse:
        """The INVITE's final response (skipping the INFO requests' answers)."""
        while True:
            msg = await asyncio.to_thread(self.recv, False)
            if msg.cseq[1] == "INVITE" and msg.status >= 200:
                return msg

    async def call(self, method: str, alias: str = "1000", **kw: object) -> SipResponse:
        """Send a request and wait (in a thread) for its final response."""
        self.send(self.build(method, alias, **kw))  # type: ignore[arg-type]
        return await asyncio.to_thread(self.recv)


def probe_unanswered(port: int, data: bytes, wait_s: float = 0.3) -> bytes | None:
    """Send raw bytes; return whatever comes back within ``wait_s`` (None when dropped)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(wait_s)
        s.sendto(data, ("127.0.0.1", port))
        try:
            return s.recvfrom(65535)[0]
        except TimeoutError:
            return None


def status_of(data: bytes | None) -> int | None:
    """The status code of a response, read from its status line alone (a 400 echoes the request's
    broken headers, which a strict parser would refuse)."""
    if data is None or not data.startswith(b"SIP/2.0 "):
        return None
    code = data[8:11]
    return int(code) if code.isdigit() else None
