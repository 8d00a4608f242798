"""Browsers waiting on the point-to-point page, each signed in as a device (``vdx.booking.devices``),
for the calls a routing rule sends to ``browser:NAME`` (``vdx.node.gateway``).

A page signs in with the device's name and secret, checked by the API (``verify``: the node needs
no database; ``POST /node/v1/device-sign-in`` with the node's token), each try first passing the
node's PIN throttle keyed by the device's name. One page waits per name: a newer sign-in takes
the name over. A call rings the page waiting under its name; the page answers, declines, or lets
it ring out; the caller may give up first, and the page hears so. A page in a call, or ringing,
waits for nothing else until it signs in again.

In a cluster each node announces the devices waiting on it in its heartbeat (``NodeInfo.devices``):
a node that gets a call for a device waiting on another sends the caller there (SIP 302, as for a
room hosted elsewhere), so the call rings where the page's socket is. A page that signed in within
the last heartbeat may not be known to the other nodes yet (their callers get 480 meanwhile).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from vdx.conference.pin_guard import PinGuard, whole_seconds
from vdx.conference.policy import RoomConfig
from vdx.node.routing import HERE, NodeInfo, Route, Where

log = logging.getLogger("vdx.node.waiting")

RING_TIMEOUT_S = 30.0  # then the caller gets 480 No Answer
ANSWER, DECLINE, GONE = "answer", "decline", "gone"  # a page's choice while it rings


class Outcome(enum.Enum):
    """A ringing call that ended without a bridge."""

    ABSENT = "absent"  # nobody waits under the name
    BUSY = "busy"  # the page rings for, or is in, another call
    DECLINED = "declined"
    NO_ANSWER = "no_answer"  # rang out, or the page went away while it rang


class SignInRefused(Exception):
    """``code`` is the page's error code: bad_credentials, signin_wait, unavailable."""

    def __init__(self, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


@dataclass(eq=False)
class Ringing:
    """One call ringing one page: the page's ``choice`` (answer, decline, or gone: the page went
    away), then the node's ``bridge`` (the room the page enters; None: the call is gone)."""

    caller: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    choice: asyncio.Future[str] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    bridge: asyncio.Future[RoomConfig | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def choose(self, choice: str) -> bool:
        """The page's choice, if the call still rings (a late answer finds it over: False)."""
        if self.choice.done():
            return False
        self.choice.set_result(choice)
        return True

    def connect(self, config: RoomConfig | None) -> None:
        if not self.bridge.done():
            self.bridge.set_result(config)


@dataclass(frozen=True)
class Devices:
    began: float  # event-loop time the read began
    made: Mapping[str, str]  # name -> when made


class Waiter(Protocol):
    """A page waiting (its signalling socket)."""

    name: str
    made: str  # when its device was made (a device made anew has a new secret)

    def ring(self, ringing: Ringing) -> None: ...

    def stop_ringing(self, ringing: Ringing, reason: str) -> None: ...

    def displaced(self, reason: str) -> None: ...


class WaitingBrowsers:
    def __init__(self, guard: PinGuard, ring_timeout: float = RING_TIMEOUT_S) -> None:
        self.guard = guard
        self.ring_timeout = ring_timeout
        # Checks a device's name and secret: when the device was made if they are its own, else
        # None (set by the process: the API, with the node's token); None: no sign-in here.
        self.verify: Callable[[str, str], Awaitable[str | None]] | None = None
        self.waiting: dict[str, Waiter] = {}
        self.ringing: dict[str, Ringing] = {}  # by device name
        self._since: dict[str, float] = {}  # when each page began to wait (event-loop time)
        # Another node a device waits on (the cluster's registry); None: this node alone.
        self.elsewhere: Callable[[str], NodeInfo | None] | None = None

    def route(self, name: str) -> Route:
        """Where a call for the device must go: here when its page waits here (or nowhere)."""
        if name in self.waiting or self.elsewhere is None:
            return HERE
        node = self.elsewhere(name)
        return HERE if node is None else Route(Where.ELSEWHERE, node)

    async def sign_in(self, name: str, secret: str, address: str) -> str:
        """When the device the page may wait as was made (``SignInRefused`` says why it may not)."""
        if self.verify is None:
            raise SignInRefused("unavailable", "this node cannot sign devices in (no API to ask)")
        key = f"device:{name}"
        verdict = self.guard.admit(key, address)
        if verdict.refused:
            wait = whole_seconds(verdict.wait_s)
            raise SignInRefused(
                "signin_wait", f"too many wrong tries: wait {wait} s before the next one", wait
            )
        if verdict.delay_s > 0:
            await asyncio.sleep(verdict.delay_s)
        try:
            made = await self.verify(name, secret)
        except Exception as exc:
            log.warning("device %s: sign-in not checked: %s", name, exc)
            raise SignInRefused(
                "unavailable", "the sign-in cannot be checked now: try again shortly"
            ) from None
        if made is None:
            self.guard.wrong(key)
            log.info("device %s: wrong name or secret from %s", name, address)
            raise SignInRefused("bad_credentials", "wrong device name or secret")
        self.guard.right(key, address)
        return made

    async def read(self, devices: Callable[[], Awaitable[Mapping[str, str]]]) -> Devices:
        """The devices as the API has them (name -> when made), and when the read began."""
        began = asyncio.get_running_loop().time()
        return Devices(began, await devices())

    def keep(self, devices: Devices) -> None:
        """A page waiting as a device that is gone, or was made anew since it signed in, is let
        go (a page that signed in after the read began is not judged by it)."""
        for name, waiter in list(self.waiting.items()):
            if self._since.get(name, 0.0) < devices.began and devices.made.get(name) != waiter.made:
                log.info("device %s removed: its page waits no more", name)
                self.leave(waiter)
                waiter.displaced("device_removed")

    def wait(self, waiter: Waiter) -> None:
        """``waiter`` now waits under its name; a page waiting there before is let go."""
        old = self.waiting.get(waiter.name)
        self.waiting[waiter.name] = waiter
        self._since[waiter.name] = asyncio.get_running_loop().time()
        if old is not None and old is not waiter:
            self._gone(old)
            old.displaced("signed_in_elsewhere")
        log.info("device %s waiting", waiter.name)

    def leave(self, waiter: Waiter) -> None:
        """The page went away (or into a call): it waits no longer; a call ringing it rings out."""
        if self.waiting.get(waiter.name) is waiter:
            del self.waiting[waiter.name]
            self._since.pop(waiter.name, None)
            self._gone(waiter)

    def _gone(self, waiter: Waiter) -> None:
        ringing = self.ringing.get(waiter.name)
        if ringing is not None:
            ringing.choose(GONE)

    async def ring(self, name: str | None, caller: str) -> Ringing | Outcome:
        """Ring the page waiting as ``name`` until it answers (the Ringing, whose ``bridge`` the
        caller's side then sets), declines, goes away, or the ring timeout passes. A cancel of
        this (the caller hung up) stops the ringing on the page."""
        waiter = self.waiting.get(name) if name is not None else None
        if waiter is None or name is None:
            return Outcome.ABSENT
        if name in self.ringing:
            return Outcome.BUSY
        ringing = Ringing(caller)
        self.ringing[name] = ringing
        log.info("device %s: ringing for %s", name, caller)
        waiter.ring(ringing)
        stopped: str | None = "caller_hung_up"  # what the page is told, if the ringing stops
        try:
            async with asyncio.timeout(self.ring_timeout):
                choice = await asyncio.shield(ringing.choice)
            stopped = None
        except TimeoutError:
            stopped = "no_answer"
            return Outcome.NO_ANSWER
        finally:
            self.ringing.pop(name, None)
            if stopped is not None:
                ringing.choose(GONE)  # an answer from now on finds the call over
                ringing.connect(None)  # and a page that answered just now hears it is gone
                waiter.stop_ringing(ringing, stopped)
        if choice == GONE:
            return Outcome.NO_ANSWER
        if choice != ANSWER:
            return Outcome.DECLINED
        self.leave(waiter)  # in a call now: the page signs in again afterwards
        return ringing
