"""The event bus: NATS JetStream when ``VDX_NATS_URL`` is set, an in-process bus otherwise.

Both have the same interface (``Bus``); services never publish directly: they record events in the
outbox (``vdx.events.record``) and the ``OutboxRelay`` publishes them after commit.
"""

from __future__ import annotations

from vdx.bus.base import Bus, Handler, Message
from vdx.bus.inprocess import InProcessBus
from vdx.settings import Settings


def create_bus(settings: Settings) -> Bus:
    if settings.nats_url:
        from vdx.bus.jetstream import JetStreamBus

        return JetStreamBus(settings)
    return InProcessBus()


__all__ = ["Bus", "Handler", "InProcessBus", "Message", "create_bus"]
