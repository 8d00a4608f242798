"""WebKitGTK (Safari's engine, as Debian packages it) driven through WebKitWebDriver, the W3C
WebDriver that ships with it (``webkit2gtk-driver``), with MiniBrowser on a private Xvfb display
and WebKit's mock capture devices as camera and microphone. Plain HTTP calls of the W3C protocol:
no Selenium needed for the few commands used (session, navigate, execute script, screenshot)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import glob
import os
import shutil
from pathlib import Path
from typing import Any

import httpx

from harness.waiting import until

DRIVER = os.environ.get("VDX_TEST_WEBKITDRIVER", "/usr/bin/WebKitWebDriver")
XVFB = shutil.which("Xvfb") or "/usr/bin/Xvfb"


def minibrowser() -> str | None:
    found = sorted(glob.glob("/usr/lib/*/webkit2gtk-4.*/MiniBrowser"))
    return found[-1] if found else None


class WebKit:
    def __init__(self, port: int, display: int, log: Path) -> None:
        self.port = port
        self.display = display
        self.log = log
        self.procs: list[asyncio.subprocess.Process] = []
        self.http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60)
        self.session = ""

    async def start(self) -> None:
        env = {**os.environ, "DISPLAY": f":{self.display}"}
        with self.log.open("wb") as fh:
            self.procs.append(
                await asyncio.create_subprocess_exec(
                    XVFB,
                    f":{self.display}",
                    "-screen",
                    "0",
                    "1100x800x24",
                    "-nolisten",
                    "tcp",
                    stdout=fh,
                    stderr=fh,
                )
            )
            self.procs.append(
                await asyncio.create_subprocess_exec(
                    DRIVER, f"--port={self.port}", env=env, stdout=fh, stderr=fh
                )
            )
        for _ in range(100):
            with contextlib.suppress(httpx.HTTPError):
                if (await self.http.get("/status")).status_code == 200:
                    break
            await asyncio.sleep(0.1)
        options = {
            "binary": minibrowser(),
            "args": [
                "--automation",
                "--enable-media-stream=true",
                "--enable-webrtc=true",
                "--enable-mock-capture-devices=true",
                "--features=+MockCaptureDevices",
            ],
        }
        r = await self.http.post(
            "/session",
            json={
                "capabilities": {
                    "alwaysMatch": {"browserName": "MiniBrowser", "webkitgtk:browserOptions": options}
                }
            },
        )
        r.raise_for_status()
        self.session = r.json()["value"]["sessionId"]

    async def goto(self, url: str) -> None:
        (await self.http.post(f"/session/{self.session}/url", json={"url": url})).raise_for_status()

    async def evaluate(self, expression: str) -> Any:
        """The (awaited) value of ``expression``."""
        script = f"const done = arguments[0]; Promise.resolve({expression}).then(done, e => done({{error: String(e)}}));"
        r = await self.http.post(
            f"/session/{self.session}/execute/async", json={"script": script, "args": []}
        )
        r.raise_for_status()
        return r.json()["value"]

    async def wait_for(self, expression: str, what: str, deadline_s: float = 20) -> Any:
        return await until(lambda: self.evaluate(expression), deadline_s, what, poll_s=0.2)

    async def screenshot(self, path: Path) -> None:
        """After two painted frames: WebKitGTK's snapshot is otherwise the picture before the
        latest changes."""
        await self.evaluate(
            "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))"
        )
        r = await self.http.get(f"/session/{self.session}/screenshot")
        r.raise_for_status()
        data = base64.b64decode(r.json()["value"])
        await asyncio.to_thread(
            lambda: (path.parent.mkdir(parents=True, exist_ok=True), path.write_bytes(data))
        )

    async def close(self) -> None:
        if self.session:
            with contextlib.suppress(httpx.HTTPError):
                await self.http.delete(f"/session/{self.session}")
        await self.http.aclose()
        for p in reversed(self.procs):
            if p.returncode is None:
                p.terminate()
                try:
                    await asyncio.wait_for(p.wait(), 10)
                except TimeoutError:
                    p.kill()
                    await p.wait()
