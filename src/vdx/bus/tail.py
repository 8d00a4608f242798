"""``vdx events tail``: print events as they arrive, for operators.

With NATS it is an ephemeral JetStream consumer on the subject; without NATS (the all-in-one node's
in-process bus lives in another process) it follows the outbox table of the shared database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from typing import TextIO

from sqlalchemy import func, select

from vdx.settings import Settings
from vdx.store.db import create_engine, session_factory
from vdx.store.models import Outbox


def _line(subject: str, data: bytes | str) -> str:
    text = data.decode() if isinstance(data, bytes) else data
    with contextlib.suppress(ValueError):
        text = json.dumps(json.loads(text), separators=(",", ":"))
    return f"{subject} {text}"


async def tail_nats(
    settings: Settings, subject: str, from_start: bool, out: TextIO, limit: int | None = None
) -> None:
    import nats
    from nats.js.api import ConsumerConfig, DeliverPolicy

    nc = await nats.connect(**settings.nats_connect_options, connect_timeout=5)
    js = nc.jetstream()
    done = asyncio.Event()
    seen = 0

    async def on_msg(msg: object) -> None:
        nonlocal seen
        print(_line(msg.subject, msg.data), file=out, flush=True)  # type: ignore[attr-defined]
        seen += 1
        if limit is not None and seen >= limit:
            done.set()

    policy = DeliverPolicy.ALL if from_start else DeliverPolicy.NEW
    sub = await js.subscribe(subject, cb=on_msg, config=ConsumerConfig(deliver_policy=policy))
    try:
        await done.wait()
    finally:
        await sub.unsubscribe()
        await nc.drain()


async def tail_outbox(
    settings: Settings, subject: str | None, from_start: bool, out: TextIO, limit: int | None = None
) -> None:
    from vdx.bus.inprocess import subject_matches

    engine = create_engine(settings)
    sessions = session_factory(engine)
    seen = 0
    try:
        async with sessions() as s:
            last = 0 if from_start else int((await s.execute(select(func.max(Outbox.id)))).scalar() or 0)
        while limit is None or seen < limit:
            async with sessions() as s:
                rows = (
                    await s.execute(select(Outbox).where(Outbox.id > last).order_by(Outbox.id).limit(500))
                ).scalars()
                batch = list(rows)
            for row in batch:
                last = row.id
                if subject is None or subject_matches(subject, row.subject):
                    print(_line(row.subject, row.payload), file=out, flush=True)
                    seen += 1
                    if limit is not None and seen >= limit:
                        return
            if not batch:
                await asyncio.sleep(0.5)
    finally:
        await engine.dispose()


def run(settings: Settings, subject: str | None, from_start: bool, limit: int | None) -> None:
    if settings.nats_url:
        coro = tail_nats(settings, subject or ">", from_start, sys.stdout, limit)
    else:
        coro = tail_outbox(settings, subject, from_start, sys.stdout, limit)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(coro)
