"""The steering figures' arithmetic: cluster load per minute, daily peaks, busiest hours, peak
concurrency across nodes, and the projection of when the peak exceeds the capacity."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from vdx.booking.steering import (
    HORIZON_DAYS,
    Load,
    busiest_hours,
    cluster_minutes,
    day_peaks,
    peak_concurrent,
    project,
)

TODAY = date(2026, 12, 7)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


def test_nodes_add_up_minute_by_minute_and_the_day_peaks_at_the_sum():
    rows = [
        (at(6, 9), 2.0, 10.0),  # node a
        (at(6, 9), 3.0, 10.0),  # node b, same minute: the cluster carries 5 of 20
        (at(6, 14), 4.0, 10.0),  # node a alone later: more on one node, less in all
        (at(7, 10), 1.0, 10.0),
    ]
    minutes = cluster_minutes(rows)
    assert minutes[at(6, 9)] == Load(5.0, 20.0)
    peaks = day_peaks(minutes)
    assert [(p.day, p.peak_units, p.capacity, p.peak_at, p.busiest_hour) for p in peaks] == [
        (date(2026, 12, 6), 5.0, 20.0, at(6, 9), 9),
        (date(2026, 12, 7), 1.0, 10.0, at(7, 10), 10),
    ]


def test_busiest_hours_by_mean_load():
    minutes = {
        at(6, 9, 0): Load(1.0, 8),
        at(6, 9, 1): Load(3.0, 8),  # hour 9: mean 2
        at(6, 13, 0): Load(5.0, 8),
        at(7, 13, 0): Load(0.0, 8),  # hour 13: mean 2.5 over two days
        at(6, 20, 0): Load(0.5, 8),
    }
    assert busiest_hours(minutes, top=2) == [(13, 2.5), (9, 2.0)]


def test_peak_concurrency_adds_nodes_at_the_same_minute_only():
    rows = [("rh", at(6, 9), 3), ("rh", at(6, 9), 2), ("rh", at(6, 10), 4), ("kk", at(6, 9), 1)]
    assert peak_concurrent(rows) == {"rh": 5, "kk": 1}


def series(start: float, growth: float, days: int = 28) -> list[tuple[date, float]]:
    return [(TODAY - timedelta(days=days - 1 - i), start + growth * i) for i in range(days)]


def test_growth_of_one_unit_a_day_crosses_the_capacity_on_the_day_it_exceeds_it():
    # today's fitted peak is 27 + 10 = 37; with capacity 40.5 it is 41 > 40.5 in four days
    p = project(series(10.0, 1.0), 40.5, TODAY)
    assert p.basis_days == 28 and round(p.growth_per_day or 0, 6) == 1.0
    assert round(p.fitted_today or 0, 6) == 37.0
    assert p.exceeds_on == TODAY + timedelta(days=4)


def test_no_growth_no_crossing_and_over_capacity_already_is_today():
    assert project(series(10.0, 0.0), 40.0, TODAY).exceeds_on is None
    assert project(series(30.0, -0.5), 40.0, TODAY).exceeds_on is None
    assert project(series(50.0, 0.0), 40.0, TODAY).exceeds_on == TODAY
    assert project([(TODAY, 3.0)], 40.0, TODAY).growth_per_day is None  # one day says nothing
    old = [(TODAY - timedelta(days=40), 1.0), (TODAY - timedelta(days=35), 100.0)]
    assert project(old, 40.0, TODAY).basis_days == 0  # only the last four weeks count


@given(
    st.floats(0, 100),
    st.floats(0.01, 5),
    st.floats(1, 500),
)
def test_the_crossing_day_is_the_first_day_the_fitted_line_is_above_capacity(start, growth, capacity):
    p = project(series(start, growth), capacity, TODAY)
    assert p.fitted_today is not None and p.growth_per_day is not None
    if p.exceeds_on is None:  # beyond the horizon
        assert p.fitted_today + p.growth_per_day * HORIZON_DAYS <= capacity + 1e-6
        return
    days = (p.exceeds_on - TODAY).days
    assert p.fitted_today + p.growth_per_day * days > capacity - 1e-6
    if days > 0:
        assert p.fitted_today + p.growth_per_day * (days - 1) <= capacity + 1e-6
