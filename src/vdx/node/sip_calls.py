"""SIP calls into the node's rooms: the :class:`~vdx.sip.CallHandler` the SIP server asks.

A node that does not host the room dialled answers 302 with the hosting node's SIP address for
the INVITE's transport (the caller, or a proxy in front, dials it: this node stays out of a call it
does not carry), and 503 + Retry-After while the room moves between nodes (``route_answer``).

The same rules as WebRTC signalling (``vdx.conference.policy``), answered in SIP terms:
404 unknown alias, 480 room not open yet / meeting ended, 486 room full, 488 when the room has
``forceEncryption`` and the call is not TLS + SDES-SRTP, 503 + Retry-After when the node's
admission decision (``vdx.node.capacity``) refuses the join: before answering in a room without
PINs, after the right PIN and a spoken prompt saying why in a PIN room. PIN rooms answer 183
with a spoken prompt as early media and read the PIN by RFC 4733 or SIP INFO (the server counts
the three attempts, then 403); the PIN decides host or guest, and guests wait in the lobby until
a host is present, as on WebRTC. Every PIN first passes the node's PIN throttle
(``vdx.conference.pin_guard``), keyed by the INVITE's source address: a source that must wait
gets 403 "Too many wrong PINs, retry in N s", before the 183 or, during PIN entry, after a spoken
prompt saying so.

An alias that is no room goes where a routing rule sends it (``vdx.node.gateway``): a SIP
destination is dialled from a bridge room; a waiting browser (``browser:NAME``) is rung, the caller
hearing 180 until it answers (then the bridge), declines (603), rings out or is away (480).

Once answered, the call is an ordinary participant (``protocol: sip``) whose media is a
:class:`~vdx.legs.sip.SipLeg`.

A call whose presentation stream was accepted with BFCP (``vdx.sip.sdp.presentation_plan``) has
a floor control server of its own (``vdx.sip.floor_control``) on the node's BFCP listeners: the
presentation goes out on that stream (a leg watching it, as a browser's), its main picture stays
the people's, and once granted the floor (hosts; guests where guests may present) what it sends
there is the room's presentation. Someone else presenting revokes its floor.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vdx.booking.routing import Route as BridgeRoute
from vdx.booking.routing import browser_name
from vdx.conference import policy
from vdx.conference.conference import Conference, ConferenceError
from vdx.conference.events import Admitted, Bye, Event, Presentation, Stage
from vdx.conference.leg import MediaFeed
from vdx.conference.participant import Participant
from vdx.conference.pin_guard import whole_seconds
from vdx.conference.policy import Role, RoomConfig
from vdx.legs.pcm import Pcm
from vdx.legs.sip import AudioSender, SipLeg, main_codec, play, wav_chunks
from vdx.node.capacity import Refused, Ticket
from vdx.node.rooms import Rooms
from vdx.node.routing import HERE, Route, Where
from vdx.node.waiting import Outcome
from vdx.sip import Accept, IncomingCall, Reject, RequirePin, Ring, SipCall
from vdx.sip import prompts as prompt_files
from vdx.sip.bfcp_server import BfcpServer
from vdx.sip.floor_control import FloorServer
from vdx.sip.message import SipParseError, SipUri

log = logging.getLogger("vdx.node.sip")

MAX_NAME = 64

# The reason phrase of a 503 for capacity (a caller answered early hears the prompt of that name).
REASONS = {
    "capacity_clinical_reserve": "Capacity reserved for clinical use",
    "capacity_full": "Service full",
}


# How a call to a waiting browser (browser:NAME) that found no bridge is answered.
RING_OUTCOMES = {
    Outcome.ABSENT: (480, "Temporarily Unavailable"),
    Outcome.BUSY: (486, "Busy Here"),
    Outcome.DECLINED: (603, "Decline"),
    Outcome.NO_ANSWER: (480, "No Answer"),
}

# Transports a redirect may use, the INVITE's own first: never from TLS to plain text.
_REDIRECT_TRANSPORTS = {"udp": ("udp", "tcp"), "tcp": ("tcp", "udp"), "tls": ("tls",)}


# Seconds a caller of a room between nodes waits before redialling: a dead node's rooms are
# placed again within a few heartbeats.
MOVING_RETRY_AFTER_S = 5


def route_answer(route: Route, call: IncomingCall, retry_after: int) -> Reject | None:
    """How a call for a room on another node is answered (None: it is here). 302 with a Contact
    at the hosting node, for the transport the INVITE came on when that node listens there; 503 +
    Retry-After while the room is between nodes (RFC 3261 §21.3.3, §21.5.4)."""
    if route.where is Where.MOVING:
        return Reject(503, "Room moving to another node", retry_after)
    if route.where is not Where.ELSEWHERE or route.node is None:
        return None
    for transport in _REDIRECT_TRANSPORTS.get(call.transport, (call.transport,)):
        address = route.node.sip_address(transport)
        if address:
            return Reject(
                302, "Moved Temporarily", contact=f"<sip:{call.alias}@{address};transport={transport}>"
            )
    return Reject(503, f"Room's node takes no SIP over {call.transport.upper()}")


@dataclass(frozen=True)
class Admission:
    """What an answered call brings into the room (``Accept.context``)."""

    config: RoomConfig
    role: Role
    ticket: Ticket  # the node's admission, held until the call's media is set up
    participant_id: str | None = None  # a dial-out's: announced before the call was answered
    dialled: bool = False  # the room called them: no lobby, and no room started for them
    trunk: str | None = None  # the outbound trunk a dial-out went through (its call limit counts it)


@dataclass(eq=False)
class _Joined:
    conference: Conference
    participant: Participant
    leg: SipLeg
    floor: FloorServer | None = None  # with a presentation stream: its floor control server


class SipRoomCalls:
    """Answers INVITEs from the room directory and runs answered calls as participants."""

    def __init__(
        self,
        rooms: Rooms,
        *,
        prompt_dir: Path | None = None,
        fps: int = 20,
        sip_domain: str | None = None,
    ) -> None:
        self.rooms = rooms
        self.sip_domain = sip_domain
        self.prompt_dir = prompt_dir
        self.fps = fps
        self.joined: dict[SipCall, _Joined] = {}
        self._prompts: dict[str, list[Pcm]] = {}
        self._prompting: dict[SipCall, asyncio.Task[Any]] = {}  # the PIN prompt's loop of a call
        self._tasks: set[asyncio.Task[Any]] = set()
        self.refusals: dict[int, int] = {}
        self.bfcp: BfcpServer | None = None  # the node's BFCP listeners (set when SIP starts)
        self.floors: dict[int, FloorServer] = {}  # BFCP conference id -> a call's floor server
        self._floor_users: dict[int, int] = {}  # BFCP conference id -> the call's BFCP user

    # --- prompts ----------------------------------------------------------------------------
    async def load_prompts(self) -> None:
        """Make (espeak-ng) and decode the prompts, off the event loop."""
        if self.prompt_dir is None:
            return
        directory = self.prompt_dir

        def load() -> dict[str, list[Pcm]]:
            return {name: wav_chunks(path) for name, path in prompt_files.ensure(directory).items()}

        try:
            self._prompts = await asyncio.to_thread(load)
        except Exception:
            log.exception("could not make the IVR prompts; PIN rooms answer without a prompt")

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _sender(self, call: SipCall) -> AudioSender | None:
        ep = call.media.endpoint("audio")
        codec = main_codec(ep.stream if ep is not None else None)
        if ep is None or codec is None:
            return None
        try:
            return AudioSender(ep, codec)
        except KeyError:  # an audio codec we cannot encode
            return None

    def _play_prompt(self, call: SipCall) -> None:
        chunks = self._prompts.get("enter_pin")
        sender = self._sender(call)
        if not chunks or sender is None:
            return
        task = self._spawn(play(sender, chunks, lambda: call.ended or call.pin_digits is None))
        self._prompting[call] = task
        task.add_done_callback(lambda _t: self._prompting.pop(call, None))

    async def _say(self, call: SipCall, name: str) -> None:
        """Play one prompt once, the PIN prompt's loop stopped first; returns once it was heard."""
        prompting = self._prompting.pop(call, None)
        if prompting is not None:
            prompting.cancel()
        chunks = self._prompts.get(name)
        sender = self._sender(call)
        if not chunks or sender is None:
            return
        pushed = iter(range(len(chunks) + 1))
        await play(sender, chunks, lambda: call.ended or next(pushed, len(chunks)) >= len(chunks))

    # --- the CallHandler --------------------------------------------------------------------
    def _reject(self, status: int, reason: str, retry_after: int | None = None) -> Reject:
        self.refusals[status] = self.refusals.get(status, 0) + 1
        return Reject(status, reason, retry_after)

    def _refused(self, refused: Refused) -> Reject:
        """A join the node's admission decision refused: 503 with Retry-After and the reason."""
        return self._reject(503, REASONS[refused.reason.value], refused.retry_after)

    def _candidates(self, call: IncomingCall) -> tuple[str, ...]:
        """``alias@domain`` as dialled, then at the node's own SIP domain (room systems often dial
        the node's address, ``sip:12345678@10.0.0.5``), then the bare alias."""
        if not call.alias:
            return ()
        return (f"{call.alias}@{call.domain}", f"{call.alias}@{self.sip_domain}", call.alias)

    def lookup(self, call: IncomingCall) -> RoomConfig | None:
        """The room dialled, from this node's directory."""
        for candidate in self._candidates(call):
            config = self.rooms.lookup(candidate)
            if config is not None:
                return config
        return None

    def route(self, call: IncomingCall) -> Route:
        """Which node hosts the room dialled: asked by the room's alias when this node knows the
        room, else by each way the number may be written."""
        config = self.lookup(call)
        if config is not None:
            return self.rooms.route(config.alias)
        for candidate in self._candidates(call):
            route = self.rooms.route(candidate)
            if not route.here:
                return route
        return HERE

    async def on_invite(self, call: IncomingCall) -> Accept | Reject | RequirePin | Ring:
        moved = route_answer(self.route(call), call, MOVING_RETRY_AFTER_S)
        if moved is not None:  # before the room rules: the hosting node applies those
            log.info(
                "room %s: SIP %s answered %d %s",
                call.alias,
                call.caller_uri,
                moved.status,
                moved.contact or moved.reason,
            )
            self.refusals[moved.status] = self.refusals.get(moved.status, 0) + 1
            return moved
        config = self.lookup(call)
        if config is None:
            return self._gateway_call(call)
        refusal = policy.time_refusal(config, datetime.now(UTC))
        if refusal is policy.Refusal.NOT_OPEN:
            return self._reject(480, "Room not open yet")
        if refusal is not None:
            return self._reject(480, "Meeting has ended")
        live = self.rooms.live_conference(config.alias)
        if policy.is_full(config, len(live.participants) if live is not None else 0):
            return self._reject(486, "Room full")
        if config.force_encryption and not (call.secure and call.srtp_offered):
            return self._reject(488, "Encryption required (SIP over TLS with SRTP)")
        if not config.has_pins:
            # the node's admission decision, before anything is answered (no PIN to wait for)
            admitted = self.rooms.capacity.admit(config, video=call.video_offered)
            if isinstance(admitted, Refused):
                return self._refused(admitted)
            return Accept(Admission(config, Role.HOST, admitted))
        waiting = self.rooms.pin_guard.waiting(config.alias, call.source)
        if waiting > 0:
            return self._pin_wait(config, call, waiting)
        return self._require_pin(config, call)

    def _gateway_call(self, call: IncomingCall) -> Accept | Reject | Ring:
        """An alias that is no room: bridged to where a routing rule sends it (``gateway``), 403
        when a rule matches but admits no call from this caller, 404 when none matches. A rule
        to a waiting browser rings it (180) until it answers (``RING_OUTCOMES`` otherwise)."""
        gateway = self.rooms.gateway
        if gateway is None:
            return self._reject(404, "Unknown alias")
        decision = gateway.decide(self._candidates(call), _domain_of(call.caller_uri), call.source)
        if decision.route is None:
            if decision.refused:
                return self._reject(403, "Not allowed to call that address")
            return self._reject(404, "Unknown alias")
        if decision.route.rule.target == "browser":
            route = decision.route
            name = browser_name(route.destination)
            moved = route_answer(self.rooms.waiting.route(name), call, MOVING_RETRY_AFTER_S) if name else None
            if moved is not None:  # the page waits on another node: the call rings there
                log.info(
                    "device %s: SIP %s answered %d %s", name, call.caller_uri, moved.status, moved.contact
                )
                self.refusals[moved.status] = self.refusals.get(moved.status, 0) + 1
                return moved
            return Ring(lambda: self._ring_browser(call, route))
        config = gateway.open(decision.route)
        admitted = self.rooms.capacity.admit(config, video=call.video_offered)
        if isinstance(admitted, Refused):
            gateway.close(config.alias)
            return self._refused(admitted)
        return Accept(Admission(config, Role.HOST, admitted))

    async def _ring_browser(self, call: IncomingCall, route: BridgeRoute) -> Accept | Reject:
        gateway = self.rooms.gateway
        if gateway is None:
            return self._reject(480, "Temporarily Unavailable")
        name = (call.caller_name or _user_of(call.caller_uri) or "SIP")[:MAX_NAME]
        rung = await gateway.ring(route, name, call.video_offered)
        if isinstance(rung, Outcome):
            return self._reject(*RING_OUTCOMES[rung])
        if isinstance(rung, Refused):
            return self._refused(rung)
        config, ticket = rung
        return Accept(Admission(config, Role.HOST, ticket))

    def _pin_wait(self, config: RoomConfig, call: IncomingCall, wait_s: float) -> Reject:
        wait = whole_seconds(wait_s)
        log.warning(
            "room %s: PIN try from SIP %s refused unchecked, wait %d s", config.alias, call.source, wait
        )
        return self._reject(403, f"Too many wrong PINs, retry in {wait} s")

    def _require_pin(self, config: RoomConfig, incoming: IncomingCall) -> RequirePin:
        """PIN entry of one INVITE; each PIN passes the node's throttle first."""
        guard = self.rooms.pin_guard
        failed = 0
        answered: list[SipCall] = []  # the call, once its 183 is out (for the refusal's prompt)

        async def check(pin: str) -> Accept | Reject | None:
            nonlocal failed
            if policy.entered_pin(pin):
                verdict = guard.admit(config.alias, incoming.source)
                if verdict.refused:
                    if answered:
                        await self._say(answered[0], "pin_wait")
                    return self._pin_wait(config, incoming, verdict.wait_s)
                if verdict.delay_s > 0:
                    await asyncio.sleep(verdict.delay_s)
            decision = policy.decide_pin(config, pin, failed)
            if decision.role is not None:
                guard.right(config.alias, incoming.source, clears=decision.role is Role.HOST)
                # the node's admission decision, after the PIN and before media
                admitted = self.rooms.capacity.admit(config, video=incoming.video_offered)
                if isinstance(admitted, Refused):
                    if answered:  # the caller hears why before the 503
                        await self._say(answered[0], admitted.reason.value)
                    return self._refused(admitted)
                return Accept(Admission(config, decision.role, admitted))
            failed += 1
            if policy.entered_pin(pin):
                guard.wrong(config.alias)
            log.info("room %s: wrong PIN from SIP %s (%d)", config.alias, incoming.caller_uri, failed)
            return None  # the server answers 403 after the third

        def early_media(call: SipCall) -> None:
            answered.append(call)
            self._play_prompt(call)

        return RequirePin(check, attempts=policy.MAX_PIN_ATTEMPTS, on_early_media=early_media)

    async def on_established(self, call: SipCall) -> None:
        admission = call.context
        if not isinstance(admission, Admission):
            await call.hangup("no admission")
            return
        # The room may have changed while PINs were typed: its current settings apply.
        config = self.rooms.lookup(admission.config.alias) or admission.config
        live = self.rooms.live_conference(config.alias)
        if admission.dialled and (live is None or live.ended):
            admission.ticket.settle()
            await call.hangup("the room has ended")
            return
        conference = live if admission.dialled and live is not None else self.rooms.conference(config)
        name = call.incoming.caller_name or _user_of(call.incoming.caller_uri) or "SIP"
        participant = Participant(
            display_name=name[:MAX_NAME],
            role=admission.role,
            notify=lambda event: self._notify(call, event),
            protocol="sip",
        )
        if admission.participant_id is not None:
            participant.id = admission.participant_id
        try:
            conference.add(participant, lobby=not admission.dialled)
        except ConferenceError as exc:
            admission.ticket.settle()
            log.info("room %s refused SIP %s: %s", config.alias, call.incoming.caller_uri, exc.message)
            await call.hangup(exc.message)
            return
        feed = conference.feed(participant)
        leg = SipLeg(
            call.media.endpoint("audio"),
            call.media.endpoint("video"),
            on_video=feed.on_video,
            on_audio=feed.on_audio,
            on_keyframe_request=feed.on_keyframe_request,
            on_link=feed.on_link,
            fps=self.fps,
            executor=conference.executor,
        )
        joined = self.joined[call] = _Joined(conference, participant, leg)
        self._open_floor(call, joined)
        conference.attach(participant, leg)
        self._watch_presentation(call)
        admission.ticket.settle()  # media is set up (or the lobby holds them): they count by themselves
        log.info(
            "room %s: SIP %s joined as %s (%s, video %s)",
            config.alias,
            call.incoming.caller_uri,
            participant.role.value,
            participant.state.value,
            leg.video_codec,
        )

    def _notify(self, call: SipCall, event: Event) -> None:
        """What the conference tells a participant, in SIP terms: ``Bye`` hangs up; going on
        stage asks the room system for a keyframe (its picture is about to be shown)."""
        match event:
            case Bye(reason):
                if not call.ended:
                    self._spawn(call.hangup(reason or "bye"))
            case Admitted() | Stage():
                joined = self.joined.get(call)
                if joined is not None:
                    joined.leg.request_keyframe(force=True)
                if isinstance(event, Admitted):
                    self._watch_presentation(call)
            case Presentation():
                self._presentation_changed(call)
            case _:
                pass

    # --- the presentation stream and its floor --------------------------------------------
    def floor(self, conference_id: int) -> FloorServer | None:
        """The floor control server a BFCP message names (the BFCP listeners ask). Its call's
        user belongs to it while the call lasts: a room system that lost its BFCP connection
        (which made it leave) may connect again."""
        floor = self.floors.get(conference_id)
        if floor is not None:
            floor.join(self._floor_users[conference_id])
        return floor

    def _open_floor(self, call: SipCall, joined: _Joined) -> None:
        """A call with an accepted presentation stream gets its floor control server."""
        n = call.negotiation
        if n is None or n.floor is None or call.media.content_endpoint is None or self.bfcp is None:
            return
        assignment = n.floor
        floor = FloorServer(
            assignment.conference_id,
            [assignment.floor_id],
            may_present=lambda user: self._may_present(call),
            on_holder=lambda _floor, user: self._floor_holder(call, user),
        )
        floor.join(assignment.user_id)
        joined.floor = floor
        joined.participant.separate_presentation = True
        self.floors[assignment.conference_id] = floor
        self._floor_users[assignment.conference_id] = assignment.user_id

    def _content_leg(self, call: SipCall, joined: _Joined, feed: MediaFeed) -> SipLeg | None:
        """A leg on the presentation stream: one watching the presentation, or one presenting."""
        ep = call.media.content_endpoint
        if ep is None:
            return None
        return SipLeg(
            None,
            ep,
            on_video=feed.on_video,
            on_audio=feed.on_audio,
            on_keyframe_request=feed.on_keyframe_request,
            on_link=feed.on_link,
            fps=self.fps,
            executor=joined.conference.executor,
        )

    def _may_present(self, call: SipCall) -> bool:
        joined = self.joined.get(call)
        if joined is None:
            return False
        try:
            joined.conference.check_may_present(joined.participant)
        except ConferenceError:
            return False
        return True

    def _floor_holder(self, call: SipCall, user: int | None) -> None:
        """BFCP gave the floor (presenting from now on) or it was released (presenting no more)."""
        joined = self.joined.get(call)
        if joined is None:
            return
        conference, p = joined.conference, joined.participant
        if user is None:
            conference.stop_presenting(p.id)
            return
        conference.unwatch(p.id)
        leg = self._content_leg(call, joined, conference.presentation_feed(p))
        if leg is None:
            return
        try:
            conference.present(p, leg)
        except ConferenceError as exc:  # may_present said yes just before: only a race gets here
            log.info("room %s: SIP %s may not present: %s", conference.alias, p.id, exc.message)
            self._spawn(leg.close())
            return
        log.info("room %s: SIP %s presents (BFCP floor granted)", conference.alias, call.incoming.caller_uri)

    def _presentation_changed(self, call: SipCall) -> None:
        """Someone else presents, or nobody: a floor this call held is revoked (RFC 8855
        FloorRequestStatus Revoked), and it watches the new presentation."""
        joined = self.joined.get(call)
        if joined is None or joined.floor is None:
            return
        floor = joined.floor
        if joined.conference.presenter != joined.participant.id and self.bfcp is not None:
            for f in [f for f in floor.floors if floor.holder(f) is not None]:
                self.bfcp.deliver(floor.conference_id, floor.take_over(f))
        self._watch_presentation(call)

    def _watch_presentation(self, call: SipCall) -> None:
        """Send the current presentation (someone else's) on the call's presentation stream."""
        joined = self.joined.get(call)
        if joined is None or joined.floor is None:
            return
        conference, p = joined.conference, joined.participant
        if conference.presenter is None or conference.presenter == p.id or not p.in_conference:
            return
        leg = self._content_leg(call, joined, conference.watch_feed(p))
        if leg is None:
            return
        try:
            conference.watch(p, leg)
        except ConferenceError as exc:
            log.info("room %s: SIP %s cannot watch: %s", conference.alias, p.id, exc.message)
            self._spawn(leg.close())

    async def on_session_changed(self, call: SipCall) -> None:
        joined = self.joined.get(call)
        if joined is None:
            return
        joined.leg.update(call.media.endpoint("audio"), call.media.endpoint("video"))
        n = call.negotiation
        if joined.floor is not None and (n is None or n.floor is None or n.content is None):
            self._close_floor(joined)  # the re-offer dropped the presentation stream
        joined.conference.attach(joined.participant, joined.leg)
        if joined.floor is not None:
            self._watch_presentation(call)  # a new leg for the stream as now negotiated

    def _close_floor(self, joined: _Joined) -> None:
        """The call has no presentation stream any more: its presentation ends, it watches no
        more and gets the composed picture, and its floor control server goes."""
        floor, joined.floor = joined.floor, None
        if floor is not None:
            self.floors.pop(floor.conference_id, None)
            self._floor_users.pop(floor.conference_id, None)
        joined.participant.separate_presentation = False
        joined.conference.stop_presenting(joined.participant.id)
        joined.conference.unwatch(joined.participant.id)

    async def on_dtmf(self, call: SipCall, digit: str) -> None:
        log.debug("DTMF %s from %s after admission (no in-call menu)", digit, call.incoming.caller_uri)

    async def on_ended(self, call: SipCall, reason: str) -> None:
        joined = self.joined.pop(call, None)
        if joined is None:
            return
        if joined.floor is not None:  # a BYE ends its presentation (the conference's remove)
            self.floors.pop(joined.floor.conference_id, None)
            self._floor_users.pop(joined.floor.conference_id, None)
            joined.floor = None
        await joined.conference.remove(joined.participant.id, f"sip: {reason}")

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()


def _domain_of(uri: str) -> str | None:
    """The host of the caller's SIP URI (the From URI), lower case; None when it does not parse."""
    try:
        parsed = SipUri.parse(uri)
    except SipParseError:
        return None
    return parsed.host.lower() if parsed.scheme != "tel" else None  # a tel: URI names no domain


def _user_of(uri: str) -> str:
    try:
        return SipUri.parse(uri).user or ""
    except SipParseError:
        return ""
