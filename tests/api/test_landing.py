"""``/`` is a landing page that links every page a person goes to."""

from __future__ import annotations

import re

from tests.conftest import Api
from vdx.demo import DemoMeeting


def links(page: str) -> list[str]:
    return [href.replace("&amp;", "&") for href in re.findall(r'<a href="([^"]+)"', page)]


async def test_the_landing_page_links_the_pages(api: Api) -> None:
    r = await api.client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert '<html lang="en">' in page and "<h1" in page and "/web/static/style.css" in page
    assert links(page) == ["/booking/", "/dashboard/", "/steering/", "/api/docs", "/manage/health"]
    for href in links(page):
        assert (await api.client.get(href)).status_code == 200, href


async def test_under_demo_it_links_the_demo_meeting(api: Api) -> None:
    api.app.state.demo = DemoMeeting(alias="12345678@vdx.test", host_pin=111111, guest_pin=2222)
    r = await api.client.get("/")
    assert r.status_code == 200
    assert links(r.text)[:2] == [
        "/join/?conference=12345678%40vdx.test&pin=111111",
        "/join/?conference=12345678%40vdx.test&pin=2222",
    ]
