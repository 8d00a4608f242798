"""PIN entry before a call is answered: digits (RFC 4733 events or SIP INFO) up to '#' make a PIN,
each PIN goes to the node's check, and too many wrong ones or too long a wait refuse the call.

It runs while the INVITE has its 183 out, so the caller hears the prompt as early media and the
digits can flow on the early-media RTP endpoints; a CANCEL ends it at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from .call import Accept, Reject, RequirePin, SipCall

log = logging.getLogger("vdx.sip.pin_entry")

MAX_PIN_DIGITS = 32  # older digits are dropped, so a stuck key cannot grow the PIN without bound
QUEUED_DIGITS = 64
POLL_S = 0.5  # how often a wait for the next digit looks for a CANCEL


async def collect_pin(
    call: SipCall,
    ask: RequirePin,
    check: Callable[[str], Awaitable[Accept | Reject | None]],
    cancelled: Callable[[], bool],
) -> Accept | Reject | None:
    """The first right PIN's Accept, a Reject (the check's, 403 after ``ask.attempts`` wrong PINs,
    480 at ``ask.timeout_s``), or None once cancelled. Only success clears ``call.pin_digits``."""
    queue: asyncio.Queue[str] = asyncio.Queue(maxsize=QUEUED_DIGITS)
    call.pin_digits = queue
    if ask.on_early_media is not None:
        try:
            ask.on_early_media(call)
        except Exception:
            log.exception("early media for %s failed", call.incoming.alias)
    deadline = asyncio.get_running_loop().time() + ask.timeout_s
    wrong = 0
    while True:
        pin = await _read_pin(queue, deadline, cancelled)
        if pin is None:
            return None if cancelled() else Reject(480, "PIN entry timed out")
        result = await check(pin)
        if cancelled():
            return None
        if isinstance(result, Reject):
            return result
        if result is not None:
            call.pin_digits = None
            return result
        wrong += 1
        if wrong >= ask.attempts:
            return Reject(403, "Wrong PIN")


async def _read_pin(queue: asyncio.Queue[str], deadline: float, cancelled: Callable[[], bool]) -> str | None:
    """Digits up to '#', or None when the deadline passes or the INVITE is cancelled first."""
    loop = asyncio.get_running_loop()
    pin = ""
    while not cancelled():
        remaining = deadline - loop.time()
        if remaining <= 0:
            return None
        try:
            digit = await asyncio.wait_for(queue.get(), min(remaining, POLL_S))
        except TimeoutError:
            continue  # look for a CANCEL and the deadline again
        if digit == "#":
            return pin
        pin = (pin + digit)[-MAX_PIN_DIGITS:]
    return None
