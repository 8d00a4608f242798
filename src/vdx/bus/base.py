"""The bus interface shared by the in-process bus and NATS JetStream."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Message:
    subject: str
    data: bytes
    msg_id: str
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Message], Awaitable[None]]


class Subscription(Protocol):
    async def unsubscribe(self) -> None: ...


class Bus(Protocol):
    name: str

    async def start(self) -> None:
        """Connect (NATS: create missing streams). Must not fail when the server is down."""

    async def publish(self, subject: str, data: bytes, msg_id: str) -> None:
        """Publish durably; raises when the message could not be stored (the caller retries)."""

    async def subscribe(self, subject: str, handler: Handler, durable: str | None = None) -> Subscription:
        """Deliver messages on ``subject`` to ``handler``; ``durable`` names a resumable consumer
        (NATS: created at the stream's end the first time, resumed where it stopped later)."""

    async def check(self) -> dict[str, str]:
        """Health detail; raises when the bus is not usable."""

    async def close(self) -> None: ...
