"""Durability of bookings (issue 2, must hold): killing the server (SIGKILL) in the middle of a
create burst loses no meeting that was answered with success."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from vdx.booking.roles import PLANNER


@pytest.mark.slow
async def test_sigkill_during_create_burst_loses_no_answered_meeting(live_server_factory):
    server = live_server_factory("api")
    assert server.cli("org", "add", "dur").returncode == 0
    headers = {"Authorization": f"Bearer {server.token('dur', 'p@dur.dk', PLANNER)}"}
    start = datetime.now(UTC) + timedelta(days=2)
    answered: list[str] = []
    failed = 0
    enough = asyncio.Event()

    async def client(worker: int) -> None:
        nonlocal failed
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as c:
            for i in range(200):
                body = {
                    "subject": f"burst {worker}-{i}",
                    "startTime": (start + timedelta(minutes=i)).isoformat(),
                    "endTime": (start + timedelta(minutes=i + 30)).isoformat(),
                    "uuid": str(uuid.uuid4()),
                }
                try:
                    r = await c.post("/api/v2/meetings", json=body, headers=headers)
                except httpx.HTTPError:
                    failed += 1
                    return  # the server is gone
                assert r.status_code == 200, r.text
                assert r.json()["uuid"] == body["uuid"]
                answered.append((body["uuid"], body["subject"]))
                if len(answered) >= 60:
                    enough.set()

    tasks = [asyncio.create_task(client(w)) for w in range(8)]
    waiter = asyncio.create_task(enough.wait())
    # a client that fails (a non-200 answer) ends the wait early and is reported by gather below
    await asyncio.wait([waiter, *tasks], timeout=60, return_when=asyncio.FIRST_COMPLETED)
    assert enough.is_set(), "the burst did not get 60 answers"
    server.kill()
    await asyncio.gather(*tasks)
    assert failed > 0, "the kill should have cut requests in flight"

    again = live_server_factory("api")
    async with httpx.AsyncClient(base_url=again.base_url, timeout=10) as c:
        headers = {"Authorization": f"Bearer {again.token('dur', 'p@dur.dk', PLANNER)}"}
        missing = []
        for u, subject in answered:
            r = await c.get(f"/api/v2/meetings/{u}", headers=headers)
            if r.status_code != 200 or r.json()["subject"] != subject:
                missing.append((u, r.status_code))
    assert not missing, f"{len(missing)} of {len(answered)} answered meetings lost: {missing[:5]}"
