"""The embedded organisation service, v2 (spec 5.1), under ``{context}/services/v2``."""

from __future__ import annotations

import uuid

import pytest

from vdx.booking.enums import ProvisionStatus
from vdx.booking.roles import ADMIN, USER
from vdx.services import organisations
from vdx.store.db import now_utc
from vdx.store.models import SchedulingInfo, SchedulingTemplate

ERROR_KEYS = {"error", "path", "status", "status_text", "timestamp"}


def svc(api) -> str:
    return f"{api.settings.api_context}/services/v2"


@pytest.fixture
async def tree(api):
    """root -> region (pool 5) -> clinic, and a separate tree ``other``."""
    await api.add_org("root", name="Root")
    await api.add_org("region", parent_code="root", pool_size=5)
    await api.add_org("clinic", parent_code="region", name="Clinic")
    await api.add_org("other")
    return api


def assert_error(r, status: int, text: str | None = None) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == ERROR_KEYS, body
    assert body["status"] == status
    assert body["path"] == r.request.url.path
    if text is not None:
        assert body["error"] == text


async def test_read_organisation_by_query_and_path(tree):
    # spec 5.1: code, name, poolSize (0 if null), sms*, groupId, allowCustomUriWithoutDomain, webhook
    api = tree
    h = api.auth("root", "a@x.dk", ADMIN)
    r = await api.client.get(f"{svc(api)}/organisation", params={"organisationCode": "region"}, headers=h)
    assert r.status_code == 200
    body = r.json()
    assert body["code"] == "region" and body["name"] == "region" and body["poolSize"] == 5
    assert body["allowCustomUriWithoutDomain"] is False
    assert isinstance(body["groupId"], int)
    r = await api.client.get(f"{svc(api)}/organisation/clinic", headers=h)
    assert r.status_code == 200
    assert r.json()["name"] == "Clinic" and r.json()["poolSize"] == 0  # null pool reads as 0


async def test_codes_with_slashes(tree):
    # spec 5.1: organisation codes may contain "/" and are read from the path
    api = tree
    await api.add_org("æ/åø", parent_code="clinic", name="With a slash")
    h = api.auth("root", "a@x.dk", ADMIN)
    r = await api.client.get(f"{svc(api)}/organisation/æ/åø", headers=h)
    assert r.status_code == 200 and r.json()["code"] == "æ/åø"
    r = await api.client.get(f"{svc(api)}/organisationtree/æ/åø", headers=h)
    assert r.status_code == 200
    assert r.json()["code"] == "root"
    r = await api.client.get(f"{svc(api)}/organisation/æ/åø/descendants", headers=h)
    assert r.status_code == 200 and r.json() == [{"code": "æ/åø"}]


async def test_not_found_and_bad_input_use_the_services_error_body(tree):
    # spec 5.1: not found 404, bad input 400, body {error,path,status,status_text,timestamp}
    api = tree
    h = api.auth("root", "a@x.dk", ADMIN)
    r = await api.client.get(f"{svc(api)}/organisation/nope", headers=h)
    assert_error(r, 404, "Organisation with id: nope not found")
    assert r.json()["status_text"] == "Not Found"
    r = await api.client.get(f"{svc(api)}/organisation", headers=h)  # missing organisationCode
    assert_error(r, 400)
    assert "organisationCode" in r.json()["error"]


async def test_create_under_parent(tree):
    # spec 5.1 POST ?parent_code= and /{parent_code}: name defaults to the code
    api = tree
    h = api.auth("root", "a@x.dk", ADMIN)
    r = await api.client.post(
        f"{svc(api)}/organisation",
        params={"parent_code": "clinic"},
        json={
            "code": "ward-1",
            "poolSize": 2,
            "smsSenderName": "Ward One",
            "allowCustomUriWithoutDomain": True,
        },
        headers=h,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["code"] == "ward-1" and body["name"] == "ward-1" and body["poolSize"] == 2
    assert body["smsSenderName"] == "Ward One" and body["allowCustomUriWithoutDomain"] is True
    r = await api.client.post(
        f"{svc(api)}/organisation/region",
        json={"code": "ward-2", "name": "Ward 2", "historyApiKey": "k", "deviceWebhookEndpoint": "http://h"},
        headers=h,
    )
    assert r.status_code == 200 and r.json()["name"] == "Ward 2"
    assert r.json()["deviceWebhookEndpoint"] == "http://h"
    async with api.app.state.sessions() as s:
        ward = await organisations.by_code(s, "ward-2")
        region = await organisations.by_code(s, "region")
        assert ward is not None and region is not None
        assert ward.parent_id == region.id and ward.history_api_key == "k"


async def test_create_errors(tree):
    # spec 5.1: 400 "Organisation X already exists." / "Parent organisation X not found"
    api = tree
    h = api.auth("root", "a@x.dk", ADMIN)
    url = f"{svc(api)}/organisation"
    r = await api.client.post(url, params={"parent_code": "root"}, json={"code": "clinic"}, headers=h)
    assert_error(r, 400, "Organisation clinic already exists.")
    r = await api.client.post(url, params={"parent_code": "ghost"}, json={"code": "new"}, headers=h)
    assert_error(r, 400, "Parent organisation ghost not found")
    r = await api.client.post(url, json={"code": "new"}, headers=h)  # parent_code is required
    assert_error(r, 400)
    for bad in (
        {},
        {"code": ""},
        {"code": "x", "smsSenderName": "twelve chars"},
        {"code": "x", "poolSize": -1},
    ):
        r = await api.client.post(url, params={"parent_code": "root"}, json=bad, headers=h)
        assert_error(r, 400)
    r = await api.client.post(
        url,
        params={"parent_code": "root"},
        content=b"{not json",
        headers=h | {"content-type": "application/json"},
    )
    assert_error(r, 400)
    async with api.app.state.sessions() as s:
        assert await organisations.by_code(s, "new") is None
        assert await organisations.by_code(s, "x") is None


async def test_update_is_a_full_replace(tree):
    # spec 5.1 PUT: full replace of poolSize, sms*, allowCustomUriWithoutDomain, historyApiKey, webhook
    api = tree
    h = api.auth("root", "a@x.dk", ADMIN)
    url = f"{svc(api)}/organisation/region"
    full = {
        "poolSize": 9,
        "smsSenderName": "Region",
        "smsCallbackUrl": "http://cb/%reference%",
        "allowCustomUriWithoutDomain": True,
        "historyApiKey": "hk",
        "deviceWebhookEndpoint": "http://wh",
        "deviceWebhookEndpointKey": "wk",
    }
    r = await api.client.put(url, json=full, headers=h)
    assert r.status_code == 200
    assert r.json()["poolSize"] == 9 and r.json()["smsCallbackUrl"] == "http://cb/%reference%"
    r = await api.client.put(url, json={"smsSenderName": "Only"}, headers=h)
    assert r.status_code == 200
    body = r.json()
    assert body["poolSize"] == 0 and body["smsSenderName"] == "Only" and body["smsCallbackUrl"] is None
    assert body["allowCustomUriWithoutDomain"] is False and body["deviceWebhookEndpoint"] is None
    async with api.app.state.sessions() as s:
        region = await organisations.by_code(s, "region")
        assert region is not None
        assert region.pool_size is None and region.history_api_key is None
        assert region.device_webhook_endpoint_key is None and region.name == "region"
    assert_error(await api.client.put(f"{svc(api)}/organisation/ghost", json={}, headers=h), 404)


async def test_role_gate_and_token(tree):
    # spec 5.1: v2 needs meeting-admin (else 403); token defects 401 without a body
    api = tree
    r = await api.client.get(f"{svc(api)}/organisation/root", headers=api.auth("root", "u@x.dk", USER))
    assert_error(r, 403)
    r = await api.client.get(f"{svc(api)}/organisation/root")
    assert r.status_code == 401 and r.content == b""
    r = await api.client.post(
        f"{svc(api)}/organisation/root", json={"code": "z"}, headers=api.auth("root", "u@x.dk", USER)
    )
    assert_error(r, 403)


async def test_ancestor_tree(tree):
    # spec 5.1 / 2.2: organisationtree = the ancestor path from the root down to the organisation
    api = tree
    h = api.auth("root", "a@x.dk", ADMIN)
    r = await api.client.get(f"{svc(api)}/organisationtree", params={"organisationCode": "clinic"}, headers=h)
    assert r.status_code == 200
    root = r.json()
    assert (root["code"], root["name"], root["poolSize"]) == ("root", "Root", 0)
    [region] = root["children"]
    assert (region["code"], region["poolSize"]) == ("region", 5)
    [clinic] = region["children"]
    assert clinic["code"] == "clinic" and clinic["children"] == []
    by_group = await api.client.get(
        f"{svc(api)}/organisationtree", params={"groupId": clinic["groupId"]}, headers=h
    )
    assert by_group.json() == root
    by_path = await api.client.get(f"{svc(api)}/organisationtree/clinic", headers=h)
    assert by_path.json() == root
    # the leaf's own children are not part of the ancestor path
    await api.add_org("ward", parent_code="clinic")
    r = await api.client.get(f"{svc(api)}/organisationtree/clinic", headers=h)
    assert r.json()["children"][0]["children"][0]["children"] == []


async def test_tree_parameters(tree):
    # spec 5.1: exactly one of organisationCode / groupId, else 400; unknown -> 404
    api = tree
    h = api.auth("root", "a@x.dk", ADMIN)
    for path in ("organisationtree", "organisationtree-children"):
        url = f"{svc(api)}/{path}"
        assert_error(await api.client.get(url, headers=h), 400)
        r = await api.client.get(url, params={"organisationCode": "root", "groupId": 1}, headers=h)
        assert_error(r, 400)
        r = await api.client.get(url, params={"groupId": "abc"}, headers=h)
        assert_error(r, 400)
        assert_error(await api.client.get(url, params={"organisationCode": "ghost"}, headers=h), 404)
        assert_error(await api.client.get(url, params={"groupId": 987654}, headers=h), 404)


async def test_children_subtree(tree):
    # spec 5.1 organisationtree-children: the subtree rooted at the organisation
    api = tree
    await api.add_org("clinic-2", parent_code="region")
    await api.add_org("ward", parent_code="clinic")
    h = api.auth("root", "a@x.dk", ADMIN)
    r = await api.client.get(
        f"{svc(api)}/organisationtree-children", params={"organisationCode": "region"}, headers=h
    )
    assert r.status_code == 200
    region = r.json()
    assert region["code"] == "region"
    kids = {c["code"]: c for c in region["children"]}
    assert set(kids) == {"clinic", "clinic-2"}
    assert [w["code"] for w in kids["clinic"]["children"]] == ["ward"]
    assert kids["clinic-2"]["children"] == []


async def test_descendants(tree):
    # spec 5.1: [{code}] of the organisation and all its descendants
    api = tree
    await api.add_org("ward", parent_code="clinic")
    h = api.auth("root", "a@x.dk", ADMIN)
    r = await api.client.get(f"{svc(api)}/organisation/region/descendants", headers=h)
    assert r.status_code == 200
    assert sorted(x["code"] for x in r.json()) == ["clinic", "region", "ward"]
    r = await api.client.get(f"{svc(api)}/organisation/ward/descendants", headers=h)
    assert r.json() == [{"code": "ward"}]
    assert_error(await api.client.get(f"{svc(api)}/organisation/ghost/descendants", headers=h), 404)


async def test_tree_endpoints_are_scoped_to_the_callers_tree(tree):
    # spec 5.1: the requested organisation must be the caller's or a descendant, else 401
    api = tree
    clinic_admin = api.auth("clinic", "a@x.dk", ADMIN)
    text = "UserContext organisation is not a parent of the requested organisation."
    for url, params in (
        ("organisationtree", {"organisationCode": "region"}),
        ("organisationtree/region", {}),
        ("organisationtree-children", {"organisationCode": "root"}),
        ("organisation/region/descendants", {}),
        ("organisationtree", {"organisationCode": "other"}),
    ):
        r = await api.client.get(f"{svc(api)}/{url}", params=params, headers=clinic_admin)
        assert_error(r, 401, text)
    # inside the own tree it answers; the ancestor path still reaches up to the root
    r = await api.client.get(f"{svc(api)}/organisationtree/clinic", headers=clinic_admin)
    assert r.status_code == 200 and r.json()["code"] == "root"
    # the plain read is not tree-scoped (spec 5.1)
    r = await api.client.get(f"{svc(api)}/organisation/other", headers=clinic_admin)
    assert r.status_code == 200


async def _si(api, org_code: str, uri: str, status: ProvisionStatus) -> None:
    async with api.app.state.sessions() as s, s.begin():
        org = await organisations.by_code(s, org_code)
        assert org is not None
        number, _, domain = uri.partition("@")
        s.add(
            SchedulingInfo(
                uuid=str(uuid.uuid4()),
                uri_with_domain=uri,
                uri_without_domain=number,
                uri_domain=domain,
                provision_status=status,
                organisation=org,
                created_time=now_utc(),
                vmr_available_before=0,
                max_participants=0,
                end_meeting_on_end_time=False,
            )
        )


async def _template(api, org_code: str, domain: str) -> None:
    async with api.app.state.sessions() as s, s.begin():
        org = await organisations.by_code(s, org_code)
        assert org is not None
        s.add(
            SchedulingTemplate(
                organisation=org,
                conferencing_sys_id=1,
                uri_domain=domain,
                uri_number_range_low=1000,
                uri_number_range_high=9999,
                max_participants=0,
                end_meeting_on_end_time=False,
                created_time=now_utc(),
            )
        )


async def test_organisation_by_uri(tree):
    # spec 5.1 / 4.1: provisioned scheduling info -> booked:true; else the domain's organisation
    # (exact, then a parent domain) -> booked:false; unknown URIs are left out
    api = tree
    await _template(api, "region", "rooms.vdx.test")
    await _template(api, "other", "other.example")
    await _si(api, "clinic", "1234@rooms.vdx.test", ProvisionStatus.PROVISIONED_OK)
    await _si(api, "clinic", "5555@rooms.vdx.test", ProvisionStatus.AWAITS_PROVISION)
    h = api.auth("other", "a@x.dk", ADMIN)
    uris = [
        "1234@rooms.vdx.test",
        "5555@rooms.vdx.test",
        "7777@ROOMS.vdx.test",
        "8@sub.other.example",
        "9@nowhere.test",
        "1234@rooms.vdx.test",
    ]
    r = await api.client.post(f"{svc(api)}/organisation/uri", json=uris, headers=h)
    assert r.status_code == 200, r.text
    got = {x["uri"]: x for x in r.json()}
    assert len(r.json()) == 4
    assert got["1234@rooms.vdx.test"]["code"] == "clinic" and got["1234@rooms.vdx.test"]["booked"] is True
    assert (
        got["1234@rooms.vdx.test"]["name"] == "Clinic" and got["1234@rooms.vdx.test"]["groupName"] == "Clinic"
    )
    assert got["5555@rooms.vdx.test"]["code"] == "region" and got["5555@rooms.vdx.test"]["booked"] is False
    assert got["7777@ROOMS.vdx.test"]["code"] == "region"
    assert got["8@sub.other.example"]["code"] == "other"
    assert "9@nowhere.test" not in got
    assert set(got["1234@rooms.vdx.test"]) == {"code", "name", "groupId", "uri", "booked", "groupName"}
    r = await api.client.post(f"{svc(api)}/organisation/uri", json={"uri": "x"}, headers=h)
    assert_error(r, 400)
    r = await api.client.post(f"{svc(api)}/organisation/uri", json=[], headers=h)
    assert r.status_code == 200 and r.json() == []


async def test_unmatched_paths_under_the_service_use_its_error_body(tree):
    # spec 5.1: the service's error body also when no route matches (found by schemathesis:
    # a code with a control character matched no route and got the video API's framework body)
    api = tree
    h = api.auth("root", "a@x.dk", ADMIN)
    assert_error(await api.client.get(f"{svc(api)}/no-such-thing", headers=h), 404)
    r = await api.client.put(f"{svc(api)}/organisation/a%0Ab", json={}, headers=h)
    assert r.status_code == 404 and set(r.json()) == ERROR_KEYS
    assert_error(await api.client.delete(f"{svc(api)}/organisation/root", headers=h), 405)


async def test_nul_characters_are_bad_input(tree):
    # PostgreSQL cannot store NUL: refused as 400 before any query (found by schemathesis on PG)
    api = tree
    h = api.auth("root", "a@x.dk", ADMIN)
    r = await api.client.get(f"{svc(api)}/organisation", params={"organisationCode": "a\x00b"}, headers=h)
    assert_error(r, 400, "query string: NUL characters are not allowed")
    r = await api.client.get(f"{svc(api)}/organisation/a%00b", headers=h)
    assert_error(r, 400, "URL path: NUL characters are not allowed")
    r = await api.client.post(f"{svc(api)}/organisation/uri", json=["1\x00@x"], headers=h)
    assert_error(r, 400, "body: NUL characters are not allowed")


async def test_tree_for_history_api_key(tree):
    # spec 5.1 organisation-tree-for-api-key: the ancestor tree of the organisation owning a
    # history API key; tree-scoped like the other tree endpoints; only type "history" exists
    api = tree
    h = api.auth("root", "a@x.dk", ADMIN)
    r = await api.client.put(f"{svc(api)}/organisation/clinic", json={"historyApiKey": "hk-1"}, headers=h)
    assert r.status_code == 200
    url = f"{svc(api)}/organisation-tree-for-api-key"
    r = await api.client.post(url, json={"api_key": "hk-1", "api_key_type": "history"}, headers=h)
    assert r.status_code == 200
    assert r.json()["code"] == "root"
    assert r.json()["children"][0]["children"][0]["code"] == "clinic"
    r = await api.client.post(url, json={"api_key": "hk-1", "api_key_type": "sms"}, headers=h)
    assert_error(r, 404)
    r = await api.client.post(url, json={"api_key": "nope", "api_key_type": "history"}, headers=h)
    assert_error(r, 404)
    assert_error(await api.client.post(url, json={"api_key": "", "api_key_type": "history"}, headers=h), 400)
    other = api.auth("other", "a@x.dk", ADMIN)
    r = await api.client.post(url, json={"api_key": "hk-1", "api_key_type": "history"}, headers=other)
    assert_error(r, 401)
