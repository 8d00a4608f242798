"""A real node for benchmarks: ``python -m vdx serve`` in its own process, and rooms booked in it.

Every benchmark that measures the node (CPU, join time, latency, memory) starts it the same way:
its own ``VDX_DATA_DIR`` (SQLite, dev signing key), free HTTP and SIP ports, an RTP port range of
its own, logs to a file, and its organisation made with the CLI. Meetings are booked through the
booking API with a token printed by ``vdx token`` (the dev key the node trusts), so the node's
provisioner learns the room the way it does in service. The process's CPU time and memory are
read from /proc.

    node = NodeProcess(Path(tmp), {"VDX_MEDIA_FPS": "20"})
    node.setup(); node.start()
    async with httpx.AsyncClient(base_url=node.base) as http:
        room = await book_room(node, http, quality="sd", layout="one_main_seven_pips")
    node.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")
ORG = "bench"
# Settings for rooms without PINs (a SIP caller is answered at once, nobody waits in a lobby):
# what join-time and latency benchmarks measure is the node, not a person typing digits.
NO_PINS = {
    "VDX_TEMPLATE_DEFAULT_HOST_PIN_REQUIRED": "false",
    "VDX_TEMPLATE_DEFAULT_GUEST_PIN_REQUIRED": "false",
}


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_rtp_range(size: int = 400) -> str:
    """An even-based RTP port range unlikely to collide with other nodes on the machine."""
    low = 20000 + 2 * (free_port(socket.SOCK_DGRAM) % 10000)
    return f"{low}-{low + size - 1}"


@dataclass
class Memory:
    """Resident memory of a process, in MiB: RSS (VmRSS), its peak (VmHWM), and what the process
    alone holds (USS = private clean + dirty pages, from smaps_rollup) and PSS."""

    rss: float
    hwm: float
    uss: float | None
    pss: float | None


def memory_of(pid: int) -> Memory:
    status = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            status[key] = int(value.split()[0]) / 1024
    uss = pss = None
    with contextlib.suppress(OSError):
        rollup = {}
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            key, _, value = line.partition(":")
            parts = value.split()
            if parts and parts[0].isdigit():
                rollup[key] = int(parts[0]) / 1024
        uss = rollup.get("Private_Clean", 0.0) + rollup.get("Private_Dirty", 0.0)
        pss = rollup.get("Pss")
    return Memory(status["VmRSS"], status["VmHWM"], uss, pss)


class NodeProcess:
    """``python -m vdx serve`` with this checkout's ``src`` and settings of its own.

    ``settings`` are extra ``VDX_*`` variables (they win over the defaults below); no ``VDX_*``
    variable of the caller's environment leaks in."""

    def __init__(self, data_dir: Path, settings: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.sip_port = free_port(socket.SOCK_DGRAM)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VDX_")}
        self.env.update(
            {
                "PYTHONPATH": str(ROOT / "src"),
                "VDX_DATA_DIR": str(data_dir),
                "VDX_HTTP_HOST": "127.0.0.1",
                "VDX_HTTP_PORT": str(self.port),
                "VDX_PUBLIC_URL": f"http://127.0.0.1:{self.port}",
                "VDX_SIP_DOMAIN": "bench.vdx",
                "VDX_LOG_LEVEL": "WARNING",
                "VDX_ICE_HOST_ADDRESSES": "127.0.0.1",
                "VDX_SIP_HOST": "127.0.0.1",
                "VDX_SIP_PORT": str(self.sip_port),
                "VDX_SIP_TLS_PORT": "0",
                "VDX_RTP_PORTS": free_rtp_range(),
            }
        )
        self.env.update(settings or {})
        if "VDX_SIP_PORT" in (settings or {}):
            self.sip_port = int(self.env["VDX_SIP_PORT"])
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir / f"node-{self.port}.log"
        self._tokens: dict[tuple[str, ...], str] = {}

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "the node is not running"
        return self.proc.pid

    def cli(self, *args: str) -> str:
        """Run ``python -m vdx ...`` against this node's data directory; returns its stdout."""
        done = subprocess.run(
            [sys.executable, "-m", "vdx", *args], env=self.env, capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"vdx {' '.join(args)} failed: {done.stderr[-1500:]}")
        return done.stdout

    def setup(self) -> None:
        """A fresh data directory: the schema and the benchmark's organisation."""
        self.cli("migrate")
        self.cli("org", "add", ORG, "--name", "Benchmark")

    def token(self, *roles: str) -> str:
        """A bearer token from ``vdx token`` (signed with this data directory's dev key)."""
        key = tuple(sorted(roles))
        if key not in self._tokens:
            args = ["token", "--org", ORG, "--email", "bench@bench.vdx", "--ttl", "7200"]
            for role in roles:
                args += ["--role", role]
            self._tokens[key] = self.cli(*args).strip()
        return self._tokens[key]

    def headers(self, *roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(*roles)}"}

    def start(self, deadline_s: float = 180.0) -> float:
        """Start ``vdx serve`` and wait until it answers its health check; returns the seconds
        that took (a busy shared machine starts slowly, hence the long deadline)."""
        t0 = time.monotonic()
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "vdx", "serve"], env=self.env, stdout=fh, stderr=fh
            )
        deadline = t0 + deadline_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited:\n{self.log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/manage/health", timeout=1).status_code == 200:
                    return time.monotonic() - t0
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("node did not start")

    def cpu_seconds(self) -> float:
        """User + system time of the node process, all its threads."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def memory(self) -> Memory:
        return memory_of(self.pid)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> NodeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Room:
    """A booked meeting as the node sees it."""

    alias: str  # uriWithDomain, e.g. 12345678@bench.vdx
    host_pin: int | None
    guest_pin: int | None
    portal_link: str | None
    uuid: str

    @property
    def number(self) -> str:
        """What a SIP caller dials: the alias's user part."""
        return self.alias.split("@", 1)[0]


async def book_room(
    node: NodeProcess,
    http: httpx.AsyncClient,
    quality: str = "sd",
    layout: str | None = None,
    max_participants: int = 20,
    **fields: object,
) -> Room:
    """A meeting through the booking API (now, for two hours). Extra ``fields`` go into the body
    as they are (e.g. ``guestPinRequired=False``)."""
    now = datetime.now(UTC).replace(microsecond=0)
    body: dict[str, object] = {
        "subject": "Benchmark",
        "startTime": now.isoformat(),
        "endTime": (now + timedelta(hours=2)).isoformat(),
        "uuid": str(uuid.uuid4()),
        "maxParticipants": max_participants,
        "vmrQuality": quality,
        **fields,
    }
    if layout is not None:
        body["hostView"] = layout
    planner = node.headers("meeting-planner")
    r = await http.post("/api/v2/meetings", json=body, headers=planner)
    r.raise_for_status()
    r = await http.get(f"/api/v2/scheduling-info/{body['uuid']}", headers=planner)
    r.raise_for_status()
    si = r.json()
    return Room(
        alias=si["uriWithDomain"],
        host_pin=si.get("hostPin"),
        guest_pin=si.get("guestPin"),
        portal_link=si.get("portalLink"),
        uuid=str(body["uuid"]),
    )


async def wait_room_known(
    node: NodeProcess, http: httpx.AsyncClient, room: Room, deadline_s: float = 30.0
) -> float:
    """Wait until the node's provisioner has the room (it reports PROVISIONED_OK on the booking,
    after putting it in its directory); returns the seconds waited. Until then a caller is told
    the room does not exist."""
    t0 = time.monotonic()
    planner = node.headers("meeting-planner")
    while True:
        r = await http.get(f"/api/v2/scheduling-info/{room.uuid}", headers=planner)
        r.raise_for_status()
        status = r.json().get("provisionStatus")
        if status == "PROVISIONED_OK":
            return time.monotonic() - t0
        if time.monotonic() - t0 > deadline_s:
            raise RuntimeError(f"the node did not provision room {room.alias} (status {status})")
        await asyncio.sleep(0.05)


async def conference_status(node: NodeProcess, http: httpx.AsyncClient, alias: str) -> dict[str, object]:
    r = await http.get(f"/api/node/v1/conferences/{alias}", headers=node.headers("meeting-admin"))
    r.raise_for_status()
    status: dict[str, object] = r.json()
    return status
