"""The banner of ``vdx serve --demo`` names every place a person goes, with commands that run as
printed."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from vdx.demo import DemoMeeting, vdx_command, welcome
from vdx.settings import Settings

DEMO = DemoMeeting(alias="12345678@vdx.local", host_pin=123456, guest_pin=4321)


def test_the_banner_names_every_place(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var", http_port=8123, sip_port=5099)
    text = welcome(settings, DEMO, ".venv/bin/vdx")
    base = "http://127.0.0.1:8123"
    for place in (
        f"{base}/",
        f"{base}/booking/",
        f"{base}/dashboard/",
        f"{base}/join/?conference=12345678%40vdx.local&pin=123456",
        f"{base}/join/?conference=12345678%40vdx.local&pin=4321",
        f"{base}/api/docs",
        f"{base}/api/v2/info",
        "sip:12345678@127.0.0.1:5099",
    ):
        assert place in text, place
    assert re.search(r"^  TOKEN=\$\(\.venv/bin/vdx token --data-dir \S+ --org demo ", text, re.M), text
    assert "demo sign-in, to a browser on this computer only" in text


def test_the_banner_follows_public_url_and_sign_in(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        public_url="https://video.example.dk/",
        sip_enabled=False,
        jwt_jwks_url="https://idp.example.dk/jwks",
    )
    text = welcome(settings, DEMO)
    assert "https://video.example.dk/booking/" in text and "TOKEN=$(vdx token " in text
    assert "sip:" not in text and "demo sign-in" not in text


def test_the_vdx_command_is_what_runs_from_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    program = tmp_path / ".venv" / "bin" / "vdx"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    python = str(tmp_path / ".venv" / "bin" / "python")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    # make run: the venv's program, not on the PATH
    assert vdx_command(".venv/bin/vdx", python, tmp_path) == ".venv/bin/vdx"
    assert vdx_command(str(program), python, tmp_path) == ".venv/bin/vdx"
    assert vdx_command(str(program), python, tmp_path / "elsewhere") == str(program)
    # python -m vdx
    assert vdx_command("/src/vdx/__main__.py", python, tmp_path) == ".venv/bin/python -m vdx"
    # an activated venv (or an installed vdx): the bare name
    monkeypatch.setenv("PATH", f"{program.parent}{os.pathsep}/usr/bin")
    assert vdx_command(str(program), python, tmp_path) == "vdx"
