"""What a receiver says of the video we send it, as one report for the conference to adapt to:
its bandwidth estimate (REMB) or the share of our packets it lost (an RTCP receiver report),
beside what we were sending when it said so."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class LinkReport:
    """One piece of feedback: ``estimate_bps`` (REMB, bits/s), ``fraction_lost`` (0-1, since
    the receiver's previous report) or ``ceiling_bps`` (TMMBR: the most it asks us to send, until
    it asks again), and ``sending_bps``, our video rate to it at the time."""

    sending_bps: float
    estimate_bps: int | None = None
    fraction_lost: float | None = None
    ceiling_bps: int | None = None


class SendRate:
    """The bit rate of what we sent over the last ``window_s`` seconds (video to one receiver)."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._sent: deque[tuple[float, int]] = deque()
        self._bytes = 0

    def add(self, octets: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._sent.append((now, octets))
        self._bytes += octets
        self._trim(now)

    def bps(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self._trim(now)
        return self._bytes * 8 / self.window_s

    def _trim(self, now: float) -> None:
        while self._sent and self._sent[0][0] < now - self.window_s:
            self._bytes -= self._sent.popleft()[1]
