"""Smoke test of ``python -m bench.api`` (benchmark contract, issue 7): a ``--quick --json`` run works and
writes well-formed results. No figure is judged: timings on a shared machine mean nothing here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_writes_well_formed_json(tmp_path: Path) -> None:
    out = tmp_path / "api.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VDX_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "src")])
    proc = subprocess.run(
        [sys.executable, "-m", "bench.api", "--quick", "--json", str(out)],
        cwd=tmp_path,  # a quick run writes nothing else: no BENCHMARKS.md, no plot, here or in the repo
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["meta"]["quick"] is True
    assert set(result["summary"]) == {"sqlite"}
    for conc in ("1", "4"):
        cells = result["summary"]["sqlite"][conc]
        assert set(cells) == {"info", "create", "get", "get_si"}
        for op, cell in cells.items():
            assert cell["requests"] > 0 and cell["errors"] == 0, (conc, op, cell)
            for key in ("rps", "p50_ms", "p99_ms"):
                assert cell[key]["min"] <= cell[key]["median"] <= cell[key]["max"]
            assert ("ratio_to_info" in cell) == (op != "info")
    assert sorted(os.listdir(tmp_path)) == ["api.json"]
