"""The join page in WebKitGTK, Safari's engine as Debian ships it (issue 6: "works in current
Chromium, Firefox and Safari"). Debian's WebKitGTK (2.50) is built without WebRTC: there is no
RTCPeerConnection, so no call can be made in it (Playwright's own WebKit build, which has WebRTC,
cannot be downloaded here). What can be checked is that the page says so clearly instead of
failing silently, and that the camera works there (WebKit's mock capture devices)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harness.ports import free_port
from vdx.conference.policy import RoomConfig

from .conftest import SCREENSHOTS, WebNode
from .test_join import portal_link
from .webkit import DRIVER, XVFB, WebKit, minibrowser

pytestmark = pytest.mark.skipif(
    not (shutil.which(DRIVER) and minibrowser() and shutil.which(XVFB)),
    reason="no WebKitWebDriver, MiniBrowser or Xvfb (webkit2gtk-driver, xvfb)",
)


async def test_webkit_join_page_says_clearly_that_it_cannot_call(web: WebNode, tmp_path: Path) -> None:
    alias = "55550010@vdx.test"
    web.rooms.put(RoomConfig(alias=alias))
    wk = WebKit(free_port(), 100 + os.getpid() % 400, tmp_path / "webkit.log")
    web.cleanups.append(wk.close)
    await wk.start()
    await wk.goto(portal_link(web, alias))
    if await wk.evaluate("typeof RTCPeerConnection !== 'undefined'"):
        pytest.skip("this WebKitGTK has WebRTC: a call test like tests/web/test_firefox.py applies")
    text = await wk.wait_for(
        "(() => { const e = document.getElementById('problem'); return e && e.textContent.trim(); })()",
        "the page's answer",
    )
    assert "browser" in text.lower()
    assert await wk.evaluate("document.getElementById('join').disabled") is True
    # the camera itself works in WebKit: only the peer connection is missing
    tracks = await wk.evaluate(
        "navigator.mediaDevices.getUserMedia({video: true, audio: true})"
        ".then(s => s.getTracks().map(t => t.kind).sort())"
    )
    assert tracks == ["audio", "video"]
    await wk.screenshot(SCREENSHOTS / "webkit-join-unsupported.png")
