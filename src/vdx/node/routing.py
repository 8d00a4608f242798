"""Which node hosts a room: the answer every entry point (WebSocket, SIP) asks before it lets a
caller in. A single node (``vdx serve`` on the in-process bus) hosts every room it knows
(``LocalOnly``); in a cluster the answer comes from the shared placement (``vdx.node.cluster``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class NodeInfo:
    """A node as the cluster's registry announces it (its heartbeat)."""

    id: str
    http_url: str  # where browsers reach it: its public URL (join page, WebSocket)
    sip: dict[str, str] = field(default_factory=dict)  # transport (udp, tcp, tls) -> "host:port"
    capacity: float = 0.0  # HD units; 0 = not known yet
    load: float = 0.0  # HD units in use
    rooms: int = 0  # rooms placed on it
    live: int = 0  # rooms with people in them
    draining: bool = False  # takes no new rooms; the current ones finish
    started: float = 0.0  # epoch seconds
    heartbeat: float = 0.0  # epoch seconds of the announcement
    instance: str = ""  # one per process: tells two processes with the same id apart
    devices: list[str] = field(default_factory=list)  # devices whose page waits on it (browser:NAME)

    @property
    def ws_base(self) -> str:
        return self.http_url.replace("http", "ws", 1).rstrip("/")

    def sip_address(self, transport: str) -> str | None:
        """``host:port`` of this node's SIP listener for ``transport`` (udp, tcp, tls)."""
        return self.sip.get(transport.lower())


class Where(enum.StrEnum):
    HERE = "here"  # this node hosts the room (or, alone, hosts every room)
    ELSEWHERE = "elsewhere"  # another live node hosts it: send the caller there
    MOVING = "moving"  # placed on a node that is gone, or this node lost touch: retry shortly


@dataclass(frozen=True)
class Route:
    where: Where
    node: NodeInfo | None = None  # the hosting node when ELSEWHERE

    @property
    def here(self) -> bool:
        return self.where is Where.HERE


HERE = Route(Where.HERE)
MOVING = Route(Where.MOVING)


class Locator(Protocol):
    def route(self, alias: str) -> Route:
        """Where a caller of the room ``alias`` (a primary alias) must go, now."""
        ...


class LocalOnly:
    """A node alone: every room it knows is here."""

    def route(self, alias: str) -> Route:
        return HERE
