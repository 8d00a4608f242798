"""SIP transports on asyncio (RFC 3261 §18): UDP datagrams, TCP and TLS streams.

Every received message comes with a :class:`Source`: the way back to its sender (the datagram
socket and address, or the stream connection). Responses and in-dialog requests to the same peer
go back through it, which is what symmetric-response routing (RFC 3581 ``rport``) and room systems
behind NAT need.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from .message import SipParseError, frame_stream

log = logging.getLogger("vdx.sip.transport")

MAX_STREAM_CONNECTIONS = 512
STREAM_IDLE_SECONDS = 600.0


@dataclass(eq=False)
class Source:
    """Where a message came from, and how to answer it."""

    transport: str  # "UDP" | "TCP" | "TLS"
    host: str
    port: int
    local_host: str
    local_port: int
    _send: Callable[[bytes], None] = field(repr=False)
    closed: bool = False
    _close: Callable[[], None] | None = field(default=None, repr=False)  # a connection we opened

    @property
    def reliable(self) -> bool:
        return self.transport != "UDP"

    def send(self, data: bytes) -> None:
        if self.closed:
            log.debug("dropping %d bytes to closed %s %s:%s", len(data), self.transport, self.host, self.port)
            return
        self._send(data)

    def close(self) -> None:
        """Close a TCP/TLS connection we opened to call out (UDP and accepted ones stay)."""
        if self._close is not None and not self.closed:
            self.closed = True
            self._close()


Receiver = Callable[[bytes, Source], None]


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, receive: Receiver) -> None:
        self.receive = receive
        self.transport: asyncio.DatagramTransport | None = None
        self.local: tuple[str, int] = ("", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.local = transport.get_extra_info("sockname")[:2]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        host, port = str(addr[0]), int(addr[1])
        transport = self.transport
        assert transport is not None
        src = Source(
            "UDP",
            host,
            port,
            self.local[0],
            self.local[1],
            # A retransmission timer may fire after the server stopped: nothing to send then.
            lambda d: None if transport.is_closing() else transport.sendto(d, (host, port)),
        )
        try:
            self.receive(data, src)
        except Exception:  # a bug in one message must not take the listener down
            log.exception("error handling a UDP datagram from %s:%s", host, port)


class SipListeners:
    """UDP + TCP on one port, TLS on another; ``receive`` gets every framed message."""

    def __init__(self, receive: Receiver) -> None:
        self.receive = receive
        self._udp: list[asyncio.DatagramTransport] = []
        self._servers: list[asyncio.AbstractServer] = []
        self._conns: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.udp_port = 0
        self.tls_port = 0

    async def start(
        self, host: str, port: int, tls_port: int | None = None, tls: ssl.SSLContext | None = None
    ) -> None:
        loop = asyncio.get_running_loop()
        # Port 0 lets the kernel pick the UDP number, which may already be taken for TCP:
        # pick again (a bounded number of times) rather than fail.
        for attempt in range(1, 21):
            transport, proto = await loop.create_datagram_endpoint(
                lambda: _Udp(self.receive), local_addr=(host, port)
            )
            try:
                # TCP on the same port number as UDP (RFC 3261 §18: both on 5060).
                tcp = await asyncio.start_server(
                    lambda r, w: self._accept(r, w, "TCP"), host, proto.local[1], limit=65536 * 2
                )
            except OSError:
                transport.close()
                if port != 0 or attempt == 20:
                    raise
                continue
            break
        self._udp.append(cast(asyncio.DatagramTransport, transport))
        self.udp_port = proto.local[1]
        self._servers.append(tcp)
        if tls is not None and tls_port is not None:
            srv = await asyncio.start_server(
                lambda r, w: self._accept(r, w, "TLS"), host, tls_port, ssl=tls, limit=65536 * 2
            )
            self._servers.append(srv)
            self.tls_port = srv.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for t in self._udp:
            t.close()
        for s in self._servers:
            s.close()
        for w in list(self._conns):
            w.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for s in self._servers:
            with contextlib.suppress(Exception):
                await s.wait_closed()

    async def connect(
        self, kind: str, host: str, port: int, tls: ssl.SSLContext | None = None, server_name: str = ""
    ) -> Source:
        """The way to a peer we call (a UAC, §18.1.1): UDP from the listening socket, so answers
        come back to it; TCP or TLS on a new connection whose messages are read like accepted ones.
        OSError when the peer cannot be reached."""
        if kind == "UDP":
            udp = self._udp[0]
            local = udp.get_extra_info("sockname")
            return Source(
                "UDP",
                host,
                port,
                str(local[0]),
                int(local[1]),
                lambda d: None if udp.is_closing() else udp.sendto(d, (host, port)),
            )
        reader, writer = await asyncio.open_connection(
            host, port, ssl=tls, server_hostname=(server_name or host) if tls else None, limit=65536 * 2
        )
        src = self._stream_source(writer, kind)
        src._close = writer.close
        self._accept(reader, writer, kind, src)
        return src

    def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, kind: str, src: Source | None = None
    ) -> None:
        t = asyncio.ensure_future(self._serve_stream(reader, writer, kind, src))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    @staticmethod
    def _stream_source(writer: asyncio.StreamWriter, kind: str) -> Source:
        peer = writer.get_extra_info("peername") or ("?", 0)
        local = writer.get_extra_info("sockname") or ("?", 0)
        return Source(kind, str(peer[0]), int(peer[1]), str(local[0]), int(local[1]), writer.write)

    async def _serve_stream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, kind: str, src: Source | None
    ) -> None:
        if len(self._conns) >= MAX_STREAM_CONNECTIONS:
            writer.close()
            return
        self._conns.add(writer)
        peer = writer.get_extra_info("peername") or ("?", 0)
        src = src or self._stream_source(writer, kind)
        buffer = bytearray()
        try:
            while True:
                try:
                    chunk = await asyncio.wait_for(reader.read(65536), STREAM_IDLE_SECONDS)
                except (TimeoutError, ConnectionError, ssl.SSLError):
                    break
                if not chunk:
                    break
                buffer += chunk
                while True:
                    try:
                        data = frame_stream(buffer)
                    except SipParseError as e:
                        log.info("closing %s connection from %s: %s", kind, peer, e)
                        return
                    if data is None:
                        break
                    try:
                        self.receive(data, src)
                    except Exception:
                        log.exception("error handling a %s message from %s", kind, peer)
        finally:
            src.closed = True
            self._conns.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
