"""PIN guessing throttle shared by WebRTC signalling and SIP dial-in: per room, per source address,
across connections. Pure rules with an injected clock; the edges do the waiting and the telling.

Two rules, each aimed at one attacker without locking out the clinic that owns the room:

- **Per source back-off.** A source address (IPv4 address, IPv6 /64: one subscriber's network)
  gets ``free_failures`` wrong PINs in a room without delay, as many as one join attempt allows.
  After ``n`` wrong PINs its next try is not even checked before ``backoff_base_s * 2 ** (n -
  free_failures)`` seconds (at most ``backoff_max_s``) have passed since its last try. A right PIN
  clears the source's failures in that room, except a guest PIN in a room that also has a host
  PIN: a guest could otherwise interleave their own PIN to guess the host PIN without back-off.
  A source is forgotten ``forget_after_s`` after its last try, longer than the largest wait, so
  pausing to be forgotten buys fewer tries than guessing at the capped rate.
- **Room-wide slow-down.** When a room has seen ``room_failures`` wrong PINs within
  ``room_window_s`` (from any sources), its checks queue on one line, ``room_spacing_s`` apart,
  which caps the room's rate whatever the number of sources. A source with no failures in the
  room is never refused: its check waits its turn on the line, never longer than
  ``room_max_delay_s``. A source with failures is refused (told how long to wait) when the line
  is longer than that. Pexip instead blocks the room outright, which lets one attacker lock a
  clinic out of its own meeting.

Every try a source is allowed counts as a failure until the edge reports it right, so parallel
connections from one source cannot slip several tries past one back-off.

Memory is bounded: sources and rooms expire, and each table holds at most ``max_entries``, the
entry touched longest ago evicted first (a flood of distinct sources forgets itself first).

The guessing rate this allows with the default rules, and the time an exhaustive guess of a 4 to 6
digit PIN takes, is worked out in README.md, "PIN guessing".
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class PinRules:
    free_failures: int = 3
    backoff_base_s: float = 2.0
    backoff_max_s: float = 900.0
    forget_after_s: float = 86400.0
    room_failures: int = 20
    room_window_s: float = 600.0
    room_spacing_s: float = 30.0
    room_max_delay_s: float = 10.0
    max_entries: int = 50_000

    def backoff(self, failures: int) -> float:
        """Seconds a source with ``failures`` wrong PINs waits after its last try."""
        if failures < self.free_failures:
            return 0.0
        exponent = min(failures - self.free_failures, 64)  # 2**64 * base exceeds any cap
        return min(self.backoff_base_s * 2.0**exponent, self.backoff_max_s)


@dataclass(frozen=True)
class Verdict:
    """Before a PIN check: ``wait_s`` > 0 refuses the try (not checked; try again after that
    long); otherwise the check happens after ``delay_s`` (0 unless the room is under attack)."""

    wait_s: float = 0.0
    delay_s: float = 0.0

    @property
    def refused(self) -> bool:
        return self.wait_s > 0


@dataclass
class _Source:
    failures: int = 0
    last_try: float = 0.0


@dataclass
class _Room:
    failures: deque[float] = field(default_factory=deque)
    next_slot: float = 0.0


def whole_seconds(wait_s: float) -> int:
    """A wait as a refusal states it: whole seconds, rounded up, at least one."""
    return max(1, math.ceil(wait_s))


def source_key(address: str) -> str:
    """The throttled unit of an address: IPv4 as is (also IPv4-mapped IPv6), IPv6 its /64 (one
    subscriber can use every address of it); anything else (a test client's name) as given."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class PinGuard:
    """The throttle of one node: ask :meth:`admit` before checking a PIN, then report the
    outcome with :meth:`right` or :meth:`wrong`. Rooms are keyed by their primary alias."""

    def __init__(self, rules: PinRules | None = None, clock: Callable[[], float] | None = None) -> None:
        self.rules = rules or PinRules()
        self._clock = clock or time.monotonic
        self._sources: OrderedDict[tuple[str, str], _Source] = OrderedDict()
        self._rooms: OrderedDict[str, _Room] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sources) + len(self._rooms)

    # --- asking -------------------------------------------------------------------------------
    def waiting(self, room: str, address: str) -> float:
        """Seconds this source must still wait before its next try in ``room`` (0: may try)."""
        now = self._clock()
        self._expire(now)
        entry = self._sources.get((room, source_key(address)))
        if entry is None:
            return 0.0
        return max(0.0, entry.last_try + self.rules.backoff(entry.failures) - now)

    def failures(self, room: str, address: str) -> int:
        """The tries this source has not (yet) been cleared of in ``room``."""
        entry = self._sources.get((room, source_key(address)))
        return 0 if entry is None else entry.failures

    def admit(self, room: str, address: str) -> Verdict:
        """Whether a PIN from ``address`` may be checked in ``room`` now; an admitted try counts
        as a failure until :meth:`right` says otherwise."""
        now = self._clock()
        self._expire(now)
        key = (room, source_key(address))
        entry = self._sources.get(key)
        if entry is not None:
            wait = entry.last_try + self.rules.backoff(entry.failures) - now
            if wait > 0:
                return Verdict(wait_s=wait)
        delay = 0.0
        state = self._rooms.get(room)
        if state is not None and self._hot(state, now):
            line = max(now, state.next_slot) - now
            if line > self.rules.room_max_delay_s and entry is not None and entry.failures > 0:
                return Verdict(wait_s=line)
            delay = min(line, self.rules.room_max_delay_s)
            state.next_slot = now + delay + self.rules.room_spacing_s
        entry = entry or _Source()
        entry.failures += 1
        entry.last_try = now + delay
        self._touch(self._sources, key, entry)
        return Verdict(delay_s=delay)

    # --- outcomes -----------------------------------------------------------------------------
    def right(self, room: str, address: str, *, clears: bool = True) -> None:
        """The admitted try was a right PIN: it was no failure; ``clears`` (not a guest PIN in a
        room with a host PIN) forgets the source's earlier failures in the room too."""
        key = (room, source_key(address))
        entry = self._sources.get(key)
        if entry is None:
            return
        if clears or entry.failures <= 1:
            del self._sources[key]
        else:
            entry.failures -= 1

    def wrong(self, room: str) -> None:
        """The admitted try was a wrong PIN: it counts towards the room's slow-down."""
        now = self._clock()
        state = self._rooms.get(room) or _Room()
        state.failures.append(now)
        while len(state.failures) > self.rules.room_failures:
            state.failures.popleft()
        self._touch(self._rooms, room, state)

    def under_attack(self, room: str) -> bool:
        state = self._rooms.get(room)
        return state is not None and self._hot(state, self._clock())

    # --- bookkeeping --------------------------------------------------------------------------
    def _hot(self, state: _Room, now: float) -> bool:
        f = state.failures
        return len(f) >= self.rules.room_failures and f[0] > now - self.rules.room_window_s

    def _touch(self, table: OrderedDict[K, V], key: K, value: V) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > self.rules.max_entries:
            table.popitem(last=False)

    def _expire(self, now: float) -> None:
        """Drop sources idle ``forget_after_s`` and rooms neither hot nor queueing; both tables
        are in order of last touch, so the expired ones are at the front."""
        while self._sources:
            key, entry = next(iter(self._sources.items()))
            if entry.last_try > now - self.rules.forget_after_s:
                break
            del self._sources[key]
        while self._rooms:
            room, state = next(iter(self._rooms.items()))
            newest = state.failures[-1] if state.failures else -math.inf
            if newest > now - self.rules.room_window_s or state.next_slot > now:
                break
            del self._rooms[room]
