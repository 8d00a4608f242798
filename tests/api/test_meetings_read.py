"""Reading meetings: by uuid (spec 1.2.5), by URI (1.2.1, 1.2.2, 2.17.4), list/search (1.2.3,
2.17.1), the role matrix (3.3), scoping (3.4) and the short link (2.6)."""

from __future__ import annotations

import uuid

from tests.seed import scheduling_info_of, set_org
from vdx.booking.enums import ProvisionStatus
from vdx.booking.roles import ADMIN, ALL_ROLES, PLANNER, PROVISIONER, PROVISIONER_USER, USER


async def _create(api, org="org1", email="u@x.dk", role=USER, **fields):
    body = {
        "subject": "Visit",
        "startTime": "3025-06-01T10:00:00Z",
        "endTime": "3025-06-01T11:00:00Z",
    } | fields
    r = await api.client.post(f"{api.v2}/meetings", headers=api.auth(org, email, role), json=body)
    assert r.status_code == 200, r.text
    return r.json()


async def _list(api, headers, **params):
    return await api.client.get(f"{api.v2}/meetings", headers=headers, params=params)


async def test_get_by_uuid_scoping(api):
    # spec 1.2.5: 404 unknown; 403 other org, incl. parent and child orgs; only-user must organise
    await api.add_org("org1")
    await api.add_org("child", parent_code="org1")
    await api.add_org("other")
    m = await _create(api, email="owner@x.dk")
    url = f"{api.v2}/meetings/{m['uuid']}"
    assert (await api.client.get(url, headers=api.auth("org1", "owner@x.dk", USER))).status_code == 200
    for role in ALL_ROLES:
        r = await api.client.get(url, headers=api.auth("org1", "x@x.dk", role))
        assert r.status_code == (403 if role == USER else 200), role
    r = await api.client.get(url, headers=api.auth("other", "a@x.dk", ADMIN))
    assert r.status_code == 403
    body = r.json()
    assert (
        body["detailed_error_code"] == "11"
        and body["detailed_error"] is None
        and body["error"] == "Forbidden"
    )
    assert (await api.client.get(url, headers=api.auth("child", "a@x.dk", ADMIN))).status_code == 403
    child_meeting = await _create(api, org="child")
    r = await api.client.get(
        f"{api.v2}/meetings/{child_meeting['uuid']}", headers=api.auth("org1", "a@x.dk", ADMIN)
    )
    assert r.status_code == 403
    r = await api.client.get(f"{api.v2}/meetings/{uuid.uuid4()}", headers=api.auth("org1", "a@x.dk", ADMIN))
    assert (
        r.status_code == 404 and r.json()["detailed_error"] == "Resource: meeting in field: uuid not found."
    )
    r = await api.client.get(f"{api.v2}/meetings/zzz", headers=api.auth("org1", "a@x.dk", ADMIN))
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "10"


async def test_find_by_uri(api):
    # spec 1.2.1 / 1.2.2: any role; org scoping; only-user own; 404 text names uriWithDomain
    await api.add_org("org1")
    await api.add_org("org2")
    m = await _create(api, email="owner@x.dk")
    si = await scheduling_info_of(api, m["uuid"])
    h = api.auth("org1", "p@x.dk", PROVISIONER)
    r = await api.client.get(
        f"{api.v2}/meetings/findByUriWithDomain", headers=h, params={"uri": si.uri_with_domain}
    )
    assert r.status_code == 200 and r.json()["uuid"] == m["uuid"]
    r = await api.client.get(
        f"{api.v2}/meetings/findByUriWithoutDomain", headers=h, params={"uri": si.uri_without_domain}
    )
    assert r.status_code == 200 and r.json()["uuid"] == m["uuid"]
    for path, uri in (
        ("findByUriWithDomain", si.uri_with_domain),
        ("findByUriWithoutDomain", si.uri_without_domain),
    ):
        for headers in (api.auth("org2", "a@x.dk", ADMIN), api.auth("org1", "x@x.dk", USER)):
            r = await api.client.get(f"{api.v2}/meetings/{path}", headers=headers, params={"uri": uri})
            assert r.status_code == 404, path
            assert r.json()["detailed_error"] == "Resource: meeting in field: uriWithDomain not found."
    r = await api.client.get(f"{api.v2}/meetings/findByUriWithDomain", headers=h)
    assert r.status_code == 400  # required query parameter


async def test_find_by_uri_prefers_the_current_meeting(api):
    # spec 2.17.4: after DEPROVISION_OK the number is reused; answer the current one, not a 500
    await api.add_org("org1")
    await set_org(api, "org1", allow_custom_uri_without_domain=True)
    old = await _create(api, uriWithoutDomain="room7", startTime="3025-06-01T10:00:00Z")
    async with api.app.state.sessions() as s, s.begin():
        from sqlalchemy import select

        from vdx.store.models import SchedulingInfo

        si = (await s.execute(select(SchedulingInfo).where(SchedulingInfo.uuid == old["uuid"]))).scalar_one()
        si.provision_status = ProvisionStatus.DEPROVISION_OK
        si.uri_without_domain = None  # what the provisioner's DEPROVISION_OK does (spec 1.3.4)
        si.uri_domain = None
    new = await _create(api, uriWithoutDomain="room7", startTime="3025-01-01T10:00:00Z")
    h = api.auth("org1", "a@x.dk", ADMIN)
    r = await api.client.get(
        f"{api.v2}/meetings/findByUriWithDomain", headers=h, params={"uri": "room7@vdx.test"}
    )
    assert r.status_code == 200 and r.json()["uuid"] == new["uuid"]
    r = await _list(api, h, uriWithDomain="room7@vdx.test")
    assert {x["uuid"] for x in r.json()} == {old["uuid"], new["uuid"]}


async def test_search_needs_a_filter(api):
    # spec 1.2.3: 400/36; empty strings count as absent
    await api.add_org("org1")
    h = api.auth("org1", "a@x.dk", ADMIN)
    for params in ({}, {"subject": "", "label": ""}):
        r = await _list(api, h, **params)
        assert r.status_code == 400 and r.json()["detailed_error_code"] == "36"
        assert (
            r.json()["detailed_error"] == "Must set at least one query parameter, when searching for meeting."
        )


async def test_half_window_is_400_28(api):
    # spec 2.17.1: the reference answers 500; vdx gives the documented 400/28
    await api.add_org("org1")
    h = api.auth("org1", "a@x.dk", ADMIN)
    for params in (
        {"search": "x", "from-start-time": "3025-01-01T00:00:00Z"},
        {"search": "x", "to-start-time": "3025-01-01T00:00:00Z"},
    ):
        r = await _list(api, h, **params)
        assert r.status_code == 400 and r.json()["detailed_error_code"] == "28", params
    # without search a half window is simply no filter: the reference falls through (spec 1.2.3)
    r = await _list(api, h, **{"from-start-time": "3025-01-01T00:00:00Z"})
    assert r.status_code == 400 and r.json()["detailed_error_code"] == "36"
    m = (
        await api.client.post(
            f"{api.v2}/meetings",
            headers=h,
            json={"subject": "s", "startTime": "3025-06-01T10:00:00Z", "endTime": "3025-06-01T11:00:00Z"},
        )
    ).json()
    uri = (await scheduling_info_of(api, m["uuid"])).uri_with_domain
    r = await _list(api, h, **{"to-start-time": "3025-01-01T00:00:00Z", "uriWithDomain": uri})
    assert r.status_code == 200 and [x["uuid"] for x in r.json()] == [m["uuid"]]


async def test_filters_and_precedence(api):
    # spec 1.2.3: short-id > label > subject > organizedBy > search > from/to > uriWithDomain
    await api.add_org("org1")
    a = await _create(
        api, subject="Alpha", labels=["L1"], description="knee", startTime="3025-01-01T10:00:00Z"
    )
    b = await _create(api, subject="Beta", labels=["L2"], email="doc@x.dk", startTime="3025-02-01T10:00:00Z")
    c = await _create(api, subject="Gamma knee", startTime="3025-03-01T10:00:00Z")
    h = api.auth("org1", "a@x.dk", ADMIN)
    ids = lambda r: sorted(x["uuid"] for x in r.json())  # noqa: E731

    assert ids(await _list(api, h, **{"short-id": b["shortId"], "label": "L1"})) == [b["uuid"]]
    assert ids(await _list(api, h, label="L1", subject="Beta")) == [a["uuid"]]
    assert ids(await _list(api, h, subject="Beta", organizedBy="u@x.dk")) == [b["uuid"]]
    assert ids(await _list(api, h, organizedBy="u@x.dk", search="Beta")) == sorted([a["uuid"], c["uuid"]])
    assert ids(await _list(api, h, search="knee")) == sorted([a["uuid"], c["uuid"]])  # subject or description
    assert ids(await _list(api, h, search="KNEE")) == sorted([a["uuid"], c["uuid"]])  # case ignored
    assert ids(await _list(api, h, search="%")) == []  # literal, not a wildcard
    assert ids(await _list(api, h, search="L2")) == [b["uuid"]]  # label component
    assert ids(await _list(api, h, search="doc@x.dk")) == [b["uuid"]]  # organiser component
    si = await scheduling_info_of(api, c["uuid"])
    assert ids(await _list(api, h, search=si.uri_with_domain)) == [c["uuid"]]  # uri component
    # search with both bounds is strict: from < start < to
    r = await _list(
        api,
        h,
        search="knee",
        **{"from-start-time": "3025-01-01T10:00:00Z", "to-start-time": "3025-12-01T00:00:00Z"},
    )
    assert ids(r) == [c["uuid"]]
    # from/to alone is inclusive; it beats uriWithDomain
    r = await _list(
        api,
        h,
        **{
            "from-start-time": "3025-01-01T10:00:00Z",
            "to-start-time": "3025-02-01T10:00:00Z",
            "uriWithDomain": si.uri_with_domain,
        },
    )
    assert ids(r) == sorted([a["uuid"], b["uuid"]])
    r = await _list(
        api,
        h,
        **{"from-start-time": "3025-01-01T11:00:00.5+01:00", "to-start-time": "3025-01-01T11:00:00+01:00"},
    )
    assert ids(r) == [a["uuid"]]  # fractions dropped, offsets honoured
    assert ids(await _list(api, h, uriWithDomain=si.uri_with_domain)) == [c["uuid"]]
    assert (await _list(api, h, subject="Nope")).json() == []


async def test_short_id_lookup(api):
    # spec 1.2.3: exactly 12 chars; 404 unknown; only-admin sees any org; others same org (403)
    await api.add_org("org1")
    await api.add_org("org2")
    m = await _create(api, email="owner@x.dk")
    sid = m["shortId"]
    r = await _list(api, api.auth("org2", "svc@x.dk", ADMIN), **{"short-id": sid})
    assert r.status_code == 200 and [x["uuid"] for x in r.json()] == [m["uuid"]]
    r = await _list(api, api.auth("org2", "svc@x.dk", ADMIN, PLANNER), **{"short-id": sid})
    assert r.status_code == 403
    assert (await _list(api, api.auth("org1", "x@x.dk", USER), **{"short-id": sid})).status_code == 403
    assert (await _list(api, api.auth("org1", "owner@x.dk", USER), **{"short-id": sid})).status_code == 200
    r = await _list(api, api.auth("org1", "a@x.dk", ADMIN), **{"short-id": "000000000000"})
    assert (
        r.status_code == 404
        and r.json()["detailed_error"] == "Resource: meeting in field: shortId not found."
    )
    for bad in ("abc", "0123456789abc"):
        r = await _list(api, api.auth("org1", "a@x.dk", ADMIN), **{"short-id": bad})
        assert r.status_code == 400 and r.json()["detailed_error_code"] == "10", bad


async def test_list_scoping(api):
    # spec 1.2.3 table: only-user -> own organised; others -> org; no other/descendant orgs
    await api.add_org("org1")
    await api.add_org("child", parent_code="org1")
    mine = await _create(api, email="me@x.dk", labels=["x"])
    theirs = await _create(api, email="you@x.dk", labels=["x"])
    await _create(api, org="child", email="me@x.dk", labels=["x"])
    only_user = api.auth("org1", "me@x.dk", USER)
    assert [x["uuid"] for x in (await _list(api, only_user, label="x")).json()] == [mine["uuid"]]
    assert [x["uuid"] for x in (await _list(api, only_user, subject="Visit")).json()] == [mine["uuid"]]
    assert (await _list(api, only_user, organizedBy="you@x.dk")).json() == []
    assert [x["uuid"] for x in (await _list(api, only_user, organizedBy="me@x.dk")).json()] == [mine["uuid"]]
    for role in (ADMIN, PLANNER, PROVISIONER, PROVISIONER_USER):
        r = await _list(api, api.auth("org1", "z@x.dk", role), label="x")
        assert sorted(x["uuid"] for x in r.json()) == sorted([mine["uuid"], theirs["uuid"]]), role
    r = await _list(api, api.auth("org1", "z@x.dk", ADMIN), organizedBy="you@x.dk")
    assert [x["uuid"] for x in r.json()] == [theirs["uuid"]]


async def test_uri_with_domain_scoping(api):
    # spec 1.2.3: provisioner-user -> all orgs; any meeting-user role -> own organised; else org
    await api.add_org("org1")
    await api.add_org("org2")
    m = await _create(api, email="owner@x.dk")
    uri = (await scheduling_info_of(api, m["uuid"])).uri_with_domain
    r = await _list(api, api.auth("org2", "p@x.dk", PROVISIONER_USER), uriWithDomain=uri)
    assert [x["uuid"] for x in r.json()] == [m["uuid"]]
    assert (await _list(api, api.auth("org2", "a@x.dk", ADMIN), uriWithDomain=uri)).json() == []
    assert (await _list(api, api.auth("org1", "a@x.dk", ADMIN, USER), uriWithDomain=uri)).json() == []
    r = await _list(api, api.auth("org1", "owner@x.dk", ADMIN, USER), uriWithDomain=uri)
    assert len(r.json()) == 1
    assert len((await _list(api, api.auth("org1", "a@x.dk", ADMIN), uriWithDomain=uri)).json()) == 1


async def test_read_role_matrix(api):
    # spec 3.3: every role may read; a token without roles is 401; unknown role 403
    await api.add_org("org1")
    m = await _create(api)
    si = await scheduling_info_of(api, m["uuid"])
    urls = [
        (f"{api.v2}/meetings/{m['uuid']}", {}),
        (f"{api.v2}/meetings", {"subject": "Visit"}),
        (f"{api.v2}/meetings/findByUriWithDomain", {"uri": si.uri_with_domain}),
        (f"{api.v2}/meetings/findByUriWithoutDomain", {"uri": si.uri_without_domain}),
    ]
    for url, params in urls:
        for role in (ADMIN, PLANNER, PROVISIONER, PROVISIONER_USER):
            r = await api.client.get(url, headers=api.auth("org1", "r@x.dk", role), params=params)
            assert r.status_code == 200, (url, role)
        assert (await api.client.get(url, params=params)).status_code == 401
        r = await api.client.get(url, headers=api.auth("org1", "r@x.dk", "weird"), params=params)
        assert r.status_code == 403


async def test_short_link_redirects_to_the_portal_link(api):
    # spec 2.6 / architecture "join": {public_url}/s/<shortId> -> 302 portal link, no token
    await api.add_org("org1")
    m = await _create(api)
    si = await scheduling_info_of(api, m["uuid"])
    path = m["shortLink"].removeprefix("http://vdx.test")
    assert path == f"/s/{m['shortId']}"
    r = await api.client.get(path)
    assert r.status_code == 302 and r.headers["location"] == si.portal_link
    r = await api.client.get("/s/ffffffffffff")
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]
    assert "Meeting not found" in r.text
    r = await api.client.get("/s/<script>")
    assert r.status_code == 404 and "<script>" not in r.text


async def test_provisioner_without_organisation_has_no_meetings(api):
    # spec 3.2: a pure provisioner may omit organisation and e-mail; meetings are per organisation,
    # so such a caller is refused (403) rather than shown another organisation's data
    await api.add_org("org1")
    m = await _create(api)
    h = api.auth(None, None, PROVISIONER)
    assert (await api.client.get(f"{api.v2}/info", headers=h)).status_code == 200
    assert (await api.client.get(f"{api.v2}/meetings/{m['uuid']}", headers=h)).status_code == 403
    assert (await _list(api, h, subject="Visit")).status_code == 403


async def test_short_link_hides_the_pin_when_guest_pin_is_required(api):
    # spec 2.6: guestPinRequired tells the short-link page to ask for the PIN
    await api.add_org("org1")
    m = await _create(api, guestPinRequired=True, guestPin=4567)
    si = await scheduling_info_of(api, m["uuid"])
    assert "pin=4567" in si.portal_link  # the stored link (for the booking system) keeps it
    r = await api.client.get(f"/s/{m['shortId']}")
    assert r.status_code == 302
    assert "pin=&" in r.headers["location"] and "4567" not in r.headers["location"]
    assert r.headers["location"].startswith(f"http://vdx.test/join/?conference={si.uri_with_domain}")
