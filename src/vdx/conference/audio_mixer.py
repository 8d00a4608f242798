"""Audio mix-minus and active-speaker detection. Pure numpy, no I/O.

Every participant's audio arrives decoded as 48 kHz mono int16 in 20 ms chunks (960 samples). Each
participant hears the sum of everyone else (never their own voice); muted participants are not
mixed, nor are microphones below a noise gate (:class:`NoiseGate`). So only the voices in the mix
need a mix-minus of their own: everyone else hears the same common mix, which the conference
encodes once per codec instead of once per listener. The active speaker is the loudest smoothed
voice, with a hold so the main tile does not flicker between two people talking at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from vdx.legs.pcm import CHUNK_SAMPLES, Pcm


class VoiceQueue:
    """A talker's decoded chunks waiting for the mixer's tick (one taken per 20 ms tick).

    It holds up to ``capacity`` chunks, so a burst (network jitter, a stalled event loop that then
    delivers many packets at once) is not lost. But a backlog that never drains is only delay: once
    the queue has not run dry after any take for ``window`` takes in a row (a second), the chunks it
    always kept are dropped, oldest first, so a talker is heard no later than the jitter needs.
    Without this, one stall would leave up to ``capacity`` x 20 ms of delay for the rest of the call.
    """

    def __init__(self, capacity: int = 10, window: int = 50) -> None:
        self._chunks: deque[Pcm] = deque(maxlen=capacity)
        self.window = window
        self._takes = 0
        self._least = capacity  # fewest chunks left after a take, in this window
        self.dropped = 0

    @property
    def maxlen(self) -> int:
        return self._chunks.maxlen or 0

    def __len__(self) -> int:
        return len(self._chunks)

    def __bool__(self) -> bool:
        return bool(self._chunks)

    def append(self, chunk: Pcm) -> None:
        self._chunks.append(chunk)

    def popleft(self) -> Pcm:
        chunk = self._chunks.popleft()
        self._least = min(self._least, len(self._chunks))
        self._takes += 1
        if self._takes >= self.window:
            for _ in range(self._least):
                self._chunks.popleft()
            self.dropped += self._least
            self._takes, self._least = 0, self.maxlen
        return chunk


@dataclass
class Mix:
    """One tick's mixes: ``common`` (every voice in the mix) for whoever is not in it, and the
    mix-minus of each voice in it (``own``: everyone else)."""

    common: Pcm
    own: dict[str, Pcm]

    def for_listener(self, pid: str) -> Pcm:
        return self.own.get(pid, self.common)


def mix_minus(chunks: Mapping[str, Pcm], muted: set[str]) -> Mix:
    """The common mix and each unmuted talker's mix-minus, clipped to int16.

    ``chunks`` holds the talkers' 20 ms (a missing talker is silent). A listener with no chunk
    here (silent, gated, muted or listening only) hears ``common``: the same array object for all
    of them, so it can be encoded once."""
    total = np.zeros(CHUNK_SAMPLES, dtype=np.int32)
    voiced: dict[str, npt.NDArray[np.int32]] = {}
    for pid, chunk in chunks.items():
        if pid in muted:
            continue
        wide = chunk.astype(np.int32)
        voiced[pid] = wide
        total += wide
    own = {pid: np.clip(total - wide, -32768, 32767).astype(np.int16) for pid, wide in voiced.items()}
    return Mix(np.clip(total, -32768, 32767).astype(np.int16), own)


@dataclass
class NoiseGate:
    """Which microphones are mixed: those whose level (RMS) reached ``threshold`` within the last
    ``hangover`` chunks, so a word's quiet tail is not cut. Background hiss of a silent room
    (about -60 dBFS, RMS 30) stays out; the gate opens at about -50 dBFS, far below speech."""

    threshold: float = 100.0
    hangover: int = 25  # 500 ms
    _quiet_for: dict[str, int] = field(default_factory=dict)

    def update(self, levels: Mapping[str, float]) -> set[str]:
        for pid in list(self._quiet_for):
            if pid not in levels:
                del self._quiet_for[pid]
        open_: set[str] = set()
        for pid, lv in levels.items():
            quiet = 0 if lv >= self.threshold else self._quiet_for.get(pid, self.hangover) + 1
            self._quiet_for[pid] = min(quiet, self.hangover + 1)
            if quiet <= self.hangover:
                open_.add(pid)
        return open_


def level(chunk: Pcm) -> float:
    """RMS of a chunk in int16 units; the sum of squares is one dot product (no squared copy),
    as it runs for every talker on every tick."""
    if chunk.size == 0:
        return 0.0
    wide = chunk.astype(np.float64)
    return float(np.sqrt(np.dot(wide, wide) / chunk.size))


@dataclass
class ActiveSpeaker:
    """Loudest smoothed voice above ``threshold`` (RMS); a challenger takes over only after being
    louder by ``margin`` for ``hold`` consecutive chunks (20 ms each), so short interjections and
    two equally loud voices do not make the main tile flicker."""

    threshold: float = 300.0
    smoothing: float = 0.2
    hold: int = 15
    margin: float = 1.25
    current: str | None = None
    _energy: dict[str, float] = field(default_factory=dict)
    _challenger: str | None = None
    _streak: int = 0

    def update(self, levels: Mapping[str, float]) -> str | None:
        for pid in list(self._energy):
            if pid not in levels:
                del self._energy[pid]
        for pid, lv in levels.items():
            prev = self._energy.get(pid, 0.0)
            self._energy[pid] = prev + self.smoothing * (lv - prev)
        if self.current is not None and self.current not in self._energy:
            self.current = None
        loudest = max(self._energy, key=lambda p: self._energy[p], default=None)
        if loudest is None or self._energy[loudest] < self.threshold:
            self._challenger, self._streak = None, 0
            return self.current
        if self.current is None:
            self.current = loudest
            return self.current
        if loudest == self.current or self._energy[loudest] < self._energy[self.current] * self.margin:
            self._challenger, self._streak = None, 0
            return self.current
        if loudest == self._challenger:
            self._streak += 1
        else:
            self._challenger, self._streak = loudest, 1
        if self._streak >= self.hold:
            self.current, self._challenger, self._streak = loudest, None, 0
        return self.current

    def forget(self, pid: str) -> None:
        self._energy.pop(pid, None)
        if self.current == pid:
            self.current = None
