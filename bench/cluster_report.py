"""The cluster benchmark's figures: its headline rows (bench/run_all.py's summary), its BENCHMARKS.md
section and its plot."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench import report
from bench.cluster_efficiency import ALL_ON_ONE, ONE, THREE
from bench.cluster_routing import DIRECT, VIA

HEADING = "## Cluster (`bench/cluster.py`)"
TARGETS = {"efficiency": 0.9, "failover_s": 15.0, "webrtc_ratio": 1.2, "sip_extra_ms": 50.0}


def _stats(values: list[float]) -> dict[str, float] | None:
    return report.summarise(values) if values else None


def _row(
    figure: str, stats: dict[str, float] | None, unit: str, target: str, met: bool | None, digits: int
) -> dict[str, Any]:
    def r(key: str) -> float | None:
        return None if stats is None else round(stats[key], digits)

    return {
        "figure": figure,
        "value": r("median"),
        "unit": unit,
        "min": r("min"),
        "max": r("max"),
        "target": target,
        "met": None if stats is None else met,
    }


def _pairs(samples: dict[str, list[dict[str, float]]], key: str) -> list[tuple[float, float]]:
    """(via, direct) of each repeat, in the order they were taken."""
    return [(v[key], d[key]) for v, d in zip(samples.get(VIA, []), samples.get(DIRECT, []), strict=False)]


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    eff = result.get("efficiency", {})
    passed = [p for p in eff.get("phases", []) if p.get("passed")]
    webrtc = result.get("joins", {}).get("samples", {}).get("webrtc", {})
    sip = result.get("joins", {}).get("samples", {}).get("sip", {})
    runs = result.get("failover", {}).get("runs", [])
    return {
        "efficiency": _stats(eff.get("ratios", [])),
        "efficiency_all_on_one": _stats(eff.get("ratios_all_on_one", [])),
        "per_core_one": _stats([p["per_core"] for p in passed if p["config"] == ONE]),
        "per_core_three": _stats([p["per_core"] for p in passed if p["config"] == THREE]),
        "per_core_all_on_one": _stats([p["per_core"] for p in passed if p["config"] == ALL_ON_ONE]),
        "wakeups": {
            c: _stats([p["wakeups"] for p in passed if p["config"] == c and "wakeups" in p])
            for c in (ONE, THREE, ALL_ON_ONE)
        },
        "webrtc_ratio": _stats([v / d for v, d in _pairs(webrtc, "to_first_frame_ms") if d > 0]),
        "webrtc_joined_extra_ms": _stats([v - d for v, d in _pairs(webrtc, "to_joined_ms")]),
        "webrtc_joined_direct": _stats([x["to_joined_ms"] for x in webrtc.get(DIRECT, [])]),
        "webrtc_joined_via": _stats([x["to_joined_ms"] for x in webrtc.get(VIA, [])]),
        "sip_extra_ms": _stats([v - d for v, d in _pairs(sip, "to_answer_ms")]),
        "failover_s": _stats([r["joinable_s"] for r in runs]),
        "reprovisioned_s": _stats([r["provisioned_s"] for r in runs]),
        **{
            f"{kind}_{'direct' if how == DIRECT else 'via'}": _stats([x[key] for x in samples.get(how, [])])
            for kind, samples, key in (
                ("webrtc", webrtc, "to_first_frame_ms"),
                ("sip", sip, "to_answer_ms"),
            )
            for how in (DIRECT, VIA)
        },
    }


def headline(s: dict[str, Any]) -> list[dict[str, Any]]:
    t = TARGETS
    eff, fo, wr, sx = s["efficiency"], s["failover_s"], s["webrtc_ratio"], s["sip_extra_ms"]
    return [
        _row(
            "Cluster efficiency: participants per core, three nodes / one node, each node as loaded",
            eff,
            "x",
            f">= {t['efficiency']:g}",
            eff is not None and eff["median"] >= t["efficiency"],
            2,
        ),
        _row("Participants per core, one node with its share", s["per_core_one"], "per core", "-", None, 1),
        _row("Participants per core, three nodes", s["per_core_three"], "per core", "-", None, 1),
        _row(
            "Three nodes / one node carrying all their rooms (context)",
            s["efficiency_all_on_one"],
            "x",
            "-",
            None,
            2,
        ),
        _row(
            "Failover: SIGKILL of a room's node to a join through another node",
            fo,
            "s",
            f"< {t['failover_s']:g} s",
            fo is not None and fo["max"] < t["failover_s"],
            1,
        ),
        _row(
            "Join through a non-hosting node / direct, WebRTC bot to first picture",
            wr,
            "x",
            f"<= {t['webrtc_ratio']:g}",
            wr is not None and wr["median"] <= t["webrtc_ratio"],
            2,
        ),
        _row(
            "Join through a non-hosting node (302) - direct, SIP INVITE to answer",
            sx,
            "ms",
            f"< {t['sip_extra_ms']:g} ms",
            sx is not None and sx["median"] < t["sip_extra_ms"],
            1,
        ),
    ]


def assemble(result: dict[str, Any], started: float, args: argparse.Namespace) -> dict[str, Any]:
    s = summarise(result)
    failures = [
        f"{part}: {f}"
        for part in ("joins", "efficiency", "failover")
        for f in result.get(part, {}).get("failures", [])
    ]
    options = ["--budget", f"{args.budget:g}"]
    return {
        "headline": headline(s),
        **report.run_info("cluster", args, started, *options),
        **result,
        "summary": s,
        "failures": failures,
    }


# --- the section ----------------------------------------------------------------------------------


def _f(stats: dict[str, float] | None, digits: int = 0) -> str:
    return report.fmt_range(stats, digits)


def _verdict(row: dict[str, Any]) -> str:
    return "met" if row["met"] else "-" if row["met"] is None else "**missed**"


def _efficiency_lines(result: dict[str, Any], s: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    load = result["load"]
    eff = result.get("efficiency", {})
    idle = result.get("idle_cpu_pct", {})
    share = max(1, load["rooms"] // 3)
    lines = [
        "**Efficiency** (participants per core, each node as loaded as a node alone). The three nodes "
        f"carry {load['rooms']} rooms (vmrQuality `sd`, nine tiles, the default views: each caller sees the others, not themselves) of {load['per_room']} SIP "
        f"callers (`bench/sip_load.py`) each sending {load['codec']} {load['size']} at {load['fps']} fps "
        f"({load['kbps']:.0f} kbps) with Opus, one room on each; *one node* carries a node's share "
        f"({share} room), the other two drained (`vdx node drain`), and only node-a's CPU is counted. "
        "Participants per core = participants x seconds / CPU seconds of the counted nodes (/proc, all "
        "threads) over the windows; a phase counts only when in every window every call received at "
        "least 27 pictures a second with under 1 % loss, so a starved node cannot look cheap. The "
        "efficiency is three nodes / one node: what a cluster spends on being one (each node's "
        "heartbeat, bucket watches, background jobs and interpreter, and the scheduling of more "
        "processes on the same cores) per participant. Each round runs its phases in turn, the next "
        "round backwards, so drift on the shared machine falls on all alike; the ratio is taken within "
        "a round.",
        "",
        "*One node, all rooms* (context, not the target): the three nodes' whole load on one node. A "
        "node at a third of another's load pays more per participant: its event loop is woken for "
        "nearly every packet, where a busier one finds several waiting per wake-up (the wake-ups column: "
        "context switches of the node's threads per participant-second). That is a cost of light load, "
        "not of the cluster; a saturation search cannot show either on two cores, where three nodes "
        "cannot each have a core of their own.",
        "",
        "| phase | round | configuration | participants | rooms on | node CPU % (median of windows) | participants per core | wake-ups | worst fps | loss % | delivered |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, p in enumerate(eff.get("phases", [])):
        on = ", ".join(sorted(set(p["rooms"].values())))
        cpu = ", ".join(
            f"{k} {v:.0f}" + ("" if k in p["counted"] else " (not counted)")
            for k, v in p.get("node_cpu_pct", {}).items()
        )
        per_core = f"{p['per_core']:.1f}" if p.get("per_core") else "-"
        wakeups = f"{p['wakeups']:.0f}" if "wakeups" in p else "-"
        lines.append(
            f"| {i + 1} | {p.get('round', 0) + 1} | {p['config']} | {p['participants']} | {on} | {cpu} | "
            f"{per_core} | {wakeups} | "
            f"{p.get('fps_min', 0):.1f} | {p.get('loss_max_pct', 0):.2f} | "
            f"{'yes' if p['passed'] else 'no: ' + p.get('reason', '')} |"
        )
    ratios = ", ".join(f"{r:.2f}" for r in eff.get("ratios", [])) or "none"
    lines += [
        "",
        f"Three nodes / one node per round: {ratios}; **{_f(s['efficiency'], 2)}** against the target of "
        f"at least {TARGETS['efficiency']:g}: {_verdict(rows[0])}. Three nodes / one node carrying all "
        f"their rooms: {', '.join(f'{r:.2f}' for r in eff.get('ratios_all_on_one', [])) or 'none'}. "
        "With no room live, each node used "
        + ", ".join(f"{k} {v:.1f} %" for k, v in idle.items())
        + " of a core (in the three-node figure, not in the one-node one).",
        "",
    ]
    return lines


def _join_lines(result: dict[str, Any], s: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    joins = result.get("joins", {})
    n = {k: len(joins.get("samples", {}).get(k, {}).get(VIA, [])) for k in ("webrtc", "sip")}
    return [
        "**Joins through a node that does not host the room**, against joins straight to the room's "
        f"node ({joins.get('host', '?')}), with a SIP caller already in the room sending video; each "
        "repeat a direct and a redirected join of each kind, which goes first alternating, through the "
        "two other nodes in turn, each newcomer leaving before the next. *WebRTC bot* "
        "(`harness.bot.Bot`, aiortc): from the WebSocket's connect through `join` (following the "
        "`redirect` message to the room's node), offer/answer, ICE and DTLS to the first decoded "
        "picture. *SIP* (`bench/sip_peer.py`, UDP): from the INVITE to the 200 OK, following the 302 "
        "(ACK, a new INVITE to the Contact). Per repeat: via / direct and via - direct; figures "
        "median (min-max) in ms.",
        "",
        "| newcomer | direct ms | via another node ms | via / direct | via - direct ms | target | met | repeats |",
        "|---|---|---|---|---|---|---|---|",
        f"| WebRTC bot, to first picture | {_f(s['webrtc_direct'])} | {_f(s['webrtc_via'])} | "
        f"**{_f(s['webrtc_ratio'], 2)}** | - | <= {TARGETS['webrtc_ratio']:g} | {_verdict(rows[5])} | {n['webrtc']} |",
        f"| WebRTC bot, to `joined` (signalling alone) | {_f(s['webrtc_joined_direct'], 1)} | "
        f"{_f(s['webrtc_joined_via'], 1)} | - | {_f(s['webrtc_joined_extra_ms'], 1)} | - | - | {n['webrtc']} |",
        f"| SIP, INVITE to answer | {_f(s['sip_direct'], 1)} | {_f(s['sip_via'], 1)} | - | "
        f"**{_f(s['sip_extra_ms'], 1)}** | < {TARGETS['sip_extra_ms']:g} ms | {_verdict(rows[6])} | {n['sip']} |",
        "",
    ]


def _failover_lines(result: dict[str, Any], s: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "**Failover**: a room booked through the API with someone in it (a WebSocket participant on its "
        "node); the node is killed with SIGKILL, and from that moment a WebSocket join through a "
        "surviving node (following the redirect) is tried every 100 ms until one gets `joined`. The "
        "node has been dead to the others after its heartbeat TTL (5 s); *re-provisioned* is when the "
        "scheduling info reports the room PROVISIONED_OK by another node (the provisioner contract). The "
        "killed node is started again before the next repeat.",
        "",
        "| repeat | killed | joined through | room now on | kill to joinable s | kill to re-provisioned s |",
        "|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(result.get("failover", {}).get("runs", [])):
        lines.append(
            f"| {i + 1} | {r['killed']} | {r['entry']} | {r['new_host']} | {r['joinable_s']:.1f} | "
            f"{r['provisioned_s']:.1f} |"
        )
    fo = s["failover_s"]
    worst = f"{fo['max']:.1f}" if fo else "-"
    lines += [
        "",
        f"Kill to joinable: **{_f(fo, 1)}** s (median (min-max)); the target is under "
        f"{TARGETS['failover_s']:g} s for every repeat (max {worst} s): {_verdict(rows[4])}.",
        "",
    ]
    return lines


def markdown(result: dict[str, Any], plot_refs: list[str]) -> str:
    s = summarise(result)  # derived afresh, so --from-json renders an older run's JSON too
    rows = headline(s)
    lines = [
        *report.section_head(HEADING, result),
        "What it measures: a cluster as the tests run it (`harness.cluster`): one `vdx api` and "
        f"{len(result.get('nodes', []))} `vdx node` processes ({', '.join(result.get('nodes', []))}) on "
        "their own HTTP, SIP and RTP ports, a "
        "throwaway nats-server (JetStream) and a throwaway PostgreSQL database, all on this machine "
        "beside the load generators; meetings booked through the booking API. The cluster started in "
        f"{result.get('startup_s', 0):.1f} s (not part of any figure). Every figure is a ratio or a "
        "difference within this run: the machine is shared, so compare them, not absolute figures, "
        "across runs.",
        "",
        *_efficiency_lines(result, s, rows),
        *_join_lines(result, s, rows),
        *_failover_lines(result, s, rows),
    ]
    return report.section_end(lines, "What failed (left out above)", result["failures"], "Cluster", plot_refs)


def plot(result: dict[str, Any], path: Path) -> None:
    plt = report.pyplot()
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(12, 3.4))
    phases = result.get("efficiency", {}).get("phases", [])
    colours = {ONE: "tab:blue", THREE: "tab:orange", ALL_ON_ONE: "tab:grey"}
    for i, p in enumerate(phases):
        a.bar(i, p.get("per_core") or 0, color=colours[p["config"]], alpha=1.0 if p["passed"] else 0.3)
    a.set_xticks(
        range(len(phases)), [{ONE: "one", THREE: "three", ALL_ON_ONE: "all"}[p["config"]] for p in phases]
    )
    a.set_ylabel("participants per core")
    a.set_title("efficiency, phase by phase", fontsize=9)
    samples = result.get("joins", {}).get("samples", {})
    for j, (kind, key) in enumerate((("webrtc", "to_first_frame_ms"), ("sip", "to_answer_ms"))):
        for k, how in enumerate((DIRECT, VIA)):
            values = [x[key] for x in samples.get(kind, {}).get(how, [])]
            b.scatter(values, [2 * j + k] * len(values), s=18, alpha=0.7)
    b.set_yticks(range(4), ["WebRTC direct", "WebRTC via", "SIP direct", "SIP via"])
    b.set_xscale("log")
    b.set_xlabel("ms")
    b.set_title("join time", fontsize=9)
    runs = result.get("failover", {}).get("runs", [])
    c.scatter([r["joinable_s"] for r in runs], [0] * len(runs), s=22, label="joinable")
    c.scatter([r["provisioned_s"] for r in runs], [1] * len(runs), s=22, label="re-provisioned")
    c.axvline(TARGETS["failover_s"], color="red", lw=1)
    c.set_yticks([0, 1], ["joinable", "re-provisioned"])
    c.set_xlabel("s after SIGKILL")
    c.set_title("failover", fontsize=9)
    fig.suptitle(f"vdx cluster, {result['date'][:10]}", fontsize=10)
    report.save_figure(fig, path)


def publish(result: dict[str, Any], md: Path | None, png: Path | None) -> None:
    drawable = bool(result.get("efficiency", {}).get("phases") or result.get("failover", {}).get("runs"))
    report.render(result, HEADING, markdown, plot, md, [png] if png else [], drawable=drawable)
