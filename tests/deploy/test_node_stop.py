"""What ``systemctl stop vdx-node@ID`` does to the calls in the node's rooms: the unit sends
SIGTERM (``KillSignal``) and waits ``TimeoutStopSec`` before it kills. In that time the node ends
its calls cleanly: a SIP caller gets a BYE, a browser's socket closes as a service restart (the
join page then rejoins elsewhere), and the process exits by itself, cleanly."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import websockets

from harness.ports import free_port
from harness.waiting import until
from tests.cluster.conftest import Cluster
from tests.interop.uac import SDP, Uac

pytestmark = [pytest.mark.interop, pytest.mark.nats, pytest.mark.slow]

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "vdx-node@.service"


def _unit_stop_timeout() -> float:
    found = re.search(r"^TimeoutStopSec=(\d+)$", UNIT.read_text(), re.MULTILINE)
    assert found and re.search(r"^KillSignal=SIGTERM$", UNIT.read_text(), re.MULTILINE)
    return float(found.group(1))


@pytest.fixture
async def one_node(tmp_path: Path, database_url: str | None) -> AsyncIterator[Cluster]:
    c = Cluster(tmp_path, database_url, node_ids=("node-a",))  # SQLite when None
    async with c.serving():
        yield c


async def test_sigterm_ends_the_nodes_calls_cleanly_within_the_units_stop_timeout(one_node: Cluster) -> None:
    uuid, alias = await one_node.book()
    await one_node.provisioned(uuid)
    node = one_node.nodes["node-a"]
    number, domain = alias.split("@")

    uac = Uac(one_node.sip_ports["node-a"], domain=domain)
    sdp = SDP.format(version=1, port=free_port(), proto="RTP/AVP", extra="", direction="sendrecv")
    try:
        answer = await uac.call("INVITE", number, body=sdp)
        assert answer.status == 200, answer
        uac.ack(number)
        async with websockets.connect(one_node.ws_url("node-a", alias), open_timeout=10) as ws:
            await ws.send(json.dumps({"type": "join", "displayName": "Browser"}))

            async def joined() -> bool:
                return json.loads(await ws.recv()).get("type") == "joined"

            await until(joined, 15, "the browser in the room")

            assert node.proc is not None
            node.proc.terminate()  # what systemd sends (KillSignal=SIGTERM)

            seen: list[dict] = []

            async def socket_ended() -> bool:
                try:
                    seen.append(json.loads(await asyncio.wait_for(ws.recv(), 1)))
                except TimeoutError:
                    return False
                except websockets.ConnectionClosed:
                    return True
                return False

            await until(socket_ended, _unit_stop_timeout(), lambda: f"the browser's socket to end: {seen}")
            # A browser is told the node goes: its socket closes with 1012 "service restart"
            # (uvicorn closes sockets before the rooms end) or after a bye node_shutdown. Either
            # way no bye ends the call for good, so the join page rejoins by itself.
            byes = [m for m in seen if m.get("type") == "bye"]
            assert ws.close_code == 1012 or [b.get("reason") for b in byes] == ["node_shutdown"], (
                seen,
                ws.close_code,
            )

        async def bye_to_caller() -> bool:
            data = await asyncio.to_thread(uac.recv_raw)
            return data is not None and data.startswith(b"BYE ")

        await until(bye_to_caller, _unit_stop_timeout(), "the SIP caller's BYE")
        proc = node.proc
        await until(lambda: proc.poll() is not None, _unit_stop_timeout(), "the node to exit by itself")
        # uvicorn ends by raising the SIGTERM it caught again, after its shutdown: systemd counts
        # an exit by SIGTERM as clean (no failed state, no restart)
        assert proc.returncode in (0, -signal.SIGTERM), node.log_tail()
        assert "Application shutdown complete" in node.log_tail()
    finally:
        uac.close()
