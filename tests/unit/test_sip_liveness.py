"""Calls that nobody hangs up still end (issue 15): the media watchdog and the RFC 4028 rules."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from vdx.sip.liveness import SILENT_MEDIA, MediaWatch, SessionTimer, answer_timer, refreshed_timer
from vdx.sip.message import SipRequest, SipResponse


@dataclass
class _Media:
    last_received: float | None = None


@dataclass
class _Call:
    """What the watchdog reads of a call; each look at ``media_expected`` is one check."""

    expected: bool = True
    ended: bool = False
    media: _Media = field(default_factory=_Media)
    checks: int = 0

    @property
    def media_expected(self) -> bool:
        self.checks += 1
        return self.expected


async def _until(check: Any, deadline_s: float = 5.0) -> None:
    deadline = time.monotonic() + deadline_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_silence_hangs_up_after_the_timeout_and_media_keeps_the_call() -> None:
    async def run() -> None:
        call = _Call()
        reasons: list[str] = []
        watch = MediaWatch(cast(Any, call), 0.2, reasons.append)
        started = time.monotonic()
        watch.start()
        # Packets keep coming: several timeouts pass without a hang-up.
        while time.monotonic() - started < 0.7:
            call.media.last_received = time.monotonic()
            await asyncio.sleep(0.02)
        assert reasons == []
        last = call.media.last_received
        assert last is not None
        await _until(lambda: reasons)
        assert reasons == [SILENT_MEDIA] and time.monotonic() - last >= 0.2

    asyncio.run(run())


def test_a_held_call_may_be_silent_and_the_clock_restarts_at_resume() -> None:
    async def run() -> None:
        call = _Call(expected=False)
        reasons: list[str] = []
        watch = MediaWatch(cast(Any, call), 0.2, reasons.append)
        watch.start()
        await _until(lambda: call.checks >= 8)  # two timeouts' worth of checks while on hold
        assert reasons == []
        call.expected = True
        resumed = time.monotonic()
        await _until(lambda: reasons)
        assert time.monotonic() - resumed >= 0.1  # not at once: from the resume (less a check's step)
        watch.stop()

    asyncio.run(run())


def _request(headers: str) -> SipRequest:
    req = SipRequest(method="INVITE", uri="sip:1@vdx.local")
    for line in headers.splitlines():
        name, _, value = line.partition(": ")
        req.add(name, value)
    return req


@pytest.mark.parametrize(
    ("headers", "we_refresh", "answer"),
    [
        ("Supported: timer\nSession-Expires: 1800", False, ["1800;refresher=uac", "timer"]),
        ("Supported: timer\nSession-Expires: 1800;refresher=uac", False, ["1800;refresher=uac", "timer"]),
        ("Supported: timer\nSession-Expires: 1800;refresher=uas", True, ["1800;refresher=uas", "timer"]),
        ("Supported: timer\nSession-Expires: 1800; Refresher = UAS", True, ["1800;refresher=uas", "timer"]),
        # A proxy added Session-Expires for a UAC that knows no timers: we refresh, no Require.
        ("Session-Expires: 1800", True, ["1800;refresher=uas"]),
    ],
)
def test_who_refreshes_rfc4028_section_9(headers: str, we_refresh: bool, answer: list[str]) -> None:
    timer, response_headers = answer_timer(_request(headers), 1800)
    assert timer == SessionTimer(1800, we_refresh)
    assert [v for _, v in response_headers] == answer


def test_refresher_acts_at_half_the_interval_the_other_side_before_it_ends() -> None:
    assert SessionTimer(90, we_refresh=True).delay == 45
    assert SessionTimer(90, we_refresh=False).delay == 60
    assert SessionTimer(1800, we_refresh=False).delay == 1800 - 32


def test_the_answer_to_our_refresh_names_the_next_refresher() -> None:
    ok = SipResponse(status=200, reason="OK")
    assert refreshed_timer(ok) is None  # §7.2: no Session-Expires, no timer
    ok.add("Session-Expires", "120;refresher=uac")
    assert refreshed_timer(ok) == SessionTimer(120, we_refresh=True)
    ok.headers = [("Session-Expires", "120;refresher=uas")]
    assert refreshed_timer(ok) == SessionTimer(120, we_refresh=False)
