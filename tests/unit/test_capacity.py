"""HD units, the admission rule and what labels say (vdx.conference.capacity), and the node's
holder of the limits (vdx.node.capacity) without rooms."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

import pytest

from vdx.conference.capacity import Refusal, check_limits, decide, units
from vdx.conference.policy import RoomConfig
from vdx.node.capacity import NodeCapacity, Refused, Ticket
from vdx.node.cluster.registry import Registry
from vdx.node.routing import NodeInfo


def test_units_as_pexip_counts_them() -> None:
    assert units("fullhd", True) == 2 and units("hd", True) == 1 and units("sd", True) == 0.5
    assert units("sd", False) == units("fullhd", False) == 1 / 16


def test_reserve_keeps_a_share_for_clinical_joins() -> None:
    # capacity 2, reserve 0.5: non-clinical up to 1 unit, clinical up to 2
    assert decide(0.5, 0.5, 2, 0.5, clinical=False) is None
    assert decide(1.0, 0.5, 2, 0.5, clinical=False) is Refusal.CLINICAL_RESERVE
    assert decide(1.0, 0.5, 2, 0.5, clinical=True) is None
    assert decide(1.5, 0.5, 2, 0.5, clinical=True) is None
    assert decide(2.0, 0.5, 2, 0.5, clinical=True) is Refusal.FULL
    assert decide(2.0, 0.5, 2, 0.5, clinical=False) is Refusal.FULL  # full says full to everyone
    assert decide(1.9375, 1 / 16, 2, 0.5, clinical=True) is None  # sixteenths add up exactly
    assert decide(0.0, 0.5, 2, 1.0, clinical=False) is Refusal.CLINICAL_RESERVE  # all for clinical use
    assert decide(1.5, 0.5, 2, 0.0, clinical=False) is None


@pytest.mark.parametrize(
    ("capacity", "reserve"), [(0, 0.2), (-1, 0.2), (math.nan, 0.2), (math.inf, 0.2), (2, -0.1), (2, 1.01)]
)
def test_bad_limits_are_refused(capacity: float, reserve: float) -> None:
    with pytest.raises(ValueError):
        check_limits(capacity, reserve)


def test_tickets_hold_units_until_settled_and_refusals_are_counted() -> None:
    node = NodeCapacity(1.0, 0.5, node="n1")
    room = RoomConfig(alias="1@x", vmr_quality="sd", organisation="gp")
    first = node.admit(room)
    assert isinstance(first, Ticket)
    second = node.admit(room)  # the first one's media is not set up, yet it holds its half unit
    assert isinstance(second, Refused) and second.reason is Refusal.CLINICAL_RESERVE
    first.settle()
    first.settle()  # idempotent
    assert isinstance(node.admit(room, video=False), Ticket)  # an audio-only join weighs 1/16
    labelled = RoomConfig(alias="2@x", vmr_quality="sd", labels=frozenset({"Clinical"}))
    assert isinstance(node.admit(labelled), Ticket)  # the label alone: no organisation's setting here
    assert isinstance(node.admit(labelled), Refused)  # 1/16 + 2 x 0.5 > 1
    refused = {("capacity_clinical_reserve", "gp", False): 1, ("capacity_full", "(unbooked)", True): 1}
    minute = node.minute(datetime(2026, 12, 7, 1, 0, tzinfo=UTC))
    assert minute.refused == refused and minute.capacity == 1.0 and minute.reserve == 0.5
    assert node.minute(datetime(2026, 12, 7, 1, 1, tzinfo=UTC)).refused == {}  # each refusal once
    assert node.refused_total == refused  # Prometheus counts on


def test_limits_change_for_newcomers_and_the_measured_figure_comes_back() -> None:
    node = NodeCapacity(3.0, 0.2, measured=True)
    node.set_limits(capacity=1.0, reserve=0.0)
    assert (node.capacity, node.reserve, node.measured) == (1.0, 0.0, False)
    node.set_limits(capacity=None, reserve=0.3, measured=True)
    assert (node.capacity, node.reserve, node.measured) == (3.0, 0.3, True)
    with pytest.raises(ValueError):
        node.set_limits(capacity=2.0, reserve=1.5)
    assert node.reserve == 0.3  # a refused change changes nothing
    fixed = NodeCapacity(2.0, 0.2)
    with pytest.raises(ValueError):
        fixed.set_limits(capacity=None, reserve=0.2, measured=True)  # nothing was measured


def test_the_reserve_holds_for_the_cluster_as_for_the_node() -> None:
    # this node: 4 units, empty; the others: 16 units with 15.75 in use (clinical calls). The
    # cluster's non-clinical limit is 0.8 x 20 = 16, so a non-clinical SD join (0.5) no longer
    # fits anywhere, though it would fit this node alone; a clinical one still does.
    registry = Registry("n1", ttl=5)
    registry.seen(NodeInfo("n2", "http://n2", capacity=10, load=10, heartbeat=time.time()))
    registry.seen(NodeInfo("n3", "http://n3", capacity=6, load=5.75, heartbeat=time.time()))
    registry.seen(NodeInfo("n4", "http://n4", capacity=0, load=3, heartbeat=time.time()))  # unknown
    registry.seen(NodeInfo("n1", "http://n1", capacity=4, heartbeat=time.time()))  # itself
    assert registry.others() == (15.75, 16)
    node = NodeCapacity(4.0, 0.2, node="n1")
    room = RoomConfig(alias="1@x", vmr_quality="sd", organisation="gp")
    assert isinstance(node.admit(room), Ticket)  # alone, it fits
    node = NodeCapacity(4.0, 0.2, node="n1")
    node.others = registry.others
    refused = node.admit(room)
    assert isinstance(refused, Refused) and refused.reason is Refusal.CLINICAL_RESERVE
    clinical = RoomConfig(alias="2@x", vmr_quality="sd", labels=frozenset({"clinical"}))
    assert isinstance(node.admit(clinical), Ticket)
