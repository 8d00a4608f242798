"""Dial-out from a live room: the room calls a SIP address, and the answered call is a participant.

A host or an operator asks (``POST .../conferences/{alias}/participants/dial``); the address is
checked (a SIP URI, never this node itself), the dial passes the node's admission decision
(``vdx.node.capacity``) like every join, and the SIP server calls (``SipServer.dial``). Progress
(calling, ringing, connected, busy, no answer, failed) is told to the room's hosts and kept in the
conference status under the participant id the caller got at once; the answered call joins with
the chosen role, never through the lobby (``SipRoomCalls.on_established``). A dial that ends
unanswered leaves nothing: its admission ticket is settled, its media and transaction are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from vdx.booking.auto_dial import AutoDial
from vdx.conference import policy
from vdx.conference.conference import Conference
from vdx.conference.events import Dialling
from vdx.conference.policy import Role
from vdx.node.capacity import Refused
from vdx.node.rooms import Rooms
from vdx.node.sip_calls import MAX_NAME, Admission
from vdx.sip import BadDestination, Credentials, DialState, OutgoingCall, SipServer, parse_destination
from vdx.sip.message import SipUri

log = logging.getLogger("vdx.node.dial_out")

AUTO_DIAL_ACTOR = "auto-dial"  # who the audit trail says dialled an automatic participant

# What the API caller hears about the outcome, once the dial ended (for its audit record).
Outcome = Callable[[str, str], Awaitable[None]]


class Trunk(Protocol):
    """An outbound trunk as the nodes read it (the admins keep them): where its calls go, how,
    with which credentials and From domain, and how many at once (0: no limit)."""

    @property
    def name(self) -> str: ...
    @property
    def proxy(self) -> str: ...  # host[:port]
    @property
    def transport(self) -> str: ...
    @property
    def username(self) -> str | None: ...
    @property
    def password(self) -> str | None: ...
    @property
    def from_domain(self) -> str | None: ...
    @property
    def max_calls(self) -> int: ...


# The trunk of that name, as the node reads it now (None: no such trunk).
TrunkLookup = Callable[[str], Awaitable[Trunk | None]]


# The automatically dialled participants of a booked room, by its scheduling info's uuid.
AutoDialLookup = Callable[[str], Awaitable[list[AutoDial]]]


class DialOutError(Exception):
    """A dial-out refused before anything was dialled: ``status`` 400 (bad address, a loop),
    409 (room ended or full), 503 (no capacity, ``retry_after`` seconds)."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


@dataclass
class DialOuts:
    """The node's dial-outs: ``server`` calls, ``rooms`` admits; ``credentials`` answer a digest
    challenge on a call without a trunk; ``trunks`` finds a trunk by name (none: no trunks)."""

    rooms: Rooms
    server: SipServer
    ring_timeout: float = 30.0
    credentials: Credentials | None = None
    trunks: TrunkLookup | None = None
    # What a booked room calls when its conference starts, by the scheduling info's uuid (as the
    # API keeps it); None: nothing.
    automatic: AutoDialLookup | None = None

    def __post_init__(self) -> None:
        self._automatic: set[asyncio.Task[None]] = set()  # reading and dialling a room's list
        # the dials under way: their room and trunk
        self._tasks: dict[asyncio.Task[Any], tuple[Conference, str | None]] = {}

    async def dial(
        self,
        conference: Conference,
        destination: str,
        role: Role,
        display_name: str | None = None,
        on_outcome: Outcome | None = None,
        trunk: str | None = None,
    ) -> str:
        """Start dialling ``destination`` into ``conference`` (through the outbound trunk named
        ``trunk``); the participant id the dialled party will have. :class:`DialOutError` when
        nothing may be dialled."""
        try:
            target = parse_destination(destination)
        except BadDestination as e:
            raise DialOutError(400, str(e)) from None
        if self.server.is_self(target):
            raise DialOutError(400, "destination is this node itself: the call would loop")
        through = await self._trunk(trunk) if trunk is not None else None
        proxy = _proxy(through) if through is not None else None
        if proxy is not None and self.server.is_self(proxy):
            raise DialOutError(400, "the trunk's proxy is this node itself: the call would loop")
        config = conference.config
        if conference.ended:
            raise DialOutError(409, "the conference has ended")
        if policy.is_full(config, len(conference.participants)):
            raise DialOutError(409, "the room is full")
        if (
            through is not None
            and through.max_calls
            and self._calls_through(through.name) >= through.max_calls
        ):
            raise DialOutError(503, f"trunk {through.name} carries its limit of {through.max_calls} calls", 5)
        admitted = self.rooms.capacity.admit(config, video=True)
        if isinstance(admitted, Refused):
            raise DialOutError(503, admitted.message, admitted.retry_after)
        pid = uuid.uuid4().hex[:12]
        name = (display_name or "").strip() or target.user or target.host
        out = OutgoingCall(
            target=target,
            alias=config.alias.split("@", 1)[0],
            display_name="vdx",
            peer_name=name[:MAX_NAME],
            secure=config.force_encryption,
            credentials=self.credentials if through is None else _credentials(through),
            ring_timeout=self.ring_timeout,
            context=Admission(
                config,
                role,
                admitted,
                participant_id=pid,
                dialled=True,
                trunk=through.name if through is not None else None,
            ),
            proxy=proxy,
            from_domain=through.from_domain if through is not None else None,
        )
        task = asyncio.get_running_loop().create_task(self._run(conference, pid, out, on_outcome))
        self._tasks[task] = (conference, through.name if through is not None else None)
        task.add_done_callback(lambda t: self._tasks.pop(t, None))
        return pid

    async def _trunk(self, name: str) -> Trunk:
        found = await self.trunks(name) if self.trunks is not None else None
        if found is None:
            raise DialOutError(400, f"unknown trunk {name!r}")
        return found

    def _calls_through(self, name: str) -> int:
        """Calls on a trunk now: dials still ringing and answered calls not yet ended."""
        ringing = sum(1 for task, (_, trunk) in self._tasks.items() if not task.done() and trunk == name)
        answered = sum(
            1
            for call in self.server.calls.values()
            if isinstance(call.context, Admission) and call.context.trunk == name and not call.ended
        )
        return ringing + answered

    def started(self, conference: Conference) -> None:
        """A conference started (its first participant came): call its automatic participants."""
        if self.automatic is None or conference.config.booking is None:
            return
        task = asyncio.get_running_loop().create_task(self._dial_automatic(conference))
        self._automatic.add(task)
        task.add_done_callback(self._automatic.discard)

    async def _dial_automatic(self, conference: Conference) -> None:
        assert self.automatic is not None and conference.config.booking is not None
        try:
            entries = await self.automatic(conference.config.booking)
        except Exception as exc:
            log.warning("room %s: its automatic participants not read (%s)", conference.alias, exc)
            return
        aliases = [conference.alias, *sorted(conference.config.aliases)]
        for entry in entries:
            if conference.ended:
                return
            await self._dial_one(conference, aliases, entry)

    async def _dial_one(self, conference: Conference, aliases: list[str], entry: AutoDial) -> None:
        """One automatic participant, recorded as a dial by ``auto-dial`` and with its outcome."""
        report = self.rooms.report_action
        pid = ""

        async def outcome(state: str, detail: str) -> None:
            if report is not None:
                await report(
                    aliases,
                    "dial_outcome",
                    AUTO_DIAL_ACTOR,
                    {"participantId": pid, "state": state, "detail": detail},
                )

        data: dict[str, Any] = {"destination": entry.destination, "role": entry.role, "trunk": entry.trunk}
        try:
            pid = await self.dial(
                conference, entry.destination, Role(entry.role), entry.display_name, outcome, entry.trunk
            )
        except DialOutError as exc:
            log.warning(
                "room %s: automatic dial-out to %s refused: %s",
                conference.alias,
                entry.destination,
                exc.message,
            )
            data |= {"refused": exc.message}
        if report is not None:
            try:
                await report(aliases, "dial", AUTO_DIAL_ACTOR, data | {"participantId": pid or None})
            except Exception:
                log.exception("room %s: recording an automatic dial-out failed", conference.alias)

    def room_ended(self, conference: Conference) -> None:
        """The conference ended: its dial-outs still ringing are cancelled (CANCEL is sent)."""
        for task, (of, _) in list(self._tasks.items()):
            if of is conference:
                task.cancel()

    async def _run(
        self, conference: Conference, pid: str, out: OutgoingCall, on_outcome: Outcome | None
    ) -> None:
        destination = str(out.target)
        last = (DialState.CALLING.value, "")

        def progress(state: DialState, detail: str) -> None:
            nonlocal last
            last = (state.value, detail)
            conference.dial_progress(Dialling(pid, destination, state.value, detail))
            if state is not DialState.CALLING:
                log.info(
                    "room %s: dial-out to %s %s (%s)", conference.alias, destination, state.value, detail
                )

        admission = out.context
        assert isinstance(admission, Admission)
        call = None
        try:
            call = await self.server.dial(out, progress)
        except Exception as e:
            log.exception("room %s: dial-out to %s failed", conference.alias, destination)
            progress(DialState.FAILED, f"internal error: {type(e).__name__}")
        finally:
            if call is None:
                admission.ticket.settle()  # never joined: its hold ends now
        if on_outcome is not None:
            try:
                await on_outcome(*last)
            except Exception:
                log.exception("room %s: recording the dial-out's outcome failed", conference.alias)

    async def close(self) -> None:
        running = [*self._automatic, *self._tasks]
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _proxy(trunk: Trunk) -> SipUri:
    """Where a trunk's calls go; a trunk whose proxy is no SIP address is refused (400)."""
    try:
        return parse_destination(f"sip:{trunk.proxy};transport={trunk.transport}")
    except BadDestination as e:
        raise DialOutError(400, f"trunk {trunk.name} has an unusable proxy: {e}") from None


def _credentials(trunk: Trunk) -> Credentials | None:
    return Credentials(trunk.username, trunk.password or "") if trunk.username else None
