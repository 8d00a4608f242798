"""The ``vdx`` command line (architecture.md section 2: the CLI and configuration contracts)."""

from __future__ import annotations

import os
import re
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import jwt

from vdx.booking.roles import ADMIN, USER
from vdx.services import organisations
from vdx.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def vdx(
    settings: Settings | None, *args: str, data_dir: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m vdx ARGS`` on the test's data dir and database (as ``vdx`` would run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VDX_")}
    env["PYTHONPATH"] = str(ROOT / "src")
    env["VDX_LOG_FORMAT"] = "text"
    if settings is not None:
        env["VDX_DATA_DIR"] = str(settings.data_dir)
        if settings.database_url:
            env["VDX_DATABASE_URL"] = settings.database_url
    if data_dir is not None:
        env["VDX_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "vdx", *args], env=env, capture_output=True, text=True, timeout=120
    )


async def test_org_add_builds_the_tree(api, settings):
    # architecture 2: vdx org add CODE [--name NAME] [--parent CODE] [--pool-size N]
    r = vdx(settings, "org", "add", "region")
    assert r.returncode == 0, r.stderr
    assert "organisation region created" in r.stdout
    r = vdx(
        settings, "org", "add", "clinic", "--name", "Clinic N", "--parent", "region", "--pool-size", "3",
        "--allow-custom-uri",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    async with api.app.state.sessions() as s:
        region = await organisations.by_code(s, "region")
        clinic = await organisations.by_code(s, "clinic")
        assert region is not None and clinic is not None
        assert region.name == "region" and region.parent_id is None and region.pool_size is None
        assert (clinic.name, clinic.parent_id, clinic.pool_size) == ("Clinic N", region.id, 3)
        assert clinic.allow_custom_uri_without_domain is True
        assert region.allow_custom_uri_without_domain is False


async def test_org_add_errors_exit_2(api, settings):
    # architecture 2: a duplicate code or an unknown parent is refused with exit code 2
    assert vdx(settings, "org", "add", "region").returncode == 0
    r = vdx(settings, "org", "add", "region")
    assert r.returncode == 2
    assert "Organisation region already exists." in r.stderr
    r = vdx(settings, "org", "add", "clinic", "--parent", "ghost")
    assert r.returncode == 2
    assert "Parent organisation ghost not found" in r.stderr
    async with api.app.state.sessions() as s:
        assert await organisations.by_code(s, "clinic") is None


async def test_token_is_accepted_by_a_served_process(settings, live_server_factory):
    # architecture 2: vdx token prints an RS256 JWT signed with the dev key of VDX_DATA_DIR,
    # which `vdx serve` on the same data dir trusts. (No in-process app here: its SQLite
    # transactions would stall while this test blocks on the served process.)
    assert vdx(settings, "org", "add", "org1").returncode == 0
    r = vdx(
        settings,
        "token",
        "--org",
        "org1",
        "--email",
        "a@x.dk",
        "--role",
        ADMIN,
        "--role",
        USER,
        "--ttl",
        "60",
    )
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["organisation_id"] == "org1" and claims["email"] == "a@x.dk"
    assert claims["userrole"] == [ADMIN, USER]
    assert claims["exp"] - claims["iat"] == 60
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    server = live_server_factory()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        ok = await client.get("/api/v2/info", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and ok.json()["info"]
        # the admin role reaches the organisation service too
        org = await client.get(
            "/api/services/v2/organisation/org1", headers={"Authorization": f"Bearer {token}"}
        )
        assert org.status_code == 200 and org.json()["code"] == "org1"
        tampered = await client.get("/api/v2/info", headers={"Authorization": f"Bearer {token}x"})
        assert tampered.status_code == 401


def test_migrate_creates_and_keeps_the_schema(tmp_path):
    # architecture 2: vdx migrate brings an empty data dir (SQLite) to the newest revision, twice safely
    data = tmp_path / "fresh"
    for _ in range(2):
        r = vdx(None, "migrate", data_dir=data)
        assert r.returncode == 0, r.stderr
        assert "newest schema revision" in r.stdout
    with sqlite3.connect(data / "vdx.sqlite3") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        (version,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
    assert {"organisation", "meeting", "scheduling_info", "scheduling_template", "outbox"} <= tables
    assert version


def test_serve_help_lists_every_setting():
    # architecture 2: configuration is VDX_* variables, and `vdx serve --help` lists them
    r = vdx(None, "serve", "--help")
    assert r.returncode == 0, r.stderr
    for name in Settings.model_fields:
        assert f"VDX_{name.upper()}=" in r.stdout, name
    for flag in ("--data-dir", "--database-url", "--port", "--demo"):
        assert flag in r.stdout


async def test_serve_demo_prints_how_to_start(live_server_factory):
    # architecture 2 (make run = vdx serve --demo): organisation demo with a default template, and
    # the API URL, the docs URL and a `vdx token` command; that command's token works
    server = live_server_factory(args=["--demo"])
    out = server.log.read_text()
    assert f"{server.base_url}/api/v2/info" in out
    assert f"{server.base_url}/api/docs" in out
    match = re.search(r"\$\((vdx token [^)]*)\)", out)
    assert match, out[-2000:]
    command = shlex.split(match.group(1))
    assert command[:2] == ["vdx", "token"] and "--org" in command and "demo" in command
    r = vdx(None, *command[1:])
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        info = await client.get("/api/v2/info", headers={"Authorization": f"Bearer {token}"})
        assert info.status_code == 200
        docs = await client.get("/api/docs")
        assert docs.status_code == 200
        # the demo organisation exists with exactly one template, its default (spec 1.4 read)
        templates = await client.get(
            "/api/v2/scheduling-templates", headers={"Authorization": f"Bearer {token}"}
        )
        assert templates.status_code == 200
        assert [t["isDefaultTemplate"] for t in templates.json()] == [True]
