"""A page waiting as a device on one node of a cluster (one ``vdx api``, three ``vdx node``): a SIP
call to the device's alias that reaches another node is sent on with 302 to the node where the
page waits (its heartbeat announces the device), and rings the page there."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from harness.bot import BLUE
from harness.waiting import until
from tests.cluster.conftest import Cluster
from tests.web.conftest import new_page, wait_for
from tests.web.test_join_redirect import coloured_chromium, solid_y4m
from tests.web.test_wait_page import RULE, DeskCaller, sign_in
from vdx.booking.roles import ADMIN

pytestmark = [pytest.mark.cluster, pytest.mark.pg, pytest.mark.slow]


async def test_a_call_for_a_device_goes_to_the_node_where_its_page_waits(
    cluster: Cluster, tmp_path: Path
) -> None:
    admin = cluster.headers(ADMIN)
    ctx = f"{cluster.api.base_url}{cluster.settings.api_context}/node/v1"
    async with httpx.AsyncClient(headers=admin, timeout=20) as http:
        r = await http.post(f"{ctx}/devices", json={"name": "reception"})
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]
        r = await http.put(f"{ctx}/routing-rules/desk", json=RULE)
        assert r.status_code == 201, r.text

    async with coloured_chromium(solid_y4m(tmp_path / "blue.y4m", BLUE)) as browser:
        page = await new_page(browser)
        await sign_in(page, cluster.nodes["node-a"].base_url, secret)
        here = f"127.0.0.1:{cluster.sip_ports['node-a']}"

        # node-b sends the caller to node-a once it has the rule and node-a's heartbeat
        async def sent_on() -> bool:
            answer = await DeskCaller(cluster.sip_ports["node-b"]).answer()
            return answer.status == 302 and here in (answer.get("Contact") or "")

        await until(sent_on, 30, "node-b sends the call for the device to node-a", poll_s=0.5)

        # there it rings the page; declined, the caller hears so
        caller = DeskCaller(cluster.sip_ports["node-a"])
        assert await caller.ringing() == 180
        await wait_for(page, "window.vdxCall.state === 'ringing'", "the page on node-a rings")
        await page.get_by_role("button", name="Decline").click()
        assert await caller.final() == 603
