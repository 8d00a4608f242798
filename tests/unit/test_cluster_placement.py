"""The placement rule (vdx.node.cluster.placement) and the bucket keys: pure, on their own."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vdx.conference.capacity import AUDIO_UNITS, units
from vdx.node.cluster.buckets import key_of, name_of
from vdx.node.cluster.placement import Candidate, assign, choose, idle_reservation, reservation

ids = st.lists(st.from_regex(r"node-[a-z0-9]{1,6}", fullmatch=True), min_size=1, max_size=6, unique=True)
aliases = st.from_regex(r"[0-9]{8}@vdx\.test", fullmatch=True)


def test_units_follow_the_quality_and_video() -> None:
    assert [units(q) for q in ("fullhd", "hd", "sd")] == [2.0, 1.0, 0.5]
    assert units("fullhd", video=False) == AUDIO_UNITS == 1 / 16
    assert reservation("sd") == 2 * units("sd")  # a placed room holds two participants' worth


def test_the_room_goes_to_the_most_spare_capacity() -> None:
    nodes = [Candidate("a", 10, load=6), Candidate("b", 10, load=2), Candidate("c", 4, load=0)]
    assert choose("1@vdx.test", nodes) == "b"  # 8 spare against 4 and 4
    # rooms placed but not live reserve their nominal units
    nodes[1] = Candidate("b", 10, load=2, reserved=5)
    assert choose("1@vdx.test", nodes) in ("a", "c")
    assert choose("1@vdx.test", []) is None


def test_unknown_capacity_counts_as_the_mean_of_the_known() -> None:
    nodes = [Candidate("a", 8, load=4), Candidate("b", 0, load=1)]
    assert choose("1@vdx.test", nodes) == "b"  # 8 - 1 against 8 - 4


@given(ids, aliases)
def test_the_rule_is_deterministic_and_ignores_the_order_of_nodes(node_ids: list[str], alias: str) -> None:
    nodes = [Candidate(i, 10) for i in node_ids]
    first = choose(alias, nodes)
    assert first in node_ids
    assert choose(alias, list(reversed(nodes))) == first


@given(ids, st.lists(aliases, min_size=1, max_size=40, unique=True), st.sampled_from(["sd", "hd", "fullhd"]))
def test_a_burst_spreads_evenly_over_equal_nodes(node_ids: list[str], rooms: list[str], quality: str) -> None:
    plan = assign([(a, quality) for a in rooms], [Candidate(i, 20) for i in node_ids])
    assert set(plan) == set(rooms)
    counts = [list(plan.values()).count(i) for i in node_ids]
    assert max(counts) - min(counts) <= 1  # each placed room reserves, so the next goes elsewhere


def test_idle_reservation_leaves_out_live_rooms() -> None:
    assert idle_reservation([], 0) == 0
    assert idle_reservation(["hd", "hd"], 0) == 2 * reservation("hd")
    assert idle_reservation(["hd", "hd"], 1) == reservation("hd")
    assert idle_reservation(["hd"], 3) == 0


@given(st.text(min_size=1, max_size=40))
def test_any_name_makes_a_valid_key_and_comes_back(name: str) -> None:
    key = key_of(name)
    assert all(c.isascii() and (c.isalnum() or c in "-_=") for c in key)
    assert name_of(key) == name.lower()
