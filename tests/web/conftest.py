"""Browser tests: the app served by uvicorn in this process on a free port, Debian's Chromium
driven by Playwright with a fake camera and microphone (no downloads: ``executable_path``).

Screenshots go to ``test-artifacts/screenshots/``; ``check_accessibility`` runs the vendored
axe-core (tests/web/vendor/axe.min.js, MPL-2.0) and fails on serious or critical violations.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.bot import Bot
from harness.ports import free_port
from harness.served import served
from vdx.app import create_app
from vdx.node.rooms import Rooms
from vdx.services import organisations
from vdx.settings import Settings
from vdx.tokens import mint_token

CHROMIUM = os.environ.get("VDX_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"

pytestmark = pytest.mark.web


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/web/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.web)
            if not (shutil.which(CHROMIUM) or Path(CHROMIUM).exists()):
                item.add_marker(pytest.mark.skip(reason=f"no Chromium at {CHROMIUM}"))


@dataclass
class WebNode:
    settings: Settings
    app: Any
    base: str
    http: httpx.AsyncClient
    cleanups: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @property
    def rooms(self) -> Rooms:
        rooms: Rooms = self.app.state.rooms
        return rooms

    def token(self, org: str, email: str, *roles: str) -> str:
        return mint_token(self.settings, org=org, email=email, roles=list(roles))

    def auth(self, org: str, email: str, *roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(org, email, *roles)}"}

    def ws(self, alias: str) -> str:
        return f"{self.base.replace('http', 'ws', 1)}/ws/rooms/{alias}"

    def bot(self, alias: str, name: str, **kw: Any) -> Bot:
        """An aiortc bot for the room ``alias`` (not yet connected), closed when the test ends."""
        bot = Bot(self.ws(alias), name, **kw)
        self.cleanups.append(bot.close)
        return bot

    async def joined_bot(self, alias: str, name: str, pin: str | None = None, **kw: Any) -> Bot:
        """A bot in the room with its media going, closed when the test ends."""
        bot = self.bot(alias, name, **kw)
        await bot.connect()
        assert (await bot.join(pin))["type"] == "joined"
        await bot.start_media()
        return bot


@contextlib.asynccontextmanager
async def running_node(
    settings_factory: Callable[..., Settings],
    *,
    demo_sign_in: bool = True,
    host: str = "127.0.0.1",
    **overrides: Any,
) -> AsyncIterator[WebNode]:
    """The app on ``host`` (its HTTP port and ICE candidates); ``demo_sign_in`` as under ``vdx serve
    --demo`` (the staff pages' tests sign in through it, as a newcomer does after ``make run``)."""
    port = free_port()
    base = f"http://{host}:{port}"
    values: dict[str, Any] = {
        "public_url": base,
        "media_size_cap": "320x180",
        "media_fps": 15,
        "ice_host_addresses": host,
        "media_keyframe_interval": 0.3,
    }
    settings = settings_factory(**(values | overrides))
    app = create_app(settings, migrate=False, demo_sign_in=demo_sign_in)
    async with served(app, port, host=host), httpx.AsyncClient(base_url=base, timeout=10) as http:
        node = WebNode(settings=settings, app=app, base=base, http=http)
        async with app.state.sessions() as s, s.begin():
            await organisations.create(s, "clinic")
        try:
            yield node
        finally:
            for c in reversed(node.cleanups):
                await c()


@pytest.fixture
async def web(settings_factory: Callable[..., Settings]) -> AsyncIterator[WebNode]:
    async with running_node(settings_factory) as node:
        yield node


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


async def new_page(browser: Any, locale: str = "en-GB", **kw: Any) -> Any:
    """A page in a context of its own (its own camera, storage and language)."""
    context = await browser.new_context(
        locale=locale, viewport=kw.pop("viewport", {"width": 1000, "height": 760}), **kw
    )
    await context.grant_permissions(["camera", "microphone"])
    page = await context.new_page()
    page.set_default_timeout(15000)
    return page


async def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def check_accessibility(page: Any, what: str) -> list[dict[str, Any]]:
    """axe-core on the page as it is now; fails on serious or critical violations."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        # evaluated through the driver, which the pages' Content-Security-Policy does not govern
        # (a <script> tag of the test's own would be refused: no inline scripts)
        await page.evaluate(AXE.read_text(encoding="utf-8"))
    result = await page.evaluate(
        "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
        " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})); }"
    )
    bad = [v for v in result if v["impact"] in ("serious", "critical")]
    assert not bad, f"accessibility of {what}: " + json.dumps(bad, indent=1)
    return list(result)


async def wait_for(page: Any, js: str, what: str, timeout_ms: int = 20000) -> Any:
    """Wait until the expression is truthy in the page (a bounded wait, not a sleep). Given to
    Playwright as a function: an expression string it would compile in the page with eval, which
    the pages' Content-Security-Policy refuses."""
    try:
        handle = await page.wait_for_function(f"() => ({js})", timeout=timeout_ms, polling=200)
    except Exception as exc:
        state = await page.evaluate(
            "JSON.stringify(window.vdxCall ? {s: vdxCall.state, e: vdxCall.lastError,"
            " bye: document.getElementById('ended-text').textContent} : null)"
        )
        raise AssertionError(f"{what}: not within {timeout_ms} ms (page state {state})") from exc
    return await handle.json_value()


INBOUND = """async () => {
  const pc = window.vdxCall && window.vdxCall.pc;
  if (!pc) return null;
  const out = {frames: 0, samples: 0, audioEnergy: 0, width: 0};
  (await pc.getStats()).forEach(r => {
    if (r.type !== 'inbound-rtp') return;
    if (r.kind === 'video') { out.frames += r.framesDecoded || 0; out.width = r.frameWidth || out.width; }
    if (r.kind === 'audio') { out.samples += r.totalSamplesReceived || 0; out.audioEnergy += r.totalAudioEnergy || 0; }
  });
  return out;
}"""


async def receives_media(
    page: Any, what: str, deadline_s: float = 25.0, sound: bool = True
) -> dict[str, Any]:
    """Video frames decoded and audio samples received both go up; with ``sound`` the audio is
    not silence (someone else speaks: alone in a room one hears nothing, the mix leaves oneself out)."""
    first = None
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        now = await page.evaluate(INBOUND)
        if now and first is None and now["frames"] > 0 and now["samples"] > 0:
            first = now
        elif (
            now and first and now["frames"] > first["frames"] + 5 and now["samples"] > first["samples"] + 4800
        ) and (not sound or now["audioEnergy"] > first["audioEnergy"]):
            return dict(now)
        await page.wait_for_timeout(300)
    raise AssertionError(f"{what}: no increasing video frames and audio samples (first {first})")
