"""DTMF for PIN entry: RFC 4733 telephone-event RTP payloads and SIP INFO bodies.

Room systems send PIN digits as telephone-events (one event is several RTP packets with the same
timestamp, the last three flagged End) or, for some vendors, as SIP INFO with
``application/dtmf-relay`` (``Signal=5``) or ``application/dtmf`` (``5``). :class:`DtmfDetector`
turns the RTP stream into one digit per key press.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .message import digits

EVENTS = "0123456789*#ABCD"


class DtmfError(ValueError):
    pass


@dataclass(frozen=True)
class TelephoneEvent:
    event: int
    end: bool
    volume: int
    duration: int

    @property
    def digit(self) -> str | None:
        return EVENTS[self.event] if self.event < len(EVENTS) else None

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        if len(payload) < 4:
            raise DtmfError("telephone-event payload shorter than 4 bytes")
        event, flags, duration = struct.unpack_from("!BBH", payload)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def serialise(self) -> bytes:
        return struct.pack(
            "!BBH", self.event, (0x80 if self.end else 0) | (self.volume & 0x3F), self.duration
        )


class DtmfDetector:
    """One digit per event: reported when the first packet of a new event timestamp arrives
    (so a lost End packet does not lose the digit, and End retransmissions do not repeat it)."""

    def __init__(self) -> None:
        self._last_ts: int | None = None

    def feed(self, timestamp: int, payload: bytes) -> str | None:
        try:
            ev = TelephoneEvent.parse(payload)
        except DtmfError:
            return None
        if timestamp == self._last_ts:
            return None
        self._last_ts = timestamp
        return ev.digit


def parse_info_body(content_type: str, body: bytes) -> str | None:
    """The digit of a SIP INFO DTMF body, or None when it carries none."""
    try:
        text = body.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    ctype = content_type.lower()
    if ctype == "application/dtmf-relay":
        for line in text.splitlines():
            name, _, value = line.partition("=")
            if name.strip().lower() == "signal":
                value = value.strip()
                return value if len(value) == 1 and value.upper() in EVENTS else None
        return None
    if ctype == "application/dtmf":
        if digits(text) and int(text) < len(EVENTS):
            return EVENTS[int(text)]
        return text if len(text) == 1 and text.upper() in EVENTS else None
    return None
