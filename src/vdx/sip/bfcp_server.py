"""BFCP transports of a node (RFC 8855 section 6): one TCP listening port and one UDP port for
every conference's floor control server (``floor_control.FloorServer``), found by the conference
id each message names.

Over TCP a connection belongs to the user its first accepted message came from; a message that
cannot be read gets the ``Error`` the codec names when its header could be read, and the
connection is closed when not even that (the stream has lost its framing). Over UDP every
response carries the R flag; messages the server starts get a transaction id of their own and
are sent again (section 6.2.3: T1 doubling) until the client acknowledges them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import replace

from .bfcp import (
    HEADER_SIZE,
    VERSION_RELIABLE,
    VERSION_UNRELIABLE,
    BfcpError,
    ErrorCode,
    Message,
    Primitive,
    decode,
    encode,
    message_length,
)
from .floor_control import FloorServer, Outgoing, error_reply

log = logging.getLogger("vdx.sip.bfcp")

Floors = Callable[[int], FloorServer | None]  # conference id -> its floor control server
T1_S = 0.5  # section 6.2.3: the first retransmission interval over UDP
MAX_SENDS = 5  # the first send and four retransmissions, about 8 s in all


class BfcpServer:
    def __init__(self, host: str, floors: Floors) -> None:
        self.host = host
        self.floors = floors
        self.tcp_port = 0
        self.udp_port = 0
        self._tcp: asyncio.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._streams: dict[
            tuple[int, int], asyncio.StreamWriter
        ] = {}  # (conference, user) -> its connection
        self._peers: dict[tuple[int, int], tuple[str, int]] = {}  # (conference, user) -> its UDP address
        self._pending: dict[tuple[int, int], asyncio.TimerHandle] = {}  # (conference, transaction) -> resend
        self._next_transaction = 1

    async def start(self, tcp_port: int = 0, udp_port: int = 0) -> None:
        self._tcp = await asyncio.start_server(self._serve, self.host, tcp_port)
        self.tcp_port = self._tcp.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(self._on_datagram), local_addr=(self.host, udp_port)
        )
        self.udp_port = self._udp.get_extra_info("sockname")[1]

    async def close(self) -> None:
        for handle in self._pending.values():
            handle.cancel()
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            for writer in list(self._streams.values()):
                writer.close()
            await self._tcp.wait_closed()

    def deliver(self, conference_id: int, out: Iterable[Outgoing]) -> None:
        """Send what a floor control server produced to the users' connections or addresses."""
        for user, m in out:
            writer = self._streams.get((conference_id, user))
            if writer is not None and not writer.is_closing():
                writer.write(_stream(m))
                continue
            address = self._peers.get((conference_id, user))
            if address is not None:
                self._send_datagram(m, address)

    # --- TCP ------------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        owner: tuple[int, int] | None = None
        try:
            while True:
                head = await reader.readexactly(4)
                try:
                    length = message_length(head)
                except BfcpError:
                    return  # not BFCP, or the framing is lost: nothing more can be read
                data = head + await reader.readexactly(length - 4)
                owner = self._take(data, writer, owner) or owner
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if owner is not None and self._streams.get(owner) is writer:
                del self._streams[owner]
                self._left(*owner)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _take(
        self, data: bytes, writer: asyncio.StreamWriter, owner: tuple[int, int] | None
    ) -> tuple[int, int] | None:
        """Handle one message of a connection; the (conference, user) it belongs to once known."""
        try:
            m = decode(data)
        except BfcpError as exc:
            if exc.header is not None:
                writer.write(_stream(error_reply(exc.header, exc.code, str(exc))))
            return None
        if m.version != VERSION_RELIABLE:
            writer.write(_stream(error_reply(m.header, ErrorCode.UNSUPPORTED_VERSION, "version 1 over TCP")))
            return None
        server = self.floors(m.conference_id)
        if server is None:
            writer.write(
                _stream(error_reply(m.header, ErrorCode.CONFERENCE_DOES_NOT_EXIST, "no such conference"))
            )
            return None
        key = (m.conference_id, m.user_id)
        if owner is not None and owner != key:
            writer.write(
                _stream(server.error(m.header, ErrorCode.USER_DOES_NOT_EXIST, "another user's connection")[1])
            )
            return None
        out = server.receive(m)
        if m.user_id in server.users:
            self._streams[key] = writer
        self.deliver(m.conference_id, out)
        return key if m.user_id in server.users else None

    def _left(self, conference_id: int, user: int) -> None:
        server = self.floors(conference_id)
        if server is not None:
            self.deliver(conference_id, server.leave(user))

    # --- UDP ------------------------------------------------------------------------------------
    def _on_datagram(self, data: bytes, address: tuple[str, int]) -> None:
        try:
            m = decode(data)
        except BfcpError as exc:
            if exc.header is not None:
                self._send_datagram(error_reply(exc.header, exc.code, str(exc)), address, reply=True)
            return
        if m.version != VERSION_UNRELIABLE:
            self._send_datagram(
                error_reply(m.header, ErrorCode.UNSUPPORTED_VERSION, "version 2 over UDP"),
                address,
                reply=True,
            )
            return
        if m.primitive in (Primitive.FLOOR_REQUEST_STATUS_ACK, Primitive.FLOOR_STATUS_ACK, Primitive.ERROR):
            handle = self._pending.pop((m.conference_id, m.transaction_id), None)
            if handle is not None:
                handle.cancel()
        server = self.floors(m.conference_id)
        if server is None:
            self._send_datagram(
                error_reply(m.header, ErrorCode.CONFERENCE_DOES_NOT_EXIST, "no such conference"),
                address,
                reply=True,
            )
            return
        if m.user_id in server.users:
            self._peers[(m.conference_id, m.user_id)] = address
        for user, out in server.receive(m):
            if out.responder:
                self._send_datagram(out, address, reply=True)
            else:
                self.deliver(m.conference_id, [(user, out)])

    def _send_datagram(self, m: Message, address: tuple[str, int], reply: bool = False) -> None:
        if self._udp is None or self._udp.is_closing():
            return
        if reply:  # a response: the transaction is the client's, which resends its request if need be
            self._udp.sendto(encode(replace(m, version=VERSION_UNRELIABLE, responder=True)), address)
            return
        transaction = self._next_transaction
        self._next_transaction = self._next_transaction % 0xFFFF + 1
        data = encode(replace(m, version=VERSION_UNRELIABLE, responder=False, transaction_id=transaction))
        self._resend(m.conference_id, transaction, data, address, 1)

    def _resend(
        self, conference_id: int, transaction: int, data: bytes, address: tuple[str, int], sends: int
    ) -> None:
        if self._udp is None or self._udp.is_closing():
            return
        self._udp.sendto(data, address)
        key = (conference_id, transaction)
        if sends >= MAX_SENDS:
            self._pending.pop(key, None)
            return
        self._pending[key] = asyncio.get_running_loop().call_later(
            T1_S * 2 ** (sends - 1), self._resend, conference_id, transaction, data, address, sends + 1
        )


def _stream(m: Message) -> bytes:
    """A message as sent over TCP: version 1, no R flag (section 5.1)."""
    return encode(replace(m, version=VERSION_RELIABLE, responder=False))


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, receive: Callable[[bytes, tuple[str, int]], None]) -> None:
        self.receive = receive

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if len(data) >= HEADER_SIZE:
            self.receive(data, (str(addr[0]), int(addr[1])))
