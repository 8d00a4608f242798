"""bench.run_all (`make bench`): the header and summary of BENCHMARKS.md from benchmarks' JSON
files, section order, and how failed, hung and missing benchmarks are reported.

The real benchmarks each have their own smoke test; running them all again here would take
minutes, so the orchestrator runs small scripts in a temporary bench directory that follow the
same command-line contract (``--json PATH --budget S [--quick] [--markdown PATH]``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench import run_all

ROOT = Path(__file__).resolve().parents[2]

HEADLINE = [
    {"figure": "booking day, PostgreSQL", "value": 95.2, "unit": "s", "min": 90.1, "max": 99.0,
     "target": "in minutes (< 600 s)", "met": True},
    {"figure": "idle node RSS", "value": 310.0, "unit": "MB", "min": None, "max": None,
     "target": "< 250 MB", "met": False},
    {"figure": "meetings per second", "value": 74.5, "unit": "meetings/s", "min": None, "max": None,
     "target": None, "met": None},
]  # fmt: skip

API_JSON = {  # bench/api.py's own keys (written before the headline convention)
    "postgres": {
        "16": {
            "info": {"rps": 400.0, "p99_ms": 100.0},
            "create": {"rps": 90.0, "p50_ms": 130.0, "p99_ms": 412.7},
            "get": {"rps": 260.0, "p99_ms": 170.0},
        }
    }
}


def _outcome(name: str, status: str = "ok", path: Path | None = None, **kw: object) -> run_all.Outcome:
    o = run_all.Outcome(name, 60.0, f"what {name} measures", status=status, json_path=path)
    for k, v in kw.items():
        setattr(o, k, v)
    return o


def test_summary_rows_from_headlines_legacy_keys_and_bad_json(tmp_path: Path) -> None:
    (tmp_path / "bookday.json").write_text(json.dumps({"headline": HEADLINE, "runs": []}))
    (tmp_path / "api.json").write_text(json.dumps(API_JSON))
    (tmp_path / "join.json").write_text(json.dumps({"sip_ms": 120}))
    (tmp_path / "latency.json").write_text("{not json")
    outcomes = [
        _outcome("api", path=tmp_path / "api.json"),
        _outcome("capacity", "failed", returncode=2, stderr_tail=["Traceback", "ValueError: no clips"]),
        _outcome("join", path=tmp_path / "join.json"),
        _outcome("latency", path=tmp_path / "latency.json"),
        _outcome("memory", "missing"),
        _outcome("bookday", "earlier run", tmp_path / "bookday.json"),
    ]
    md = run_all.header_markdown(
        run_all.machine(), run_all.datetime.now(run_all.UTC), "make bench", outcomes, False
    )
    lines = md.splitlines()
    assert lines[0] == "# Benchmarks" and "`make bench`" in lines[2]
    machine = next(line for line in lines if line.startswith("Machine:"))
    for part in ("cores", "RAM", "Linux", "Python", "PyAV", "FFmpeg", "aiortc"):
        assert part in machine

    def row(start: str) -> str:
        return next(line for line in lines if line.startswith(start))

    assert row("| bookday (earlier run) | booking day, PostgreSQL |") == (
        "| bookday (earlier run) | booking day, PostgreSQL | 95.2 | 90.1-99.0 | s | in minutes (< 600 s) | **met** |"
    )
    assert row("| bookday (earlier run) | idle node RSS |").endswith("| < 250 MB | **missed** |")
    assert row("| bookday (earlier run) | meetings per second |").endswith("| - | - |")
    assert row("| api | API create p99, 16 clients, PostgreSQL |").endswith(
        "| 413 | - | ms | < 50 ms | **missed** |"
    )
    assert row("| api | API get throughput").split("|")[3].strip() == "0.65"
    assert 'no headline (no "headline" in its JSON)' in row("| join |")
    assert "no headline (its JSON could not be read" in row("| latency |")
    assert "**failed (exit status 2)**" in row("| capacity |")
    assert "**missing**" in row("| memory |")
    # the failure's stderr tail and the missing script are spelled out under the tables
    assert "**capacity failed** (exit status 2)" in md and "ValueError: no clips" in md
    assert "**memory missing**: `bench/memory.py` does not exist yet." in md


def test_header_replaced_and_sections_kept_in_the_order_of_the_set(tmp_path: Path) -> None:
    md = tmp_path / "BENCHMARKS.md"
    md.write_text(
        "# Benchmarks\n\nold header text\n\n## Summary\n\nold summary\n\n"
        "## Booking day (`bench/bookday.py`)\n\nbookday body\n\n"
        "## Notes from elsewhere\n\nkept as is\n\n"
        "## API (`bench/api.py`)\n\napi body\n\n"
        "## Join time (`bench/join.py`)\n\njoin body\n"
    )
    header = "# Benchmarks\n\nnew header\n\n## Summary\n\nnew summary\n"
    run_all.write_benchmarks_md(md, header)
    text = md.read_text()
    assert "old header" not in text and "old summary" not in text
    assert text.count("## Summary") == 1
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings == [
        "# Benchmarks",
        "## Summary",
        "## API (`bench/api.py`)",
        "## Join time (`bench/join.py`)",
        "## Booking day (`bench/bookday.py`)",
        "## Notes from elsewhere",
    ]
    for body in ("bookday body", "kept as is", "api body", "join body"):
        assert body in text
    run_all.write_benchmarks_md(md, header)  # idempotent
    assert md.read_text() == text


GOOD = """
import argparse, json, pathlib, sys
ap = argparse.ArgumentParser()
ap.add_argument("--json", type=pathlib.Path, required=True)
ap.add_argument("--budget", type=float, required=True)
ap.add_argument("--quick", action="store_true")
ap.add_argument("--markdown", type=pathlib.Path)
a = ap.parse_args()
print(f"measuring with budget {a.budget:g}", flush=True)
a.json.write_text(json.dumps({"headline": [{"figure": "quick is %s" % a.quick, "value": a.budget,
    "unit": "s", "min": None, "max": None, "target": "< 100 s", "met": a.budget < 100}]}))
text = a.markdown.read_text() if a.markdown.exists() else "# Benchmarks\\n"
a.markdown.write_text(text + "\\n## Good one (`bench/api.py`)\\n\\ngood body\\n")
"""

FAILING = """
import sys
print("booking ...", flush=True)
print("## not a section\\nTraceback (most recent call last):\\nRuntimeError: the API did not start", file=sys.stderr)
sys.exit(3)
"""


def test_run_all_runs_scripts_reports_failure_and_missing_and_exits_non_zero(tmp_path: Path) -> None:
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "api.py").write_text(textwrap.dedent(GOOD))
    (bench / "bookday.py").write_text(textwrap.dedent(FAILING))
    md, results = tmp_path / "BENCHMARKS.md", tmp_path / "results"
    (tmp_path / "results").mkdir()
    (results / "api.json").write_text("stale")  # must not pass for this run's results
    cmd = [sys.executable, "-m", "bench.run_all", "--quick", "--only", "api", "join", "bookday"]
    cmd += ["--bench-dir", str(bench), "--markdown", str(md), "--results", str(results)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ}, cwd=ROOT)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert "MISSING (will be reported, not run): bench/join.py" in out
    assert "[api] measuring with budget 60" in out and "[api] OK" in out
    assert "[bookday] FAILED" in out and "exit status 3" in out
    text = md.read_text()
    assert text.startswith("# Benchmarks\n") and "quick smoke run" in text
    # a benchmark's stderr cannot start a section of the file
    assert "    ## not a section" in text and "\n## not a section" not in text
    assert "| api | quick is True | 60.0 | - | s | < 100 s | **met** |" in text
    assert "**failed (exit status 3)**" in text and "RuntimeError: the API did not start" in text
    assert "**join missing**" in text
    assert text.index("## Summary") < text.index("## Good one (`bench/api.py`)")
    assert json.loads((results / "api.json").read_text())["headline"][0]["value"] == 60


def test_a_benchmark_past_its_hard_limit_is_stopped_and_reported(tmp_path: Path) -> None:
    (tmp_path / "latency.py").write_text("import time\nprint('waiting', flush=True)\ntime.sleep(60)\n")
    o = run_all.Outcome("latency", 1.0, "added latency")
    logged: list[str] = []
    run_all.run_one(o, tmp_path, tmp_path / "B.md", True, 1.5, logged.append, tmp_path)
    assert o.status == "timed out" and o.returncode is not None and o.returncode != 0
    assert o.elapsed_s < 30
    assert any("over its hard limit" in line for line in logged)


@pytest.mark.parametrize("argv", [["--scale", "0"], ["--only", "nosuch"]])
def test_bad_arguments_are_a_clear_usage_error(argv: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run_all", *argv], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert proc.returncode == 2 and "usage:" in proc.stderr


def test_the_set_keeps_to_its_20_minute_total(tmp_path: Path) -> None:
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "api.py").write_text("import time\ntime.sleep(30)\n")
    (bench / "bookday.py").write_text(textwrap.dedent(GOOD))
    md = tmp_path / "BENCHMARKS.md"
    # --scale shrinks the budgets and the 20-minute total alike: 19.5 min x 0.0005 is 0.6 s, so
    # the first benchmark is stopped when the total is used up and the next one does not start
    cmd = [sys.executable, "-m", "bench.run_all", "--only", "api", "bookday", "--scale", "0.0005"]
    cmd += ["--bench-dir", str(bench), "--markdown", str(md), "--results", str(tmp_path / "results")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "[api] over its hard limit" in proc.stdout and "[bookday] SKIPPED" in proc.stdout
    text = md.read_text()
    assert "| api | timed out, exit status" in text
    assert "**skipped (20-minute total used up)**" in text
    assert not (tmp_path / "results" / "bookday.json").exists()
