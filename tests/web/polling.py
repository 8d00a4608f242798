"""Waiting on a page through a browser driver that only evaluates scripts (Firefox over WebDriver
BiDi, WebKitGTK over classic WebDriver): one poll loop for both."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def until_truthy(
    evaluate: Callable[[str], Awaitable[Any]], expression: str, what: str, deadline_s: float
) -> Any:
    """Evaluate ``expression`` every 0.2 s until it is truthy (returned) or ``deadline_s`` passes
    (AssertionError naming ``what``)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = await evaluate(expression)
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what}: not within {deadline_s} s")
