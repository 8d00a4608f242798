"""The node's capacity: one admission decision for every kind of leg, the load it carries in HD
units, and the figures a steering group reads (Prometheus, per-minute snapshots).

Every join passes ``NodeCapacity.admit`` after its PIN and before its media is set up (the rule is
``vdx.conference.capacity.decide``). An admitted join holds a ``Ticket`` for its units until its
media is set up (then the participant itself counts) or the attempt ends, so joins arriving
together cannot all take the last place. Lobby participants count nothing; nobody already in a
room is ever cut off: a lower capacity or a larger reserve only refuses newcomers.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from vdx.conference.capacity import Refusal, check_limits, decide, units
from vdx.conference.conference import Conference
from vdx.conference.participant import Participant
from vdx.conference.policy import RoomConfig
from vdx.node.minutes import UNBOOKED, MinuteSnapshot

log = logging.getLogger("vdx.node.capacity")

# Seconds a refused joiner is told to wait before trying again (WebSocket retryAfter, SIP
# Retry-After): long enough for a call to end, short enough that a person waits at the page.
RETRY_AFTER_S = 30
# A ticket whose media never came (a SIP call never acknowledged, a browser that never offered)
# stops holding its units after this long.
TICKET_TTL_S = 30.0


def labels_only(config: RoomConfig) -> bool:
    """A room's ``clinical`` / ``non-clinical`` label alone, for a node that knows no
    organisation's setting (the room directory gives its ``ClinicalDirectory`` instead)."""
    return config.clinical(False)


@dataclass(eq=False)
class Ticket:
    """The units of an admitted join whose media is not set up yet."""

    units: float
    expires: float
    _owner: NodeCapacity | None = field(default=None, repr=False)

    def settle(self) -> None:
        """The participant counts by itself now (or never will): the hold ends. Idempotent."""
        if self._owner is not None:
            self._owner._tickets.discard(self)
            self._owner.note_load()
            self._owner = None


@dataclass(frozen=True)
class Refused:
    reason: Refusal
    retry_after: int
    clinical: bool

    @property
    def message(self) -> str:
        if self.reason is Refusal.CLINICAL_RESERVE:
            return "the remaining capacity is reserved for clinical meetings right now: try again later"
        return "the video service is full right now: try again later"


def _alone() -> tuple[float, float]:
    return 0.0, 0.0


def _counts(p: Participant) -> tuple[bool, bool]:
    """(counts now, with video): a participant on stage whose media is set up."""
    if not p.in_conference or p.leg is None:
        return False, False
    return True, p.leg.video_codec is not None


class NodeCapacity:
    def __init__(
        self,
        capacity: float,
        reserve: float,
        *,
        measured: bool = False,
        node: str = "",
    ) -> None:
        """``capacity`` in HD units (``measured``: by the self-test), ``reserve`` the share kept
        for clinical joins. ``conferences`` (what carries the load) and ``clinical`` (whether a
        join into a room is clinical, asked at the join) are set by the room directory."""
        check_limits(capacity, reserve)
        self.node = node
        self._measured_capacity = capacity if measured else None
        self._capacity = capacity
        self._override = not measured
        self._reserve = reserve
        self.clinical: Callable[[RoomConfig], bool] = labels_only
        self.conferences: Callable[[], Iterable[Conference]] = list
        # HD units in use and capacity of the cluster's other nodes (set by the cluster; alone: none)
        self.others: Callable[[], tuple[float, float]] = _alone
        self._tickets: set[Ticket] = set()
        # refused joins by (reason, organisation code, clinical): since start, since the minute began
        self.refused_total: Counter[tuple[str, str, bool]] = Counter()
        self._refused_minute: Counter[tuple[str, str, bool]] = Counter()
        self._peak = 0.0  # the most units in use seen since the minute began

    # --- limits ----------------------------------------------------------------------------
    @property
    def capacity(self) -> float:
        return self._capacity

    @property
    def reserve(self) -> float:
        return self._reserve

    @property
    def measured(self) -> bool:
        return not self._override

    @property
    def measured_capacity(self) -> float | None:
        return self._measured_capacity

    def set_limits(self, *, capacity: float | None, reserve: float, measured: bool = False) -> None:
        """New limits at run time, for the next joins only: nobody in a room is cut off.
        ``measured``: go back to the self-test's figure (``capacity`` is then ignored)."""
        if measured:
            if self._measured_capacity is None:
                raise ValueError("this node has no measured capacity (VDX_NODE_CAPACITY was set at start)")
            capacity = self._measured_capacity
        if capacity is None:
            capacity = self._capacity
        check_limits(capacity, reserve)
        self._capacity, self._reserve, self._override = float(capacity), float(reserve), not measured
        log.info(
            "capacity %.2f HD units (%s), clinical reserve %.2f: %.2f in use",
            self._capacity,
            "measured" if measured else "set",
            self._reserve,
            self.units_in_use(),
        )

    # --- load ------------------------------------------------------------------------------
    def _participants(self) -> Iterator[tuple[Participant, RoomConfig]]:
        for conf in list(self.conferences()):
            for p in list(conf.participants.values()):
                yield p, conf.config

    def units_in_use(self) -> float:
        """HD units of everyone whose media is set up and who is in a conference (not the lobby),
        and of each presentation coming in: a screen is decoded and encoded again as a camera is."""
        total = 0.0
        for p, config in self._participants():
            counts, video = _counts(p)
            if counts:
                total += units(config.vmr_quality, video)
        for conf in list(self.conferences()):
            if conf.presentation_frame is not None:
                total += units(conf.config.vmr_quality)
        return total

    def note_load(self) -> None:
        """The load may have grown (media set up): keep the minute's peak."""
        self._peak = max(self._peak, self.units_in_use())

    def _held(self) -> float:
        now = time.monotonic()
        for t in [t for t in self._tickets if t.expires <= now]:
            t.settle()
        return sum(t.units for t in self._tickets)

    # --- admission -------------------------------------------------------------------------
    def admit(self, config: RoomConfig, *, video: bool = True) -> Ticket | Refused:
        """The one admission decision, for a join into ``config`` (``video``: it sends and
        receives video, as far as is known before its media is set up)."""
        need = units(config.vmr_quality, video)
        clinical = self.clinical(config)
        taken = self.units_in_use() + self._held()
        refusal = decide(taken, need, self._capacity, self._reserve, clinical)
        if refusal is None:
            refusal = self._cluster_refusal(taken, need, clinical)
        if refusal is not None:
            key = (refusal.value, config.organisation or UNBOOKED, clinical)
            self.refused_total[key] += 1
            self._refused_minute[key] += 1
            log.warning(
                "room %s: %s join refused (%s): %.2f of %.2f HD units taken",
                config.alias,
                "clinical" if clinical else "non-clinical",
                refusal.value,
                taken,
                self._capacity,
            )
            return Refused(refusal, RETRY_AFTER_S, clinical)
        ticket = Ticket(need, time.monotonic() + TICKET_TTL_S, self)
        self._tickets.add(ticket)
        return ticket

    def _cluster_refusal(self, taken: float, need: float, clinical: bool) -> Refusal | None:
        """The same rule over the whole cluster: with the other nodes' load and capacity added,
        the clinical share stays free cluster-wide, not only on each node."""
        load, capacity = self.others()
        if capacity <= 0:
            return None  # alone, or no other node's capacity known
        return decide(taken + load, need, self._capacity + capacity, self._reserve, clinical)

    # --- figures ---------------------------------------------------------------------------
    def participants(self) -> Counter[tuple[str, str]]:
        """Who carries media now, by (leg kind, quality or ``audio``)."""
        out: Counter[tuple[str, str]] = Counter()
        for p, config in self._participants():
            counts, video = _counts(p)
            if counts:
                out[p.protocol, config.vmr_quality if video else "audio"] += 1
        return out

    def organisations(self) -> Counter[tuple[str, bool]]:
        """Who carries media now, by (organisation code, clinical); the room's decision now."""
        out: Counter[tuple[str, bool]] = Counter()
        for p, config in self._participants():
            if _counts(p)[0]:
                out[config.organisation or UNBOOKED, self.clinical(config)] += 1
        return out

    def minute(self, start: datetime) -> MinuteSnapshot:
        """The figures of the minute that began at ``start`` (``MinuteReporter.run_clock`` asks
        at its end): the peak of units in use, who carries media now, the joins refused in it.
        The next minute counts from here."""
        now = self.units_in_use()
        peak, self._peak = max(self._peak, now), now
        refused, self._refused_minute = dict(self._refused_minute), Counter()
        return MinuteSnapshot(
            minute=start,
            capacity=self._capacity,
            units_in_use=peak,
            reserve=self._reserve,
            participants=dict(self.participants()),
            organisations=dict(self.organisations()),
            refused=refused,
        )


class CapacityMetrics(Collector):
    """``/manage/metrics``: read from the node at each scrape, so they are never stale."""

    def __init__(self, capacity: NodeCapacity) -> None:
        self.node = capacity

    def collect(self) -> Iterator[Metric]:
        c = self.node
        yield GaugeMetricFamily("vdx_node_capacity_units", "Capacity of this node in HD units", c.capacity)
        yield GaugeMetricFamily(
            "vdx_node_clinical_reserve", "Share of capacity kept for clinical meetings", c.reserve
        )
        yield GaugeMetricFamily(
            "vdx_node_units_in_use", "HD units of the participants whose media is set up", c.units_in_use()
        )
        parts = GaugeMetricFamily(
            "vdx_node_participants",
            "Participants carrying media, by leg kind and quality",
            labels=["kind", "quality"],
        )
        for (kind, quality), n in sorted(c.participants().items()):
            parts.add_metric([kind, quality], n)
        yield parts
        refused = CounterMetricFamily(
            "vdx_node_refused_joins",
            "Joins refused for capacity, by reason and organisation",
            labels=["reason", "organisation"],
        )
        by_org: Counter[tuple[str, str]] = Counter()
        for (reason, org, _clinical), n in c.refused_total.items():
            by_org[reason, org] += n
        for (reason, org), n in sorted(by_org.items()):
            refused.add_metric([reason, org], n)
        yield refused
