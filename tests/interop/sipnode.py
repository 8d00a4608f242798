"""A whole node with SIP dial-in: the app (rooms, WebRTC signalling, the SIP server started by its
lifespan) served in this process on free ports, for SIP callers and WebRTC bots in one room."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from harness.bot import Bot
from harness.ports import free_port, free_sip_port
from harness.served import served
from vdx.app import create_app
from vdx.conference.policy import RoomConfig
from vdx.node.rooms import Rooms
from vdx.node.sip_calls import SipRoomCalls
from vdx.settings import Settings
from vdx.sip import SipServer


@dataclass
class SipNode:
    settings: Settings
    app: Any
    base: str
    bots: list[Bot]

    @property
    def rooms(self) -> Rooms:
        rooms: Rooms = self.app.state.rooms
        return rooms

    @property
    def sip(self) -> SipServer:
        server: SipServer = self.app.state.sip
        return server

    @property
    def calls(self) -> SipRoomCalls:
        handler = self.sip.handler
        assert isinstance(handler, SipRoomCalls)
        return handler

    def add_room(self, alias: str, **kw: Any) -> RoomConfig:
        config = RoomConfig(alias=alias, **kw)
        self.rooms.put(config)
        return config

    def bot(self, alias: str, name: str, **kw: Any) -> Bot:
        b = Bot(f"{self.base.replace('http', 'ws', 1)}/ws/rooms/{alias}", name, **kw)
        self.bots.append(b)
        return b


@asynccontextmanager
async def run_sip_node(settings_factory: Callable[..., Settings], **overrides: Any) -> AsyncIterator[SipNode]:
    low = 20000 + 2 * (free_port(socket.SOCK_DGRAM) % 10000)
    values: dict[str, Any] = {
        "media_size_cap": "320x180",
        "media_fps": 15,
        "ice_host_addresses": "127.0.0.1",
        "media_keyframe_interval": 0.3,
        "sip_enabled": True,
        "sip_host": "127.0.0.1",
        "sip_port": free_sip_port(),
        "sip_tls_port": free_port(socket.SOCK_STREAM),
        "rtp_ports": f"{low}-{low + 399}",
        "sip_max_invites_per_second": 200.0,
    }
    port = free_port()
    values["public_url"] = f"http://127.0.0.1:{port}"  # its join link and CSP name where it is
    values.update(overrides)
    settings = settings_factory(**values)
    app = create_app(settings, migrate=False)
    async with served(app, port) as base:
        node = SipNode(settings=settings, app=app, base=base, bots=[])
        try:
            yield node
        finally:
            for b in node.bots:
                await b.close()
