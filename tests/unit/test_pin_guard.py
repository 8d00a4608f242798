"""The PIN guessing throttle (vdx.conference.pin_guard) on an injected clock: no sleeps."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vdx.conference.pin_guard import PinGuard, PinRules, source_key, whole_seconds


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def guess(guard: PinGuard, room: str, source: str) -> bool:
    """One wrong PIN if the guard lets it be checked; whether it was checked."""
    verdict = guard.admit(room, source)
    if verdict.refused:
        return False
    guard.wrong(room)
    return True


def test_three_free_tries_then_exponential_back_off_capped():
    clock = Clock()
    rules = PinRules(backoff_base_s=2.0, backoff_max_s=60.0)
    guard = PinGuard(rules, clock)
    for _ in range(3):
        assert guess(guard, "room", "192.0.2.1")
    v = guard.admit("room", "192.0.2.1")
    assert v.refused and v.wait_s == 2.0 and whole_seconds(v.wait_s) == 2
    assert whole_seconds(0.01) == 1
    waits = []
    for _ in range(8):
        wait = guard.waiting("room", "192.0.2.1")
        waits.append(wait)
        clock.now += wait
        assert guess(guard, "room", "192.0.2.1")
    assert waits == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    # A refused try is not a try: it does not lengthen the wait.
    clock.now += 30
    assert guard.admit("room", "192.0.2.1").wait_s == 30.0
    assert guard.waiting("room", "192.0.2.1") == 30.0


def test_sources_and_rooms_are_apart():
    clock = Clock()
    guard = PinGuard(PinRules(), clock)
    for _ in range(3):
        guess(guard, "room", "192.0.2.1")
    assert guard.admit("room", "192.0.2.1").refused
    assert not guard.admit("room", "192.0.2.2").refused  # another source
    assert not guard.admit("other", "192.0.2.1").refused  # another room


def test_a_right_pin_clears_the_sources_failures():
    clock = Clock()
    guard = PinGuard(PinRules(), clock)
    for _ in range(2):
        guess(guard, "room", "192.0.2.1")
    assert not guard.admit("room", "192.0.2.1").refused
    guard.right("room", "192.0.2.1")
    for _ in range(3):  # three free tries again
        assert guess(guard, "room", "192.0.2.1")


def test_a_guest_pin_does_not_clear_the_guessing_of_the_host_pin():
    clock = Clock()
    guard = PinGuard(PinRules(), clock)
    for _ in range(3):
        guess(guard, "room", "192.0.2.1")
    clock.now += guard.waiting("room", "192.0.2.1")
    assert not guard.admit("room", "192.0.2.1").refused
    guard.right("room", "192.0.2.1", clears=False)  # the guest PIN: not a failure, clears nothing
    assert guard.admit("room", "192.0.2.1").wait_s == 2.0  # still three failures behind it


def test_parallel_tries_count_before_their_outcome():
    # Ten connections from one source ask at once: only the free tries are admitted.
    guard = PinGuard(PinRules(), Clock())
    verdicts = [guard.admit("room", "192.0.2.1") for _ in range(10)]
    assert sum(not v.refused for v in verdicts) == 3


def test_ipv6_sources_are_their_64_and_mapped_ipv4_is_ipv4():
    assert source_key("2001:db8:1:2:aaaa::1") == source_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert source_key("2001:db8:1:3::1") != source_key("2001:db8:1:2::1")
    assert source_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert source_key("testclient") == "testclient"
    guard = PinGuard(PinRules(), Clock())
    for i in range(3):
        guess(guard, "room", f"2001:db8::{i + 1}")
    assert guard.admit("room", "2001:db8::99").refused


def test_room_under_attack_slows_every_try_and_refuses_only_failed_sources():
    clock = Clock()
    rules = PinRules(room_failures=20, room_window_s=600, room_spacing_s=3.0, room_max_delay_s=10.0)
    guard = PinGuard(rules, clock)
    # Ten sources, two wrong PINs each: twenty failures in the window.
    for i in range(10):
        for _ in range(2):
            assert guess(guard, "clinic", f"198.51.100.{i}")
    assert guard.under_attack("clinic")
    # The clinic's own participant (no failures) is delayed on the line, never refused.
    delays = []
    for i in range(6):
        v = guard.admit("clinic", f"203.0.113.{i}")
        assert not v.refused
        delays.append(v.delay_s)
    assert delays == [0.0, 3.0, 6.0, 9.0, 10.0, 10.0]
    # A source with a failure finds the line too long and is told to wait for it.
    v = guard.admit("clinic", "198.51.100.1")
    assert v.refused and v.wait_s > rules.room_max_delay_s
    # Other rooms do not notice.
    assert guard.admit("ward", "198.51.100.1").delay_s == 0.0
    # Quiet for the window: the room is itself again.
    clock.now += 700
    assert not guard.under_attack("clinic")
    assert guard.admit("clinic", "203.0.113.99").delay_s == 0.0


def test_entries_expire_and_a_flood_of_sources_is_capped():
    clock = Clock()
    rules = PinRules(max_entries=100, forget_after_s=3600)
    guard = PinGuard(rules, clock)
    for i in range(1000):
        guess(guard, f"room-{i % 7}", f"10.0.{i // 256}.{i % 256}")
    assert len(guard._sources) <= 100 and len(guard._rooms) <= 100
    clock.now += 3600 + rules.room_max_delay_s + 1  # the rooms got hot: tries were delayed
    guard.waiting("room-0", "10.0.0.1")
    assert len(guard) == 0


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["try", "right", "guest", "tick"]),
            st.integers(0, 3),  # source
            st.floats(0, 2000, allow_nan=False),
        ),
        max_size=60,
    )
)
def test_no_source_gets_more_checks_than_the_rules_allow(steps):
    """Whatever the order of tries, right PINs and time, a source that never enters a right PIN
    gets at most the free tries plus one per capped wait since its first try."""
    clock = Clock()
    rules = PinRules(backoff_base_s=2.0, backoff_max_s=60.0, max_entries=3)
    guard = PinGuard(rules, clock)
    start = clock.now
    checked = 0
    for action, source, dt in steps:
        address = f"192.0.2.{source}"
        if action == "tick":
            clock.now += dt
        elif action == "try" and source == 0:
            checked += guess(guard, "room", address)
        elif action == "try":
            guess(guard, "room", address)
        elif source != 0:
            guard.right("room", address, clears=action == "right")
    # max_entries=3 with four sources: eviction may forget source 0 and give it fresh free tries,
    # at most once per other source's arrival; bound generously by the number of steps.
    evictions = sum(1 for a, s, _ in steps if a == "try" and s != 0)
    bound = rules.free_failures * (1 + evictions) + (clock.now - start) / rules.backoff_max_s + 1
    assert checked <= bound
    assert len(guard._sources) <= rules.max_entries
