"""DTMF for PIN entry: RFC 4733 telephone-events and SIP INFO bodies."""

from __future__ import annotations

import pytest

from vdx.sip.dtmf import DtmfDetector, DtmfError, TelephoneEvent, parse_info_body


def test_telephone_event_round_trip() -> None:
    ev = TelephoneEvent(event=11, end=True, volume=10, duration=1280)
    data = ev.serialise()
    assert data == bytes([11, 0x8A, 0x05, 0x00])
    assert TelephoneEvent.parse(data) == ev and ev.digit == "#"
    with pytest.raises(DtmfError):
        TelephoneEvent.parse(b"\x01\x02")


def test_detector_reports_each_key_press_once() -> None:
    """RFC 4733 §2.5: one event = packets sharing a timestamp; the End packet is sent three times."""
    det = DtmfDetector()
    digits = []
    for ts, event, end in [
        (1000, 1, False),
        (1000, 1, False),
        (1000, 1, True),
        (1000, 1, True),
        (1000, 1, True),
        (2600, 2, True),  # the start packets of "2" were lost: the End alone still counts
        (4000, 1, False),  # pressing "1" again is a new event
    ]:
        d = det.feed(ts, TelephoneEvent(event, end, 10, 160).serialise())
        if d:
            digits.append(d)
    assert digits == ["1", "2", "1"]
    assert det.feed(5000, b"\x00") is None


@pytest.mark.parametrize(
    ("ctype", "body", "digit"),
    [
        ("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", "5"),
        ("application/dtmf-relay", b"Signal= #\r\n", "#"),
        ("application/dtmf", b"11", "#"),
        ("application/dtmf", b"7", "7"),
        ("application/dtmf-relay", b"Duration=160", None),
        ("application/dtmf-relay", b"Signal=55", None),
        ("text/plain", b"5", None),
        ("application/dtmf", b"\xff", None),
    ],
)
def test_info_bodies(ctype: str, body: bytes, digit: str | None) -> None:
    assert parse_info_body(ctype, body) == digit
