"""The node in the real processes: `vdx serve` hosts rooms, `vdx api` workers do not."""

from __future__ import annotations

import contextlib
import json

import pytest
import websockets

pytestmark = pytest.mark.media


async def _first_message(base_url: str, alias: str) -> tuple[dict, int | None]:
    async with websockets.connect(f"{base_url.replace('http', 'ws', 1)}/ws/rooms/{alias}") as ws:
        msg = json.loads(await ws.recv())
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.recv()
        return msg, ws.close_code


async def test_vdx_serve_hosts_rooms_and_vdx_api_does_not(live_server_factory):
    serve = live_server_factory("serve")
    msg, code = await _first_message(serve.base_url, "nothing@vdx.test")
    assert (msg["code"], code) == ("not_found", 4404)  # the node answers: no such room
    api = live_server_factory("api")
    msg, code = await _first_message(api.base_url, "nothing@vdx.test")
    assert (msg["code"], code) == ("node_disabled", 4503)
