"""Real processes: ``vdx serve`` provisions its own rooms, and ``vdx node`` in its own process is
provisioned over HTTP by ``vdx api`` (the API never calls a node; the node is a
provisioner like any other)."""

from __future__ import annotations

import contextlib
import json
from datetime import timedelta
from types import SimpleNamespace

import httpx
import pytest
import websockets

from harness.ports import free_port
from harness.served import ServedProcess
from harness.waiting import until
from tests.interop.uac import SDP, Uac
from tests.node.booking import book, whole_seconds
from tests.seed import meeting_with_si
from vdx.booking.roles import PROVISIONER_USER
from vdx.services import organisations
from vdx.store.db import create_engine, now_utc, session_factory

pytestmark = pytest.mark.slow


async def _join(ws_url: str, pin: str | None) -> dict:
    async with websockets.connect(ws_url, open_timeout=10) as ws:
        msg: dict = {"type": "join", "displayName": "Probe"}
        if pin is not None:
            msg["pin"] = pin
        # A refused room closes the socket at once: the join may find it closed, but the error
        # sent before the close is still there to read.
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(json.dumps(msg))
        while True:  # other notices (admitted, roster) may come first
            reply: dict = json.loads(await ws.recv())
            if reply.get("type") in ("joined", "error"):
                return reply


async def test_vdx_node_provisions_from_a_remote_api_and_lets_people_in(live_server_factory, tmp_path):
    # The API polls-only here (no NATS in this test): every organisation uses the polling lists.
    server = live_server_factory("api", {"VDX_EVENT_ORGANISATION_FILTER": "-"})
    engine = create_engine(server.settings)
    shim = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(sessions=session_factory(engine))))
    try:
        async with shim.app.state.sessions() as s, s.begin():
            await organisations.create(s, "clinic")
            await organisations.create(s, "vdx-node")  # the organisation of the node's token
        now = whole_seconds(now_utc())
        uuid = await meeting_with_si(
            shim, "clinic", start=now - timedelta(minutes=1), end=now + timedelta(hours=1)
        )
    finally:
        await engine.dispose()

    # the node shares the API's data dir (its dev key) and settings, but has no database: the
    # API is its only source
    inherited = {k: v for k, v in server.env.items() if k.startswith("VDX_") and k != "VDX_DATABASE_URL"}
    node = ServedProcess(server.data_dir, ["node"], log_dir=tmp_path)
    port = node.port
    node.env.update(inherited)
    node.env.update(
        {
            "VDX_HTTP_PORT": str(port),
            "VDX_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "VDX_NODE_API_URL": f"{server.base_url}/api",
            "VDX_NODE_ID": "node-a",
            "VDX_NODE_POLL_INTERVAL": "0.3",
            "VDX_SIP_ENABLED": "true",
            "VDX_SIP_HOST": "127.0.0.1",
            "VDX_SIP_PORT": str(sip_port := free_port()),
            "VDX_SIP_TLS_PORT": "0",
        }
    )
    node.spawn()
    try:
        node.wait_ready()
        headers = {"Authorization": f"Bearer {server.token('vdx-node', 'probe@vdx.test', PROVISIONER_USER)}"}
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=10) as http:

            async def provisioned():
                si = (await http.get(f"/api/v2/scheduling-info/{uuid}")).json()
                return si if si.get("provisionStatus") == "PROVISIONED_OK" else None

            si = await until(provisioned, 30, "the node to provision the meeting")
        alias = si["uriWithDomain"]
        assert si["provisionVmrId"] == f"node-a/{alias}"
        ws = f"ws://127.0.0.1:{port}/ws/rooms/{alias}"
        assert (await _join(ws, None))["code"] == "pin_required"
        joined = await _join(ws, str(si["hostPin"]))
        assert joined["type"] == "joined" and joined["role"] == "host"
        async with httpx.AsyncClient() as http:
            health = (await http.get(f"http://127.0.0.1:{port}/manage/health")).json()
        assert health["components"]["node"]["status"] == "UP" and "db" not in health["components"]
        # neither vdx node nor vdx api offers the demo sign-in, even to this machine (issue 15)
        async with httpx.AsyncClient() as http:
            for base in (f"http://127.0.0.1:{port}", server.base_url):
                body = {"organisation": "clinic", "email": "a@clinic.test", "roles": ["meeting-admin"]}
                assert (await http.post(f"{base}/web/dev-token", json=body)).status_code == 404, base
        # the node's own join link works: the page, what it loads, under the pages' security headers
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            page = await http.get(f"/join/?conference={alias}")
            assert page.status_code == 200 and 'src="/web/static/join.js"' in page.text
            assert "connect-src 'self' ws://127.0.0.1:" in page.headers["content-security-policy"]
            assert page.headers["x-frame-options"] == "DENY"
            for static in ("join.js", "common.js", "i18n.json", "style.css"):
                assert (await http.get(f"/web/static/{static}")).status_code == 200, static
        # Room systems dial the same room on the node's SIP port (issue 5): the PIN room answers
        # 183 with its prompt, the host PIN by INFO admits; an unknown alias gets 404.
        number, domain = alias.split("@")
        sdp = SDP.format(version=1, port=free_port(), proto="RTP/AVP", extra="", direction="sendrecv")
        uac = Uac(sip_port, domain=domain)
        try:
            assert (await uac.early_dialog(number, sdp)).status == 183
            uac.send_digits(number, f"{si['hostPin']}#")
            answer = await uac.final()
            assert answer.status == 200 and "m=audio" in answer.body.decode()
            uac.ack(number)
            assert (await uac.call("BYE", number)).status == 200
            stranger = Uac(sip_port, domain=domain)
            try:
                assert (await stranger.call("INVITE", "1", body=sdp)).status == 404
            finally:
                stranger.close()
        finally:
            uac.close()
    except BaseException:
        print(node.log_tail())
        raise
    finally:
        node.stop()


async def test_vdx_serve_makes_a_booked_room_joinable_without_a_restart(live_server_factory):
    # Issue 4: booking makes the room joinable; the event goes through the server's outbox relay.
    server = live_server_factory()
    engine = create_engine(server.settings)
    shim = SimpleNamespace(
        app=SimpleNamespace(state=SimpleNamespace(sessions=session_factory(engine))), settings=server.settings
    )
    try:
        async with shim.app.state.sessions() as s, s.begin():
            await organisations.create(s, "clinic")
        now = whole_seconds(now_utc())
        uuid, alias = await book(
            shim, "clinic", start=now, end=now + timedelta(hours=1), host_pin=None, guest_pin=None
        )
        _, later_alias = await book(
            shim, "clinic", start=now + timedelta(hours=1), end=now + timedelta(hours=2)
        )
    finally:
        await engine.dispose()
    headers = {"Authorization": f"Bearer {server.token('vdx-node', 'probe@vdx.test', PROVISIONER_USER)}"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=10) as http:

        async def provisioned():
            si = (await http.get(f"/api/v2/scheduling-info/{uuid}")).json()
            return si if si.get("provisionStatus") == "PROVISIONED_OK" else None

        await until(provisioned, 30, "vdx serve to provision the booked meeting")
    ws = server.base_url.replace("http", "ws", 1) + f"/ws/rooms/{alias}"
    joined = await _join(ws, None)
    assert joined["type"] == "joined" and joined["role"] == "host"  # no PINs: everyone is a host
    base = server.base_url.replace("http", "ws", 1)
    assert (await _join(f"{base}/ws/rooms/1@vdx.test", None))["code"] == "not_found"

    async def not_open_yet():  # its event may come a moment after the first one's
        return (await _join(f"{base}/ws/rooms/{later_alias}", None))["code"] == "not_open"

    await until(not_open_yet, 15, "the future meeting's room to answer not_open")
