"""NATS JetStream bus (nats-py): streams created when missing, de-duplication by message id."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from vdx.bus.base import Handler, Message
from vdx.settings import Settings

log = logging.getLogger("vdx.bus")


class BusUnavailable(RuntimeError):
    pass


class JetStreamBus:
    name = "nats-jetstream"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.nc: Client | None = None
        self.js: JetStreamContext | None = None
        self._connector: asyncio.Task[None] | None = None
        self._streams_ready = False
        self._lock = asyncio.Lock()
        self._connected_event = asyncio.Event()

    def streams(self) -> dict[str, str]:
        """Stream name -> subject for the subjects vdx publishes on."""
        s = self.settings
        return {
            s.nats_stream_scheduling_info: s.nats_subject_scheduling_info,
            s.nats_stream_audit: s.nats_subject_audit,
        }

    async def start(self) -> None:
        """Connect in the background: a node must start (and take bookings) while NATS is down."""
        self._connector = asyncio.create_task(self._connect_loop())

    async def _connect_loop(self) -> None:
        delay = 0.2
        while self.nc is None:
            try:
                self.nc = await nats.connect(
                    **self.settings.nats_connect_options,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    connect_timeout=2,
                    name="vdx",
                )
                self.js = self.nc.jetstream(timeout=5)
                self._connected_event.set()
            except Exception as exc:  # the server may simply not be up yet
                log.warning("NATS not reachable (%s); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _ensure_streams(self) -> None:
        if self._streams_ready:
            return
        async with self._lock:
            if self._streams_ready or self.js is None:
                return
            replicas = self.settings.nats_replicas
            for stream, subject in self.streams().items():
                try:
                    config = (await self.js.stream_info(stream)).config
                except NotFoundError:
                    await self.js.add_stream(name=stream, subjects=[subject], num_replicas=replicas)
                    continue
                subjects = list(config.subjects or [])
                # a stream made before the cluster grew gets its copies (never fewer than it has)
                if subject not in subjects or (config.num_replicas or 1) < replicas:
                    config.subjects = subjects if subject in subjects else [*subjects, subject]
                    config.num_replicas = max(config.num_replicas or 1, replicas)
                    await self.js.update_stream(config)
            self._streams_ready = True

    def _connected(self) -> JetStreamContext:
        if self.nc is None or self.js is None or not self.nc.is_connected:
            raise BusUnavailable("NATS is not connected")
        return self.js

    async def publish(self, subject: str, data: bytes, msg_id: str) -> None:
        js = self._connected()
        await self._ensure_streams()
        await js.publish(subject, data, timeout=3, headers={"Nats-Msg-Id": msg_id})

    async def subscribe(self, subject: str, handler: Handler, durable: str | None = None) -> Any:
        await self._connected_event.wait()
        assert self.js is not None
        await self._ensure_streams()

        async def on_msg(msg: Any) -> None:
            headers = dict(msg.headers or {})
            await handler(
                Message(
                    subject=msg.subject, data=msg.data, msg_id=headers.get("Nats-Msg-Id", ""), headers=headers
                )
            )
            await msg.ack()

        # A durable consumer resumes where its owner stopped; a new one starts with new messages
        # (its owner rebuilds older state by other means, as the node's resync does) and is
        # removed by the server after a week without a subscriber.
        config = (
            ConsumerConfig(deliver_policy=DeliverPolicy.NEW, inactive_threshold=7 * 24 * 3600.0)
            if durable
            else None
        )
        return await self.js.subscribe(subject, durable=durable, cb=on_msg, manual_ack=True, config=config)

    async def check(self) -> dict[str, str]:
        self._connected()
        return {"bus": self.name}

    async def close(self) -> None:
        if self._connector is not None:
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._connector
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.drain()
