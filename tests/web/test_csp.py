"""Every page under its Content-Security-Policy in a real browser (issue 15, item 9): each one
works (the join page gets into a room, the staff pages sign in and act, the API docs render and
call the API) and the browser reports no violation, while an inline script is refused."""

from __future__ import annotations

from typing import Any

from vdx.conference.policy import RoomConfig
from vdx.demo import DemoMeeting

from .conftest import WebNode, new_page, receives_media, wait_for

# Installed before any script of the page runs: every violation the browser reports lands here.
LISTEN = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(
  {directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber}));
"""


async def open_page(browser: Any, url: str) -> tuple[Any, list[str]]:
    """A page at ``url`` that records CSP violations (events and console reports)."""
    page = await new_page(browser)
    await page.add_init_script(LISTEN)
    console: list[str] = []
    page.on(
        "console",
        lambda m: console.append(m.text) if "Content Security Policy" in m.text else None,
    )
    response = await page.goto(url)
    policy = response.headers.get("content-security-policy", "")
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy, url
    return page, console


async def no_violations(page: Any, console: list[str], what: str) -> None:
    events = await page.evaluate("window.__csp")
    assert events == [] and console == [], f"{what}: {events} {console}"


async def sign_in(page: Any, role: str) -> None:
    await page.get_by_label("Organisation code").fill("clinic")
    await page.get_by_label("E-mail", exact=True).fill("staff@clinic.test")
    await page.get_by_label("Role", exact=True).select_option(role)
    await page.get_by_role("button", name="Sign in").click()


async def test_every_page_works_under_its_policy(web: WebNode, browser: Any) -> None:
    alias = "55559001@vdx.test"
    web.rooms.put(RoomConfig(alias=alias))
    web.app.state.demo = DemoMeeting(alias=alias, host_pin=None, guest_pin=None)

    page, console = await open_page(browser, f"{web.base}/")
    await wait_for(page, "document.documentElement.lang === 'en'", "English texts")
    await no_violations(page, console, "landing page")

    # the join page: preview, the signalling WebSocket, the room's picture
    page, console = await open_page(browser, f"{web.base}/join/?conference={alias}")
    await wait_for(page, "window.vdxCall && window.vdxCall.ready", "preview ready")
    await page.get_by_label("Your name").fill("Under CSP")
    await page.get_by_role("button", name="Join").click()
    await wait_for(page, "window.vdxCall.state === 'call'", "in the call")
    await receives_media(page, "the join page under CSP", sound=False)
    await no_violations(page, console, "join page")

    # the booking page: demo sign-in, a meeting booked through the API
    page, console = await open_page(browser, f"{web.base}/booking/")
    await wait_for(page, "window.vdxBooking && window.vdxBooking.ready", "booking page ready")
    await sign_in(page, "meeting-planner")
    await wait_for(page, "window.vdxBooking.loaded >= 1", "meetings listed")
    await page.get_by_label("Subject", exact=True).fill("Booked under CSP")
    await page.get_by_role("button", name="Book meeting").click()
    await wait_for(page, "document.querySelectorAll('#mine tbody tr').length === 1", "booked")
    await no_violations(page, console, "booking page")

    # the dashboard: live conferences and the usage charts (SVG, coloured legends)
    page, console = await open_page(browser, f"{web.base}/dashboard/")
    await wait_for(page, "window.vdxDash && window.vdxDash.ready", "dashboard ready")
    await sign_in(page, "meeting-admin")
    await wait_for(page, "window.vdxDash.usage && window.vdxDash.polls >= 1", "dashboard loaded")
    await no_violations(page, console, "dashboard")

    # the API docs: Swagger UI from this node renders the document and calls the API
    page, console = await open_page(browser, f"{web.base}{web.settings.api_context}/docs")
    info = page.locator(".opblock", has_text="/v2/info").first
    await info.locator(".opblock-summary").click()
    await info.get_by_role("button", name="Try it out").click()
    await info.get_by_role("button", name="Execute").click()
    status = ".live-responses-table .response .response-col_status"
    await wait_for(page, f"document.querySelector('{status}')", "the API called from its docs")
    assert "401" in await info.locator(status).first.inner_text()  # no token given: the API's answer
    await no_violations(page, console, "API docs")

    # and the policy is enforced and seen: a script of the page's own making is refused
    ran = await page.evaluate(
        """() => new Promise(done => {
          document.addEventListener('securitypolicyviolation', () => done(window.__injected === 1));
          const s = document.createElement('script');
          s.textContent = 'window.__injected = 1';
          document.body.appendChild(s);
        })"""
    )
    assert ran is False
    assert [e["directive"] for e in await page.evaluate("window.__csp")] == ["script-src-elem"]
