"""Debian's Firefox ESR driven over WebDriver BiDi, without geckodriver or Playwright.

Playwright drives only its own patched Firefox builds (not downloadable here), and geckodriver is
not packaged by Debian nor shipped for Linux in a PyPI wheel. Firefox speaks WebDriver BiDi
itself (``--remote-debugging-port``): a WebSocket that takes JSON commands, so this client is a
few commands of the W3C protocol: new session, navigate, evaluate script, screenshot.
A fresh profile turns on the fake camera and microphone and skips the permission prompt.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import websockets

from harness.waiting import until

FIREFOX = os.environ.get("VDX_TEST_FIREFOX", "/usr/bin/firefox-esr")

PREFS = {
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    "intl.accept_languages": "en-GB",
    "media.autoplay.default": 1,  # Firefox's default, stated: sound plays only after a user's click
    # The node listens on 127.0.0.1 only in tests: Firefox leaves loopback out of ICE by default
    # and hides host addresses behind mDNS names.
    "media.peerconnection.ice.loopback": True,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    "browser.shell.checkDefaultBrowser": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.update.disabledForTesting": True,
    "browser.startup.homepage_override.mstone": "ignore",
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
}


class BidiError(RuntimeError):
    pass


class Firefox:
    def __init__(self, profile: Path, port: int, log: Path) -> None:
        self.profile = profile
        self.port = port
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None
        self.ws: Any = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.context = ""

    async def start(self, width: int = 1000, height: int = 760) -> None:
        self.profile.mkdir(parents=True, exist_ok=True)
        (self.profile / "user.js").write_text(
            "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in PREFS.items())
        )
        with self.log.open("wb") as fh:
            self.proc = await asyncio.create_subprocess_exec(
                FIREFOX,
                "--headless",
                "--no-remote",
                "--profile",
                str(self.profile),
                "--remote-debugging-port",
                str(self.port),
                f"--width={width}",
                f"--height={height}",
                "about:blank",
                stdout=fh,
                stderr=fh,
            )
        deadline = time.monotonic() + 30
        while True:
            if self.proc.returncode is not None:
                raise BidiError(f"firefox exited: {self.log.read_text()[-2000:]}")
            try:
                self.ws = await websockets.connect(
                    f"ws://127.0.0.1:{self.port}/session", max_size=64 * 1024 * 1024
                )
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise BidiError(f"no BiDi socket: {self.log.read_text()[-2000:]}") from None
                await asyncio.sleep(0.2)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        await self.command("session.new", {"capabilities": {"alwaysMatch": {"acceptInsecureCerts": True}}})
        tree = await self.command("browsingContext.getTree", {})
        self.context = tree["contexts"][0]["context"]

    async def _read(self) -> None:
        async for raw in self.ws:
            msg = json.loads(raw)
            fut = self._waiting.pop(msg.get("id", -1), None)
            if fut is not None and not fut.done():
                fut.set_result(msg)

    async def command(self, method: str, params: dict[str, Any], wait_s: float = 30) -> dict[str, Any]:
        n = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[n] = fut
        await self.ws.send(json.dumps({"id": n, "method": method, "params": params}))
        msg = await asyncio.wait_for(fut, wait_s)
        if msg.get("type") == "error":
            raise BidiError(f"{method}: {msg.get('error')}: {msg.get('message')}")
        result: dict[str, Any] = msg["result"]
        return result

    async def goto(self, url: str) -> None:
        await self.command(
            "browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"}
        )

    async def evaluate(self, expression: str) -> Any:
        """The expression's value (awaited if a promise), as JSON: the script returns
        ``JSON.stringify`` of it, so no BiDi remote-value decoding is needed."""
        r = await self.command(
            "script.evaluate",
            {
                "expression": f"(async () => JSON.stringify(await ({expression})))()",
                "target": {"context": self.context},
                "awaitPromise": True,
            },
        )
        if r.get("type") != "success":
            raise BidiError(f"script failed: {r.get('exceptionDetails', {}).get('text')}")
        value = r["result"].get("value")
        return None if value is None else json.loads(value)

    async def click(self, element_id: str) -> None:
        """A real pointer click in the middle of the element (a user's gesture, unlike
        ``element.click()`` from a script)."""
        box = await self.evaluate(
            f"(() => {{ const r = document.getElementById({json.dumps(element_id)}).getBoundingClientRect();"
            " return [Math.round(r.left + r.width / 2), Math.round(r.top + r.height / 2)]; })()"
        )
        actions = [
            {"type": "pointerMove", "x": box[0], "y": box[1], "origin": "viewport"},
            {"type": "pointerDown", "button": 0},
            {"type": "pointerUp", "button": 0},
        ]
        await self.command(
            "input.performActions",
            {"context": self.context, "actions": [{"type": "pointer", "id": "mouse", "actions": actions}]},
        )

    async def wait_for(self, expression: str, what: str, deadline_s: float = 25) -> Any:
        return await until(lambda: self.evaluate(expression), deadline_s, what, poll_s=0.2)

    async def screenshot(self, path: Path) -> None:
        r = await self.command(
            "browsingContext.captureScreenshot", {"context": self.context, "origin": "document"}
        )
        data = base64.b64decode(r["data"])
        await asyncio.to_thread(
            lambda: (path.parent.mkdir(parents=True, exist_ok=True), path.write_bytes(data))
        )

    async def close(self) -> None:
        """Stop Firefox (no session.end first: ending the last session makes Firefox quit on its
        own, and then the process would be left to race with our terminate)."""
        if self._reader is not None:
            self._reader.cancel()
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        await asyncio.to_thread(shutil.rmtree, self.profile, True)
