"""Sending a caller to the node that hosts the room: the route a node takes (never back to itself),
the SIP answer it makes (302 with the hosting node's address for the INVITE's transport, 503 +
Retry-After while the room moves) and that answer on the wire, through the UAS core."""

from __future__ import annotations

import asyncio

import pytest

from tests.interop.placed import Placed
from vdx.conference.conference import MediaOptions
from vdx.conference.policy import RoomConfig
from vdx.node.rooms import Rooms
from vdx.node.routing import HERE, MOVING, NodeInfo, Route, Where
from vdx.node.sip_calls import MOVING_RETRY_AFTER_S, SipRoomCalls, route_answer
from vdx.sip import IncomingCall, Reject
from vdx.sip.message import SipResponse, SipUri, parse_message
from vdx.sip.server import SipServer, SipServerConfig
from vdx.sip.transaction import Timers, TransactionLayer
from vdx.sip.transport import Source

OTHER = NodeInfo(
    id="node-b",
    http_url="https://b.video.example:8443",
    sip={"udp": "10.0.0.2:5070", "tcp": "10.0.0.2:5070", "tls": "10.0.0.2:5071"},
)


def rooms_with(routes: dict[str, Route], node_id: str = "node-a") -> Rooms:
    return Rooms(MediaOptions(), locator=Placed(routes), node_id=node_id)


def incoming(alias: str = "12345678", transport: str = "udp", domain: str = "vdx.test") -> IncomingCall:
    return IncomingCall(
        call_id="c1",
        alias=alias,
        domain=domain,
        caller_uri="sip:room4@hospital.example",
        caller_name="Room 4",
        secure=transport == "tls",
        transport=transport,
    )


# --- the route a node takes ---------------------------------------------------------------------


def test_a_room_on_another_node_is_elsewhere_with_that_node() -> None:
    rooms = rooms_with({"12345678@vdx.test": Route(Where.ELSEWHERE, OTHER)})
    route = rooms.route("12345678@vdx.test")
    assert route.where is Where.ELSEWHERE and route.node == OTHER


def test_the_locator_is_asked_by_the_primary_alias_of_a_known_room() -> None:
    rooms = rooms_with({"12345678@vdx.test": Route(Where.ELSEWHERE, OTHER)})
    rooms.put(RoomConfig(alias="12345678@vdx.test", aliases=("12345678",)))
    assert rooms.route("12345678").node == OTHER
    assert rooms.locator.asked == ["12345678@vdx.test"]  # type: ignore[attr-defined]


def test_a_route_back_to_this_node_is_here_never_a_redirect_loop() -> None:
    me = NodeInfo(id="node-a", http_url="http://a:8080", sip={"udp": "10.0.0.1:5060"})
    rooms = rooms_with({"1@vdx.test": Route(Where.ELSEWHERE, me)})
    assert rooms.route("1@vdx.test") == HERE


def test_elsewhere_without_a_node_is_moving_and_moving_stays_moving() -> None:
    rooms = rooms_with({"1@vdx.test": Route(Where.ELSEWHERE, None), "2@vdx.test": MOVING})
    assert rooms.route("1@vdx.test") == MOVING
    assert rooms.route("2@vdx.test") == MOVING
    assert rooms.route("3@vdx.test") == HERE


# --- the SIP answer ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("transport", "contact"),
    [
        ("udp", "<sip:12345678@10.0.0.2:5070;transport=udp>"),
        ("tcp", "<sip:12345678@10.0.0.2:5070;transport=tcp>"),
        ("tls", "<sip:12345678@10.0.0.2:5071;transport=tls>"),
    ],
)
def test_302_names_the_hosting_node_for_the_transport_the_invite_came_on(
    transport: str, contact: str
) -> None:
    answer = route_answer(Route(Where.ELSEWHERE, OTHER), incoming(transport=transport), 5)
    assert answer == Reject(302, "Moved Temporarily", contact=contact)
    assert SipUri.parse(contact.strip("<>")).params["transport"] == transport


def test_302_falls_back_between_udp_and_tcp_but_never_from_tls_to_plain_text() -> None:
    tcp_only = NodeInfo(id="b", http_url="http://b", sip={"tcp": "10.0.0.2:5070"})
    answer = route_answer(Route(Where.ELSEWHERE, tcp_only), incoming(transport="udp"), 5)
    assert answer is not None and answer.contact == "<sip:12345678@10.0.0.2:5070;transport=tcp>"
    refused = route_answer(Route(Where.ELSEWHERE, tcp_only), incoming(transport="tls"), 5)
    assert refused is not None and refused.status == 503 and refused.contact is None


def test_moving_is_503_with_retry_after_and_here_is_no_answer() -> None:
    answer = route_answer(MOVING, incoming(), 7)
    assert answer is not None
    assert (answer.status, answer.retry_after, answer.contact) == (503, 7, None)
    assert answer.reason == "Room moving to another node"
    assert route_answer(HERE, incoming(), 7) is None


def test_the_call_handler_routes_an_unknown_number_by_each_way_it_may_be_written() -> None:
    rooms = rooms_with({"12345678@vdx.test": Route(Where.ELSEWHERE, OTHER)})
    calls = SipRoomCalls(rooms, sip_domain="vdx.test")
    # dialled at the node's address: the room is found at the node's SIP domain
    assert calls.route(incoming(domain="10.0.0.1")).node == OTHER
    assert calls.route(incoming(alias="999")) == HERE


# --- on the wire -----------------------------------------------------------------------------------


def _invite(alias: str, transport: str) -> bytes:
    head = (
        f"INVITE sip:{alias}@vdx.test SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 127.0.0.1:5999;branch=z9hG4bKroute1;rport\r\n"
        "From: <sip:room4@hospital.example>;tag=f1\r\nTo: <sip:" + alias + "@vdx.test>\r\n"
        "Call-ID: route-1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
        "Contact: <sip:room4@127.0.0.1:5999>\r\nContent-Length: 0\r\n\r\n"
    )
    return head.encode()


async def _final(rooms: Rooms, alias: str, transport: str = "UDP") -> SipResponse:
    server = SipServer(
        SipServerConfig(host="127.0.0.1", rtp_host="127.0.0.1", rtp_ports="47000-47999"),
        SipRoomCalls(rooms, sip_domain="vdx.test"),
    )
    server._txn = TransactionLayer(Timers(t1=0.005, t2=0.02, t4=0.02))
    sent: list[bytes] = []
    server._receive(
        _invite(alias, transport), Source(transport, "127.0.0.1", 5999, "127.0.0.1", 5060, sent.append)
    )
    if server._tasks:
        await asyncio.wait(set(server._tasks), timeout=5)
    await server.stop()
    finals = [m for m in map(parse_message, sent) if isinstance(m, SipResponse) and m.status >= 200]
    assert len(finals) == 1, sent
    return finals[0]


async def test_an_invite_for_a_room_elsewhere_gets_302_with_contact() -> None:
    rooms = rooms_with({"12345678@vdx.test": Route(Where.ELSEWHERE, OTHER)})
    resp = await _final(rooms, "12345678", "TCP")
    assert (resp.status, resp.reason) == (302, "Moved Temporarily")
    assert resp.get("Contact") == "<sip:12345678@10.0.0.2:5070;transport=tcp>"
    assert resp.to.tag  # a final answer of its own, ACKed hop by hop (RFC 3261 §17.2.1)


async def test_an_invite_for_a_moving_room_gets_503_retry_after() -> None:
    resp = await _final(rooms_with({"12345678@vdx.test": MOVING}), "12345678")
    assert (resp.status, resp.reason, resp.get("Retry-After")) == (
        503,
        "Room moving to another node",
        str(MOVING_RETRY_AFTER_S),
    )
    assert resp.get("Contact") is None


async def test_an_invite_routed_back_here_is_answered_as_today() -> None:
    me = NodeInfo(id="node-a", http_url="http://a", sip={"udp": "127.0.0.1:5060"})
    resp = await _final(rooms_with({"12345678@vdx.test": Route(Where.ELSEWHERE, me)}), "12345678")
    assert resp.status == 404  # no such room here: never a 302 to itself
