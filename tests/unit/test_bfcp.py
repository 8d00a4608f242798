"""The BFCP codec (RFC 8855 section 5) against messages laid out by hand from the RFC's figures,
and fuzzed: any input decodes or raises BfcpError with the code the RFC gives the fault."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vdx.sip.bfcp import (
    Attr,
    Attribute,
    BfcpError,
    ErrorCode,
    Group,
    Message,
    Primitive,
    RequestStatus,
    decode,
    encode,
    group,
    message_length,
    request_status,
    u16,
)

# FloorRequest, version 1, conference 0x11223344, transaction 1, user 2, FLOOR-ID 1 (M set)
FLOOR_REQUEST = bytes.fromhex("20 01 0001 11223344 0001 0002" + "05 04 0001".replace(" ", ""))
# FloorRequestStatus: FLOOR-REQUEST-INFORMATION(7){OVERALL-REQUEST-STATUS(7){REQUEST-STATUS
# granted}, FLOOR-REQUEST-STATUS(floor 1){REQUEST-STATUS granted}}
FLOOR_REQUEST_STATUS = bytes.fromhex(
    "20 04 0005 11223344 0001 0002".replace(" ", "")
    + "1e14 0007"  # type 15, length 20, floor request id 7
    + "2408 0007 0a04 0300"  # OVERALL-REQUEST-STATUS(7): REQUEST-STATUS granted, queue 0
    + "2208 0001 0a04 0300"  # FLOOR-REQUEST-STATUS(floor 1): REQUEST-STATUS granted
)


def test_a_floor_request_as_the_rfc_lays_it_out() -> None:
    m = decode(FLOOR_REQUEST)
    assert (m.version, m.primitive, m.conference_id, m.transaction_id, m.user_id) == (1, 1, 0x11223344, 1, 2)
    assert m.attributes == (Attribute(Attr.FLOOR_ID, 1, mandatory=True),)
    assert encode(m) == FLOOR_REQUEST
    assert message_length(FLOOR_REQUEST[:4]) == len(FLOOR_REQUEST)


def test_grouped_attributes_as_the_rfc_lays_them_out() -> None:
    m = decode(FLOOR_REQUEST_STATUS)
    info = m.first(Attr.FLOOR_REQUEST_INFORMATION)
    assert info is not None and isinstance(info.value, Group) and info.value.id == 7
    overall, floor = info.value.attributes
    assert overall == group(Attr.OVERALL_REQUEST_STATUS, 7, request_status(RequestStatus.GRANTED))
    assert floor == group(Attr.FLOOR_REQUEST_STATUS, 1, request_status(RequestStatus.GRANTED))
    built = Message(
        Primitive.FLOOR_REQUEST_STATUS,
        0x11223344,
        1,
        2,
        (group(Attr.FLOOR_REQUEST_INFORMATION, 7, overall, floor),),
    )
    assert encode(built) == FLOOR_REQUEST_STATUS


def test_text_attributes_are_padded_to_a_word() -> None:
    m = Message(Primitive.FLOOR_REQUEST, 1, 2, 3, (Attribute(Attr.PARTICIPANT_PROVIDED_INFO, b"slides"),))
    data = encode(m)
    assert data[12:] == bytes([Attr.PARTICIPANT_PROVIDED_INFO << 1, 8]) + b"slides"  # 8 octets, no pad
    m = Message(Primitive.FLOOR_REQUEST, 1, 2, 3, (Attribute(Attr.PARTICIPANT_PROVIDED_INFO, b"x-ray"),))
    assert encode(m)[12:] == bytes([Attr.PARTICIPANT_PROVIDED_INFO << 1, 7]) + b"x-ray\0"
    assert decode(encode(m)) == m


@pytest.mark.parametrize(
    ("data", "code", "has_header"),
    [
        (FLOOR_REQUEST[:8], ErrorCode.INCORRECT_MESSAGE_LENGTH, False),
        (bytes([0x60]) + FLOOR_REQUEST[1:], ErrorCode.UNSUPPORTED_VERSION, True),  # version 3
        (FLOOR_REQUEST[:2] + b"\x00\x02" + FLOOR_REQUEST[4:], ErrorCode.INCORRECT_MESSAGE_LENGTH, True),
        (FLOOR_REQUEST[:1] + b"\x63" + FLOOR_REQUEST[2:], ErrorCode.UNKNOWN_PRIMITIVE, True),  # 99
        (FLOOR_REQUEST[:12] + bytes.fromhex("05010001"), ErrorCode.UNABLE_TO_PARSE, True),  # length 1
        (FLOOR_REQUEST[:12] + bytes.fromhex("05080001"), ErrorCode.UNABLE_TO_PARSE, True),  # past the end
        (FLOOR_REQUEST[:12] + bytes.fromhex("05030001"), ErrorCode.UNABLE_TO_PARSE, True),  # Unsigned16 of 1
        (
            FLOOR_REQUEST[:12] + bytes.fromhex("fb040001"),
            ErrorCode.UNKNOWN_MANDATORY_ATTRIBUTE,
            True,
        ),  # 125, M
        (FLOOR_REQUEST[:1] + b"\x01\x00\x00" + FLOOR_REQUEST[4:12], ErrorCode.GENERIC_ERROR, False),
    ],
)
def test_what_cannot_be_read_names_its_error(data: bytes, code: ErrorCode, has_header: bool) -> None:
    if code is ErrorCode.GENERIC_ERROR:  # the F (fragment) flag
        data = bytes([data[0] | 0x08]) + data[1:]
        has_header = True
    with pytest.raises(BfcpError) as refused:
        decode(data)
    assert refused.value.code == code
    assert (refused.value.header is not None) == has_header
    if code is ErrorCode.UNKNOWN_MANDATORY_ATTRIBUTE:
        assert refused.value.details == bytes([125 << 1])


def test_an_unknown_optional_attribute_is_skipped() -> None:
    data = FLOOR_REQUEST[:3] + b"\x02" + FLOOR_REQUEST[4:] + bytes.fromhex("fa040000")  # type 125, no M
    assert decode(data).attributes == (Attribute(Attr.FLOOR_ID, 1, mandatory=True),)


@given(st.binary(max_size=120))
def test_any_bytes_decode_or_raise_bfcp_error(data: bytes) -> None:
    with contextlib.suppress(BfcpError):
        decode(data)


@given(st.binary(min_size=12, max_size=120))
def test_any_payload_behind_a_good_header_decodes_or_raises_bfcp_error(tail: bytes) -> None:
    body = tail[: len(tail) // 4 * 4]
    data = FLOOR_REQUEST[:2] + (len(body) // 4).to_bytes(2, "big") + FLOOR_REQUEST[4:12] + body
    try:
        m = decode(data)
    except BfcpError as exc:
        assert exc.header is not None  # the header was fine: the server can answer
    else:
        assert m.conference_id == 0x11223344


_u16 = st.integers(0, 0xFFFF)
_simple = st.one_of(
    st.builds(u16, st.sampled_from([Attr.BENEFICIARY_ID, Attr.FLOOR_ID, Attr.FLOOR_REQUEST_ID]), _u16),
    st.builds(request_status, st.sampled_from(list(RequestStatus)), st.integers(0, 255)),
    st.builds(
        Attribute,
        st.sampled_from([Attr.STATUS_INFO, Attr.USER_URI, Attr.USER_DISPLAY_NAME]),
        st.binary(max_size=40),
    ),
)
_attribute = st.one_of(
    _simple,
    st.builds(
        lambda kind, ident, inner: group(kind, ident, *inner),
        st.sampled_from(
            [Attr.FLOOR_REQUEST_STATUS, Attr.OVERALL_REQUEST_STATUS, Attr.BENEFICIARY_INFORMATION]
        ),
        _u16,
        st.lists(_simple, max_size=3),
    ),
)


@given(
    st.sampled_from(list(Primitive)),
    st.integers(0, 0xFFFFFFFF),
    _u16,
    _u16,
    st.lists(_attribute, max_size=5),
    st.sampled_from([1, 2]),
)
def test_what_is_encoded_decodes_the_same(
    primitive: Primitive, conf: int, transaction: int, user: int, attrs: list[Attribute], version: int
) -> None:
    m = Message(primitive, conf, transaction, user, tuple(attrs), version)
    try:
        data = encode(m)
    except ValueError:
        return  # a group over 255 octets: not a message anyone can send
    assert decode(data) == m
