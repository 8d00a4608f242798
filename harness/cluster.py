"""A cluster on this machine, for tests and benchmarks: its own throwaway nats-server (JetStream),
a PostgreSQL database, one ``vdx api`` and ``vdx node`` processes (node-a, node-b, node-c unless
told), each with its own HTTP, SIP and RTP ports on 127.0.0.1, all sharing one data directory (the
dev key their tokens are signed with). Meetings are booked through the booking API, as an
integration books them; their CREATE events reach the nodes over NATS.

    cluster = Cluster(tmp, database_url)                  # a migrated database
    await cluster.up()
    uuid, alias = await cluster.book()                    # a meeting open now, clinic org, no PINs
    si = await cluster.provisioned(uuid)                  # PROVISIONED_OK by its host
    host = cluster.host_of(si)                            # "node-b"
    cluster.kill(host); cluster.start(host)               # SIGKILL, start again (same ports)
    cluster.nats.stop(); cluster.nats.start()             # NATS outage
    await cluster.view("node-a", alias)                   # GET /manage/cluster?alias=
    await cluster.down()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import uuid as uuidlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import websockets

from harness.nats import NatsServer
from harness.ports import free_port
from harness.served import ServedProcess
from harness.waiting import until
from vdx.booking.roles import PLANNER, PROVISIONER_USER
from vdx.services import organisations
from vdx.settings import Settings
from vdx.store.db import create_engine, now_utc, session_factory

NODE_IDS = ("node-a", "node-b", "node-c")
ORG = "clinic"
# Meetings without PINs unless a booking names them: a caller is let in at once.
NO_PINS = {
    "VDX_TEMPLATE_DEFAULT_HOST_PIN_REQUIRED": "false",
    "VDX_TEMPLATE_DEFAULT_GUEST_PIN_REQUIRED": "false",
}


def _camel(name: str) -> str:
    """A booking field as the API spells it: ``enable_overlay_text`` -> ``enableOverlayText``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class Cluster:
    """The processes of one cluster and what tests and benchmarks do with them."""

    def __init__(self, tmp: Path, database_url: str, node_ids: tuple[str, ...] = NODE_IDS) -> None:
        self.tmp = tmp
        self.data_dir = tmp / "data"
        self.nats = NatsServer(tmp / "nats")
        self.name = f"t{uuidlib.uuid4().hex[:10]}"  # the cluster's bucket prefix
        self.settings = Settings(
            data_dir=self.data_dir,
            database_url=database_url,
            nats_url=self.nats.url,
            sip_domain="vdx.test",
            cluster_name=self.name,
        )
        common = {
            "VDX_LOG_FORMAT": "text",
            "VDX_SIP_DOMAIN": "vdx.test",
            "VDX_NATS_URL": self.nats.url,
            "VDX_CLUSTER_NAME": self.name,  # `vdx nodes`, `vdx node drain` from the api's env too
            "VDX_NODE_CAPACITY": "20",  # no start-up self-test: three nodes start at once
        }
        self.api = ServedProcess(
            self.data_dir,
            ["api"],
            common | NO_PINS,
            database_url=database_url,
            settings=self.settings,
            log_dir=tmp,
        )
        self.sip_ports: dict[str, int] = {}
        self.nodes: dict[str, ServedProcess] = {}
        for node_id in node_ids:
            node = ServedProcess(self.data_dir, ["node"], common, settings=self.settings, log_dir=tmp)
            self.sip_ports[node_id] = sip = free_port()
            node.env.update(
                {
                    "VDX_NODE_API_URL": f"{self.api.base_url}/api",
                    "VDX_NODE_ID": node_id,
                    "VDX_NODE_POLL_INTERVAL": "1",
                    "VDX_SIP_ENABLED": "true",
                    "VDX_SIP_HOST": "127.0.0.1",
                    "VDX_SIP_PORT": str(sip),
                    "VDX_SIP_TLS_PORT": "0",
                    "VDX_ICE_HOST_ADDRESSES": "127.0.0.1",
                }
            )
            self.nodes[node_id] = node
        self._engine = create_engine(self.settings)
        self._sessions = session_factory(self._engine)
        self._paused: set[str] = set()

    # --- life cycle -----------------------------------------------------------------------------------
    async def up(self) -> None:
        self.nats.start()
        async with self._sessions() as s, s.begin():
            await organisations.create(s, ORG)
            await organisations.create(s, self.settings.node_organisation)  # the nodes' token's
        # all at once: a node retries its API until the API answers
        processes = [self.api, *self.nodes.values()]
        for process in processes:
            process.spawn()
        await asyncio.gather(*(asyncio.to_thread(p.wait_ready, 240) for p in processes))
        await until(self._all_ready, 60, "every node to be in step with the API")
        await until(self._all_see_all, 30, "every node to see the others in the registry")

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[Cluster]:
        """Up for the block and down after it; the processes' logs are printed when it does not
        come up or the block fails."""
        try:
            await self.up()
            yield self
        except BaseException:
            print(self.logs_tail())
            raise
        finally:
            await self.down()

    async def down(self) -> None:
        for node in self.nodes.values():
            self.resume_if_paused(node)
            node.stop()
        self.api.stop()
        self.nats.stop()
        await self._engine.dispose()

    async def _all_ready(self) -> bool:
        for node_id in self.running():
            if (await self.health(node_id))["components"]["node"]["status"] != "UP":
                return False
        return True

    async def _all_see_all(self) -> bool:
        for node_id, node in self.nodes.items():
            if node.proc is None:
                continue
            view = await self.view(node_id)
            if not set(self.running()) <= set(view.get("nodes", [])) | {node_id}:
                return False
        return True

    async def settled(self, deadline_s: float = 30) -> None:
        """Until every running node sees every other in the registry (after a start)."""
        await until(self._all_see_all, deadline_s, "every node to see the others in the registry")

    def running(self) -> list[str]:
        return [i for i, n in self.nodes.items() if n.proc is not None and n.proc.poll() is None]

    def kill(self, node_id: str) -> None:
        """SIGKILL: the node stops heart-beating without a word."""
        self.nodes[node_id].kill()
        self.nodes[node_id].proc = None

    def start(self, node_id: str, timeout_s: float = 240) -> None:
        """(Re)start a node on its ports (blocking; wrap in asyncio.to_thread in async code)."""
        self.nodes[node_id].start(timeout_s)

    def pause(self, node_id: str) -> None:
        proc = self.nodes[node_id].proc
        assert proc is not None
        proc.send_signal(signal.SIGSTOP)
        self._paused.add(node_id)

    def resume(self, node_id: str) -> None:
        proc = self.nodes[node_id].proc
        assert proc is not None
        proc.send_signal(signal.SIGCONT)
        self._paused.discard(node_id)

    def resume_if_paused(self, node: ServedProcess) -> None:
        if node.proc is not None and node.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                node.proc.send_signal(signal.SIGCONT)

    # --- bookings -------------------------------------------------------------------------------------
    def headers(self, *roles: str, org: str | None = None) -> dict[str, str]:
        """A bearer for the API: the nodes' provisioner by default, else someone of ``org``."""
        roles = roles or (PROVISIONER_USER,)
        if org is None:
            token = self.api.token(self.settings.node_organisation, "probe@vdx.test", *roles)
        else:
            token = self.api.token(org, "planner@vdx.test", *roles)
        return {"Authorization": f"Bearer {token}"}

    async def book(
        self, start: datetime | None = None, end: datetime | None = None, **si_fields: Any
    ) -> tuple[str, str]:
        """A meeting of the clinic booked through ``POST /api/v2/meetings`` (its CREATE event goes
        over NATS), open now unless ``start`` says otherwise; no PINs unless given. ``si_fields``
        are the booking's room settings in either spelling (``enable_overlay_text=False``,
        ``vmrQuality="sd"``); None leaves a field to the template. Returns (uuid, alias)."""
        now = now_utc().replace(microsecond=0)
        start = start or now - timedelta(minutes=1)
        uuid = str(uuidlib.uuid4())
        body: dict[str, Any] = {
            "subject": "Booked for the cluster",
            "startTime": start.isoformat(),
            "endTime": (end or start + timedelta(hours=1)).isoformat(),
            "uuid": uuid,
        }
        body |= {_camel(k): v for k, v in si_fields.items() if v is not None}
        planner = self.headers(PLANNER, org=ORG)
        async with httpx.AsyncClient(base_url=self.api.base_url, headers=planner, timeout=20) as http:
            r = await http.post("/api/v2/meetings", json=body)
            assert r.status_code in (200, 201), f"booking refused: {r.status_code} {r.text}"
            r = await http.get(f"/api/v2/scheduling-info/{uuid}")
            assert r.status_code == 200, r.text
        return uuid, str(r.json()["uriWithDomain"])

    async def end(self, uuid: str) -> None:
        """End the meeting now (``PATCH`` its endTime: an UPDATE event); its node retires the room
        and releases its placement (a provisioned meeting cannot be deleted)."""
        planner = self.headers(PLANNER, org=ORG)
        body = {"endTime": now_utc().replace(microsecond=0).isoformat()}
        async with httpx.AsyncClient(base_url=self.api.base_url, headers=planner, timeout=20) as http:
            r = await http.patch(f"/api/v2/meetings/{uuid}", json=body)
        assert r.status_code == 200, f"update refused: {r.status_code} {r.text}"

    async def scheduling_info(self, uuid: str) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.api.base_url, headers=self.headers(), timeout=10) as http:
            r = await http.get(f"/api/v2/scheduling-info/{uuid}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def provisioned(
        self, uuid: str, deadline: float = 30, *, on: str | None = None, away_from: str | None = None
    ) -> dict[str, Any]:
        """The scheduling info once PROVISIONED_OK (by node ``on``, or by any but ``away_from``)."""

        async def check() -> dict[str, Any] | None:
            si = await self.scheduling_info(uuid)
            if si.get("provisionStatus") != "PROVISIONED_OK":
                return None
            host = self.host_of(si)
            return si if (on is None or host == on) and host != away_from else None

        what = (
            f"{uuid} provisioned"
            + (f" on {on}" if on else "")
            + (f" away from {away_from}" if away_from else "")
        )
        result: dict[str, Any] = await until(check, deadline, what)
        return result

    @staticmethod
    def host_of(si: dict[str, Any]) -> str:
        """The node a scheduling info's ``provisionVmrId`` names."""
        return str(si.get("provisionVmrId") or "").rsplit("/", 1)[0]

    # --- what a node says -----------------------------------------------------------------------------
    async def view(self, node_id: str, alias: str | None = None) -> dict[str, Any]:
        """The node's ``GET /manage/cluster`` (hosted rooms, live nodes, a room's route)."""
        params = {"alias": alias} if alias else None
        async with httpx.AsyncClient(timeout=5) as http:
            r = await http.get(f"{self.nodes[node_id].base_url}/manage/cluster", params=params)
        body: dict[str, Any] = r.json()
        return body

    async def health(self, node_id: str) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=5) as http:
            body: dict[str, Any] = (await http.get(f"{self.nodes[node_id].base_url}/manage/health")).json()
        return body

    def ws_url(self, node_id: str, alias: str) -> str:
        return f"{self.nodes[node_id].ws_base}/ws/rooms/{alias}"

    def log(self, node_id: str) -> str:
        return self.nodes[node_id].log.read_text(errors="replace") if self.nodes[node_id].log.exists() else ""

    def logs_tail(self) -> str:
        return "\n".join(f"--- {i}\n{n.log_tail(4000)}" for i, n in self.nodes.items())


async def join(ws_url: str, pin: str | None = None, name: str = "Probe") -> dict[str, Any]:
    """Join a room and leave at once: the first ``joined`` or ``error`` reply."""
    async with websockets.connect(ws_url, open_timeout=10) as ws:
        return await join_on(ws, pin, name)


async def join_on(ws: Any, pin: str | None = None, name: str = "Probe") -> dict[str, Any]:
    """Send the join on an open WebSocket; the ``joined`` or ``error`` reply."""
    msg: dict[str, Any] = {"type": "join", "displayName": name}
    if pin is not None:
        msg["pin"] = pin
    with contextlib.suppress(websockets.ConnectionClosed):
        await ws.send(json.dumps(msg))
    while True:  # other notices (admitted, roster) may come first
        reply: dict[str, Any] = json.loads(await ws.recv())
        if reply.get("type") in ("joined", "error"):
            return reply
