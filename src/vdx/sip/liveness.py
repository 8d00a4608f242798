"""How a call that nobody hangs up still ends: media silence, and RFC 4028 session timers.

A room system that loses power or network never sends its BYE. Two things notice: the media
watchdog (no RTP and no RTCP for a while) and the session timer (no refresh within the interval).
This module holds the rules; the server sends the requests and the BYEs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from .call import SipCall
from .message import SipRequest, SipResponse, digits

SILENT_MEDIA = "media timeout"


class MediaWatch:
    """Hangs up once no RTP or RTCP came for ``timeout`` seconds while the far end should be
    sending. A held call may fall silent (RFC 3264 §8.4): its silence counts from the resume."""

    def __init__(self, call: SipCall, timeout: float, hang_up: Callable[[str], None]) -> None:
        self.call = call
        self.timeout = timeout
        self.hang_up = hang_up
        self._quiet_since = time.monotonic()
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._quiet_since = time.monotonic()
        self._check()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _check(self) -> None:
        call = self.call
        if call.ended:
            return
        now = time.monotonic()
        if not call.media_expected:
            self._quiet_since = now
        heard = call.media.last_received
        last = self._quiet_since if heard is None else max(self._quiet_since, heard)
        remaining = last + self.timeout - now
        if remaining <= 0:
            self._handle = None
            self.hang_up(SILENT_MEDIA)
            return
        delay = min(remaining, self.timeout / 4)
        self._handle = asyncio.get_running_loop().call_later(delay, self._check)


@dataclass(frozen=True)
class SessionTimer:
    """A negotiated session timer (RFC 4028): its interval, and which side refreshes."""

    interval: int
    we_refresh: bool

    @property
    def delay(self) -> float:
        """When we act: the refresher refreshes at half the interval (§7.2); the other side ends
        the session shortly before the interval runs out (§10)."""
        if self.we_refresh:
            return self.interval / 2
        return self.interval - min(32, self.interval / 3)


def session_expires(message: SipRequest | SipResponse) -> tuple[int, str | None] | None:
    """The Session-Expires interval and its refresher parameter ('uac', 'uas' or None); None when
    absent or unreadable (requests are checked before, in ``offer_answer.read_offer``)."""
    raw = message.get("Session-Expires")
    if raw is None:
        return None
    value, _, params = raw.partition(";")
    value = value.strip()
    if not digits(value) or len(value) > 9:
        return None
    refresher = None
    for param in params.split(";"):
        name, _, arg = param.partition("=")
        if name.strip().lower() == "refresher" and arg.strip().lower() in ("uac", "uas"):
            refresher = arg.strip().lower()
    return int(value), refresher


def answer_timer(request: SipRequest, interval: int) -> tuple[SessionTimer, list[tuple[str, str]]]:
    """§9, as the UAS of a request with Session-Expires: who refreshes, and the 2xx's headers.
    A UAC that supports timers refreshes unless it asked us to; one that does not (a proxy added
    the header) cannot, so we do, and Require: timer is not sent to it."""
    supports = "timer" in request.tokens("Supported")
    parsed = session_expires(request)
    asked = parsed[1] if parsed is not None else None
    refresher = (asked or "uac") if supports else "uas"
    headers = [("Session-Expires", f"{interval};refresher={refresher}")]
    if supports:
        headers.append(("Require", "timer"))
    return SessionTimer(interval, we_refresh=refresher == "uas"), headers


def refreshed_timer(response: SipResponse) -> SessionTimer | None:
    """§7.2, as the UAC of our own refresh: the 2xx's Session-Expires says the interval and who
    refreshes next ('uac' is us); without one the session has no timer any more."""
    parsed = session_expires(response)
    if parsed is None:
        return None
    interval, refresher = parsed
    return SessionTimer(interval, we_refresh=refresher != "uas")


def refresh_request(call: SipCall, method: str, interval: int) -> SipRequest:
    """Our session refresh (§7.4): an in-dialog re-INVITE or UPDATE offering the current session
    again, unchanged (same o= version, RFC 3264 §8), and naming us the refresher."""
    request = call.dialog.request(method)
    request.add("Session-Expires", f"{interval};refresher=uac")
    request.add("Supported", "timer")
    sdp = call.negotiator.reoffer()
    if sdp is not None:
        request.add("Content-Type", "application/sdp")
        request.body = sdp.serialise()
    return request
