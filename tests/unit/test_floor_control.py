"""The presentation floor's control server (``vdx.sip.floor_control``): one holder at a time, a new
presenter takes over and the previous one is told, who may not present gets the protocol's error,
and watchers hear every change."""

from __future__ import annotations

from vdx.sip.bfcp import (
    Attr,
    ErrorCode,
    Group,
    Message,
    Primitive,
    RequestStatus,
    u16,
)
from vdx.sip.floor_control import FloorServer, Outgoing

CONF, FLOOR = 77, 1
DOCTOR, NURSE, GUEST = 1, 2, 3


def server(holders: list[tuple[int, int | None]] | None = None) -> FloorServer:
    s = FloorServer(
        CONF,
        [FLOOR],
        may_present=lambda user: user != GUEST,
        on_holder=(lambda floor, user: holders.append((floor, user))) if holders is not None else None,
    )
    for user in (DOCTOR, NURSE, GUEST):
        s.join(user)
    return s


def msg(primitive: Primitive, user: int, *attrs: object, transaction: int = 9, conf: int = CONF) -> Message:
    return Message(primitive, conf, transaction, user, tuple(attrs))  # type: ignore[arg-type]


def status_of(m: Message) -> tuple[int, RequestStatus]:
    """(floor request id, its overall status) of a FloorRequestStatus or FloorStatus."""
    info = m.first(Attr.FLOOR_REQUEST_INFORMATION)
    assert info is not None and isinstance(info.value, Group)
    overall = info.value.first(Attr.OVERALL_REQUEST_STATUS)
    assert overall is not None and isinstance(overall.value, Group)
    rs = overall.value.first(Attr.REQUEST_STATUS)
    assert rs is not None and isinstance(rs.value, bytes)
    return info.value.id, RequestStatus(rs.value[0])


def error_of(out: list[Outgoing]) -> ErrorCode:
    ((_, m),) = out
    assert m.primitive == Primitive.ERROR and m.responder
    code = m.first(Attr.ERROR_CODE)
    assert code is not None and isinstance(code.value, bytes)
    return ErrorCode(code.value[0])


def test_hello_is_answered_with_what_the_server_supports() -> None:
    ((user, ack),) = server().receive(msg(Primitive.HELLO, DOCTOR))
    assert user == DOCTOR and ack.primitive == Primitive.HELLO_ACK and ack.transaction_id == 9
    primitives = ack.first(Attr.SUPPORTED_PRIMITIVES)
    assert primitives is not None and isinstance(primitives.value, bytes)
    assert Primitive.FLOOR_REQUEST in primitives.value and Primitive.CHAIR_ACTION not in primitives.value


def test_a_new_presenter_takes_over_and_the_previous_one_is_told() -> None:
    holders: list[tuple[int, int | None]] = []
    s = server(holders)
    s.receive(msg(Primitive.FLOOR_QUERY, GUEST, u16(Attr.FLOOR_ID, FLOOR)))  # the guest watches

    out = s.receive(msg(Primitive.FLOOR_REQUEST, DOCTOR, u16(Attr.FLOOR_ID, FLOOR)))
    (to_doctor, granted), (to_guest, floor_status) = out
    assert to_doctor == DOCTOR and granted.primitive == Primitive.FLOOR_REQUEST_STATUS
    first, state = status_of(granted)
    assert state is RequestStatus.GRANTED and s.holder(FLOOR) == DOCTOR
    assert (
        to_guest == GUEST
        and floor_status.primitive == Primitive.FLOOR_STATUS
        and floor_status.transaction_id == 0
    )

    out = s.receive(msg(Primitive.FLOOR_REQUEST, NURSE, u16(Attr.FLOOR_ID, FLOOR)))
    by_user = {user: m for user, m in out}
    assert status_of(by_user[NURSE])[1] is RequestStatus.GRANTED
    assert status_of(by_user[DOCTOR]) == (first, RequestStatus.REVOKED)  # told, in a notice
    assert by_user[DOCTOR].transaction_id == 0
    assert status_of(by_user[GUEST])[1] is RequestStatus.GRANTED  # the watcher sees the nurse now
    assert s.holder(FLOOR) == NURSE and holders == [(FLOOR, DOCTOR), (FLOOR, NURSE)]


def test_release_frees_the_floor() -> None:
    s = server()
    (_, granted), *_ = s.receive(msg(Primitive.FLOOR_REQUEST, DOCTOR, u16(Attr.FLOOR_ID, FLOOR)))
    request_id, _ = status_of(granted)
    assert error_of(
        s.receive(msg(Primitive.FLOOR_RELEASE, NURSE, u16(Attr.FLOOR_REQUEST_ID, request_id)))
    ) is (ErrorCode.FLOOR_REQUEST_ID_DOES_NOT_EXIST)  # not the nurse's to release
    ((_, released),) = s.receive(msg(Primitive.FLOOR_RELEASE, DOCTOR, u16(Attr.FLOOR_REQUEST_ID, request_id)))
    assert status_of(released) == (request_id, RequestStatus.RELEASED) and s.holder(FLOOR) is None


def test_refusals_are_the_protocols_errors() -> None:
    s = server()
    assert error_of(s.receive(msg(Primitive.FLOOR_REQUEST, GUEST, u16(Attr.FLOOR_ID, FLOOR)))) is (
        ErrorCode.UNAUTHORIZED_OPERATION
    )
    assert (
        error_of(s.receive(msg(Primitive.FLOOR_REQUEST, DOCTOR, u16(Attr.FLOOR_ID, 9))))
        is ErrorCode.INVALID_FLOOR_ID
    )
    assert error_of(s.receive(msg(Primitive.FLOOR_REQUEST, DOCTOR))) is ErrorCode.INVALID_FLOOR_ID
    on_behalf = msg(
        Primitive.FLOOR_REQUEST, DOCTOR, u16(Attr.FLOOR_ID, FLOOR), u16(Attr.BENEFICIARY_ID, NURSE)
    )
    assert error_of(s.receive(on_behalf)) is ErrorCode.UNAUTHORIZED_OPERATION
    assert error_of(s.receive(msg(Primitive.HELLO, DOCTOR, conf=5))) is ErrorCode.CONFERENCE_DOES_NOT_EXIST
    assert error_of(s.receive(msg(Primitive.HELLO, 42))) is ErrorCode.USER_DOES_NOT_EXIST
    assert error_of(s.receive(msg(Primitive.CHAIR_ACTION, DOCTOR))) is ErrorCode.UNKNOWN_PRIMITIVE
    assert s.holder(FLOOR) is None  # nothing granted on the way


def test_a_browser_presenter_and_a_leaving_holder_free_the_floor() -> None:
    s = server()
    s.receive(msg(Primitive.FLOOR_REQUEST, DOCTOR, u16(Attr.FLOOR_ID, FLOOR)))
    ((to, revoked),) = s.take_over(FLOOR)
    assert to == DOCTOR and status_of(revoked)[1] is RequestStatus.REVOKED and s.holder(FLOOR) is None

    s.receive(msg(Primitive.FLOOR_QUERY, GUEST, u16(Attr.FLOOR_ID, FLOOR)))
    s.receive(msg(Primitive.FLOOR_REQUEST, NURSE, u16(Attr.FLOOR_ID, FLOOR)))
    ((to, floor_status),) = s.leave(NURSE)  # the nurse's call ended: the watcher hears
    assert (
        to == GUEST and floor_status.first(Attr.FLOOR_REQUEST_INFORMATION) is None and s.holder(FLOOR) is None
    )
    ((_, bye),) = s.receive(msg(Primitive.GOODBYE, DOCTOR))
    assert bye.primitive == Primitive.GOODBYE_ACK
