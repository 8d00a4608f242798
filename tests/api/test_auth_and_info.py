"""The request pipeline (spec 3.2), /v2/info (spec 1.1), CORS and the plumbing around the API (spec 1.0)."""

from __future__ import annotations

import time
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from vdx.booking.roles import ADMIN, PLANNER, PROVISIONER, PROVISIONER_USER, USER


async def test_info_has_git_entry(api):
    # spec 1.1
    await api.add_org("org1")
    r = await api.client.get(f"{api.v2}/info", headers=api.auth("org1", "a@x.dk", USER))
    assert r.status_code == 200
    keys = {i["key"]: i["value"] for i in r.json()["info"]}
    assert "git" in keys and "commit" in keys["git"]


async def test_token_defects_are_401_without_body(api):
    # spec 1.0 Auth: missing, expired, wrong issuer, tampered, unsigned, foreign key -> 401
    await api.add_org("org1")
    url = f"{api.v2}/info"
    good = api.token("org1", "a@x.dk", USER)
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {"organisation_id": "org1", "email": "a@x.dk", "userrole": [USER], "iss": "vdx-dev"}
    cases = {
        "missing": {},
        "not bearer": {"Authorization": f"Basic {good}"},
        "expired": {"Authorization": "Bearer " + api.token("org1", "a@x.dk", USER, ttl=-60)},
        "wrong issuer": {
            "Authorization": "Bearer "
            + jwt.encode(claims | {"iss": "evil", "exp": time.time() + 60}, foreign, algorithm="RS256")
        },
        "foreign key": {
            "Authorization": "Bearer "
            + jwt.encode(claims | {"exp": time.time() + 60}, foreign, algorithm="RS256")
        },
        "unsigned": {
            "Authorization": "Bearer "
            + jwt.encode(claims | {"exp": time.time() + 60}, None, algorithm="none")
        },
        "tampered": {
            "Authorization": "Bearer " + good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
        },
        "garbage": {"Authorization": "Bearer not.a.jwt"},
    }
    for name, headers in cases.items():
        r = await api.client.get(url, headers=headers)
        assert r.status_code == 401, name
        assert r.headers.get("www-authenticate", "").startswith("Bearer"), name
        assert r.content == b"", name


async def test_pipeline_order(api):
    # spec 3.2: unknown org 403; empty roles 401; missing email 401 unless only provisioner;
    # unknown role strings pass the roles check but fail the gate -> 403 (spec 2.17.7)
    await api.add_org("org1")
    url = f"{api.v2}/info"
    assert (await api.client.get(url, headers=api.auth("nope", "a@x.dk", USER))).status_code == 403
    assert (await api.client.get(url, headers=api.auth("org1", "a@x.dk"))).status_code == 401
    assert (await api.client.get(url, headers=api.auth("org1", None, USER))).status_code == 401
    assert (await api.client.get(url, headers=api.auth(None, "a@x.dk", USER))).status_code == 401
    assert (await api.client.get(url, headers=api.auth(None, None, PROVISIONER))).status_code == 200
    assert (await api.client.get(url, headers=api.auth("org1", "a@x.dk", "weird-role"))).status_code == 403
    body = (await api.client.get(url, headers=api.auth("nope", "a@x.dk", USER))).json()
    assert body["status"] == 403 and body["error"] == "Forbidden" and body["path"] == url


async def test_auto_create_organisation_from_parent_claim(api):
    # spec 3.5: unknown org + parent_org claim -> created under that parent with name = code
    await api.add_org("region")
    h = api.auth("clinic-7", "a@x.dk", ADMIN, parent_org="region")
    r = await api.client.get(f"{api.v2}/info", headers=h)
    assert r.status_code == 200
    r = await api.client.get(
        f"{api.v2}/info", headers=api.auth("clinic-8", "a@x.dk", ADMIN, parent_org="absent")
    )
    assert r.status_code == 403


async def test_reads_by_uuid_keep_the_check_order(api):
    # spec 3.2, 3.5: GET meeting / scheduling info take the caller's organisation in the
    # resource's own query; the checks keep their order (unknown organisation 403 before the
    # path's 400 and the resource's 404, empty roles 401, role gate 403) and auto-create works
    await api.add_org("region")
    r = await api.client.post(
        f"{api.v2}/meetings",
        headers=api.auth("region", "p@region.dk", PLANNER),
        json={"subject": "S", "startTime": "3025-06-01T10:00:00Z", "endTime": "3025-06-01T11:00:00Z"},
    )
    known = r.json()["uuid"]
    for kind in ("meetings", "scheduling-info"):
        for target in (known, str(uuid.uuid4()), "not-a-uuid"):
            url = f"{api.v2}/{kind}/{target}"
            assert (await api.client.get(url, headers=api.auth("nope", "a@x.dk", ADMIN))).status_code == 403
            assert (await api.client.get(url, headers=api.auth("region", "a@x.dk"))).status_code == 401
            weird = api.auth("region", "a@x.dk", "weird-role")
            assert (await api.client.get(url, headers=weird)).status_code == 403
            r = await api.client.get(url)
            assert r.status_code == 401, (kind, target)
        h = api.auth("region", "a@x.dk", ADMIN)
        assert (await api.client.get(f"{api.v2}/{kind}/{known}", headers=h)).status_code == 200
        assert (await api.client.get(f"{api.v2}/{kind}/{uuid.uuid4()}", headers=h)).status_code == 404
        assert (await api.client.get(f"{api.v2}/{kind}/not-a-uuid", headers=h)).status_code == 400
        # a new organisation is created under its parent by its first read (spec 3.5)
        h = api.auth(f"clinic-{kind}", "a@x.dk", ADMIN, parent_org="region")
        assert (await api.client.get(f"{api.v2}/{kind}/{known}", headers=h)).status_code == 403
        assert (await api.client.get(f"{api.v2}/{kind}/{uuid.uuid4()}", headers=h)).status_code == 404
        h = api.auth(f"clinic-{kind}", "a@x.dk", ADMIN)  # now without the claim: it exists
        assert (await api.client.get(f"{api.v2}/{kind}/{uuid.uuid4()}", headers=h)).status_code == 404


async def test_trailing_slash_and_request_id(api):
    # spec 1.0 (trailing slashes), spec 2.18 (x-request-id correlation)
    await api.add_org("org1")
    h = api.auth("org1", "a@x.dk", PROVISIONER_USER) | {"x-request-id": "abc-123"}
    r = await api.client.get(f"{api.v2}/info/", headers=h)
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "abc-123"
    r = await api.client.get(f"{api.v2}/info", headers=api.auth("org1", "a@x.dk", USER))
    assert len(r.headers["x-request-id"]) >= 16


async def test_cors_allow_list(api_factory):
    # spec 1.0 CORS: allowed preflight 200 with headers, other origins 403; preflight needs no token
    api = await api_factory(allowed_origins="https://ok.example")
    pre = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    r = await api.client.options(f"{api.v2}/meetings", headers=pre | {"Origin": "https://ok.example"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://ok.example"
    assert "POST" in r.headers["access-control-allow-methods"]
    r = await api.client.options(f"{api.v2}/meetings", headers=pre | {"Origin": "https://evil.example"})
    assert r.status_code == 403


async def test_health_and_metrics(api):
    r = await api.client.get("/manage/health")
    assert r.status_code == 200 and r.json()["components"]["db"]["status"] == "UP"
    await api.client.get(f"{api.v2}/info")
    m = await api.client.get("/manage/metrics")
    assert m.status_code == 200
    assert 'vdx_http_requests_total{method="GET",route="/api/v2/info",status="401"}' in m.text
