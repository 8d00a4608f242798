"""The ``vdx`` command line: its commands, and configuration by ``VDX_*`` variables."""

from __future__ import annotations

import json
import os
import re
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
    settings: Settings | None,
    *args: str,
    data_dir: Path | None = None,
    env_extra: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m vdx ARGS`` on the test's data dir and database (as ``vdx`` would run);
    ``env_extra``: further ``VDX_*`` variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VDX_")}
    env["PYTHONPATH"] = str(ROOT / "src")
    env["VDX_LOG_FORMAT"] = "text"
    if settings is not None:
        env["VDX_DATA_DIR"] = str(settings.data_dir)
        if settings.database_url:
            env["VDX_DATABASE_URL"] = settings.database_url
    if data_dir is not None:
        env["VDX_DATA_DIR"] = str(data_dir)
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "vdx", *args], env=env, capture_output=True, text=True, timeout=120
    )


def shell(command: str, env: dict[str, str] | None) -> subprocess.CompletedProcess[str]:
    """Run ``command`` as a person pastes it: bash, in the directory the server was started in."""
    return subprocess.run(
        ["bash", "-c", command], cwd=Path.cwd(), env=env, capture_output=True, text=True, timeout=60
    )


async def test_org_add_builds_the_tree(api, settings):
    # vdx org add CODE [--name NAME] [--parent CODE] [--pool-size N]
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
    # a duplicate code or an unknown parent is refused with exit code 2
    assert vdx(settings, "org", "add", "region").returncode == 0
    r = vdx(settings, "org", "add", "region")
    assert r.returncode == 2
    assert "Organisation region already exists." in r.stderr
    r = vdx(settings, "org", "add", "clinic", "--parent", "ghost")
    assert r.returncode == 2
    assert "Parent organisation ghost not found" in r.stderr
    async with api.app.state.sessions() as s:
        assert await organisations.by_code(s, "clinic") is None


def test_trunks_and_routing_rules_are_kept_from_the_command_line(settings):
    # vdx trunk add|list|remove, vdx route add|list|remove: checked, and listed as kept (what the
    # API serves of them: tests/api/test_routing_admin.py)
    assert vdx(settings, "org", "add", settings.node_organisation).returncode == 0  # the trail's owner
    secret = {"VDX_TRUNK_PASSWORD": "s3cret"}  # not on the command line, where ps shows it
    r = vdx(
        settings, "trunk", "add", "pbx", "--proxy", "pbx.test:5060", "--username", "vdx", env_extra=secret
    )
    assert r.returncode == 0 and "trunk pbx added" in r.stdout, r.stderr
    r = vdx(settings, "trunk", "list")
    assert "pbx  udp:pbx.test:5060  user vdx, no call limit" in r.stdout and "s3cret" not in r.stdout
    with sqlite3.connect(settings.data_dir / "vdx.sqlite3") as db:
        assert db.execute("SELECT password FROM trunk WHERE name = 'pbx'").fetchall() == [("s3cret",)]
    r = vdx(
        settings, "route", "add", "to-pbx", "--match", r"(\d{4})@gw\.test", "--replace", r"sip:\1@pbx.test",
        "--trunk", "pbx", "--priority", "5", "--source-network", "10.0.0.0/8",
    )  # fmt: skip
    assert r.returncode == 0 and "routing rule to-pbx added" in r.stdout, r.stderr
    r = vdx(settings, "route", "list")
    assert (
        r"    5  to-pbx  (\d{4})@gw\.test  ->  sip sip:\1@pbx.test via trunk pbx  from 10.0.0.0/8" in r.stdout
    )

    # bad input: exit 2 with the reason, nothing stored
    for args, reason in (
        (("route", "add", "bad", "--match", "(unclosed", "--replace", "sip:x@y"), "match: does not compile"),
        (
            ("route", "add", "bad", "--match", "a", "--replace", "sip:x@y", "--trunk", "ghost"),
            "no trunk named",
        ),
        (("trunk", "add", "bad", "--proxy", "pbx.test", "--transport", "sctp"), "transport"),
        (("trunk", "remove", "pbx"), "routing rules use it: to-pbx"),
        (("route", "remove", "ghost"), "no routing rule named 'ghost'"),
    ):
        r = vdx(settings, *args)
        assert r.returncode == 2 and reason in r.stderr, (args, r.stderr)

    assert vdx(settings, "route", "remove", "to-pbx").returncode == 0
    assert vdx(settings, "trunk", "remove", "pbx").returncode == 0
    assert vdx(settings, "trunk", "list").stdout == "" and vdx(settings, "route", "list").stdout == ""


def test_devices_are_kept_from_the_command_line(settings):
    # vdx device add prints the secret once; the database keeps a hash; list never shows either
    assert vdx(settings, "org", "add", settings.node_organisation).returncode == 0  # the trail's owner
    r = vdx(settings, "device", "add", "reception")
    assert r.returncode == 0, r.stderr
    secret = r.stdout.rsplit(": ", 1)[1].strip()
    assert len(secret) >= 32
    with sqlite3.connect(settings.data_dir / "vdx.sqlite3") as db:
        ((stored,),) = db.execute("SELECT secret_hash FROM device WHERE name = 'reception'").fetchall()
    assert secret not in stored and stored.startswith("scrypt$")
    r = vdx(settings, "device", "list")
    assert r.stdout.startswith("reception  added ") and secret not in r.stdout
    for args, reason in (
        (("device", "add", "reception"), "a device named 'reception' exists"),
        (("device", "add", "front desk"), "name: 1-100 letters"),
        (("device", "remove", "ghost"), "no device named 'ghost'"),
    ):
        r = vdx(settings, *args)
        assert r.returncode == 2 and reason in r.stderr, (args, r.stderr)
    r = vdx(settings, "route", "add", "desk", "--match", "desk", "--replace", "browser:reception")
    assert r.returncode == 0, r.stderr
    assert "->  browser browser:reception" in vdx(settings, "route", "list").stdout
    assert vdx(settings, "device", "remove", "reception").returncode == 0
    assert vdx(settings, "device", "list").stdout == ""


async def test_token_is_accepted_by_a_served_process(settings, live_server_factory):
    # vdx token prints an RS256 JWT signed with the dev key of VDX_DATA_DIR,
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
    # vdx migrate brings an empty data dir (SQLite) to the newest revision, twice safely
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
    # configuration is VDX_* variables, and `vdx serve --help` lists them
    r = vdx(None, "serve", "--help")
    assert r.returncode == 0, r.stderr
    for name in Settings.model_fields:
        assert f"VDX_{name.upper()}=" in r.stdout, name
    for flag in ("--data-dir", "--database-url", "--port", "--demo"):
        assert flag in r.stdout


async def test_serve_demo_prints_how_to_start(live_server_factory):
    # make run = vdx serve --demo: organisation demo with a default template and a meeting open
    # now; the banner names every place a person goes, and its `vdx token` command works as
    # printed from the directory vdx was started in
    server = live_server_factory(args=["--demo"])
    out = server.log.read_text()
    base = server.base_url
    printed = set(re.findall(r"(http://127\.0\.0\.1:\d+/\S*)", out))
    for place in ("/", "/booking/", "/dashboard/", "/api/docs", "/api/v2/info"):
        assert f"{base}{place}" in printed, out[-2000:]
    joins = sorted(url for url in printed if url.startswith(f"{base}/join/?conference="))
    assert len(joins) == 2 and all("&pin=" in url for url in joins), out[-2000:]
    match = re.search(r"^  (TOKEN=\$\(.* token [^)]*\))$", out, re.M)
    assert match, out[-2000:]
    assert "--org demo" in match.group(1)
    r = shell(f'{match.group(1)} && printf %s "$TOKEN"', server.env)
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        info = await client.get("/api/v2/info", headers={"Authorization": f"Bearer {token}"})
        assert info.status_code == 200
        for url in (u for u in printed if "/api/v2/" not in u):  # the pages; the API wants a token
            assert (await client.get(url)).status_code == 200, url
        landing = (await client.get("/")).text
        for url in joins:
            assert url.removeprefix(base).replace("&", "&amp;") in landing
        # the demo sign-in the banner names works for a browser on this machine, and its token
        # for the API; through a proxy (real uvicorn, its proxy headers on) it is not there
        sign_in = {"organisation": "demo", "email": "clinician@demo.vdx.local", "roles": [USER]}
        r = await client.post("/web/dev-token", json=sign_in)
        assert r.status_code == 200, r.text
        demo_token = r.json()["access_token"]
        info = await client.get("/api/v2/info", headers={"Authorization": f"Bearer {demo_token}"})
        assert info.status_code == 200
        proxied = await client.post("/web/dev-token", json=sign_in, headers={"X-Forwarded-For": "192.0.2.7"})
        assert proxied.status_code == 404
        # the demo organisation exists with exactly one template, its default (spec 1.4 read)
        templates = await client.get(
            "/api/v2/scheduling-templates", headers={"Authorization": f"Bearer {token}"}
        )
        assert templates.status_code == 200
        assert [t["isDefaultTemplate"] for t in templates.json()] == [True]


def test_bad_capacity_settings_stop_the_node_with_a_clear_message(tmp_path):
    """A capacity that is not a positive number or a reserve outside 0..1: one line naming the
    variable and what it must be, exit status 2, no traceback (vdx node and vdx serve alike)."""
    cases = [
        ({"VDX_NODE_CAPACITY": "0"}, "VDX_NODE_CAPACITY: must be a positive number of HD units", "'0'"),
        ({"VDX_NODE_CAPACITY": "lots"}, "VDX_NODE_CAPACITY: must be a positive number of HD units", "'lots'"),
        ({"VDX_NODE_CAPACITY": "nan"}, "VDX_NODE_CAPACITY: must be a positive number of HD units", "'nan'"),
        ({"VDX_CLINICAL_RESERVE": "1.5"}, "VDX_CLINICAL_RESERVE: must be a share of capacity between 0 and 1", "'1.5'"),
        ({"VDX_CLINICAL_RESERVE": "-0.1"}, "VDX_CLINICAL_RESERVE: must be a share of capacity between 0 and 1", "'-0.1'"),
    ]  # fmt: skip
    for env, message, given in cases:
        for command in (["node", "--api-url", "http://127.0.0.1:9/api"], ["serve"]):
            r = vdx(None, *command, data_dir=tmp_path, env_extra=env)
            assert r.returncode == 2, (env, command, r.stdout, r.stderr)
            assert r.stderr.startswith(f"error: {message}") and given in r.stderr, r.stderr
            assert "Traceback" not in r.stderr and "pydantic" not in r.stderr


def test_node_self_test_prints_its_capacity_and_exits(tmp_path):
    r = vdx(None, "node", "--self-test", data_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    found = re.match(r"capacity (\d+\.\d+) HD units \((\d+) cores, 20 fps, ", r.stdout)
    assert found is not None, r.stdout
    assert float(found[1]) > 0 and int(found[2]) >= 1


async def test_a_node_without_capacity_measures_it_and_an_admin_changes_it(settings, live_server_factory):
    """VDX_NODE_CAPACITY unset: the self-test's figure at start, logged; vdx capacity show|set
    read and change it through the admin API (meeting-admins of the nodes' organisation)."""
    server = live_server_factory(extra_env={"VDX_NODE_CAPACITY": None, "VDX_CLINICAL_RESERVE": "0.3"})
    assert "capacity by self-test: " in server.log.read_text()
    token = server.token(settings.node_organisation, "ops@vdx.test", ADMIN)
    at = ["--url", server.base_url, "--token", token]
    r = vdx(settings, "capacity", "show", *at)
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["measured"] is True and shown["capacity"] == shown["measuredCapacity"] > 0
    assert shown["clinicalReserve"] == 0.3 and shown["unitsInUse"] == 0
    r = vdx(settings, "capacity", "set", *at, "--capacity", "5", "--reserve", "0.4")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) | {"capacity": 5.0, "clinicalReserve": 0.4, "measured": False} == json.loads(
        r.stdout
    )
    r = vdx(settings, "capacity", "set", *at, "--measured")
    assert (
        json.loads(r.stdout)["capacity"] == shown["capacity"]
        and json.loads(r.stdout)["clinicalReserve"] == 0.4
    )
    r = vdx(settings, "capacity", "set", *at, "--reserve", "2")
    assert r.returncode == 1 and "400" in r.stderr
    guest = server.token(settings.node_organisation, "user@vdx.test", USER)
    r = vdx(settings, "capacity", "show", "--url", server.base_url, "--token", guest)
    assert r.returncode == 1 and "403" in r.stderr
