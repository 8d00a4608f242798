"""Callers who reach a node without their room, measured: joins through a node that does not host
the room against joins straight to the one that does (a WebRTC bot follows the ``redirect``
message, a SIP caller the 302), and failover: from a SIGKILL of a room's node to the room being
joinable again through another node."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import websockets

from bench.served_node import log
from bench.sip_peer import SipPeer
from harness.bot import Bot
from harness.cluster import Cluster

DIRECT, VIA = "direct", "via another node"


async def webrtc_join(url: str) -> dict[str, float]:
    """A WebRTC bot from its WebSocket's connect to its first decoded picture of the room: join
    (following a redirect), offer/answer, ICE and DTLS, the first frame."""
    bot = Bot(url, "Newcomer")
    try:
        t0 = time.monotonic()
        await bot.connect()
        joined = await bot.join()
        if joined.get("type") != "joined":
            raise RuntimeError(f"join refused: {joined}")
        t_joined = time.monotonic()
        await bot.start_media()
        t_answer = time.monotonic()
        await bot.until(lambda: bot.video_frames > 0, 15, "a decoded frame")
        t_frame = time.monotonic()
        return {
            "to_joined_ms": 1e3 * (t_joined - t0),
            "to_answer_ms": 1e3 * (t_answer - t0),
            "to_first_frame_ms": 1e3 * (t_frame - t0),
            "redirected": float(bot.url != url),
        }
    finally:
        await bot.close()


async def sip_join(port: int, number: str, domain: str) -> dict[str, float]:
    """A SIP caller from its INVITE to the 200 OK (following a 302 on the way)."""
    peer = await SipPeer(port, number, "VP8", domain=domain).open()
    try:
        times = await peer.call()
        assert times.answered is not None
        return {"to_answer_ms": 1e3 * (times.answered - times.invite), "redirects": float(times.redirects)}
    finally:
        await peer.hangup()
        peer.close()


async def join_times(
    cluster: Cluster, alias: str, host: str, repeats: int, deadline: float
) -> tuple[dict[str, dict[str, list[dict[str, float]]]], list[str]]:
    """Joins of each kind, direct and through the other nodes in turn, interleaved (which goes
    first alternates), each newcomer leaving before the next comes."""
    others = [n for n in cluster.nodes if n != host]
    number, _, domain = alias.partition("@")
    samples: dict[str, dict[str, list[dict[str, float]]]] = {
        "webrtc": {DIRECT: [], VIA: []},
        "sip": {DIRECT: [], VIA: []},
    }
    failures: list[str] = []
    for rep in range(repeats):
        if rep >= 2 and time.monotonic() > deadline:
            log(f"joins: budget: stopping after {rep} repeats")
            break
        entry = others[rep % len(others)]
        for how in (DIRECT, VIA) if rep % 2 == 0 else (VIA, DIRECT):
            node = host if how == DIRECT else entry
            for kind in ("webrtc", "sip"):
                try:
                    if kind == "webrtc":
                        r = await webrtc_join(cluster.ws_url(node, alias))
                    else:
                        r = await sip_join(cluster.sip_ports[node], number, domain)
                except Exception as exc:
                    failures.append(f"{kind} {how} repeat {rep + 1}: {exc!r}")
                    log(f"joins: {kind} {how} repeat {rep + 1}: FAILED {exc!r}")
                    continue
                samples[kind][how].append(r)
                main = "to_first_frame_ms" if kind == "webrtc" else "to_answer_ms"
                log(f"joins: repeat {rep + 1} {kind:<6} {how:<16} {r[main]:7.1f} ms")
                await asyncio.sleep(0.3)  # the room settles: only the resident in it
    return samples, failures


async def joinable(url: str) -> str | None:
    """The node URL a WebSocket join through ``url`` (following a redirect) got ``joined`` at,
    or None (refused, moving, the hosting node unreachable)."""
    bot = Bot(url, "Failover probe")
    try:
        await asyncio.wait_for(bot.connect(), 2)
        answer = await asyncio.wait_for(bot.join(), 3)
        return str(bot.url) if answer.get("type") == "joined" else None
    except (OSError, TimeoutError, websockets.WebSocketException):
        return None
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(bot.close(), 2)


async def first_join(url: str, deadline_s: float, every_s: float = 0.1) -> str:
    """Joins through ``url`` started every ``every_s``, each on its own (one stuck on a busy or
    dead node delays none of the others), until one gets in: the node URL it joined at."""
    loop = asyncio.get_running_loop()
    probes: set[asyncio.Task[str | None]] = set()
    end = time.monotonic() + deadline_s
    try:
        while time.monotonic() < end:
            probes.add(loop.create_task(joinable(url)))
            next_start = time.monotonic() + every_s
            while probes and (wait := next_start - time.monotonic()) > 0:
                done, probes = await asyncio.wait(probes, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task.result():
                        return str(task.result())
            await asyncio.sleep(max(0.0, next_start - time.monotonic()))
        raise TimeoutError(f"no join through {url} within {deadline_s} s")
    finally:
        for task in probes:
            task.cancel()


async def failover(cluster: Cluster, rep: int) -> dict[str, Any]:
    """Book a room, put someone in it on its node, SIGKILL that node, and probe through a survivor
    every 100 ms (``first_join``) until one gets in: the seconds from the kill to ``joined``, and to the
    scheduling info reporting the room PROVISIONED_OK by another node."""
    uuid, alias = await cluster.book(vmr_quality="sd")
    host = cluster.host_of(await cluster.provisioned(uuid, 30))
    survivors = [n for n in cluster.running() if n != host]
    entry = survivors[rep % len(survivors)]
    occupant = Bot(cluster.ws_url(host, alias), "Occupant")
    await occupant.connect()
    if (await occupant.join()).get("type") != "joined":
        raise RuntimeError("the occupant could not join")
    killed = time.monotonic()
    cluster.kill(host)

    async def reprovisioned() -> float:
        await cluster.provisioned(uuid, 60, away_from=host)
        return time.monotonic() - killed

    provisioning = asyncio.get_running_loop().create_task(reprovisioned())
    try:
        got = await first_join(cluster.ws_url(entry, alias), 60)
        joined_s = time.monotonic() - killed
        provisioned_s = await asyncio.wait_for(provisioning, 60)
    finally:
        provisioning.cancel()
        await occupant.vanish()  # its node is dead: nothing to say goodbye to
    new_host = next((n for n in cluster.nodes if str(got).startswith(cluster.nodes[n].ws_base)), "?")
    await cluster.end(uuid)
    return {
        "killed": host,
        "entry": entry,
        "new_host": new_host,
        "joinable_s": joined_s,
        "provisioned_s": provisioned_s,
    }
