"""Timestamps out and in (spec 1.0): four-digit years always, offsets honoured, fractions dropped."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from vdx.booking.timefmt import YearTooLong, format_local, format_ts, parse_ts


def test_years_below_1000_are_padded():
    # yyyy is four digits (the reference's Java pattern); glibc strftime %Y would write "886"
    assert format_ts(datetime(886, 11, 9, 4, 57, 34, tzinfo=UTC)) == "0886-11-09T04:57:34Z"
    assert format_local(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00"


def test_offsets_and_fractions():
    assert format_ts(parse_ts("3025-11-02T15:00:00.123456+02:00")) == "3025-11-02T13:00:00Z"


def test_out_of_range_in_utc_is_a_value_error_not_an_overflow():
    with pytest.raises(ValueError):
        parse_ts("0001-01-01T00:00:00+02:00")
    with pytest.raises(YearTooLong):
        parse_ts("10000-01-01T00:00:00Z")
