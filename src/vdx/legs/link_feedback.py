"""What a receiver says of the video we send it, as one report for the conference to adapt to:
its bandwidth estimate (REMB), the share of our packets it lost (an RTCP receiver report, about
once a second) or the share it asked again for (NACKs, within a round trip), beside what we were
sending when it said so."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class LinkReport:
    """One piece of feedback: ``estimate_bps`` (REMB, bits/s), ``fraction_lost`` (0-1, since
    the receiver's previous report), ``ceiling_bps`` (TMMBR: the most it asks us to send, until
    it asks again) or ``nacked`` (:class:`NackedShare`), and ``sending_bps``, our video rate to
    it at the time."""

    sending_bps: float
    estimate_bps: int | None = None
    fraction_lost: float | None = None
    ceiling_bps: int | None = None
    nacked: float | None = None  # share of the last NACK_WINDOW_S's packets it asked again for
    renacked: int = 0  # with ``nacked``: packets it asked again for since the stream's new start


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


NACK_WINDOW_S = 0.5
NACK_MIN = 3


class NackedShare:
    """The share of the packets we sent lately that a receiver's NACKs name, each counted once
    however often it is named (receivers repeat their list of what is missing), and only if we
    sent it (a receiver also names the numbers we skipped)."""

    def __init__(self) -> None:
        self._named: dict[int, float] = {}  # sequence number -> when first named
        self._sent: deque[tuple[float, int, int]] = deque()  # (time, first seq, packets) lately

    def sent(self, first_seq: int, packets: int, now: float) -> None:
        self._sent.append((now, first_seq, packets))
        while self._sent[0][0] < now - NACK_WINDOW_S:
            self._sent.popleft()

    def named(self, seqs: list[int], now: float) -> float:
        """Take a NACK's sequence numbers; the share of the window's packets named in it."""
        while self._sent and self._sent[0][0] < now - NACK_WINDOW_S:
            self._sent.popleft()
        for seq in seqs:
            if seq not in self._named and any((seq - f) & 0xFFFF < n for _, f, n in self._sent):
                self._named[seq] = now
        if len(self._named) > 4096:  # a few seconds of names: older ones are no repeats
            self._named = {k: t for k, t in self._named.items() if t >= now - 5}
        sent = sum(n for _, _, n in self._sent)
        recent = sum(1 for t in self._named.values() if t >= now - NACK_WINDOW_S)
        if recent < NACK_MIN or not sent:
            return 0.0  # a packet or two of a thin stream: no trend
        return min(1.0, recent / sent)

    @property
    def count(self) -> int:
        """Packets named since the last :meth:`forget` (within the last few seconds)."""
        return len(self._named)

    def forget(self) -> None:
        """A new run of packets (a new layer): what was named so far speaks of the old one."""
        self._named.clear()
        self._sent.clear()
