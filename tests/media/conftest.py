"""A real node for media tests: the app served by uvicorn in this process on a free port, so
bots use the real WebSocket signalling and tests can put rooms into the real directory."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from harness.bot import Bot
from harness.served import served
from vdx.app import create_app
from vdx.booking.roles import ADMIN
from vdx.conference.policy import RoomConfig
from vdx.node.rooms import Rooms
from vdx.services import organisations
from vdx.settings import Settings
from vdx.tokens import mint_token


@dataclass
class Node:
    settings: Settings
    app: Any
    base: str
    http: httpx.AsyncClient
    bots: list[Bot]

    @property
    def rooms(self) -> Rooms:
        rooms: Rooms = self.app.state.rooms
        return rooms

    def add_room(self, alias: str, **kw: Any) -> RoomConfig:
        """A room of organisation ``ops`` (the operator ``admin()`` is of) unless ``kw`` names another."""
        config = RoomConfig(alias=alias, **({"organisation": "ops"} | kw))
        self.rooms.put(config)
        return config

    def bot(self, alias: str, name: str, **kw: Any) -> Bot:
        b = Bot(f"{self.base.replace('http', 'ws', 1)}/ws/rooms/{alias}", name, **kw)
        self.bots.append(b)
        return b

    def auth(self, *roles: str) -> dict[str, str]:
        token = mint_token(self.settings, org="ops", email="ops@vdx.test", roles=list(roles))
        return {"Authorization": f"Bearer {token}"}

    def admin(self) -> dict[str, str]:
        return self.auth(ADMIN)

    def control(self, alias: str, path: str = "") -> str:
        return f"{self.settings.api_context}/node/v1/conferences/{alias}{path}"


@contextlib.asynccontextmanager
async def running_node(settings_factory: Callable[..., Settings], **overrides: Any) -> AsyncIterator[Node]:
    """The node with small pictures on loopback; ``overrides`` are further settings."""
    values: dict[str, Any] = {
        "media_size_cap": "320x180",
        "media_fps": 15,
        "ice_host_addresses": "127.0.0.1",
        "media_keyframe_interval": 0.3,
    }
    settings = settings_factory(**(values | overrides))
    app = create_app(settings, migrate=False)
    async with served(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        n = Node(settings=settings, app=app, base=base, http=http, bots=[])
        async with app.state.sessions() as s, s.begin():
            await organisations.create(s, "ops")
        try:
            yield n
        finally:
            for b in n.bots:
                await b.close()


@pytest.fixture
async def node(settings_factory: Callable[..., Settings]) -> AsyncIterator[Node]:
    async with running_node(settings_factory) as n:
        yield n
