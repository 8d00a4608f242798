"""The keep-alive limit (``VDX_HTTP_KEEPALIVE_REQUESTS``): about one response in N closes its
connection, so clients that keep connections open spread over the API's worker processes again
(``vdx.api.middleware.RequestContext``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vdx.booking.roles import USER


async def closes(api: Any, n: int) -> int:
    headers = api.auth("org1", "a@x.dk", USER)
    closed = 0
    for _ in range(n):
        r = await api.client.get(f"{api.v2}/info", headers=headers)
        assert r.status_code == 200 and r.headers["x-request-id"]
        closed += r.headers.get("connection") == "close"
    return closed


async def test_every_response_closes_its_connection_at_a_limit_of_one(
    api_factory: Callable[..., Any],
) -> None:
    api = await api_factory(http_keepalive_requests=1)
    await api.add_org("org1")
    assert await closes(api, 20) == 20


async def test_no_response_closes_its_connection_with_the_limit_off(api_factory: Callable[..., Any]) -> None:
    api = await api_factory(http_keepalive_requests=0)
    await api.add_org("org1")
    assert await closes(api, 300) == 0


async def test_about_one_response_in_n_closes_its_connection(api_factory: Callable[..., Any]) -> None:
    api = await api_factory(http_keepalive_requests=4)
    await api.add_org("org1")
    # 100 expected in 400; the bounds are more than five standard deviations (8.7) away
    assert 50 <= await closes(api, 400) <= 150


async def test_the_default_limit_keeps_most_connections(api: Any) -> None:
    assert api.settings.http_keepalive_requests == 100
    await api.add_org("org1")
    assert await closes(api, 200) <= 15  # 2 expected
