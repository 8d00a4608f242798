"""A host on the join page calls someone into the room (issue 19): the page's form asks the
conference control API with the host's participant token, and the page says how the call goes,
here that the dialled party (SIPp) is busy; a bad address gets the API's reason. Guests see no
such form."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from harness.ports import free_port, free_sip_port
from tests.interop.conftest import sipp_answering
from vdx.conference.policy import RoomConfig

from .conftest import check_accessibility, new_page, running_node, wait_for
from .test_join import join, portal_link

ALIAS = "55550019@vdx.test"


async def test_a_host_dials_from_the_join_page_and_sees_how_it_goes(
    settings_factory: Any, browser: Any, tmp_path: Path
) -> None:
    sip = {
        "sip_enabled": True,
        "sip_host": "127.0.0.1",
        "sip_port": free_sip_port(),
        "sip_tls_port": 0,
    }
    async with running_node(settings_factory, **sip) as web:
        web.rooms.put(RoomConfig(alias=ALIAS, host_pin="1111", guest_pin="2222"))
        host = await new_page(browser)
        await join(host, portal_link(web, ALIAS, pin=1111), "Host")
        assert await host.locator("#dial-form").is_visible()
        await check_accessibility(host, "join page, host with the dial form")

        await host.get_by_label("Call someone into the meeting (SIP address)").fill("not a sip address")
        await host.get_by_role("button", name="Call", exact=True).click()
        await wait_for(host, "!document.getElementById('problem').hidden", "the refusal on the page")
        assert "The call could not be made" in await host.locator("#problem").inner_text()

        port = free_port(socket.SOCK_DGRAM)
        sipp = await sipp_answering(tmp_path, "dialled_busy.xml", listen=port)
        await host.get_by_label("Call someone into the meeting (SIP address)").fill(
            f"interpreter@127.0.0.1:{port}"
        )
        await host.get_by_role("button", name="Call", exact=True).click()
        await wait_for(
            host,
            "document.getElementById('status').textContent.includes('is busy or declined the call')",
            "the busy dial-out on the page",
        )
        assert f"interpreter@127.0.0.1:{port} is busy" in await host.locator("#status").inner_text()
        assert (await sipp).returncode == 0

        guest = await new_page(browser)
        await join(guest, portal_link(web, ALIAS, pin=2222), "Guest")
        assert not await guest.locator("#dial-form").is_visible()
