"""Kamailio in front of the nodes as the one SIP address (deploy/kamailio/kamailio.cfg, Debian
``kamailio``): a room system that knows only Kamailio's address reaches the room, whichever node
the dispatcher picks; Kamailio follows a node's 302 to the node that hosts the room itself, passes
a moving room's 503 and Retry-After on, and skips a node that stops answering.

The cluster test runs the processes of docs/deploy.md on loopback (tests/cluster's ``Cluster``
with two nodes): ``vdx api`` on the test's database, two ``vdx node`` on a private NATS JetStream,
which place each room on one of them, Kamailio started from the repository's configuration, and
sipp as the caller. The redirect test places the room by hand on one of two in-process nodes (as
tests/interop/test_sip_redirect.py does)."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from harness.kamailio import KAMAILIO, Kamailio
from harness.waiting import until
from tests.cluster.conftest import Cluster
from tests.interop.conftest import SippResult, run_sipp_at
from tests.interop.softphones import Baresip
from tests.interop.test_sip_redirect import ROOM, sip_participants, two_nodes
from tests.interop.test_sip_room_peers import RED_YUV
from tests.interop.uac import Uac
from vdx.node.routing import MOVING

pytestmark = [pytest.mark.interop, pytest.mark.nats, pytest.mark.slow]

SCENARIO = "proxied_call.xml"


@pytest.fixture
async def cluster(tmp_path: Path, database_url: str | None) -> AsyncIterator[Cluster]:
    """``vdx api`` and two ``vdx node`` processes on a private NATS (tests/cluster's ``Cluster``)."""
    if not shutil.which(KAMAILIO):
        pytest.fail("kamailio is missing: apt-get install -y kamailio (make test installs it)")
    c = Cluster(tmp_path, database_url, node_ids=("node-a", "node-b"))  # SQLite when None
    async with c.serving():
        yield c


def _answering_node(result: SippResult) -> int | None:
    """The SIP port in the Contact of the 200 that answered the INVITE: the node that took it."""
    for block in result.messages.split("message received"):
        if "SIP/2.0 200" in block and re.search(r"CSeq:\s*1 INVITE", block):
            found = re.search(r"^Contact:\s*<sip:[^>]*127\.0\.0\.1:(\d+)", block, re.MULTILINE)
            return int(found.group(1)) if found else None
    return None


def _final_answer(result: SippResult) -> str:
    """The status line and Retry-After of the last final answer the caller got to its INVITE."""
    answers = [
        block
        for block in result.messages.split("message received")
        if re.search(r"CSeq:\s*1 INVITE", block) and re.search(r"^SIP/2\.0 [2-6]", block, re.MULTILINE)
    ]
    if not answers:
        return "none"
    status = re.search(r"^SIP/2\.0 (.*)$", answers[-1], re.MULTILINE)
    retry = re.search(r"^Retry-After:.*$", answers[-1], re.MULTILINE)
    return " ".join(m.group(0 if m is retry else 1).strip() for m in (status, retry) if m)


async def _call(kamailio: Kamailio, number: str, tmp: Path) -> SippResult:
    """One call through Kamailio that stays a moment and hangs up (sipp, ``SCENARIO``)."""
    return await run_sipp_at(kamailio.port, tmp, SCENARIO, number, "-d", "300")


async def test_calls_through_kamailio_reach_the_rooms_node_and_redial_after_it_dies(
    cluster: Cluster, tmp_path: Path
) -> None:
    uuid, alias = await cluster.book()
    host = cluster.host_of(await cluster.provisioned(uuid))
    other = next(n for n in cluster.nodes if n != host)
    number = alias.split("@")[0]
    kamailio = Kamailio(tmp_path / "kamailio", [f"127.0.0.1:{p}" for p in cluster.sip_ports.values()])
    kamailio.start()
    try:
        # Every call through the proxy is answered by the room's node: the dispatcher sends every
        # other call to the other node (round robin), whose 302 Kamailio follows. ACK and BYE
        # follow Kamailio's Record-Route.
        for _ in range(4):
            result = await _call(kamailio, number, tmp_path)
            assert result.returncode == 0, result.describe()
            assert _answering_node(result) == cluster.sip_ports[host]
        assert "following the node's redirect" in kamailio.log(), kamailio.log()[-3000:]

        # The room's node dies (SIGKILL: no answer at all on its SIP port). A room system that
        # redials the same address gets in once the room is placed on the other node: Kamailio
        # skips the dead node after its timeout and marks it down; meanwhile the caller is told
        # to retry (503, the room moving).
        cluster.kill(host)
        refused: list[str] = []

        async def redialled() -> SippResult | None:
            result = await _call(kamailio, number, tmp_path)
            if result.returncode != 0:
                refused.append(_final_answer(result))
            return result if result.returncode == 0 else None

        result = await until(redialled, 40, lambda: f"a redial to get in (refusals: {refused})", poll_s=1.0)
        assert _answering_node(result) == cluster.sip_ports[other]
        # never a bare timeout or error: "the room is moving, redial after this long"
        assert all(r.startswith("503 ") and "Retry-After" in r for r in refused), refused
        assert "did not answer; marking it down" in kamailio.log(), kamailio.log()[-3000:]
    except BaseException:
        print(kamailio.log()[-5000:])
        raise
    finally:
        kamailio.stop()


async def test_kamailio_follows_a_nodes_302_and_passes_a_moving_room_on(settings_factory, tmp_path):
    async with two_nodes(settings_factory) as (a, b, placed):
        # every call goes to node A first, which does not host the room: only the 302 brings it in
        kamailio = Kamailio(tmp_path / "kamailio", [f"127.0.0.1:{a.sip.port}"])
        kamailio.start()
        try:
            bot = b.bot(ROOM, "Bot")
            await bot.connect()
            await bot.join()
            number = ROOM.split("@")[0]
            call = asyncio.create_task(
                run_sipp_at(kamailio.port, tmp_path, SCENARIO, number, "-d", "4000", "-rtp_echo")
            )
            try:
                await until(lambda: sip_participants(b) == 1, 10, "the caller in the room on node B")
            finally:
                result = await call
            assert result.returncode == 0, result.describe()
            assert _answering_node(result) == b.sip.port
            assert "SIP/2.0 302" not in result.messages  # the caller never saw the redirect
            assert a.calls.refusals.get(302) == 1 and not a.sip.calls and sip_participants(a) == 0
            assert "following the node's redirect" in kamailio.log()
            await until(lambda: sip_participants(b) == 0, 10, "the caller's BYE (through Kamailio) at node B")

            # the room's node died and the room is being placed again: the caller is told to retry
            placed.routes[ROOM] = MOVING
            sdp = "v=0\r\no=u 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
            answers = []
            for port in (a.sip.port, kamailio.port):  # the node's own answer, then through Kamailio
                uac = Uac(port, domain="vdx.test")
                try:
                    answers.append(await uac.call("INVITE", number, body=sdp))
                finally:
                    uac.close()
            direct, proxied = answers
            assert direct.status == 503 and int(direct.get("Retry-After") or 0) > 0, direct
            assert (proxied.status, proxied.get("Retry-After")) == (503, direct.get("Retry-After")), proxied
        except BaseException:
            print(kamailio.log()[-5000:])
            raise
        finally:
            kamailio.stop()


async def test_a_tls_caller_reaches_the_room_over_tls_all_the_way(settings_factory, tmp_path: Path) -> None:
    """baresip with TLS + SRTP dials Kamailio's TLS port (the configuration's WITH_TLS and its
    tls.cfg): Kamailio takes it to node A over TLS (dispatcher set 2), follows A's 302 to B's TLS
    listener, and B gets the call as TLS with SRTP, as a room that forces encryption asks."""
    if shutil.which("baresip") is None:
        pytest.fail("baresip is missing: apt-get install -y baresip baresip-ffmpeg (make test installs it)")
    async with two_nodes(settings_factory) as (a, b, _placed):
        # the nodes' own self-signed pair (one data directory) serves Kamailio too, and is the
        # CA Kamailio checks the nodes against and the caller checks Kamailio against
        cert = b.settings.data_dir / "sip-tls-cert.pem"
        key = b.settings.data_dir / "sip-tls-key.pem"
        kamailio = Kamailio(
            tmp_path / "kamailio",
            [f"127.0.0.1:{a.sip.port}"],
            tls_nodes=[f"127.0.0.1:{a.sip.tls_port}"],
            tls=(cert, key, cert),
        )
        kamailio.start()
        phone = Baresip(tmp_path / "tls", RED_YUV, 300.0, "vp8.so", cafile=cert, srtp=True)
        try:
            await phone.dial(f"sip:{ROOM.split('@')[0]}@127.0.0.1:{kamailio.tls_port};transport=tls")
            await until(lambda: sip_participants(b) == 1, 20, lambda: f"baresip in the room: {phone.tail()}")
            call = next(iter(b.calls.joined))
            assert call.incoming.secure and call.incoming.transport == "tls"
            video = call.negotiation.stream("video") if call.negotiation else None
            assert video is not None and video.srtp_suite is not None
            assert a.calls.refusals.get(302) == 1 and sip_participants(a) == 0
            assert "following the node's redirect" in kamailio.log()
        except BaseException:
            print(kamailio.log()[-5000:])
            raise
        finally:
            await phone.stop()
            kamailio.stop()
