"""Devices of the point-to-point page through the API: the admins of the organisation that
operates the nodes add them (the secret in that answer only, a hash in the database), list them
without secrets and remove them, every change audited; the nodes check a page's sign-in with their
provisioner token; everyone else is refused."""

from __future__ import annotations

from sqlalchemy import select

from tests.api.test_audit import trail
from vdx.booking.roles import ADMIN, PROVISIONER_USER, USER
from vdx.store.models import Device


async def test_admins_add_list_and_remove_devices(api):
    ops = api.settings.node_organisation
    await api.add_org(ops)
    ctx = f"{api.settings.api_context}/node/v1"
    admin = api.auth(ops, "ops@vdx.test", ADMIN)
    node = api.auth(ops, api.settings.node_email, PROVISIONER_USER)

    r = await api.client.post(f"{ctx}/devices", json={"name": "reception"}, headers=admin)
    assert r.status_code == 201, r.text
    secret = r.json()["secret"]
    assert r.json()["name"] == "reception" and len(secret) >= 32
    async with api.app.state.sessions() as s:
        stored = (await s.scalars(select(Device.secret_hash))).one()
    assert secret not in stored

    listed = (await api.client.get(f"{ctx}/devices", headers=admin)).json()
    assert [d["name"] for d in listed] == ["reception"]
    assert "secret" not in str(listed) and secret not in str(listed) and listed[0]["createdTime"]

    # the nodes check a page's sign-in (which making of the device it is), and read the devices
    # (a page whose device is gone is let go); a wrong secret or name is just not valid
    for name, tried, valid in (
        ("reception", secret, True),
        ("reception", "guess", False),
        ("ghost", secret, False),
    ):
        r = await api.client.post(f"{ctx}/device-sign-in", json={"name": name, "secret": tried}, headers=node)
        assert r.status_code == 200 and r.json()["valid"] is valid, r.text
        assert r.json()["createdTime"] == (listed[0]["createdTime"] if valid else None)
    assert (await api.client.get(f"{ctx}/devices", headers=node)).json() == listed

    # bad input: a clear 4xx with the API's error body, nothing stored
    r = await api.client.post(f"{ctx}/devices", json={"name": "front desk"}, headers=admin)
    assert r.status_code == 400 and r.json()["detailed_error"].startswith("name"), r.text
    r = await api.client.post(f"{ctx}/devices", json={"name": "reception"}, headers=admin)
    assert r.status_code == 409 and "exists" in r.json()["detailed_error"], r.text
    r = await api.client.put(
        f"{ctx}/routing-rules/desk", json={"match": "desk", "replace": "browser:front desk"}, headers=admin
    )
    assert r.status_code == 400 and r.json()["detailed_error"].startswith("replace"), r.text
    r = await api.client.put(
        f"{ctx}/routing-rules/desk", json={"match": "desk", "replace": "browser:reception"}, headers=admin
    )
    assert r.status_code == 201 and r.json()["target"] == "browser", r.text

    assert (await api.client.delete(f"{ctx}/devices/reception", headers=admin)).status_code == 204
    assert (await api.client.delete(f"{ctx}/devices/reception", headers=admin)).status_code == 404
    assert (await api.client.get(f"{ctx}/devices", headers=admin)).json() == []
    r = await api.client.post(
        f"{ctx}/device-sign-in", json={"name": "reception", "secret": secret}, headers=node
    )
    assert r.json()["valid"] is False

    page = await trail(api, org=ops, email="ops@vdx.test")
    changes = [(e["resource"], e["operation"], e["identifier"]) for e in page["entries"]]
    assert ("device", "create", "reception") in changes and ("device", "delete", "reception") in changes
    assert secret not in str(page)


async def test_others_may_not_touch_devices(api):
    ops = api.settings.node_organisation
    await api.add_org(ops)
    await api.add_org("clinic")
    ctx = f"{api.settings.api_context}/node/v1"
    node = api.auth(ops, api.settings.node_email, PROVISIONER_USER)
    for headers in (
        api.auth("clinic", "admin@clinic.test", ADMIN),
        api.auth(ops, "user@vdx.test", USER),
        node,
    ):
        if headers is not node:  # the nodes read the names, and change nothing
            assert (await api.client.get(f"{ctx}/devices", headers=headers)).status_code == 403
        r = await api.client.post(f"{ctx}/devices", json={"name": "d"}, headers=headers)
        assert r.status_code == 403
        assert (await api.client.delete(f"{ctx}/devices/d", headers=headers)).status_code == 403
    other_node = api.auth("clinic", "n@clinic.test", PROVISIONER_USER)
    assert (await api.client.get(f"{ctx}/devices", headers=other_node)).status_code == 403
    for headers in (api.auth(ops, "ops@vdx.test", ADMIN), other_node):
        r = await api.client.post(f"{ctx}/device-sign-in", json={"name": "d", "secret": "x"}, headers=headers)
        assert r.status_code == 403
    assert (await api.client.get(f"{ctx}/devices")).status_code == 401
    assert (await api.client.post(f"{ctx}/devices", json={"name": "d"})).status_code == 401
    assert (
        await api.client.post(f"{ctx}/device-sign-in", json={"name": "d", "secret": "x"})
    ).status_code == 401
