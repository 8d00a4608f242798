"""The choice of layer per receiver (``vdx.conference.link_adaptation``): down at once to what the
link carries, up one layer at a time after a quiet spell, back and waiting longer when a try fails."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vdx.conference.link_adaptation import (
    MAX_WAIT_S,
    QUIET_S,
    SETTLE_S,
    TRY_S,
    LayerControl,
    ladder,
)
from vdx.conference.views import bitrate_for
from vdx.legs.link_feedback import LinkReport, NackedShare, SendRate


def control(width: int = 640, height: int = 360) -> LayerControl:
    return LayerControl([bitrate_for(w, h) for w, h in ladder(width, height)])


def quiet(c: LayerControl, start: float, seconds: float, sending: float = 500_000) -> float:
    """Reports of a link that carries everything, every half second; the time at the end."""
    t = start
    while t < start + seconds:
        c.report(LinkReport(sending, estimate_bps=int(sending * 1.2)), t)
        c.report(LinkReport(sending, fraction_lost=0.0), t)
        t += 0.5
    return t


def test_ladders_halve_down_to_the_smallest() -> None:
    assert ladder(640, 360) == [(640, 360), (320, 180), (160, 90)]
    assert ladder(1280, 720) == [(1280, 720), (640, 360), (320, 180), (160, 90)]
    assert ladder(160, 90) == [(160, 90)]
    assert ladder(176, 144) == [(176, 144)]


def test_an_estimate_that_falls_under_what_is_sent_drops_to_the_layer_it_carries() -> None:
    c = control()
    quiet(c, 8.0, 2.0, sending=600_000)
    # the link narrows to 300 kb/s: the receiver's estimate falls to what got through
    assert c.report(LinkReport(600_000, estimate_bps=255_000), 10.0) == 2
    assert c.changes == [(10.0, 2)]


def test_an_estimate_that_lags_a_step_up_is_no_congestion() -> None:
    c = control()
    c.report(LinkReport(600_000, estimate_bps=200_000), 0.0)  # far under what we send: down
    assert c.layer == 2
    t = quiet(c, 0.5, SETTLE_S + QUIET_S + 0.5, sending=150_000)
    assert c.layer == 1  # tried: we send more now, and the estimate, still rising, is under it
    for _ in range(8):  # through the try (TRY_S): it is not taken back
        t += 0.5
        c.report(LinkReport(243_000, estimate_bps=225_000), t)
    layers = [layer for _, layer in c.changes]
    assert layers[:2] == [2, 1] and 2 not in layers[2:]


def test_an_estimate_far_under_what_is_sent_is_congestion_at_once() -> None:
    c = control()  # a receiver that starts on a thin link: no fall to see, only the gap
    assert c.report(LinkReport(600_000, estimate_bps=250_000), 0.0) == 2


def test_a_picture_that_takes_more_than_its_target_drops_further() -> None:
    # noise at 640x360 takes 2 Mb/s where 600 kb/s is the target: the half size takes about
    # 3.3 times its 244 kb/s too, more than the estimate leaves the video
    busy, calm = control(), control()
    for c, sending, estimate in ((busy, 2_000_000, 833_000), (calm, 600_000, 400_000)):
        quiet(c, 8.0, 2.0, sending=sending)
        c.report(LinkReport(sending, estimate_bps=estimate), 10.0)
    assert busy.layer == 2
    assert calm.layer == 1  # a picture that keeps to its target: the half size fits


def test_loss_drops_one_layer_when_no_estimate_says_more() -> None:
    c = control()
    c.report(LinkReport(600_000, fraction_lost=0.3), 1.0)
    assert c.layer == 1


def test_a_quiet_link_climbs_back_one_layer_at_a_time() -> None:
    c = control()
    c.report(LinkReport(600_000, estimate_bps=200_000), 0.0)
    assert c.layer == 2
    t = quiet(c, 0.5, SETTLE_S + QUIET_S + 0.5)
    assert c.layer == 1  # tried
    tried = c.changes[-1][0]
    t = quiet(c, t, TRY_S + 1.0)
    assert c.layer == 0  # the try held: the next one up at once, no second quiet spell
    assert [layer for _, layer in c.changes] == [2, 1, 0]
    assert TRY_S <= c.changes[-1][0] - tried < TRY_S + QUIET_S  # once the first had held


def test_a_failed_try_goes_back_and_waits_twice_as_long() -> None:
    c = control()
    c.report(LinkReport(600_000, estimate_bps=200_000), 0.0)
    t = quiet(c, 0.5, SETTLE_S + QUIET_S + 0.5)
    assert c.layer == 1
    t = quiet(c, t, SETTLE_S)  # the try's feedback starts to speak of it
    c.report(LinkReport(400_000, estimate_bps=250_000), t)  # it does not fit
    assert c.layer == 2 and c.wait_s == 2 * QUIET_S
    t = quiet(c, t + 0.5, SETTLE_S + QUIET_S + 0.5)
    assert c.layer == 2  # not yet: the wait is longer now
    quiet(c, t, QUIET_S)
    assert c.layer == 1


@given(
    st.lists(
        st.tuples(
            st.floats(0.0, 2.0),  # seconds since the previous report
            st.floats(0.0, 2_000_000.0),  # what we sent
            st.one_of(st.none(), st.integers(0, 3_000_000)),  # estimate
            st.one_of(st.none(), st.floats(0.0, 1.0)),  # loss
        ),
        max_size=60,
    )
)
def test_any_feedback_keeps_a_layer_that_exists_and_never_climbs_in_loss(reports: list) -> None:
    c = control(1280, 720)
    t = 0.0
    for dt, sending, estimate, lost in reports:
        t += dt
        before = c.layer
        layer = c.report(LinkReport(sending, estimate_bps=estimate, fraction_lost=lost), t)
        assert 0 <= layer < len(c.needs)
        assert layer >= before - 1  # up one layer at a time
        if layer < before:  # a climb: never on a report of loss or of an estimate under what we send
            assert lost is None or lost < 0.04
            assert estimate is None or sending <= 0 or estimate >= 0.5 * sending
    assert c.wait_s <= MAX_WAIT_S


def test_the_send_rate_counts_the_last_window() -> None:
    rate = SendRate(window_s=2.0)
    for i in range(20):
        rate.add(1250, now=i * 0.1)  # 1250 B every 100 ms: 100 kb/s over 2 s
    assert rate.bps(now=1.95) == 20 * 1250 * 8 / 2.0
    assert rate.bps(now=10.0) == 0.0


def test_a_receivers_ceiling_holds_its_layer_however_quiet_its_link() -> None:
    c = control()
    assert c.report(LinkReport(600_000, ceiling_bps=200_000), 0.0) == 2  # 160x90 needs 150 kb/s
    t = quiet(c, 0.5, 3 * (SETTLE_S + QUIET_S + TRY_S))
    assert c.layer == 2  # never tried above what it asked for
    c.report(LinkReport(150_000, ceiling_bps=10_000_000), t)  # the limit lifted
    quiet(c, t + 0.5, 2 * (QUIET_S + TRY_S) + 1.0)
    assert c.layer == 0


def test_an_estimate_still_falling_after_a_move_goes_further_down_at_once() -> None:
    c = control()
    quiet(c, 8.0, 2.0, sending=2_000_000)
    # the first estimate still averages in the wide link: the half size seems to fit
    assert c.report(LinkReport(2_000_000, estimate_bps=1_260_000), 10.0) == 1
    assert c.report(LinkReport(1_900_000, estimate_bps=1_100_000), 10.05) == 1  # it still fits
    assert c.report(LinkReport(1_800_000, estimate_bps=700_000), 10.1) == 2  # no longer: settled or not
    calm = control()
    quiet(calm, 8.0, 2.0, sending=600_000)
    assert calm.report(LinkReport(600_000, estimate_bps=400_000), 10.0) == 1
    assert calm.report(LinkReport(600_000, estimate_bps=350_000), 10.1) == 1  # falling, yet it fits


def test_nacks_count_each_packet_once_and_only_packets_sent() -> None:
    share = NackedShare()
    for i in range(10):  # ten pictures of ten packets in half a second, from 65530 (wrapping)
        share.sent((65530 + 10 * i) & 0xFFFF, 10, 10.0 + 0.04 * i)
    assert share.named([65531, 65532], 10.4) == 0.0  # two: no trend yet
    assert share.named([65531, 65532, 3, 4], 10.41) == 4 / 100  # repeats count once
    assert share.named(list(range(200, 300)), 10.42) == 4 / 100  # never sent (a skip): not loss
    assert share.named([65531, 65532, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 10.43) == 12 / 100
    share.forget()  # a new layer: the old one's names no longer count
    share.sent(1000, 10, 11.0)
    assert share.named([3, 4, 5, 6], 11.01) == 0.0


def test_nacks_of_many_packets_are_congestion_and_after_a_move_of_the_new_ones_too() -> None:
    c = control()
    quiet(c, 8.0, 2.0, sending=600_000)
    assert c.report(LinkReport(600_000, nacked=0.05), 10.0) == 0  # a few: ordinary loss
    assert c.report(LinkReport(600_000, nacked=0.3), 10.1) == 1  # 420 kb/s got through
    assert c.report(LinkReport(580_000, nacked=0.3), 10.2) == 2  # settling, yet the new layer's own
    assert c.changes == [(10.1, 1), (10.2, 2)]


def test_a_move_down_whose_packets_are_lost_starts_the_stream_afresh_once_more() -> None:
    for lost in (0, 2):
        c = control()
        quiet(c, 8.0, 2.0, sending=600_000)
        c.report(LinkReport(600_000, estimate_bps=200_000), 10.0)
        assert c.layer == 2 and not c.fresh_start_due(10.0 + SETTLE_S / 2)
        c.report(LinkReport(150_000, nacked=0.05, renacked=lost), 10.0 + SETTLE_S / 2)
        assert c.fresh_start_due(10.0 + SETTLE_S) == bool(lost)  # only when the new layer lost some
        assert not c.fresh_start_due(10.0 + SETTLE_S + 1)  # once
