"""SIP interop fixtures: our SIP server on 127.0.0.1 (free ports) with a real alias-table policy,
and a runner for sipp scenarios (Debian package ``sip-tester``, installed by ``make test``)."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.ports import free_port, listening
from harness.waiting import until
from vdx.sip import SipServer, SipServerConfig
from vdx.sip.tls import ensure_self_signed

from .policy import CLOSED, FULL, AliasTable

SCENARIOS = Path(__file__).parent / "sipp"
SIPP_DEADLINE_S = 14.0


@dataclass
class SipUnderTest:
    server: SipServer
    policy: AliasTable
    cert: Path
    tmp: Path


@pytest.fixture
async def sip(tmp_path: Path) -> AsyncIterator[SipUnderTest]:
    policy = AliasTable()
    policy.add("1000")  # an open room
    policy.add("2000", CLOSED)
    policy.add("3000", FULL)
    policy.add("5000", host_pin="1234", guest_pin="5678")
    cert, key = ensure_self_signed(tmp_path / "data", "vdx.local")
    low = 20000 + 2 * (free_port(socket.SOCK_DGRAM) % 10000)
    config = SipServerConfig(
        host="127.0.0.1",
        port=0,
        tls_port=0,
        tls_cert=str(cert),
        tls_key=str(key),
        rtp_host="127.0.0.1",
        rtp_ports=f"{low}-{low + 199}",
        max_invites_per_second=10,
    )
    server = SipServer(config, policy)
    await server.start()
    try:
        yield SipUnderTest(server, policy, cert, tmp_path)
    finally:
        await server.stop()


@dataclass
class SippResult:
    returncode: int
    messages: str
    errors: str
    stderr: str

    def describe(self) -> str:
        return f"sipp rc={self.returncode}\n{self.stderr[-1500:]}\nerrors:\n{self.errors[-3000:]}\nmessages:\n{self.messages[-4000:]}"


async def run_sipp(
    sut: SipUnderTest,
    scenario: str,
    alias: str,
    *extra: str,
    calls: int = 1,
    transport: str = "u1",
    deadline_s: float = SIPP_DEADLINE_S,
) -> SippResult:
    """Run one sipp scenario against the server; returns its exit code and traces."""
    return await run_sipp_at(
        sut.server.port,
        sut.tmp,
        scenario,
        alias,
        *extra,
        calls=calls,
        transport=transport,
        deadline_s=deadline_s,
    )


async def run_sipp_at(
    port: int,
    tmp: Path,
    scenario: str,
    alias: str,
    *extra: str,
    calls: int = 1,
    transport: str = "u1",
    deadline_s: float = SIPP_DEADLINE_S,
    listen: int | None = None,
) -> SippResult:
    """Run one sipp scenario against the SIP port ``port`` of 127.0.0.1, its traces in ``tmp``;
    with ``listen``, sipp answers calls on that port instead (a UAS scenario, ``port`` unused)."""
    if shutil.which("sipp") is None:
        pytest.fail("sipp is missing: apt-get install -y sip-tester (make test installs it)")
    name = Path(scenario).stem
    msg_file = tmp / f"{name}-{free_port(socket.SOCK_DGRAM)}-messages.log"
    err_file = tmp / f"{name}-errors.log"
    args = [
        "sipp",
        *([] if listen else [f"127.0.0.1:{port}"]),
        "-sf",
        str(SCENARIOS / scenario),
        "-s",
        alias,
        "-i",
        "127.0.0.1",
        "-p",
        str(listen or free_port(socket.SOCK_STREAM if transport == "t1" else socket.SOCK_DGRAM)),
        "-mp",
        str(free_port(socket.SOCK_DGRAM)),
        "-t",
        transport,
        "-m",
        str(calls),
        "-timeout",
        f"{int(deadline_s)}s",
        "-timeout_error",
        "-nostdin",
        "-trace_msg",
        "-message_file",
        str(msg_file),
        "-trace_err",
        "-error_file",
        str(err_file),
        *extra,
    ]
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        _, stderr = await asyncio.wait_for(proc.communicate(), deadline_s + 5)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        stderr = b"(killed after the deadline)"
    return SippResult(
        proc.returncode if proc.returncode is not None else -1,
        msg_file.read_text(errors="replace") if msg_file.exists() else "",
        err_file.read_text(errors="replace") if err_file.exists() else "",
        stderr.decode(errors="replace"),
    )


async def sipp_answering(
    tmp: Path, scenario: str, *extra: str, listen: int, transport: str = "u1"
) -> asyncio.Task[SippResult]:
    """Start sipp answering calls on ``listen`` (a UAS scenario) and return once it holds the port,
    so a call placed next finds it there; the task's result is sipp's."""
    task = asyncio.create_task(run_sipp_at(0, tmp, scenario, "x", *extra, listen=listen, transport=transport))
    kind = socket.SOCK_STREAM if transport == "t1" else socket.SOCK_DGRAM
    await until(lambda: task.done() or listening(listen, kind), 10, f"sipp listening on {listen}")
    if task.done():
        pytest.fail(f"sipp ended before it listened on {listen}:\n{task.result().describe()}")
    return task
