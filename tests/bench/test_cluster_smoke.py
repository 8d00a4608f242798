"""`python -m bench.cluster --quick` runs to the end on a real cluster and writes well-formed results:
its rooms went where each phase wanted them, redirected joins were redirected, the killed node's
room came back elsewhere. No figure is judged: they are measured by the benchmark, never asserted
in tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.bench import run_quick

pytestmark = [pytest.mark.media, pytest.mark.pg, pytest.mark.cluster, pytest.mark.slow]


def test_cluster_bench_quick_completes_with_well_formed_results(tmp_path: Path) -> None:
    pg = os.environ.get("VDX_TEST_DATABASE_URL")
    if not pg:
        pytest.fail("the cluster benchmark runs on PostgreSQL: set VDX_TEST_DATABASE_URL (make test does)")
    result, stdout = run_quick("cluster", tmp_path, "--pg", pg, timeout=600)
    assert "## Cluster (`bench/cluster.py`)" in stdout  # the section is printed, not written
    assert sorted(os.listdir(tmp_path)) == ["cluster.json"]
    assert {
        "machine",
        "date",
        "command",
        "load",
        "efficiency",
        "joins",
        "failover",
        "summary",
    } <= result.keys()
    assert not result["failures"], result["failures"]

    one, three, all_on_one = result["efficiency"]["phases"]
    assert one["config"] == "one node" and set(one["rooms"].values()) == {"node-a"}
    assert three["config"] == "three nodes" and sorted(three["rooms"].values()) == [
        "node-a",
        "node-b",
        "node-c",
    ]
    assert (
        all_on_one["config"] == "one node, all rooms" and list(all_on_one["rooms"].values()) == ["node-a"] * 3
    )
    # a node alone carries a node's share of the three nodes' load
    assert (one["participants"], three["participants"], all_on_one["participants"]) == (2, 6, 6)
    for phase in (one, three, all_on_one):
        assert phase["windows"], phase  # every call received pictures
    assert one["counted"] == all_on_one["counted"] == ["node-a"] and len(three["counted"]) == 3
    assert len(result["headline"]) == 7

    samples = result["joins"]["samples"]
    assert [s["redirected"] for s in samples["webrtc"]["direct"]] == [0.0]
    assert [s["redirected"] for s in samples["webrtc"]["via another node"]] == [1.0]
    assert [s["redirects"] for s in samples["sip"]["direct"]] == [0.0]
    assert [s["redirects"] for s in samples["sip"]["via another node"]] == [1.0]

    (run,) = result["failover"]["runs"]
    assert run["new_host"] in ("node-a", "node-b", "node-c") and run["new_host"] != run["killed"]
    assert run["entry"] != run["killed"]
