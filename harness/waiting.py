"""One way to wait for a condition: poll it until it holds or a deadline passes, then fail saying
what was awaited and what was last seen (a bounded wait, never a bare sleep)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Callable
from typing import Any


async def until(
    check: Callable[[], Any],
    deadline_s: float = 15.0,
    what: str | Callable[[], str] = "",
    *,
    poll_s: float = 0.05,
    wake: asyncio.Event | None = None,
) -> Any:
    """The first truthy value of ``check()`` (awaited when it returns an awaitable), asked every
    ``poll_s`` and whenever ``wake`` is set; past ``deadline_s`` a TimeoutError naming ``what`` (a
    callable is asked then) and the last value seen."""
    deadline = time.monotonic() + deadline_s
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            text = what() if callable(what) else what
            raise TimeoutError(f"{text or check} not within {deadline_s} s (last seen: {value!r})")
        if wake is None:
            await asyncio.sleep(poll_s)
        else:
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), poll_s)
