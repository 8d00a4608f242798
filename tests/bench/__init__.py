"""Smoke tests of the benchmarks: each runs ``python -m bench.<name> --quick --json PATH`` in a
subprocess and checks what it wrote (its shape only: figures are measured by `make bench`, never
judged in tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HEADLINE_KEYS = {"figure", "value", "unit", "min", "max", "target", "met"}


def run_quick(
    bench: str, tmp_path: Path, *args: str, keep_env: tuple[str, ...] = (), timeout: float = 300
) -> tuple[dict[str, Any], str]:
    """Run ``python -m bench.<bench> --quick --json tmp_path/<bench>.json ARGS`` from ``tmp_path``
    (this checkout's bench/ and src/ on PYTHONPATH; this environment's VDX_* settings left out but
    ``keep_env``: the benchmark configures what it starts); assert it succeeded and its
    ``"headline"`` rows have bench/run_all.py's keys. Returns the JSON and what it printed."""
    out = tmp_path / f"{bench}.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VDX_") or k in keep_env}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "src")])
    proc = subprocess.run(
        [sys.executable, "-m", f"bench.{bench}", "--quick", "--json", str(out), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.read_text())
    assert result["headline"], "no headline rows"
    for row in result["headline"]:
        assert set(row) == HEADLINE_KEYS, row
        assert isinstance(row["figure"], str) and row["met"] in (True, False, None), row
    return result, proc.stdout
