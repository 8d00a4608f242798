"""BFCP over TCP and UDP against scripted peers on loopback (no Debian SIP client speaks BFCP):
two room systems hand the presentation floor to each other, bad messages get the protocol's
Error and the connection goes on, and over UDP notices are sent again until acknowledged."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from harness.waiting import until
from vdx.sip.bfcp import (
    Attr,
    ErrorCode,
    Group,
    Message,
    Primitive,
    RequestStatus,
    decode,
    encode,
    message_length,
    u16,
)
from vdx.sip.bfcp_server import BfcpServer
from vdx.sip.floor_control import FloorServer

pytestmark = pytest.mark.interop

CONF, FLOOR = 4242, 1
CISCO, POLY, GUEST = 10, 11, 12


@pytest.fixture
async def bfcp() -> AsyncIterator[tuple[BfcpServer, FloorServer]]:
    floor = FloorServer(CONF, [FLOOR], may_present=lambda user: user != GUEST)
    for user in (CISCO, POLY, GUEST):
        floor.join(user)
    server = BfcpServer("127.0.0.1", lambda conf: floor if conf == CONF else None)
    await server.start()
    yield server, floor
    await server.close()


class TcpPeer:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, user: int) -> None:
        self.reader, self.writer, self.user = reader, writer, user
        self.transaction = 0

    @classmethod
    async def connect(cls, port: int, user: int) -> TcpPeer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, user)

    def send(self, primitive: Primitive, *attrs: object, conf: int = CONF) -> None:
        self.transaction += 1
        self.writer.write(encode(Message(primitive, conf, self.transaction, self.user, tuple(attrs))))  # type: ignore[arg-type]

    async def receive(self) -> Message:
        head = await asyncio.wait_for(self.reader.readexactly(4), 5)
        return decode(head + await asyncio.wait_for(self.reader.readexactly(message_length(head) - 4), 5))

    def close(self) -> None:
        self.writer.close()


def overall(m: Message) -> RequestStatus:
    info = m.first(Attr.FLOOR_REQUEST_INFORMATION)
    assert info is not None and isinstance(info.value, Group)
    o = info.value.first(Attr.OVERALL_REQUEST_STATUS)
    assert o is not None and isinstance(o.value, Group)
    rs = o.value.first(Attr.REQUEST_STATUS)
    assert rs is not None and isinstance(rs.value, bytes)
    return RequestStatus(rs.value[0])


def error_code(m: Message) -> ErrorCode:
    assert m.primitive == Primitive.ERROR
    code = m.first(Attr.ERROR_CODE)
    assert code is not None and isinstance(code.value, bytes)
    return ErrorCode(code.value[0])


async def test_two_room_systems_hand_the_floor_over_tcp(bfcp: tuple[BfcpServer, FloorServer]) -> None:
    server, floor = bfcp
    cisco, poly = await TcpPeer.connect(server.tcp_port, CISCO), await TcpPeer.connect(server.tcp_port, POLY)
    try:
        cisco.send(Primitive.HELLO)
        ack = await cisco.receive()
        assert ack.primitive == Primitive.HELLO_ACK and ack.transaction_id == 1 and not ack.responder

        poly.send(Primitive.FLOOR_QUERY, u16(Attr.FLOOR_ID, FLOOR))
        assert (await poly.receive()).primitive == Primitive.FLOOR_STATUS  # nobody holds it

        cisco.send(Primitive.FLOOR_REQUEST, u16(Attr.FLOOR_ID, FLOOR))
        granted = await cisco.receive()
        assert (
            granted.primitive == Primitive.FLOOR_REQUEST_STATUS and overall(granted) is RequestStatus.GRANTED
        )
        notice = await poly.receive()
        assert notice.primitive == Primitive.FLOOR_STATUS and notice.transaction_id == 0
        assert overall(notice) is RequestStatus.GRANTED and floor.holder(FLOOR) == CISCO

        poly.send(Primitive.FLOOR_REQUEST, u16(Attr.FLOOR_ID, FLOOR))
        replies = [await poly.receive(), await poly.receive()]  # its grant, and its own floor status
        assert {m.primitive for m in replies} == {Primitive.FLOOR_REQUEST_STATUS, Primitive.FLOOR_STATUS}
        revoked = await cisco.receive()
        assert overall(revoked) is RequestStatus.REVOKED and floor.holder(FLOOR) == POLY

        # messages that cannot be read, with a header that can: the Error, and the connection goes on
        bad = bytearray(encode(Message(Primitive.HELLO, CONF, 7, CISCO)))
        bad[3] = 1  # one payload word
        cisco.writer.write(bytes(bad) + bytes.fromhex("05010000"))  # an attribute one octet long
        cisco.writer.write(bytes(bad) + bytes.fromhex("fb040001"))  # an unknown mandatory attribute
        assert error_code(await cisco.receive()) is ErrorCode.UNABLE_TO_PARSE
        assert error_code(await cisco.receive()) is ErrorCode.UNKNOWN_MANDATORY_ATTRIBUTE
        cisco.send(Primitive.HELLO)
        assert (await cisco.receive()).primitive == Primitive.HELLO_ACK

        # the holder's connection drops: the floor is free
        poly.close()
        await until(lambda: floor.holder(FLOOR) is None, 5, "the floor to be free")
        cisco.send(Primitive.FLOOR_QUERY, u16(Attr.FLOOR_ID, FLOOR))
        status = await cisco.receive()
        assert (
            status.primitive == Primitive.FLOOR_STATUS
            and status.first(Attr.FLOOR_REQUEST_INFORMATION) is None
        )
    finally:
        cisco.close()
        poly.close()


async def test_a_guest_may_not_take_the_floor_and_strangers_are_refused(
    bfcp: tuple[BfcpServer, FloorServer],
) -> None:
    server, floor = bfcp
    guest = await TcpPeer.connect(server.tcp_port, GUEST)
    try:
        guest.send(Primitive.FLOOR_REQUEST, u16(Attr.FLOOR_ID, FLOOR))
        assert error_code(await guest.receive()) is ErrorCode.UNAUTHORIZED_OPERATION
        guest.send(Primitive.HELLO, conf=CONF + 1)
        assert error_code(await guest.receive()) is ErrorCode.CONFERENCE_DOES_NOT_EXIST
        assert floor.holder(FLOOR) is None
        guest.writer.write(b"\xff" * 16)  # not BFCP at all: the stream has no framing left
        assert await asyncio.wait_for(guest.reader.read(), 5) == b""  # closed
    finally:
        guest.close()


async def test_over_udp_answers_carry_r_and_notices_come_again_until_acknowledged(
    bfcp: tuple[BfcpServer, FloorServer],
) -> None:
    server, floor = bfcp
    socks = {}
    for user in (CISCO, POLY):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        socks[user] = s
    try:

        def send(user: int, primitive: Primitive, transaction: int, *attrs: object) -> None:
            m = Message(primitive, CONF, transaction, user, tuple(attrs), version=2)  # type: ignore[arg-type]
            socks[user].sendto(encode(m), ("127.0.0.1", server.udp_port))

        def receive(user: int) -> Message:
            return decode(socks[user].recv(2048))

        send(CISCO, Primitive.FLOOR_REQUEST, 1, u16(Attr.FLOOR_ID, FLOOR))
        granted = await asyncio.to_thread(receive, CISCO)
        assert granted.responder and granted.version == 2 and overall(granted) is RequestStatus.GRANTED

        send(POLY, Primitive.FLOOR_REQUEST, 1, u16(Attr.FLOOR_ID, FLOOR))
        assert overall(await asyncio.to_thread(receive, POLY)) is RequestStatus.GRANTED
        revoked = await asyncio.to_thread(receive, CISCO)  # a notice: its own transaction, no R
        assert (
            not revoked.responder
            and revoked.transaction_id != 0
            and overall(revoked) is RequestStatus.REVOKED
        )
        again = await asyncio.to_thread(receive, CISCO)  # not acknowledged: sent again
        assert encode(again) == encode(revoked)
        ack = Message(Primitive.FLOOR_REQUEST_STATUS_ACK, CONF, revoked.transaction_id, CISCO, version=2)
        socks[CISCO].sendto(encode(ack), ("127.0.0.1", server.udp_port))
        socks[CISCO].settimeout(2.5)  # longer than the next retransmission would wait
        with pytest.raises(TimeoutError):
            await asyncio.to_thread(receive, CISCO)
        assert floor.holder(FLOOR) == POLY
    finally:
        for s in socks.values():
            s.close()
