"""A conference's BFCP floor control server (RFC 8855 sections 8 and 13): the presentation floor
has one holder at a time. An allowed request takes the floor at once and the previous holder's
request is revoked, with a notice to them (a new presenter takes over); a request from a
participant who may not present gets the protocol's error, as does anything the server cannot
serve. Pure: messages in, messages out with the user they go to; the transport sends them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .bfcp import (
    Attr,
    Attribute,
    ErrorCode,
    Header,
    Message,
    Primitive,
    RequestStatus,
    error_code,
    group,
    request_status,
    text,
    u16,
)

Outgoing = tuple[int, Message]  # (the user it goes to, the message)

# What this server takes and sends (HelloAck, section 5.3.12); chair actions are not among them.
SUPPORTED_PRIMITIVES = tuple(
    p for p in Primitive if p not in (Primitive.CHAIR_ACTION, Primitive.CHAIR_ACTION_ACK)
)
SUPPORTED_ATTRIBUTES = tuple(Attr)
ENDED = (RequestStatus.DENIED, RequestStatus.CANCELLED, RequestStatus.RELEASED, RequestStatus.REVOKED)


@dataclass
class FloorRequest:
    id: int
    user: int
    floors: tuple[int, ...]
    status: RequestStatus


class FloorServer:
    """The floors of one BFCP conference. ``may_present(user)``: whether that participant may take
    the floor; ``on_holder(floor, user)``: who holds it now (None: nobody over BFCP)."""

    def __init__(
        self,
        conference_id: int,
        floors: Iterable[int],
        may_present: Callable[[int], bool],
        on_holder: Callable[[int, int | None], None] | None = None,
    ) -> None:
        self.conference_id = conference_id
        self.floors = frozenset(floors)
        self.may_present = may_present
        self.on_holder = on_holder
        self.users: set[int] = set()
        self.requests: dict[int, FloorRequest] = {}
        self.holders: dict[int, FloorRequest] = {}  # floor -> the granted request
        self.watchers: dict[int, set[int]] = {f: set() for f in self.floors}  # FloorQuery subscribers
        self._next_id = 1

    # --- who is in the conference -----------------------------------------------------------
    def join(self, user: int) -> None:
        self.users.add(user)

    def leave(self, user: int) -> list[Outgoing]:
        """A participant left (its call or connection ended): its requests end, the others hear."""
        self.users.discard(user)
        for watching in self.watchers.values():
            watching.discard(user)
        out: list[Outgoing] = []
        for r in [r for r in self.requests.values() if r.user == user]:
            out += self._end(r, RequestStatus.RELEASED, notify_owner=False)
        return out

    def holder(self, floor: int) -> int | None:
        r = self.holders.get(floor)
        return r.user if r is not None else None

    def take_over(self, floor: int) -> list[Outgoing]:
        """Someone outside BFCP (a browser) presents now: the BFCP holder's request is revoked."""
        r = self.holders.get(floor)
        return self._end(r, RequestStatus.REVOKED) if r is not None else []

    # --- messages -------------------------------------------------------------------------------
    def receive(self, m: Message) -> list[Outgoing]:
        if m.conference_id != self.conference_id:
            return [self.error(m.header, ErrorCode.CONFERENCE_DOES_NOT_EXIST, "no such conference")]
        if m.user_id not in self.users:
            return [self.error(m.header, ErrorCode.USER_DOES_NOT_EXIST, "no such user in the conference")]
        handler = self._handlers.get(Primitive(m.primitive))
        if handler is None:
            return [
                self.error(m.header, ErrorCode.UNKNOWN_PRIMITIVE, "not served by this floor control server")
            ]
        return handler(self, m)

    def error(self, h: Header, code: ErrorCode, why: str) -> Outgoing:
        return h.user_id, error_reply(h, code, why)

    def _reply(self, h: Header, primitive: Primitive, attrs: Iterable[Attribute]) -> Message:
        return reply(h, primitive, attrs)

    def _notice(self, user: int, primitive: Primitive, attrs: Iterable[Attribute]) -> Outgoing:
        """A message the server starts (transaction id 0 over a reliable transport, section 8)."""
        return user, Message(primitive, self.conference_id, 0, user, tuple(attrs))

    def _hello(self, m: Message) -> list[Outgoing]:
        attrs = (
            Attribute(Attr.SUPPORTED_PRIMITIVES, bytes(SUPPORTED_PRIMITIVES)),
            Attribute(Attr.SUPPORTED_ATTRIBUTES, bytes(a << 1 for a in SUPPORTED_ATTRIBUTES)),
        )
        return [(m.user_id, self._reply(m.header, Primitive.HELLO_ACK, attrs))]

    def _floor_request(self, m: Message) -> list[Outgoing]:
        floors = tuple(int(a.value) for a in m.all(Attr.FLOOR_ID) if isinstance(a.value, int))
        if not floors or any(f not in self.floors for f in floors):
            return [self.error(m.header, ErrorCode.INVALID_FLOOR_ID, f"floors here: {sorted(self.floors)}")]
        if m.first(Attr.BENEFICIARY_ID) is not None:  # third-party requests are for chairs
            return [self.error(m.header, ErrorCode.UNAUTHORIZED_OPERATION, "no requests on behalf of others")]
        if not self.may_present(m.user_id):
            return [
                self.error(m.header, ErrorCode.UNAUTHORIZED_OPERATION, "you may not present in this room")
            ]
        if any(r.user == m.user_id and r.status is RequestStatus.GRANTED for r in self.requests.values()):
            return [self.error(m.header, ErrorCode.MAX_FLOOR_REQUESTS_REACHED, "you hold the floor already")]
        out: list[Outgoing] = []
        for f in floors:  # a new presenter takes over (the watchers hear of the new one below)
            if (held := self.holders.get(f)) is not None:
                out += self._end(held, RequestStatus.REVOKED, announce=False)
        r = FloorRequest(self._next_id, m.user_id, floors, RequestStatus.GRANTED)
        self._next_id = self._next_id % 0xFFFF + 1
        self.requests[r.id] = r
        for f in floors:
            self.holders[f] = r
        out.insert(0, (m.user_id, self._reply(m.header, Primitive.FLOOR_REQUEST_STATUS, [_information(r)])))
        out += self._changed(floors)
        return out

    def _floor_release(self, m: Message) -> list[Outgoing]:
        r = self._own_request(m)
        if r is None:
            return [
                self.error(m.header, ErrorCode.FLOOR_REQUEST_ID_DOES_NOT_EXIST, "no such request of yours")
            ]
        out = self._end(r, RequestStatus.RELEASED, notify_owner=False)
        return [(m.user_id, self._reply(m.header, Primitive.FLOOR_REQUEST_STATUS, [_information(r)])), *out]

    def _floor_request_query(self, m: Message) -> list[Outgoing]:
        r = self._own_request(m)
        if r is None:
            return [
                self.error(m.header, ErrorCode.FLOOR_REQUEST_ID_DOES_NOT_EXIST, "no such request of yours")
            ]
        return [(m.user_id, self._reply(m.header, Primitive.FLOOR_REQUEST_STATUS, [_information(r)]))]

    def _floor_query(self, m: Message) -> list[Outgoing]:
        """Subscribe to the floors named (none: to no floor any more) and say who holds them."""
        floors = [int(a.value) for a in m.all(Attr.FLOOR_ID) if isinstance(a.value, int)]
        if any(f not in self.floors for f in floors):
            return [self.error(m.header, ErrorCode.INVALID_FLOOR_ID, f"floors here: {sorted(self.floors)}")]
        for f, watching in self.watchers.items():
            (watching.add if f in floors else watching.discard)(m.user_id)
        attrs: list[Attribute] = []
        for f in floors:
            attrs += self._status_of(f)
        return [(m.user_id, self._reply(m.header, Primitive.FLOOR_STATUS, attrs))]

    def _user_query(self, m: Message) -> list[Outgoing]:
        attrs = [group(Attr.BENEFICIARY_INFORMATION, m.user_id)]
        attrs += [_information(r) for r in self.requests.values() if r.user == m.user_id]
        return [(m.user_id, self._reply(m.header, Primitive.USER_STATUS, attrs))]

    def _goodbye(self, m: Message) -> list[Outgoing]:
        out = self.leave(m.user_id)
        return [(m.user_id, self._reply(m.header, Primitive.GOODBYE_ACK, ())), *out]

    def _ack(self, m: Message) -> list[Outgoing]:
        return []  # an acknowledgement of one of ours (over UDP): nothing to answer

    _handlers: dict[Primitive, Callable[[FloorServer, Message], list[Outgoing]]] = {
        Primitive.HELLO: _hello,
        Primitive.FLOOR_REQUEST: _floor_request,
        Primitive.FLOOR_RELEASE: _floor_release,
        Primitive.FLOOR_REQUEST_QUERY: _floor_request_query,
        Primitive.FLOOR_QUERY: _floor_query,
        Primitive.USER_QUERY: _user_query,
        Primitive.GOODBYE: _goodbye,
        Primitive.FLOOR_REQUEST_STATUS_ACK: _ack,
        Primitive.FLOOR_STATUS_ACK: _ack,
    }

    # --- state changes ----------------------------------------------------------------------------
    def _own_request(self, m: Message) -> FloorRequest | None:
        a = m.first(Attr.FLOOR_REQUEST_ID)
        r = self.requests.get(a.value) if a is not None and isinstance(a.value, int) else None
        return r if r is not None and r.user == m.user_id else None

    def _end(
        self, r: FloorRequest, status: RequestStatus, notify_owner: bool = True, announce: bool = True
    ) -> list[Outgoing]:
        """End a request (released, revoked): its floors are free, its owner and (``announce``)
        the floors' watchers told."""
        r.status = status
        del self.requests[r.id]
        freed = [f for f, held in self.holders.items() if held is r]
        for f in freed:
            del self.holders[f]
        out: list[Outgoing] = []
        if notify_owner and r.user in self.users:
            out.append(self._notice(r.user, Primitive.FLOOR_REQUEST_STATUS, [_information(r)]))
        return out + (self._changed(freed) if announce else [])

    def _changed(self, floors: Iterable[int]) -> list[Outgoing]:
        out: list[Outgoing] = []
        for f in floors:
            if self.on_holder is not None:
                self.on_holder(f, self.holder(f))
            for user in sorted(self.watchers.get(f, ())):
                out.append(self._notice(user, Primitive.FLOOR_STATUS, self._status_of(f)))
        return out

    def _status_of(self, floor: int) -> list[Attribute]:
        held = self.holders.get(floor)
        return [u16(Attr.FLOOR_ID, floor), *([_information(held)] if held is not None else [])]


def reply(h: Header, primitive: Primitive, attrs: Iterable[Attribute]) -> Message:
    """A response in the request's transaction (R set: it matters over UDP only)."""
    return Message(
        primitive, h.conference_id, h.transaction_id, h.user_id, tuple(attrs), h.version, responder=True
    )


def error_reply(h: Header, code: ErrorCode, why: str) -> Message:
    """The ``Error`` reply to a message (section 5.3.13), whichever conference it names."""
    return reply(h, Primitive.ERROR, (error_code(code), text(Attr.ERROR_INFO, why)))


def _information(r: FloorRequest) -> Attribute:
    """FLOOR-REQUEST-INFORMATION of a request (section 5.2.15)."""
    return group(
        Attr.FLOOR_REQUEST_INFORMATION,
        r.id,
        group(Attr.OVERALL_REQUEST_STATUS, r.id, request_status(r.status)),
        *(group(Attr.FLOOR_REQUEST_STATUS, f, request_status(r.status)) for f in r.floors),
        group(Attr.BENEFICIARY_INFORMATION, r.user),
    )
