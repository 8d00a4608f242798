"""``/``: the landing page, linking every page a person goes to (and, under ``vdx serve --demo``,
the demo meeting's join links, which ``app.state.demo`` holds)."""

from __future__ import annotations

from functools import cache
from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from vdx.settings import Settings
from vdx.web.pages import STATIC

router = APIRouter(include_in_schema=False)

_DEMO_SECTION = """<section class="card" aria-labelledby="demo-h">
    <h2 id="demo-h" data-i18n="home.demo">The demo meeting</h2>
    <p data-i18n="home.demoHint">A meeting open now in organisation demo. Join it twice, in two windows or on two devices.</p>
    <ul>
      <li><a href="{host}" data-i18n="home.demoHost">Join the demo meeting as host</a></li>
      <li><a href="{guest}" data-i18n="home.demoGuest">Join the demo meeting as guest</a></li>
    </ul>
  </section>
  """


@cache
def _page(docs: str, host: str | None, guest: str | None) -> str:
    demo = _DEMO_SECTION.format(host=escape(host), guest=escape(guest)) if host and guest else ""
    page = (STATIC / "home.html").read_text(encoding="utf-8")
    return page.replace("{{docs}}", escape(docs)).replace("{{demo}}", demo)


@router.get("/")
async def landing_page(request: Request) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    demo = getattr(request.app.state, "demo", None)
    page = _page(
        f"{settings.api_context}/docs",
        demo.host_path if demo is not None else None,
        demo.guest_path if demo is not None else None,
    )
    return HTMLResponse(page, headers={"Cache-Control": "no-cache"})
