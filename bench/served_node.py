"""A served vdx in its own process for the benchmarks: a whole node (``python -m vdx serve``: the
media benchmarks) or the booking API alone (``python -m vdx api --workers N``, optionally on a
throwaway PostgreSQL database: the API benchmarks). Its CPU time is read from /proc (all threads;
the API's worker processes too), its CLI and tokens are bound to its own settings, and rooms are
booked through the booking API as an integration books them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from harness.ports import free_sip_port
from harness.served import ServedProcess
from harness.waiting import until

CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {msg}", flush=True)


def self_cpu() -> float:
    """CPU seconds of this process (the load generator), all threads."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


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


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process, all its threads (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def process_wakeups(pid: int) -> int:
    """Context switches of one process, all its threads (from /proc): how often it slept and
    was woken, or was preempted."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:
            continue  # a thread that ended meanwhile
        for line in status.splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                total += int(line.split()[1])
    return total


def _live_processes() -> dict[int, tuple[str, list[str]]]:
    """pid -> (command name, the fields of /proc/<pid>/stat after the name) of live processes:
    fields[0] is the state (field 3); ppid is 1, utime 11, stime 12, cutime 13, cstime 14."""
    found: dict[int, tuple[str, list[str]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # the process ended meanwhile
        name, rest = stat.split("(", 1)[1].rsplit(")", 1)
        found[int(entry.name)] = (name, rest.split())
    return found


def postgres_cpu() -> float:
    """User + system CPU seconds of this machine's PostgreSQL (from /proc): its live processes'
    own, and their reaped children's (a backend that ended, such as a pooled connection closed
    above the pool's size, is counted in the postmaster's children's time)."""
    return sum(
        sum(int(f) for f in fields[11:15]) / CLK_TCK  # utime stime cutime cstime
        for name, fields in _live_processes().values()
        if name == "postgres"
    )


def process_tree_cpu(root: int) -> float:
    """User + system CPU seconds of ``root`` and its live descendants (from /proc)."""
    stats = {
        pid: (int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK)
        for pid, (_, fields) in _live_processes().items()
    }
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _) in stats.items():
            if ppid == parent and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    return sum(stats[pid][1] for pid in tree if pid in stats)


def create_pg_database(admin_url: str) -> tuple[str, Callable[[], None]]:
    """A fresh database on the server of ``admin_url``, and the function that drops it."""
    import asyncpg

    name = f"vdx_bench_{uuid.uuid4().hex[:8]}"

    async def ddl(sql: str) -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(ddl(f'CREATE DATABASE "{name}"'))
    base = admin_url.rsplit("/", 1)[0]
    return f"{base}/{name}", lambda: asyncio.run(ddl(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class Served(ServedProcess):
    """A vdx to measure: the whole node (``api_workers=None``: ``vdx serve``, SIP on UDP, media) or
    the booking API alone (``vdx api --workers N``, no SIP), logging warnings only, its tokens those
    of organisation "bench". ``database_url``: default SQLite in ``data_dir``; see
    :func:`create_pg_database`."""

    def __init__(
        self,
        data_dir: Path,
        env: dict[str, str] | None = None,
        *,
        api_workers: int | None = None,
        database_url: str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.api_workers = api_workers
        self.sip_port = 0 if api_workers is not None else free_sip_port()
        # A benchmark measures the node's work, not its admission (nor its start-up self-test).
        # Nor picture sizes bent to its load-testing peers: bots on the same starved machine have
        # delay-based estimates that speak of CPU, not of a link (bench/adapt.py turns it on).
        own = {"VDX_LOG_LEVEL": "WARNING", "VDX_NODE_CAPACITY": "100000", "VDX_MEDIA_ADAPT": "false"}
        if api_workers is None:
            own |= {
                "VDX_SIP_DOMAIN": "bench.vdx",
                "VDX_SIP_HOST": "127.0.0.1",
                "VDX_SIP_PORT": str(self.sip_port),
                "VDX_SIP_TLS_PORT": "0",
                "VDX_ICE_HOST_ADDRESSES": host,
            }
        command = ["serve"] if api_workers is None else ["api", "--workers", str(api_workers)]
        super().__init__(data_dir, command, own | (env or {}), database_url=database_url, host=host)

    def prepare(self, like: Served | None = None) -> None:
        """A fresh data directory: the schema and the organisation "bench", or a copy of
        ``like``'s prepared one (each CLI call costs a Python start-up)."""
        if like is not None:
            for f in like.data_dir.iterdir():
                if f.is_file() and not f.name.endswith(".log"):
                    shutil.copy2(f, self.data_dir / f.name)
            return
        self.cli("org", "add", "bench", "--name", "Benchmark", check=True)  # migrates the database first

    def memory(self) -> Memory:
        assert self.proc is not None
        return memory_of(self.proc.pid)

    def cpu_seconds(self) -> float:
        """User + system time so far: the node process, all its threads; the API's server and
        its worker processes."""
        if self.proc is None:
            return 0.0
        if self.api_workers is None:
            return process_cpu(self.proc.pid)
        return process_tree_cpu(self.proc.pid)

    def headers(self, *roles: str) -> dict[str, str]:
        """A bearer token of organisation "bench" for ``roles``, valid for the longest run."""
        return {"Authorization": f"Bearer {self.token('bench', 'bench@bench.vdx', *roles, ttl=7200)}"}


@contextlib.contextmanager
def prepared_node(bench: str, env: dict[str, str], host: str = "127.0.0.1") -> Iterator[Served]:
    """A node with a prepared throwaway data directory (not started), stopped on the way out;
    listening (HTTP, ICE) on ``host``."""
    with tempfile.TemporaryDirectory(prefix=f"vdx-bench-{bench}-") as tmp:
        node = Served(Path(tmp), env, host=host)
        node.prepare()
        try:
            yield node
        finally:
            node.stop()


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
    node: Served,
    http: httpx.AsyncClient,
    quality: str = "sd",
    layout: str | None = None,
    max_participants: int = 20,
    known: bool = True,
    **fields: object,
) -> Room:
    """A meeting through the booking API (now, for two hours); extra ``fields`` go into the body
    as they are. Its PINs follow the organisation's template (none with ``NO_PINS``). With
    ``known``, returns once the node can be called into it (:func:`wait_room_known`)."""
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
    room = Room(
        si["uriWithDomain"], si.get("hostPin"), si.get("guestPin"), si.get("portalLink"), str(body["uuid"])
    )
    if known:
        await wait_room_known(node, http, room)
    return room


async def wait_room_known(
    node: Served, http: httpx.AsyncClient, room: Room, deadline_s: float = 30.0
) -> float:
    """Wait until the node's provisioner has the room (it reports PROVISIONED_OK on the booking
    after putting it in its directory; before that a caller is told there is no such room);
    returns the seconds waited."""
    t0 = time.monotonic()
    planner = node.headers("meeting-planner")
    status: str | None = None

    async def provisioned() -> bool:
        nonlocal status
        r = await http.get(f"/api/v2/scheduling-info/{room.uuid}", headers=planner)
        r.raise_for_status()
        status = r.json().get("provisionStatus")
        return status == "PROVISIONED_OK"

    await until(provisioned, deadline_s, lambda: f"the node to provision room {room.alias} (status {status})")
    return time.monotonic() - t0


async def conference_status(node: Served, http: httpx.AsyncClient, alias: str) -> dict[str, Any] | None:
    """The node's view of a live room (None when it has none)."""
    r = await http.get(f"/api/node/v1/conferences/{alias}", headers=node.headers("meeting-admin"))
    if r.status_code == 404:
        return None
    r.raise_for_status()
    status: dict[str, Any] = r.json()
    return status
