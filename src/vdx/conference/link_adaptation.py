"""Which picture size each receiver's link carries.

A view is encoded at a few sizes (layers) only when someone receives them: the room's size, then
halves down to ``SMALLEST``. Each receiver starts on the top layer its leg allows and moves on
its own feedback: down when its link shows congestion (loss, or a REMB estimate that fell and
is under what we send), to the largest layer the link carries (a picture over its target at one
size is taken to be as far over at every size), and further while the estimate keeps falling
under what that layer takes or its own packets are lost. Up one layer at a time, trying it
after a quiet spell (the next one as soon as a try has held) and falling back if the link does
not carry it, waiting twice as long after each failed try. A delay-based estimate rises only
some way above what is sent and only slowly, so its level says little after a step up: a fall
says congestion, and only trying a layer shows whether it fits. Audio is never scaled: the video layer leaves it ``AUDIO_RESERVE_BPS``."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from vdx.legs.link_feedback import LinkReport

SMALLEST = (160, 90)
AUDIO_RESERVE_BPS = 64_000  # Opus as we send it, with packet headers: kept out of the video share
FALL = 0.9  # an estimate under this share of its recent peak, and under what we send: congested
FAR_UNDER = 0.5  # an estimate under this share of what we send: congested, whatever its trend
PEAK_S = 2.0  # how far back the peak estimate is taken
LOSS_HIGH = 0.08  # smoothed loss above this: congested (receiver reports every second or so)
LOSS_LOW = 0.02  # below this (and no overuse): quiet
NACKED_HIGH = 0.1  # NACKs name more than this share of the last half second's packets: congested
QUIET_S = 4.0  # a layer kept this long without congestion: try the next one up
TRY_S = 4.0  # a try that stays this long without congestion holds
MAX_WAIT_S = 16.0  # longest wait between tries after repeated failures: how soon a wider link is found
SETTLE_S = 1.0  # after a move down, feedback still speaks of the larger layer: not acted on


def ladder(width: int, height: int) -> list[tuple[int, int]]:
    """The layers of a view of ``width`` x ``height``: it, then halves, none under ``SMALLEST``
    (even sizes, as the encoders want them)."""
    sizes = [(width, height)]
    while True:
        w, h = sizes[-1]
        half = (max(2, (w // 2) & ~1), max(2, (h // 2) & ~1))
        if half[0] < SMALLEST[0] or half[1] < SMALLEST[1]:
            return sizes
        sizes.append(half)


@dataclass
class LayerControl:
    """One receiver's choice of layer, index 0 the largest. ``needs``: the video bit rate of each
    layer, largest first. :meth:`report` takes each piece of feedback and answers the layer."""

    needs: list[int]
    layer: int = 0
    wait_s: float = QUIET_S
    loss: float = 0.0  # smoothed fraction lost
    estimate: int | None = None  # the latest REMB
    ceiling: int | None = None  # the receiver's TMMBR: never a layer that needs more
    recent: deque[tuple[float, int]] = field(default_factory=deque)  # (time, REMB) of the last PEAK_S
    lost_now: float = 0.0  # the latest receiver report's fraction lost
    quiet_since: float | None = None
    trying_since: float | None = None  # when the current layer was tried from the one below
    settled_at: float = 0.0  # feedback before this speaks of the previous layer
    fresh_start_at: float | None = None  # when to start the stream afresh again after a move down
    relost: bool = False  # the new layer's own packets were asked for again while settling
    scale: float = 1.0  # what the picture took over its target when we last moved down
    moved_on: float = 0.0  # what the link carried by the feedback we last moved down on
    changes: list[tuple[float, int]] = field(default_factory=list)  # (time, layer): what happened

    def congested(self, r: LinkReport, now: float) -> bool:
        if r.fraction_lost is not None:
            self.loss = 0.5 * self.loss + 0.5 * r.fraction_lost
            self.lost_now = r.fraction_lost
        if r.nacked is not None:
            self.lost_now = r.nacked
            return r.nacked > NACKED_HIGH
        over = False
        est = r.estimate_bps
        if est is not None:
            while self.recent and self.recent[0][0] < now - PEAK_S:
                self.recent.popleft()
            peak = max([est, *(e for _, e in self.recent)])
            self.recent.append((now, est))
            self.estimate = est
            sending = r.sending_bps
            over = sending > 0 and (est < FAR_UNDER * sending or (est < sending and est < FALL * peak))
        return over or self.loss > LOSS_HIGH

    def report(self, r: LinkReport, now: float) -> int:
        if r.ceiling_bps is not None:  # the receiver's own word: at once, settled or not
            self.ceiling = r.ceiling_bps
            if self.layer < self._top():
                self._move(self._top(), now)
            return self.layer
        if now < self.settled_at:
            self.relost = self.relost or r.renacked > 0
            if self._still_too_large(r):
                self._move(self.layer + 1, now)
            return self.layer
        if self.congested(r, now):
            if self.trying_since is not None:  # the try failed: back, and wait longer next time
                self.wait_s = min(MAX_WAIT_S, self.wait_s * 2)
                self._move(self.layer + 1, now)
            elif self.layer < len(self.needs) - 1:
                self._move(self._fitting(r), now)
            self.quiet_since = None
            return self.layer
        if self.loss < LOSS_LOW:
            self._climb(now)
        return self.layer

    def _climb(self, now: float) -> None:
        """A quiet link: a try that held makes the next one at once (the link widened: a climb of
        two layers takes two tries, not two quiet spells more); else one after the wait."""
        if self.trying_since is not None and now - self.trying_since >= TRY_S:
            self.trying_since = None
            self.wait_s = QUIET_S
            if self.layer > self._top():
                self._move(self.layer - 1, now)
                self.trying_since = now
            return
        if self.quiet_since is None:
            self.quiet_since = now
        if self.layer > self._top() and self.trying_since is None and now - self.quiet_since >= self.wait_s:
            self._move(self.layer - 1, now)
            self.trying_since = now

    def fresh_start_due(self, now: float) -> bool:
        """Once, when a move down has settled and the new layer lost packets meanwhile: start
        the stream afresh again. Its first keyframe went into a queue still full of the larger
        layer; a receiver whose resends were lost too may never ask for them again."""
        if self.fresh_start_at is None or now < self.fresh_start_at:
            return False
        due, self.fresh_start_at, self.relost = self.relost, None, False
        return due

    def _still_too_large(self, r: LinkReport) -> bool:
        """While settling after a move down (most feedback still speaks of the larger layer):
        whether this layer does not fit either, as NACKs of its own packets or an estimate still
        falling under what it takes say."""
        if self.layer == len(self.needs) - 1:
            return False
        if r.nacked is not None:
            return r.nacked > NACKED_HIGH
        est = r.estimate_bps
        if (
            est is None
            or est >= self.moved_on
            or self.needs[self.layer] * self.scale <= est - AUDIO_RESERVE_BPS
        ):
            return False
        self.moved_on = est
        return True

    def _top(self) -> int:
        """The largest layer the receiver's ceiling allows (all of them without one)."""
        if self.ceiling is None:
            return 0
        fits = [i for i, need in enumerate(self.needs) if need <= self.ceiling]
        return fits[0] if fits else len(self.needs) - 1

    def _fitting(self, r: LinkReport) -> int:
        """The largest layer below this one that the link carries (the smallest if none): the
        lower of the estimate and what got through of what we sent. A picture that takes more
        than its target at this size (noise, motion) takes about as much more at every size."""
        through = r.sending_bps * (1 - self.lost_now)
        carried = through if self.estimate is None else min(self.estimate, through)
        self.scale = max(1.0, r.sending_bps / self.needs[self.layer])
        self.moved_on = carried
        if carried < FAR_UNDER * r.sending_bps:
            return len(self.needs) - 1  # a fall this deep is deeper yet: the estimate lags it
        for i in range(self.layer + 1, len(self.needs)):
            if self.needs[i] * self.scale <= carried - AUDIO_RESERVE_BPS:
                return i
        return len(self.needs) - 1

    def _move(self, layer: int, now: float) -> None:
        layer = max(0, min(layer, len(self.needs) - 1))
        self.trying_since = None
        if layer != self.layer:
            if layer > self.layer:  # down: what comes next still speaks of the larger layer
                self.settled_at = self.fresh_start_at = now + SETTLE_S
                self.relost = False
            self.layer = layer
            self.changes.append((now, layer))
            self.loss = self.lost_now = 0.0
            self.estimate = None
            self.recent.clear()
        self.quiet_since = now
