"""Gateway routing rules and outbound trunks through the API: the admins of the organisation
that operates the nodes keep them (every change audited, no password in the trail or in what
admins read back), the nodes read them with their provisioner token, and everyone else is refused."""

from __future__ import annotations

from tests.api.test_audit import trail
from vdx.booking.roles import ADMIN, PROVISIONER_USER, USER


async def test_admins_of_the_node_organisation_keep_rules_and_trunks(api):
    ops = api.settings.node_organisation
    await api.add_org("region")
    await api.add_org(ops, parent_code="region")
    await api.add_org("clinic", parent_code="region")
    node_ctx = f"{api.settings.api_context}/node/v1"
    admin = api.auth(ops, "ops@vdx.test", ADMIN)
    above = api.auth("region", "chief@vdx.test", ADMIN)

    r = await api.client.put(
        f"{node_ctx}/trunks/pbx",
        json={
            "proxy": "pbx.test:5061",
            "transport": "tls",
            "username": "vdx",
            "password": "s3cret",
            "maxCalls": 4,
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    assert r.json()["credentials"] is True and "password" not in r.json()
    rule = {"match": r"(\d{4})@gw\.vdx\.test", "replace": r"sip:\1@pbx.test", "priority": 10, "trunk": "pbx"}
    r = await api.client.put(f"{node_ctx}/routing-rules/to-pbx", json=rule, headers=admin)
    assert r.status_code == 201, r.text
    r = await api.client.put(
        f"{node_ctx}/routing-rules/to-pbx", json=rule | {"sourceNetworks": ["10.0.0.0/8"]}, headers=above
    )
    assert r.status_code == 200, r.text  # replaced, by an admin of an ancestor

    listed = (await api.client.get(f"{node_ctx}/routing-rules", headers=admin)).json()
    assert [(x["name"], x["sourceNetworks"], x["trunk"]) for x in listed] == [
        ("to-pbx", ["10.0.0.0/8"], "pbx")
    ]
    trunks = (await api.client.get(f"{node_ctx}/trunks", headers=admin)).json()
    assert trunks == [
        {
            "name": "pbx",
            "proxy": "pbx.test:5061",
            "transport": "tls",
            "username": "vdx",
            "credentials": True,
            "fromDomain": None,
            "maxCalls": 4,
        }
    ]

    # the nodes read everything, the password too; nobody else reads that
    node = api.auth(ops, api.settings.node_email, PROVISIONER_USER)
    routing = (await api.client.get(f"{node_ctx}/routing", headers=node)).json()
    assert routing["trunks"][0]["password"] == "s3cret" and routing["rules"][0]["name"] == "to-pbx"
    for who in (admin, api.auth("clinic", "node@clinic.test", PROVISIONER_USER)):
        assert (await api.client.get(f"{node_ctx}/routing", headers=who)).status_code == 403

    # bad input: each a clear 400 naming the field, and nothing stored
    for name, body, field in (
        ("bad-re", {"match": "(unclosed", "replace": "sip:x@y"}, "match"),
        ("bad-group", {"match": "(a)", "replace": r"sip:\2@y"}, "replace"),
        ("no-trunk", {"match": "a", "replace": "sip:x@y", "trunk": "nope"}, "trunk"),
        (
            "bad-net",
            {"match": "a", "replace": "sip:x@y", "sourceNetworks": ["10.0.0.0/99"]},
            "sourceNetworks",
        ),
    ):
        r = await api.client.put(f"{node_ctx}/routing-rules/{name}", json=body, headers=admin)
        assert r.status_code == 400 and r.json()["detailed_error"].startswith(field), r.text
    r = await api.client.put(
        f"{node_ctx}/trunks/bad", json={"proxy": "pbx.test", "transport": "sctp"}, headers=admin
    )
    assert r.status_code == 400 and "transport" in r.json()["detailed_error"], r.text
    assert [x["name"] for x in (await api.client.get(f"{node_ctx}/routing-rules", headers=admin)).json()] == [
        "to-pbx"
    ]

    # a trunk a rule uses stays; without the rule it goes
    assert (await api.client.delete(f"{node_ctx}/trunks/pbx", headers=admin)).status_code == 409
    assert (await api.client.delete(f"{node_ctx}/routing-rules/to-pbx", headers=admin)).status_code == 204
    assert (await api.client.delete(f"{node_ctx}/routing-rules/to-pbx", headers=admin)).status_code == 404
    assert (await api.client.delete(f"{node_ctx}/trunks/pbx", headers=admin)).status_code == 204

    # the trail of the node organisation has every change, and no password
    page = await trail(api, org=ops, email="ops@vdx.test")
    changes = [(e["resource"], e["operation"], e["identifier"]) for e in page["entries"]]
    assert sorted(changes) == sorted(
        [
            ("trunk", "create", "pbx"),
            ("routingRule", "create", "to-pbx"),
            ("routingRule", "update", "to-pbx"),
            ("routingRule", "delete", "to-pbx"),
            ("trunk", "delete", "pbx"),
        ]
    )
    assert "s3cret" not in str(page)


async def test_others_may_not_touch_the_rules(api):
    ops = api.settings.node_organisation
    await api.add_org(ops)
    await api.add_org("clinic")
    node_ctx = f"{api.settings.api_context}/node/v1"
    rule = {"match": "a", "replace": "sip:x@y"}
    for headers in (
        api.auth("clinic", "admin@clinic.test", ADMIN),
        api.auth(ops, "user@vdx.test", USER),
        api.auth(ops, api.settings.node_email, PROVISIONER_USER),
    ):
        assert (await api.client.get(f"{node_ctx}/routing-rules", headers=headers)).status_code == 403
        assert (
            await api.client.put(f"{node_ctx}/routing-rules/r", json=rule, headers=headers)
        ).status_code == 403
        assert (await api.client.get(f"{node_ctx}/trunks", headers=headers)).status_code == 403
    assert (await api.client.get(f"{node_ctx}/routing-rules")).status_code == 401
