"""The landing page at ``/`` in a real browser: accessible, in Danish or English, and its links
lead to the pages."""

from __future__ import annotations

from typing import Any

from vdx.demo import DemoMeeting

from .conftest import WebNode, check_accessibility, new_page, screenshot, wait_for


async def test_the_landing_page_leads_everywhere(web: WebNode, browser: Any) -> None:
    web.app.state.demo = DemoMeeting(alias="12345678@vdx.test", host_pin=111111, guest_pin=2222)
    page = await new_page(browser)
    await page.goto(f"{web.base}/")
    await wait_for(page, "document.documentElement.lang === 'en'", "English texts")
    assert await page.locator("h1").inner_text() == "vdx video node"
    names = await page.locator("main a").all_inner_texts()
    assert names == [
        "Join the demo meeting as host",
        "Join the demo meeting as guest",
        "Book video meetings (staff)",
        "Operations dashboard (operators)",
        "Capacity and usage (steering group)",
        "The VDX booking API v2, interactive documentation",
        "Health of this node",
    ]
    await check_accessibility(page, "the landing page")
    await screenshot(page, "landing-en")
    await page.get_by_role("link", name="Join the demo meeting as guest").click()
    await page.wait_for_url("**/join/?conference=12345678%40vdx.test&pin=2222")
    assert await page.input_value("#pin") == "2222"

    danish = await new_page(browser, locale="da-DK")
    await danish.goto(f"{web.base}/")
    await wait_for(danish, "document.documentElement.lang === 'da'", "Danish texts")
    assert await danish.locator("h1").inner_text() == "vdx videonode"
    assert await danish.get_by_role("link", name="Book videomøder (personale)").get_attribute("href") == (
        "/booking/"
    )
    await check_accessibility(danish, "the landing page in Danish")
    await screenshot(danish, "landing-da")
