"""WebRTC signalling: a JSON protocol over a WebSocket on the HTTP port, ``/ws/rooms/{alias}``.

The protocol is documented in README.md, "Joining a room (WebRTC signalling)". A node that does not
host the room answers ``redirect`` with the hosting node's URL (browsers follow no HTTP redirect on
a WebSocket), or ``moving`` while the room is being placed again. One socket is one participant:
``join`` (with PIN) -> ``joined``, then ``offer`` -> ``answer``; the node tells the participant
about the lobby, admission, stage, speaker, mutes and ``bye``. A later ``offer`` on the same socket
(an ICE restart after a network change) is answered by a new leg that replaces the old one. When the socket drops the
participant is kept for a grace period, and a ``join`` with the ``resume`` token of their
``joined`` takes them back: same id, same place, no lobby again. Every bad message gets an
``error`` with a code; refusals (unknown room, wrong PINs, PIN tries paused, full room, closed
window) end the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn
from urllib.parse import quote

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from vdx.booking.routing import Route as BridgeRoute
from vdx.booking.routing import browser_name
from vdx.conference import policy
from vdx.conference.conference import Conference, ConferenceError
from vdx.conference.events import (
    Admitted,
    Bye,
    Dialling,
    Event,
    Knock,
    Lobby,
    Member,
    Muted,
    Presentation,
    PresentationTaken,
    Roster,
    Speaker,
    Stage,
)
from vdx.conference.leg import MediaFeed
from vdx.conference.participant import Participant
from vdx.conference.pin_guard import PinGuard, whole_seconds
from vdx.conference.policy import Role, RoomConfig
from vdx.legs.webrtc import BadOffer, WebRtcLeg
from vdx.node.capacity import Refused, Ticket
from vdx.node.rooms import Rooms
from vdx.node.routing import HERE, Route, Where
from vdx.node.waiting import Outcome, Ringing, SignInRefused

log = logging.getLogger("vdx.signalling")
router = APIRouter()

JOIN_TIMEOUT = 60.0
MAX_MESSAGE = 256 * 1024
MAX_NAME = 64

# WebSocket close codes: 1000 goodbye; 1013 try again later (the room is moving between nodes);
# 4307 redirected to the hosting node; 4400 protocol; 4403 refused; 4404 no such room;
# 4409 room full; 4410 room not open / ended; 4429 PIN tries paused; 4503 node without rooms or
# without capacity for this join.
CLOSE_REDIRECT = 4307
CLOSE_TRY_AGAIN = 1013
MOVING_RETRY_S = 2  # a dead node's rooms are placed again within seconds
CLOSE_FOR = {
    policy.Refusal.NOT_FOUND: 4404,
    policy.Refusal.NOT_OPEN: 4410,
    policy.Refusal.ENDED: 4410,
    policy.Refusal.TOO_MANY_ATTEMPTS: 4403,
    policy.Refusal.PIN_WAIT: 4429,
    policy.Refusal.FULL: 4409,
}


class _Closing(Exception):
    pass


@dataclass(frozen=True)
class _Resumed:
    """A join that took a kept participant back."""

    conference: Conference
    participant: Participant


# The socket each participant is signalled on now, so a resume from a new socket can let the old
# one go (a socket whose network died may not have been seen to close yet).
_SESSIONS: weakref.WeakValueDictionary[str, Session] = weakref.WeakValueDictionary()


def _member(m: Member) -> dict[str, Any]:
    return {
        "participantId": m.participant_id,
        "displayName": m.display_name,
        "role": m.role,
        "state": m.state,
        "muted": m.muted,
        "protocol": m.protocol,
        "joinedAt": m.joined_at,
        "presenting": m.presenting,
    }


def wire(event: Event) -> dict[str, Any]:
    """A conference event as the JSON message the browser gets (README, "Joining a room")."""
    match event:
        case Lobby(reason):
            return {"type": "lobby", "reason": reason}
        case Admitted():
            return {"type": "admitted"}
        case Knock(pid, name):
            return {"type": "knock", "participantId": pid, "displayName": name}
        case Stage(layout, width, height, codec, tiles, presenter):
            return {
                "type": "stage",
                "presenter": presenter,
                "layout": layout,
                "width": width,
                "height": height,
                "codec": codec,
                "tiles": [
                    {
                        "participantId": t.participant_id,
                        "displayName": t.display_name,
                        "x": t.x,
                        "y": t.y,
                        "width": t.width,
                        "height": t.height,
                        "main": t.main,
                    }
                    for t in tiles
                ],
            }
        case Speaker(pid):
            return {"type": "speaker", "participantId": pid}
        case Muted(muted):
            return {"type": "muted", "muted": muted}
        case Roster(members):
            return {"type": "participants", "participants": [_member(m) for m in members]}
        case Dialling(pid, destination, state, detail):
            return {
                "type": "dial",
                "participantId": pid,
                "destination": destination,
                "state": state,
                "detail": detail,
            }
        case Presentation(pid, name):
            return {"type": "presentation", "presenterId": pid, "displayName": name}
        case PresentationTaken(pid, name):
            return {"type": "presentation_taken", "participantId": pid, "displayName": name}
        case Bye(reason):
            return {"type": "bye", "reason": reason}


class Session:
    """One signalling socket: a writer task serialises everything sent to the client."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self._out: asyncio.Queue[tuple[dict[str, Any] | None, int]] = asyncio.Queue()
        self._writer = asyncio.get_running_loop().create_task(self._write())
        self.participant: Participant | None = None
        self.conference: Conference | None = None
        self._held: list[Event] | None = None
        self.ticket: Ticket | None = None  # the admitted join's units until its media is set up
        self.bridge: str | None = None  # the bridge room a call through a routing rule opened
        self.ringing: BridgeRoute | None = None  # a call for a waiting browser (browser:NAME)

    def send(self, msg: dict[str, Any]) -> None:
        self._out.put_nowait((msg, 0))

    def notify(self, event: Event) -> None:
        """What the conference tells this participant; ``Bye`` ends the socket."""
        if self._held is not None:
            self._held.append(event)
            return
        self.send(wire(event))
        if isinstance(event, Bye):
            self.close(1000)

    def hold(self) -> None:
        """Keep what the conference says until ``release``: ``joined`` must come first."""
        self._held = []

    def release(self, *first: dict[str, Any]) -> None:
        held, self._held = self._held or [], None
        for msg in first:
            self.send(msg)
        for event in held:
            self.notify(event)

    def close(self, code: int) -> None:
        self._out.put_nowait((None, code))

    def error(self, code: str, message: str, **extra: Any) -> None:
        self.send({"type": "error", "code": code, "message": message, **extra})

    async def _write(self) -> None:
        try:
            while True:
                msg, code = await self._out.get()
                if msg is None:
                    await self.ws.close(code)
                    return
                await self.ws.send_text(json.dumps(msg))
        except Exception:  # the client went away; the reader notices too
            return

    async def finish(self) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(self._writer), 2.0)
        except (TimeoutError, asyncio.CancelledError):
            self._writer.cancel()

    async def receive(self) -> dict[str, Any] | None:
        """The next JSON object from the client; None (after an error) for a malformed one."""
        text = await self.ws.receive_text()
        if len(text) > MAX_MESSAGE:
            self.error("bad_request", f"message larger than {MAX_MESSAGE} bytes")
            return None
        try:
            msg = json.loads(text)
        except ValueError as exc:
            self.error("bad_request", f"message is not JSON: {exc}")
            return None
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            self.error("bad_request", 'message must be a JSON object with a string "type"')
            return None
        return msg


@router.websocket("/ws/rooms/{alias}")
async def join_room(ws: WebSocket, alias: str) -> None:
    await ws.accept()
    session = Session(ws)
    try:
        await _serve(session, ws.app.state.rooms, alias)
    except (WebSocketDisconnect, _Closing):
        pass
    except TimeoutError:
        session.error("timeout", f"no join within {JOIN_TIMEOUT:.0f} s")
        session.close(4400)
    except Exception:
        log.exception("signalling for %s failed", alias)
        session.error("internal", "the node failed to handle this participant")
        session.close(1011)
    finally:
        if session.ticket is not None:
            session.ticket.settle()
        if session.conference is not None and session.participant is not None:
            # Gone without a leave: kept a while for a resume from a new socket.
            session.conference.keep(session.participant.id)
        elif session.bridge is not None and ws.app.state.rooms.gateway is not None:
            ws.app.state.rooms.gateway.close(session.bridge)  # a call never joined: nothing left
        session.close(1000)
        await session.finish()


def _refuse(session: Session, refusal: policy.Refusal, message: str, **extra: Any) -> NoReturn:
    session.error(refusal.value, message, **extra)
    session.close(CLOSE_FOR.get(refusal, 4403))
    raise _Closing


async def _serve(session: Session, rooms: Rooms | None, alias: str) -> None:
    if rooms is None:
        session.error("node_disabled", "this server hosts no rooms (VDX_NODE_ENABLED=false)")
        session.close(4503)
        raise _Closing
    _follow(session, rooms.route(alias), alias)
    config = _open_room(session, rooms, alias)
    entry = await _await_join(session, config, rooms)
    if isinstance(entry, _Resumed):
        conference, participant = entry.conference, entry.participant
    else:
        role, join = entry
        name = str(join.get("displayName") or role.value.capitalize())[:MAX_NAME]
        if session.ringing is not None:  # the alias is a waiting browser's: its bridge, once answered
            config, session.ticket = await _call_browser(session, rooms, session.ringing, name, join)
        else:
            session.ticket = _admit(session, rooms, config, join)
        conference, participant = _enter(
            session, rooms, config, Participant(name, role, session.notify, "webrtc")
        )
        if not participant.in_conference:
            session.ticket.settle()  # the lobby counts nothing
    await _participate(session, rooms, conference, participant)


async def _participate(
    session: Session, rooms: Rooms, conference: Conference, participant: Participant
) -> NoReturn:
    """The participant's messages, until the socket ends."""
    while True:
        msg = await session.receive()
        if msg is not None:
            await _in_room(session, rooms, conference, participant, msg)


def _follow(session: Session, route: Route, alias: str) -> None:
    """Ends the socket when another node hosts the room (``redirect``: the client goes there with
    the same join) or when the room is between nodes (``moving``: the client retries)."""
    if route.where is Where.ELSEWHERE and route.node is not None:
        url = f"{route.node.ws_base}/ws/rooms/{quote(alias, safe='@')}"
        log.info("room %s: caller sent to node %s", alias, route.node.id)
        session.send({"type": "redirect", "url": url, "node": route.node.id})
        session.close(CLOSE_REDIRECT)
        raise _Closing
    if route.where is Where.MOVING:
        session.error(
            "moving", "the room is moving to another node: try again shortly", retryAfter=MOVING_RETRY_S
        )
        session.close(CLOSE_TRY_AGAIN)
        raise _Closing


def _admit(session: Session, rooms: Rooms, config: RoomConfig, join: dict[str, Any]) -> Ticket:
    """The node's admission decision, after the PIN and before any media; a refusal ends the
    socket with its reason and when to try again. ``"video": false`` joins audio-only."""
    verdict = rooms.capacity.admit(config, video=join.get("video", True) is not False)
    if isinstance(verdict, Refused):
        session.error(verdict.reason.value, verdict.message, retryAfter=verdict.retry_after)
        session.close(4503)
        raise _Closing
    return verdict


def _open_room(session: Session, rooms: Rooms, alias: str) -> RoomConfig:
    """The room, if it exists and is open now; else the socket ends with the refusal."""
    config = rooms.lookup(alias) or _bridge(session, rooms, alias)
    refusal = policy.time_refusal(config, datetime.now(UTC))
    if refusal is not None:
        text = "the room is not open yet" if refusal is policy.Refusal.NOT_OPEN else "the meeting has ended"
        _refuse(session, refusal, text)
    return config


def _bridge(session: Session, rooms: Rooms, alias: str) -> RoomConfig:
    """An alias that is no room: a call where a routing rule sends it, from a room of this
    browser and the destination alone (``vdx.node.gateway``); else there is no such room."""
    gateway = rooms.gateway
    address = session.ws.client.host if session.ws.client is not None else None
    user = alias.split("@", 1)[0]
    decision = (
        gateway.decide((alias, f"{user}@{gateway.sip_domain}", user), None, address) if gateway else None
    )
    if decision is None or decision.route is None:
        if decision is not None and decision.refused:
            _refuse(session, policy.Refusal.NOT_FOUND, f"you may not call '{alias}' from here")
        _refuse(session, policy.Refusal.NOT_FOUND, f"no room '{alias}' on this node")
    assert gateway is not None
    if decision.route.rule.target == "browser":
        # a waiting browser: rung once the join names the caller (on the node where it waits)
        name = browser_name(decision.route.destination)
        _follow(session, rooms.waiting.route(name) if name else HERE, alias)
        session.ringing = decision.route
        return RoomConfig(alias)
    config = gateway.open(decision.route)
    session.bridge = config.alias
    return config


# How a call for a waiting browser that found no bridge ends: the error's code and text.
RING_ERRORS = {
    Outcome.ABSENT: ("unavailable", "nobody is waiting at that address now"),
    Outcome.BUSY: ("busy", "the browser you called is in another call"),
    Outcome.DECLINED: ("declined", "the call was declined"),
    Outcome.NO_ANSWER: ("no_answer", "nobody answered"),
}
CLOSE_NOT_ANSWERED = 4480


async def _call_browser(
    session: Session, rooms: Rooms, route: BridgeRoute, name: str, join: dict[str, Any]
) -> tuple[RoomConfig, Ticket]:
    """Ring the waiting browser (``ringing`` to the caller) until it answers: the bridge and the
    caller's admission. A caller who leaves meanwhile stops the ringing; any other end is an
    error with its reason, and the socket closes."""
    assert rooms.gateway is not None
    ring = asyncio.ensure_future(rooms.gateway.ring(route, name, join.get("video", True) is not False))
    gone = asyncio.ensure_future(_until_left(session))
    session.send({"type": "ringing"})
    try:
        await asyncio.wait({ring, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (ring, gone):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ring  # a ringing stopped by the caller has told the page so
        if gone.done() and not gone.cancelled():
            gone.exception()  # the caller's socket went: seen here, not logged as lost
    if ring.cancelled():
        raise _Closing
    rung = ring.result()
    if isinstance(rung, Outcome):
        code, text = RING_ERRORS[rung]
        session.error(code, text)
        session.close(CLOSE_NOT_ANSWERED)
        raise _Closing
    if isinstance(rung, Refused):
        session.error(rung.reason.value, rung.message, retryAfter=rung.retry_after)
        session.close(4503)
        raise _Closing
    config, ticket = rung
    session.bridge = config.alias
    return config, ticket


async def _until_left(session: Session) -> None:
    """While a call rings: returns when the caller leaves (or their socket goes)."""
    while True:
        msg = await session.receive()
        if msg is None:
            continue
        if msg["type"] == "leave":
            return
        if msg["type"] == "ping":
            session.send({"type": "pong"})
        else:
            session.error("bad_request", f"'{msg['type']}' while the call rings (only leave)")


async def _await_join(
    session: Session, config: RoomConfig, rooms: Rooms
) -> tuple[Role, dict[str, Any]] | _Resumed:
    """Read ``join`` messages until one's PIN gives a role (the third wrong PIN ends the socket),
    or one's ``resume`` token takes a kept participant back. Each PIN first passes the node's
    throttle, which may refuse it unchecked or hold it."""
    guard = rooms.pin_guard
    failed = 0
    address = session.ws.client.host if session.ws.client is not None else "unknown"
    while True:
        async with asyncio.timeout(JOIN_TIMEOUT):
            msg = await session.receive()
        if msg is None:
            continue
        if msg["type"] != "join":
            session.error("bad_request", f"expected a join message, got '{msg['type']}'")
            continue
        if msg.get("resume") is not None:
            resumed = _resume(session, rooms, config, msg["resume"])
            if resumed is not None:
                return resumed
            continue
        pin = None if msg.get("pin") is None else str(msg["pin"])
        if config.has_pins and policy.entered_pin(pin):
            await _throttle(session, config, guard, address)
        decision = policy.decide_pin(config, pin, failed)
        if decision.role is not None:
            if config.has_pins:
                guard.right(config.alias, address, clears=decision.role is Role.HOST)
            return decision.role, msg
        if decision.refusal is policy.Refusal.PIN_REQUIRED:
            session.error(
                decision.refusal.value, "this room needs a PIN", attemptsLeft=decision.attempts_left
            )
            continue
        failed += 1
        guard.wrong(config.alias)
        log.info("room %s: wrong PIN (%d)", config.alias, failed)
        if decision.refusal is policy.Refusal.TOO_MANY_ATTEMPTS:
            _refuse(session, decision.refusal, "three wrong PINs: goodbye", attemptsLeft=0)
        session.error(policy.Refusal.WRONG_PIN.value, "wrong PIN", attemptsLeft=decision.attempts_left)


def _resume(session: Session, rooms: Rooms, config: RoomConfig, token: Any) -> _Resumed | None:
    """The participant whose resume token this is, now on this socket (the old one let go), or
    None after a ``resume_refused`` error: the client joins afresh on the same socket."""
    conference = rooms.live_conference(config.alias)
    session.hold()
    try:
        if conference is None or not isinstance(token, str):
            raise ConferenceError(
                "resume_refused",
                "this session cannot be resumed (it ended or the token is not valid): join again",
            )
        participant = conference.resume(token, session.notify)
    except ConferenceError as exc:
        session.release()
        log.info("room %s: resume refused", config.alias)
        session.error(exc.code, exc.message)
        return None
    old = _SESSIONS.get(participant.id)
    if old is not None and old is not session:
        old.participant = old.conference = None  # its end no longer concerns the participant
        old.send(wire(Bye("resumed_elsewhere")))
        old.close(1000)
    session.participant, session.conference = participant, conference
    _SESSIONS[participant.id] = session
    session.release(_joined(rooms, config, participant, resumed=True))
    return _Resumed(conference, participant)


async def _throttle(session: Session, config: RoomConfig, guard: PinGuard, address: str) -> None:
    """Ends the socket when this source must wait before its next PIN is checked; holds the
    check while the room is under attack."""
    verdict = guard.admit(config.alias, address)
    if verdict.refused:
        wait = whole_seconds(verdict.wait_s)
        log.warning("room %s: PIN try from %s refused unchecked, wait %d s", config.alias, address, wait)
        _refuse(
            session,
            policy.Refusal.PIN_WAIT,
            f"too many wrong PINs from your address: wait {wait} s before the next try",
            retryAfter=wait,
        )
    if verdict.delay_s > 0:
        await asyncio.sleep(verdict.delay_s)


def _enter(
    session: Session, rooms: Rooms, config: RoomConfig, participant: Participant
) -> tuple[Conference, Participant]:
    """Into the conference (lobby or stage); ``joined`` goes out before anything it says."""
    conference = rooms.conference(config)
    session.hold()
    try:
        conference.add(participant)
    except ConferenceError as exc:
        session.release()
        if exc.code == "room_full":
            _refuse(session, policy.Refusal.FULL, exc.message)
        _refuse(session, policy.Refusal.ENDED, exc.message)
    session.participant, session.conference = participant, conference
    log.info(
        "room %s: %s joined as %s (%s)",
        config.alias,
        participant.id,
        participant.role.value,
        participant.state.value,
    )
    _SESSIONS[participant.id] = session
    joined = _joined(rooms, config, participant)
    first = [joined]
    if participant.lobby_reason is not None:
        first.append(wire(Lobby(participant.lobby_reason)))
    session.release(*first)
    return conference, participant


def _joined(
    rooms: Rooms, config: RoomConfig, participant: Participant, resumed: bool = False
) -> dict[str, Any]:
    """The ``joined`` message: who the participant is, where, and the token that takes them back."""
    return {
        "type": "joined",
        "participantId": participant.id,
        "role": participant.role.value,
        "token": participant.token,
        "resumeToken": participant.resume_token,
        "resumed": resumed,
        "state": participant.state.value,
        "lobbyReason": participant.lobby_reason,
        "muted": participant.muted,
        "mayPresent": policy.may_present(config, participant.role),
        "conference": {"alias": config.alias, "vmrType": config.vmr_type},
        # TURN credentials only now: the alias named an open room and the PIN (if any) was right
        "iceServers": rooms.ice.servers_for(participant.id),
    }


async def _in_room(
    session: Session, rooms: Rooms, conference: Conference, participant: Participant, msg: dict[str, Any]
) -> None:
    match msg["type"]:
        case "offer":
            await _offer(session, rooms, conference, participant, msg.get("sdp"))
        case "mute":
            try:
                conference.set_muted(participant.id, bool(msg.get("muted", True)), by_self=True)
            except ConferenceError as exc:
                session.error(exc.code, exc.message)
        case "present":
            await _present(session, rooms, conference, participant, msg.get("sdp"))
        case "stop_presenting":
            conference.stop_presenting(participant.id)
        case "watch":
            await _watch(session, rooms, conference, participant, msg.get("sdp"))
        case "unwatch":
            conference.unwatch(participant.id)
        case "leave":
            await conference.remove(participant.id, "left")
            session.notify(Bye("left"))
            raise _Closing
        case "join":
            session.error("bad_request", "already joined")
        case "ping":
            session.send({"type": "pong"})
        case kind:
            session.error("bad_request", f"unknown message type '{kind}'")


async def _offer(
    session: Session, rooms: Rooms, conference: Conference, participant: Participant, sdp: Any
) -> None:
    if not isinstance(sdp, str):
        session.error("bad_request", 'an offer needs "sdp" (a string)')
        return
    try:
        answer = await _answer(rooms, conference, participant, sdp)
    except BadOffer as exc:
        session.error("bad_sdp", str(exc))
        return
    if session.ticket is not None:
        session.ticket.settle()  # media is set up: the participant counts by itself now
    session.send({"type": "answer", "sdp": answer})


async def _answer(rooms: Rooms, conference: Conference, participant: Participant, offer_sdp: str) -> str:
    """Build the participant's WebRTC leg and answer their offer; attached before the answer so a
    failure or an end of the conference meanwhile closes it, and again after (its codecs are known)."""
    leg = _leg(rooms, conference, conference.feed(participant))
    conference.attach(participant, leg)
    try:
        answer = await leg.answer(offer_sdp)
    except Exception:
        conference.detach(participant)
        await leg.close()
        raise
    conference.attach(participant, leg)
    return answer


# The presentation travels on a peer connection of its own each way (``present``: the presenter's
# screen in; ``watch``: the presentation out), not as a second track renegotiated on the call's
# one: the node answers every offer with a new leg (that is how an ICE restart works here), so a
# renegotiation would restart the call's media each time someone starts or stops presenting, and
# a separate connection leaves the call's leg, and so every existing path, exactly as it was.
async def _present(
    session: Session, rooms: Rooms, conference: Conference, participant: Participant, sdp: Any
) -> None:
    """``present``: checked before any media is set up, so a guest who may not present costs
    nothing; answered with ``presenting``, the answer to the offer of the screen."""
    if not isinstance(sdp, str):
        session.error("bad_request", 'present needs "sdp" (a string)')
        return
    try:
        conference.check_may_present(participant)
    except ConferenceError as exc:
        session.error(exc.code, exc.message)
        return
    leg = _leg(rooms, conference, conference.presentation_feed(participant))
    await _own_connection(session, leg, sdp, lambda: conference.present(participant, leg), "presenting")


async def _watch(
    session: Session, rooms: Rooms, conference: Conference, participant: Participant, sdp: Any
) -> None:
    """``watch``: the presentation on a connection of its own, answered with ``watching``."""
    if not isinstance(sdp, str):
        session.error("bad_request", 'watch needs "sdp" (a string)')
        return
    leg = _leg(rooms, conference, conference.watch_feed(participant))
    await _own_connection(session, leg, sdp, lambda: conference.watch(participant, leg), "watching")


async def _own_connection(
    session: Session, leg: WebRtcLeg, sdp: str, attach: Callable[[], None], answered: str
) -> None:
    """Answer ``sdp`` on ``leg`` and ``attach`` it (the conference may refuse): the answer goes
    out as ``answered``; an offer or a conference that refuses closes the leg and tells why."""
    try:
        answer = await leg.answer(sdp)
        attach()
    except (BadOffer, ConferenceError) as exc:
        await leg.close()
        code, text = ("bad_sdp", str(exc)) if isinstance(exc, BadOffer) else (exc.code, exc.message)
        session.error(code, text)
        return
    session.send({"type": answered, "sdp": answer})


def _leg(rooms: Rooms, conference: Conference, feed: MediaFeed) -> WebRtcLeg:
    return WebRtcLeg(
        rooms.ice,
        on_video=feed.on_video,
        on_audio=feed.on_audio,
        on_keyframe_request=feed.on_keyframe_request,
        on_failed=feed.on_failed,
        on_link=feed.on_link,
        executor=conference.executor,
    )


# --- the point-to-point page: a browser waiting as a device (``vdx.node.waiting``) ---------------

SIGN_IN_TIMEOUT = 60.0
# close codes of the waiting socket: 4401 wrong device name or secret; 4429 sign-in tries paused;
# 4503 no sign-in or calls here now; 4409 let go (another page signed in as the device, or the
# device was removed).
CLOSE_FOR_SIGN_IN = {"bad_credentials": 4401, "signin_wait": 4429, "unavailable": 4503}
CLOSE_DISPLACED = 4409


class _PageWaiter:
    """A page waiting on its socket: rung (``ring``), told a ringing ended (``ring_stopped``)."""

    def __init__(self, session: Session, name: str, made: str) -> None:
        self.session = session
        self.name = name
        self.made = made
        self.ringing: Ringing | None = None

    def ring(self, ringing: Ringing) -> None:
        self.ringing = ringing
        self.session.send({"type": "ring", "callId": ringing.id, "displayName": ringing.caller})

    def stop_ringing(self, ringing: Ringing, reason: str) -> None:
        if self.ringing is ringing:
            self.ringing = None
        self.session.send({"type": "ring_stopped", "callId": ringing.id, "reason": reason})

    def displaced(self, reason: str) -> None:
        self.session.send({"type": "bye", "reason": reason})
        self.session.close(CLOSE_DISPLACED)


@router.websocket("/ws/wait")
async def wait_for_calls(ws: WebSocket) -> None:
    """The point-to-point page: ``signin`` as a device, then ``waiting`` for calls routed to
    ``browser:NAME``; ``ring`` -> ``answer``/``decline``; an answered call goes on on this socket
    as a participant of the bridge (``joined``, then the join protocol)."""
    await ws.accept()
    session = Session(ws)
    rooms: Rooms | None = ws.app.state.rooms
    waiter: _PageWaiter | None = None
    try:
        if rooms is None or rooms.gateway is None:
            session.error("unavailable", "this node takes no calls for waiting browsers (no SIP)")
            session.close(4503)
            raise _Closing
        waiter = await _sign_in(session, rooms)
        rooms.waiting.wait(waiter)
        session.send({"type": "waiting", "name": waiter.name})
        config = await _until_answered(session, rooms, waiter)
        session.bridge = config.alias
        session.ticket = _admit(session, rooms, config, {"video": True})
        conference, participant = _enter(
            session, rooms, config, Participant(waiter.name, Role.HOST, session.notify, "webrtc")
        )
        await _participate(session, rooms, conference, participant)
    except (WebSocketDisconnect, _Closing):
        pass
    except TimeoutError:
        session.error("timeout", f"no sign-in within {SIGN_IN_TIMEOUT:.0f} s")
        session.close(4400)
    except Exception:
        log.exception("the waiting page failed")
        session.error("internal", "the node failed to handle this page")
        session.close(1011)
    finally:
        if rooms is not None and waiter is not None:
            rooms.waiting.leave(waiter)
        if session.ticket is not None:
            session.ticket.settle()
        if session.conference is not None and session.participant is not None:
            # the page is gone: the bridge ends (its other side is hung up)
            await session.conference.remove(session.participant.id, "the browser left")
        elif session.bridge is not None and rooms is not None and rooms.gateway is not None:
            rooms.gateway.abandon(session.bridge, "the browser never joined")
        session.close(1000)
        await session.finish()


async def _sign_in(session: Session, rooms: Rooms) -> _PageWaiter:
    """The first ``signin`` whose name and secret are a device's; a wrong one ends the socket."""
    address = session.ws.client.host if session.ws.client is not None else "unknown"
    while True:
        async with asyncio.timeout(SIGN_IN_TIMEOUT):
            msg = await session.receive()
        if msg is None:
            continue
        name, secret = msg.get("name"), msg.get("secret")
        if msg["type"] != "signin" or not isinstance(name, str) or not isinstance(secret, str):
            session.error("bad_request", 'expected {"type": "signin", "name": ..., "secret": ...}')
            continue
        try:
            made = await rooms.waiting.sign_in(name, secret, address)
        except SignInRefused as refused:
            extra = {} if refused.retry_after is None else {"retryAfter": refused.retry_after}
            session.error(refused.code, refused.message, **extra)
            session.close(CLOSE_FOR_SIGN_IN[refused.code])
            raise _Closing from None
        return _PageWaiter(session, name, made)


async def _until_answered(session: Session, rooms: Rooms, waiter: _PageWaiter) -> RoomConfig:
    """The page's messages while it waits, until it answers a call that the node then bridges."""
    while True:
        msg = await session.receive()
        if msg is None:
            continue
        kind = msg["type"]
        if kind == "ping":
            session.send({"type": "pong"})
            continue
        if kind not in ("answer", "decline"):
            session.error("bad_request", f"unknown message type '{kind}' while waiting")
            continue
        ringing = waiter.ringing
        if ringing is None or msg.get("callId") != ringing.id or not ringing.choose(kind):
            session.error("call_gone", "that call is not ringing any more")
            continue
        waiter.ringing = None
        if kind == "decline":
            continue
        config = await ringing.bridge
        if config is not None:
            return config
        session.send({"type": "ring_stopped", "callId": ringing.id, "reason": "failed"})
        rooms.waiting.wait(waiter)  # nothing came of it: waiting again
        session.send({"type": "waiting", "name": waiter.name})
