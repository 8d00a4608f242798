"""BFCP messages (RFC 8855 section 5): the Binary Floor Control Protocol that room systems use to
ask for and hand over the presentation floor. Encoding and decoding only; the floor control
server is ``floor_control``.

Decoding never raises anything but :class:`BfcpError`, which carries the error code the RFC
prescribes for the fault (section 5.2.6) and, when the common header could be read, the ids to
answer with, so a malformed message gets an ``Error`` reply rather than a crash.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum

HEADER = struct.Struct("!BBHIHH")  # ver/R/F/res, primitive, payload length, conference, transaction, user
HEADER_SIZE = HEADER.size
VERSION_RELIABLE, VERSION_UNRELIABLE = 1, 2  # over TCP / TLS, over UDP (RFC 8855 section 5.1)
MAX_GROUP_DEPTH = 3  # the RFC nests groups one level deep; anything deeper is malformed


class Primitive(IntEnum):
    FLOOR_REQUEST = 1
    FLOOR_RELEASE = 2
    FLOOR_REQUEST_QUERY = 3
    FLOOR_REQUEST_STATUS = 4
    USER_QUERY = 5
    USER_STATUS = 6
    FLOOR_QUERY = 7
    FLOOR_STATUS = 8
    CHAIR_ACTION = 9
    CHAIR_ACTION_ACK = 10
    HELLO = 11
    HELLO_ACK = 12
    ERROR = 13
    FLOOR_REQUEST_STATUS_ACK = 14
    FLOOR_STATUS_ACK = 15
    GOODBYE = 16
    GOODBYE_ACK = 17


class Attr(IntEnum):
    BENEFICIARY_ID = 1
    FLOOR_ID = 2
    FLOOR_REQUEST_ID = 3
    PRIORITY = 4
    REQUEST_STATUS = 5
    ERROR_CODE = 6
    ERROR_INFO = 7
    PARTICIPANT_PROVIDED_INFO = 8
    STATUS_INFO = 9
    SUPPORTED_ATTRIBUTES = 10
    SUPPORTED_PRIMITIVES = 11
    USER_DISPLAY_NAME = 12
    USER_URI = 13
    BENEFICIARY_INFORMATION = 14
    FLOOR_REQUEST_INFORMATION = 15
    REQUESTED_BY_INFORMATION = 16
    FLOOR_REQUEST_STATUS = 17
    OVERALL_REQUEST_STATUS = 18


class RequestStatus(IntEnum):
    PENDING = 1
    ACCEPTED = 2
    GRANTED = 3
    DENIED = 4
    CANCELLED = 5
    RELEASED = 6
    REVOKED = 7


class ErrorCode(IntEnum):
    CONFERENCE_DOES_NOT_EXIST = 1
    USER_DOES_NOT_EXIST = 2
    UNKNOWN_PRIMITIVE = 3
    UNKNOWN_MANDATORY_ATTRIBUTE = 4
    UNAUTHORIZED_OPERATION = 5
    INVALID_FLOOR_ID = 6
    FLOOR_REQUEST_ID_DOES_NOT_EXIST = 7
    MAX_FLOOR_REQUESTS_REACHED = 8
    USE_TLS = 9
    UNABLE_TO_PARSE = 10
    USE_DTLS = 11
    UNSUPPORTED_VERSION = 12
    INCORRECT_MESSAGE_LENGTH = 13
    GENERIC_ERROR = 14


UNSIGNED16 = frozenset({Attr.BENEFICIARY_ID, Attr.FLOOR_ID, Attr.FLOOR_REQUEST_ID})
OCTETSTRING16 = frozenset({Attr.PRIORITY, Attr.REQUEST_STATUS})
GROUPED = frozenset(
    {
        Attr.BENEFICIARY_INFORMATION,
        Attr.FLOOR_REQUEST_INFORMATION,
        Attr.REQUESTED_BY_INFORMATION,
        Attr.FLOOR_REQUEST_STATUS,
        Attr.OVERALL_REQUEST_STATUS,
    }
)


@dataclass(frozen=True)
class Header:
    """What could be read of a message's common header (to answer a bad one with ``Error``)."""

    version: int
    primitive: int
    conference_id: int
    transaction_id: int
    user_id: int


class BfcpError(ValueError):
    def __init__(
        self, code: ErrorCode, message: str, header: Header | None = None, details: bytes = b""
    ) -> None:
        super().__init__(message)
        self.code = code
        self.header = header
        self.details = details  # error-specific details (section 5.2.6), e.g. the unknown attributes


@dataclass(frozen=True)
class Group:
    """A grouped attribute's value: its leading 16-bit id and its attributes."""

    id: int
    attributes: tuple[Attribute, ...] = ()

    def first(self, kind: Attr) -> Attribute | None:
        return next((a for a in self.attributes if a.type == kind), None)


@dataclass(frozen=True)
class Attribute:
    """One attribute: ``value`` is an int (Unsigned16), 2 bytes (OctetString16), bytes
    (OctetString) or a :class:`Group`, by ``type``."""

    type: int
    value: int | bytes | Group
    mandatory: bool = False


@dataclass(frozen=True)
class Message:
    primitive: int
    conference_id: int
    transaction_id: int
    user_id: int
    attributes: tuple[Attribute, ...] = field(default_factory=tuple)
    version: int = VERSION_RELIABLE
    responder: bool = False  # R: this is a response (over UDP, section 5.1)

    def first(self, kind: Attr) -> Attribute | None:
        return next((a for a in self.attributes if a.type == kind), None)

    def all(self, kind: Attr) -> list[Attribute]:
        return [a for a in self.attributes if a.type == kind]

    @property
    def header(self) -> Header:
        return Header(self.version, self.primitive, self.conference_id, self.transaction_id, self.user_id)


# --- building attributes ----------------------------------------------------------------------


def u16(kind: Attr, value: int, mandatory: bool = False) -> Attribute:
    return Attribute(kind, value, mandatory)


def request_status(status: RequestStatus, queue_position: int = 0) -> Attribute:
    return Attribute(Attr.REQUEST_STATUS, bytes([status, queue_position]))


def error_code(code: ErrorCode, details: bytes = b"") -> Attribute:
    return Attribute(Attr.ERROR_CODE, bytes([code]) + details)


def text(kind: Attr, value: str) -> Attribute:
    return Attribute(kind, value.encode())


def group(kind: Attr, ident: int, *attributes: Attribute) -> Attribute:
    return Attribute(kind, Group(ident, attributes))


# --- encoding ---------------------------------------------------------------------------------


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def encode_attribute(a: Attribute) -> bytes:
    kind = int(a.type)
    if kind in UNSIGNED16:
        assert isinstance(a.value, int)
        body = struct.pack("!H", a.value)
    elif kind in OCTETSTRING16:
        assert isinstance(a.value, bytes) and len(a.value) == 2
        body = a.value
    elif kind in GROUPED:
        assert isinstance(a.value, Group)
        body = struct.pack("!H", a.value.id) + b"".join(encode_attribute(x) for x in a.value.attributes)
    else:
        assert isinstance(a.value, bytes)
        body = a.value
    length = 2 + len(body)
    if length > 0xFF:
        raise ValueError(f"attribute {kind} is {length} octets: more than its length field holds")
    return _pad(bytes([kind << 1 | a.mandatory, length]) + body)


def encode(m: Message) -> bytes:
    payload = b"".join(encode_attribute(a) for a in m.attributes)
    first = m.version << 5 | m.responder << 4
    return (
        HEADER.pack(first, m.primitive, len(payload) // 4, m.conference_id, m.transaction_id, m.user_id)
        + payload
    )


# --- decoding ---------------------------------------------------------------------------------


def message_length(head: bytes) -> int:
    """The whole message's length from its first four octets (TCP framing); BfcpError when they
    cannot start a BFCP message."""
    if len(head) < 4:
        raise BfcpError(ErrorCode.INCORRECT_MESSAGE_LENGTH, "shorter than a common header")
    version = head[0] >> 5
    if version not in (VERSION_RELIABLE, VERSION_UNRELIABLE):
        raise BfcpError(ErrorCode.UNSUPPORTED_VERSION, f"version {version}")
    return HEADER_SIZE + 4 * struct.unpack_from("!H", head, 2)[0]


def decode(data: bytes) -> Message:
    """One whole message (a datagram, or what ``message_length`` framed on a stream)."""
    if len(data) < HEADER_SIZE:
        raise BfcpError(ErrorCode.INCORRECT_MESSAGE_LENGTH, "shorter than the common header")
    first, primitive, words, conference, transaction, user = HEADER.unpack_from(data)
    version, responder, fragmented = first >> 5, bool(first & 0x10), bool(first & 0x08)
    header = Header(version, primitive, conference, transaction, user)
    if version not in (VERSION_RELIABLE, VERSION_UNRELIABLE):
        raise BfcpError(ErrorCode.UNSUPPORTED_VERSION, f"version {version}", header)
    if HEADER_SIZE + 4 * words != len(data):
        raise BfcpError(
            ErrorCode.INCORRECT_MESSAGE_LENGTH,
            f"payload length {4 * words} but {len(data) - HEADER_SIZE}",
            header,
        )
    if fragmented:  # only over UDP, for messages larger than a datagram: nothing this server needs
        raise BfcpError(ErrorCode.GENERIC_ERROR, "fragmented messages are not reassembled", header)
    if primitive not in Primitive._value2member_map_:
        raise BfcpError(ErrorCode.UNKNOWN_PRIMITIVE, f"primitive {primitive}", header)
    attributes, unknown = _attributes(data, HEADER_SIZE, len(data), header, 0)
    if unknown:
        raise BfcpError(
            ErrorCode.UNKNOWN_MANDATORY_ATTRIBUTE,
            f"unknown mandatory attributes {sorted(unknown)}",
            header,
            bytes(t << 1 for t in unknown),
        )
    return Message(primitive, conference, transaction, user, tuple(attributes), version, responder)


def _attributes(
    data: bytes, pos: int, end: int, header: Header, depth: int
) -> tuple[list[Attribute], list[int]]:
    out: list[Attribute] = []
    unknown: list[int] = []
    for kind, mandatory, body in _chunks(data, pos, end, header):
        if kind not in Attr._value2member_map_:
            if mandatory:
                unknown.append(kind)
            continue  # an unknown optional attribute is ignored (section 5.2)
        out.append(Attribute(kind, _value(kind, body, header, depth, unknown), mandatory))
    return out, unknown


def _chunks(data: bytes, pos: int, end: int, header: Header) -> Iterator[tuple[int, bool, bytes]]:
    while pos < end:
        if end - pos < 2:
            raise BfcpError(ErrorCode.UNABLE_TO_PARSE, "an attribute header is cut off", header)
        kind, length = data[pos] >> 1, data[pos + 1]
        if length < 2 or pos + length > end:
            raise BfcpError(ErrorCode.UNABLE_TO_PARSE, f"attribute {kind} has length {length}", header)
        yield kind, bool(data[pos] & 1), data[pos + 2 : pos + length]
        # the padding: a group's length may leave out its last attribute's (section 5.2)
        pos += length + (-length % 4)


def _value(kind: int, body: bytes, header: Header, depth: int, unknown: list[int]) -> int | bytes | Group:
    if kind in UNSIGNED16 or kind in OCTETSTRING16:
        if len(body) != 2:
            raise BfcpError(ErrorCode.UNABLE_TO_PARSE, f"attribute {kind} must hold 2 octets", header)
        return struct.unpack("!H", body)[0] if kind in UNSIGNED16 else body
    if kind in GROUPED:
        if len(body) < 2 or depth >= MAX_GROUP_DEPTH:
            raise BfcpError(ErrorCode.UNABLE_TO_PARSE, f"grouped attribute {kind} is malformed", header)
        inner, missing = _attributes(body, 2, len(body), header, depth + 1)
        unknown.extend(missing)
        return Group(struct.unpack_from("!H", body)[0], tuple(inner))
    if kind == Attr.ERROR_CODE and not body:
        raise BfcpError(ErrorCode.UNABLE_TO_PARSE, "ERROR-CODE without a code", header)
    return body
