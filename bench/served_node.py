"""A real node for the media benchmarks: ``python -m vdx serve`` in its own process (its CPU time
read from /proc, all threads), rooms booked through the booking API, and the run's bookkeeping
(machine description, min/median/max)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import httpx

from vdx.api.tokens import mint_token
from vdx.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {msg}", flush=True)


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_cpu() -> float:
    """CPU seconds of this process (the load generator), all threads."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def summarise(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "av": av.__version__,
        "load_avg_at_start": os.getloadavg(),
    }


# Settings for rooms without PINs (a SIP caller is answered at once, nobody waits in a lobby):
# what join-time and latency benchmarks measure is the node, not a person typing digits.
NO_PINS = {
    "VDX_TEMPLATE_DEFAULT_HOST_PIN_REQUIRED": "false",
    "VDX_TEMPLATE_DEFAULT_GUEST_PIN_REQUIRED": "false",
}


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


class Node:
    """``python -m vdx serve`` in its own process, configured by ``env`` (VDX_* overrides)."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.sip_port = free_port(socket.SOCK_DGRAM)
        self.data_dir = data_dir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VDX_")}
        self.env.update(
            {
                "PYTHONPATH": str(ROOT / "src"),
                "VDX_DATA_DIR": str(data_dir),
                "VDX_HTTP_HOST": "127.0.0.1",
                "VDX_HTTP_PORT": str(self.port),
                "VDX_PUBLIC_URL": f"http://127.0.0.1:{self.port}",
                "VDX_SIP_DOMAIN": "bench.vdx",
                "VDX_SIP_HOST": "127.0.0.1",
                "VDX_SIP_PORT": str(self.sip_port),
                "VDX_SIP_TLS_PORT": "0",
                "VDX_LOG_LEVEL": "WARNING",
                "VDX_ICE_HOST_ADDRESSES": "127.0.0.1",
                **env,
            }
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.settings = Settings(data_dir=data_dir)
        self.log = data_dir / f"node-{self.port}.log"

    def cli(self, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "vdx", *args], env=self.env, capture_output=True, check=True)

    def prepare(self, like: Node | None = None) -> None:
        """A fresh data directory: the schema and the booking organisation, or a copy of
        ``like``'s prepared one (each CLI call costs a Python start-up)."""
        if like is not None:
            for f in like.data_dir.iterdir():
                if f.is_file() and not f.name.endswith(".log"):
                    shutil.copy2(f, self.data_dir / f.name)
            return
        self.cli("migrate")
        self.cli("org", "add", "bench", "--name", "Benchmark")

    def start(self) -> float:
        """Spawn and wait until healthy; returns the seconds that took."""
        t0 = time.monotonic()
        self.spawn()
        self.wait_ready()
        return time.monotonic() - t0

    def spawn(self) -> None:
        """Start the process (several nodes start side by side: spawn each, then wait for each)."""
        with self.log.open("wb") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "vdx", "serve"], env=self.env, stdout=fh, stderr=fh
            )

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout_s  # a busy shared machine starts slowly
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited:\n{self.log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/manage/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError("node did not start")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def memory(self) -> Memory:
        assert self.proc is not None
        return memory_of(self.proc.pid)

    def cpu_seconds(self) -> float:
        """User + system time of the node process, all its threads."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def rss_mb(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def headers(self, *roles: str) -> dict[str, str]:
        token = mint_token(self.settings, org="bench", email="bench@bench.vdx", roles=list(roles), ttl=7200)
        return {"Authorization": f"Bearer {token}"}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def book_room(
    node: Node, http: httpx.AsyncClient, quality: str, layout: str, max_participants: int = 20
) -> tuple[str, int]:
    """A meeting through the booking API, open now; returns the room's alias and host PIN."""
    now = datetime.now(UTC).replace(microsecond=0)
    body = {
        "subject": "MCU benchmark",
        "startTime": now.isoformat(),
        "endTime": (now + timedelta(hours=2)).isoformat(),
        "uuid": str(uuid.uuid4()),
        "maxParticipants": max_participants,
        "hostView": layout,
        "vmrQuality": quality,
    }
    planner = node.headers("meeting-planner")
    r = await http.post("/api/v2/meetings", json=body, headers=planner)
    r.raise_for_status()
    si = (await http.get(f"/api/v2/scheduling-info/{body['uuid']}", headers=planner)).json()
    return str(si["uriWithDomain"]), int(si["hostPin"])


@dataclass
class Room:
    """A booked meeting as its scheduling info tells it."""

    alias: str  # uriWithDomain, e.g. 12345678@bench.vdx
    host_pin: int | None
    guest_pin: int | None
    portal_link: str | None
    uuid: str

    @property
    def number(self) -> str:
        """What a SIP caller dials: the alias's user part."""
        return self.alias.split("@", 1)[0]


async def book_meeting(
    node: Node,
    http: httpx.AsyncClient,
    quality: str = "sd",
    layout: str | None = None,
    max_participants: int = 20,
    **fields: object,
) -> Room:
    """A meeting through the booking API (now, for two hours); extra ``fields`` go into the body
    as they are. Its PINs follow the organisation's template (none with ``NO_PINS``)."""
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
        si["uriWithDomain"], si.get("hostPin"), si.get("guestPin"), si.get("portalLink"), str(body["uuid"])
    )


async def wait_room_known(node: Node, http: httpx.AsyncClient, room: Room, deadline_s: float = 30.0) -> float:
    """Wait until the node's provisioner has the room (it reports PROVISIONED_OK on the booking
    after putting it in its directory; before that a caller is told there is no such room);
    returns the seconds waited."""
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


async def conference_status(node: Node, http: httpx.AsyncClient, alias: str) -> dict[str, Any] | None:
    """The node's view of a live room (None when it has none)."""
    r = await http.get(f"/api/node/v1/conferences/{alias}", headers=node.headers("meeting-admin"))
    if r.status_code == 404:
        return None
    r.raise_for_status()
    status: dict[str, Any] = r.json()
    return status


def counters(status: dict[str, Any]) -> tuple[int, int, int]:
    """(frames decoded from all participants, frames encoded by all views, views)."""
    decoded = sum((p.get("media") or {}).get("videoFramesDecoded", 0) for p in status["participants"])
    encoded = sum(v["framesEncoded"] for v in status["views"])
    return decoded, encoded, len(status["views"])
