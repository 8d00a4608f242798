"""A small real room policy for SIP tests: an in-memory alias table implementing ``CallHandler``.

known alias -> accept; "closed" -> 480 (room not open yet or ended); "full" -> 486; anything else
-> 404. It records what the server told it, so tests can wait for establishment, DTMF and hangups.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.waiting import until
from vdx.sip import Accept, IncomingCall, Reject, RequirePin, SipCall

CLOSED = "closed"
FULL = "full"


@dataclass
class Room:
    alias: str
    state: str = "open"  # "open" | "closed" | "full"
    host_pin: str | None = None
    guest_pin: str | None = None


@dataclass
class AliasTable:
    rooms: dict[str, Room] = field(default_factory=dict)
    invites: list[IncomingCall] = field(default_factory=list)
    established: list[SipCall] = field(default_factory=list)
    changed: list[SipCall] = field(default_factory=list)
    dtmf: list[tuple[str, str]] = field(default_factory=list)
    ended: list[tuple[SipCall, str]] = field(default_factory=list)
    decided: int = 0
    pins_tried: list[str] = field(default_factory=list)
    _gates: dict[str, asyncio.Event] = field(default_factory=dict)
    _event: asyncio.Event = field(default_factory=asyncio.Event)

    def add(
        self, alias: str, state: str = "open", host_pin: str | None = None, guest_pin: str | None = None
    ) -> None:
        self.rooms[alias] = Room(alias, state, host_pin, guest_pin)

    def gate(self, alias: str) -> asyncio.Event:
        """An open room whose INVITEs wait for the returned event (a slow policy lookup)."""
        self.add(alias)
        self._gates[alias] = asyncio.Event()
        return self._gates[alias]

    async def on_invite(self, call: IncomingCall) -> Accept | Reject | RequirePin:
        self.invites.append(call)
        gate = self._gates.get(call.alias)
        if gate is not None:
            await gate.wait()
        try:
            return self._decide(call)
        finally:
            self.decided += 1
            self._poke()

    def _decide(self, call: IncomingCall) -> Accept | Reject | RequirePin:
        if call.alias == "broken":
            raise RuntimeError("room store unavailable")
        room = self.rooms.get(call.alias)
        if room is None:
            return Reject(404, "Conference Not Found")
        if room.state == CLOSED:
            return Reject(480, "Conference Not Open")
        if room.state == FULL:
            return Reject(486, "Conference Full")
        if room.host_pin or room.guest_pin:

            async def check(pin: str, room: Room = room) -> Accept | None:
                self.pins_tried.append(pin)
                if pin and pin == room.host_pin:
                    return Accept("host")
                if pin and pin == room.guest_pin:
                    return Accept("guest")
                return None

            return RequirePin(check)
        return Accept("guest")

    def _poke(self) -> None:
        self._event.set()

    async def on_established(self, call: SipCall) -> None:
        self.established.append(call)
        self._poke()

    async def on_session_changed(self, call: SipCall) -> None:
        self.changed.append(call)
        self._poke()

    async def on_dtmf(self, call: SipCall, digit: str) -> None:
        self.dtmf.append((call.incoming.call_id, digit))
        self._poke()

    async def on_ended(self, call: SipCall, reason: str) -> None:
        self.ended.append((call, reason))
        self._poke()

    async def wait_for(self, condition: Callable[[], bool], deadline_s: float = 10.0) -> None:
        """Wait until ``condition()`` holds (re-checked on every call event); fail with what was
        seen at the deadline."""
        await until(condition, deadline_s, self._seen, poll_s=0.02, wake=self._event)

    def _seen(self) -> str:
        return (
            f"condition not met: invites={[c.alias for c in self.invites]} "
            f"established={len(self.established)} ended={[r for _, r in self.ended]} dtmf={self.dtmf}"
        )
