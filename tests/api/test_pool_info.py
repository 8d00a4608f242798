"""``GET /v2/pool`` (spec 1.5, 2.13, 3.3, 4.2)."""

from __future__ import annotations

from datetime import timedelta

from tests import seed
from vdx.booking.enums import ProvisionStatus
from vdx.booking.roles import ALL_ROLES, USER
from vdx.store.db import now_utc


async def pool(api, headers=None):
    r = await api.client.get(f"{api.v2}/pool", headers=headers or api.auth("org1", "u@org1.dk", USER))
    assert r.status_code == 200, r.text
    return {p["organisationId"]: p for p in r.json()}


async def test_every_role_reads_the_pool(api_factory):
    # spec 3.3: GET /v2/pool is open to every role
    api = await api_factory(event_organisation_filter="-")
    await api.add_org("org1", pool_size=1)
    for role in ALL_ROLES:
        r = await api.client.get(f"{api.v2}/pool", headers=api.auth("org1", "x@org1.dk", role))
        assert r.status_code == 200, role
        assert [p["organisationId"] for p in r.json()] == ["org1"]


async def test_one_entry_per_polling_pool_organisation(api_factory):
    # spec 1.5: organisations with poolSize > 0 only; desiredPoolSize = poolSize
    api = await api_factory(event_organisation_filter="-")
    await api.add_org("org1", pool_size=3)
    await api.add_org("org2", pool_size=1, parent_code="org1")
    await api.add_org("nopool")
    await api.add_org("zeropool", pool_size=0)
    infos = await pool(api)
    assert set(infos) == {"org1", "org2"}
    assert infos["org1"]["desiredPoolSize"] == 3 and infos["org2"]["desiredPoolSize"] == 1
    assert infos["org1"]["availablePoolSize"] == 0 and infos["org1"]["schedulingInfoList"] == []
    assert infos["org1"]["schedulingTemplate"] is None


async def test_event_driven_organisations_are_left_out(api_factory):
    # spec 1.5 / 4.2: organisations served by the new provisioner are not in the pool list;
    # an empty filter means every organisation uses events
    api = await api_factory(event_organisation_filter="org2")
    await api.add_org("org1", pool_size=3)
    await api.add_org("org2", pool_size=2)
    assert set(await pool(api)) == {"org1"}
    everyone_events = await api_factory()
    assert await pool(everyone_events) == {}


async def test_available_counts_only_free_provisioned_vmrs(api_factory):
    # spec 1.5: availablePoolSize = SIs with no meeting, no reservation, PROVISIONED_OK;
    # schedulingInfoList = those SIs, newest createdTime first
    api = await api_factory(event_organisation_filter="-")
    await api.add_org("org1", pool_size=5)
    await api.add_org("org2", pool_size=5)
    now = now_utc()
    older = (await seed.pool_vmr(api, "org1", created_time=now - timedelta(hours=2))).uuid
    newest = (await seed.pool_vmr(api, "org1", created_time=now - timedelta(minutes=1))).uuid
    middle = (await seed.pool_vmr(api, "org1", created_time=now - timedelta(hours=1))).uuid
    await seed.pool_vmr(api, "org1", attached=True)  # taken by an ad-hoc meeting
    await seed.pool_vmr(api, "org1", reservation_id="11111111-1111-4111-8111-111111111111")  # reserved
    await seed.pool_vmr(api, "org1", status=ProvisionStatus.AWAITS_PROVISION)  # not ready yet
    await seed.pool_vmr(api, "org1", status=ProvisionStatus.PROVISION_PROBLEMS)
    await seed.pool_vmr(api, "org1", status=ProvisionStatus.DEPROVISION_OK)
    await seed.meeting_with_si(api, "org1", status=ProvisionStatus.PROVISIONED_OK)  # a meeting VMR
    other = (await seed.pool_vmr(api, "org2")).uuid
    infos = await pool(api)
    org1 = infos["org1"]
    assert org1["availablePoolSize"] == 3
    assert [si["uuid"] for si in org1["schedulingInfoList"]] == [newest, middle, older]
    assert all(
        si["meetingDetails"] is None and si["provisionStatus"] == "PROVISIONED_OK"
        for si in org1["schedulingInfoList"]
    )
    assert org1["schedulingInfoList"][0]["_links"]["self"]["href"].endswith(f"/scheduling-info/{newest}")
    assert infos["org2"]["availablePoolSize"] == 1
    assert [si["uuid"] for si in infos["org2"]["schedulingInfoList"]] == [other]


async def test_template_is_pool_template_else_default_else_null(api_factory):
    # spec 1.5 / 2.3: the organisation's pool template, else its default template, else null
    api = await api_factory(event_organisation_filter="-")
    for code in ("withpool", "withdefault", "withnone", "deletedpool"):
        await api.add_org(code, pool_size=1)
    await seed.template(api, "withpool", is_default_template=True, uri_prefix="default")
    pool_t = await seed.template(api, "withpool", is_pool_template=True, uri_prefix="pool")
    default_t = await seed.template(api, "withdefault", is_default_template=True)
    await seed.template(api, "withdefault")
    await seed.template(api, "withnone")
    await seed.template(api, None, is_default_template=True)  # shared: not the org's
    await seed.template(api, "deletedpool", is_pool_template=True, deleted_time=now_utc())
    fallback = await seed.template(api, "deletedpool", is_default_template=True)
    infos = await pool(api, api.auth("withnone", "u@x.dk", USER))
    assert infos["withpool"]["schedulingTemplate"]["id"] == pool_t
    assert infos["withpool"]["schedulingTemplate"]["uriPrefix"] == "pool"
    assert infos["withdefault"]["schedulingTemplate"]["id"] == default_t
    assert infos["withnone"]["schedulingTemplate"] is None
    assert infos["deletedpool"]["schedulingTemplate"]["id"] == fallback
    assert infos["withpool"]["schedulingTemplate"]["_links"]["self"]["href"].endswith(
        f"/scheduling-templates/{pool_t}"
    )
