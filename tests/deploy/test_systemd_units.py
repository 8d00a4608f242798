"""The deployment files of docs/deploy.md: the systemd units pass ``systemd-analyze verify``
without a warning, and every ``VDX_*`` name in the units, the example environments and the page
itself is a setting vdx has (so none of them can drift from ``vdx.settings``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vdx.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "deploy" / "systemd").glob("*.service"))
ENV_FILES = sorted((ROOT / "deploy" / "env").glob("*.env"))
DOC = ROOT / "docs" / "deploy.md"
INSTALLED_VDX = "/opt/vdx/venv/bin/vdx"  # where docs/deploy.md installs vdx


def _vdx_here() -> str:
    found = shutil.which("vdx") or str(Path(sys.executable).parent / "vdx")
    assert Path(found).exists(), "the vdx command of this checkout's venv"
    return found


def test_the_units_verify_without_a_warning(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing: apt-get install -y systemd (make test installs it)")
    assert [u.name for u in UNITS] == ["vdx-api@.service", "vdx-node@.service"]
    # The same files, with the ExecStart path pointing at this checkout's vdx: verify checks that
    # the command exists, and /opt/vdx is not installed here.
    copies = []
    for unit in UNITS:
        text = unit.read_text()
        assert f"ExecStart={INSTALLED_VDX} " in text + " ", unit.name
        copy = tmp_path / unit.name
        copy.write_text(text.replace(INSTALLED_VDX, _vdx_here()))
        copies.append(str(copy))
    out = subprocess.run(
        [analyze, "verify", "--man=no", "--generators=no", *copies],
        capture_output=True,
        text=True,
        timeout=60,
    )
    about_ours = [
        line
        for line in (out.stdout + out.stderr).splitlines()
        if any(name in line for name in ("vdx-api@", "vdx-node@", str(tmp_path)))
    ]
    assert out.returncode == 0 and not about_ours, out.stdout + out.stderr


def test_the_units_keep_what_media_and_a_clean_stop_need() -> None:
    node = (ROOT / "deploy" / "systemd" / "vdx-node@.service").read_text()
    api = (ROOT / "deploy" / "systemd" / "vdx-api@.service").read_text()
    for unit in (node, api):
        assert "EnvironmentFile=/etc/vdx/%i.env" in unit
        assert "User=vdx" in unit and "Restart=on-failure" in unit and "LimitNOFILE=" in unit
    # WebRTC's DTLS (pyOpenSSL callbacks through cffi) needs write+execute memory
    assert not re.search(r"^MemoryDenyWriteExecute=", node, re.MULTILINE)
    assert re.search(r"^MemoryDenyWriteExecute=yes$", api, re.MULTILINE)
    assert re.search(r"^KillSignal=SIGTERM$", node, re.MULTILINE)
    assert re.search(r"^TimeoutStopSec=\d+$", node, re.MULTILINE)


def test_every_vdx_name_in_the_deployment_files_is_a_setting() -> None:
    settings = {f"VDX_{name.upper()}" for name in Settings.model_fields}
    assert DOC.exists() and ENV_FILES
    unknown: dict[str, set[str]] = {}
    for path in [DOC, *ENV_FILES, *UNITS]:
        names = set(re.findall(r"\bVDX_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
        if names - settings:
            unknown[str(path.relative_to(ROOT))] = names - settings
    assert not unknown, unknown


def test_the_example_environments_are_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # what a unit would run with: each example file's VDX_* lines, read by Settings itself
    for path in ENV_FILES:
        for key in [k for k in os.environ if k.startswith("VDX_")]:
            monkeypatch.delenv(key)
        for line in path.read_text().splitlines():
            if line.startswith("VDX_"):
                key, _, value = line.partition("=")
                monkeypatch.setenv(key, value)
        Settings()  # a value Settings refuses raises here
