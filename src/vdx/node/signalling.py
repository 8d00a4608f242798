"""WebRTC signalling: a JSON protocol over a WebSocket on the HTTP port, ``/ws/rooms/{alias}``.

The protocol is documented in README.md, "Joining a room (WebRTC signalling)". One socket is one
participant: ``join`` (with PIN) -> ``joined``, then ``offer`` -> ``answer``; the node tells the
participant about the lobby, admission, stage, speaker, mutes and ``bye``. Every bad message gets an
``error`` with a code; refusals (unknown room, wrong PINs, PIN tries paused, full room, closed
window) end the socket.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Any, NoReturn

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from vdx.conference import policy
from vdx.conference.conference import Conference, ConferenceError
from vdx.conference.events import (
    Admitted,
    Bye,
    Event,
    Knock,
    Lobby,
    Member,
    Muted,
    Roster,
    Speaker,
    Stage,
)
from vdx.conference.participant import Participant
from vdx.conference.pin_guard import PinGuard, whole_seconds
from vdx.conference.policy import Role, RoomConfig
from vdx.legs.webrtc import BadOffer, WebRtcLeg
from vdx.node.rooms import Rooms

log = logging.getLogger("vdx.signalling")
router = APIRouter()

JOIN_TIMEOUT = 60.0
MAX_MESSAGE = 256 * 1024
MAX_NAME = 64

# WebSocket close codes: 1000 goodbye; 4400 protocol; 4403 refused; 4404 no such room;
# 4409 room full; 4410 room not open / ended; 4429 PIN tries paused; 4503 node without rooms.
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


def _member(m: Member) -> dict[str, Any]:
    return {
        "participantId": m.participant_id,
        "displayName": m.display_name,
        "role": m.role,
        "state": m.state,
        "muted": m.muted,
        "protocol": m.protocol,
        "joinedAt": m.joined_at,
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
        case Stage(layout, width, height, codec, tiles):
            return {
                "type": "stage",
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
        if session.conference is not None and session.participant is not None:
            await session.conference.remove(session.participant.id, "disconnected")
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
    config = _open_room(session, rooms, alias)
    role, join = await _await_join(session, config, rooms.pin_guard)
    name = str(join.get("displayName") or role.value.capitalize())[:MAX_NAME]
    conference, participant = _enter(
        session, rooms, config, Participant(name, role, session.notify, "webrtc")
    )
    while True:
        msg = await session.receive()
        if msg is not None:
            await _in_room(session, rooms, conference, participant, msg)


def _open_room(session: Session, rooms: Rooms, alias: str) -> RoomConfig:
    """The room, if it exists and is open now; else the socket ends with the refusal."""
    config = rooms.lookup(alias)
    if config is None:
        _refuse(session, policy.Refusal.NOT_FOUND, f"no room '{alias}' on this node")
    refusal = policy.time_refusal(config, datetime.now(UTC))
    if refusal is not None:
        text = "the room is not open yet" if refusal is policy.Refusal.NOT_OPEN else "the meeting has ended"
        _refuse(session, refusal, text)
    return config


async def _await_join(session: Session, config: RoomConfig, guard: PinGuard) -> tuple[Role, dict[str, Any]]:
    """Read ``join`` messages until one's PIN gives a role (the third wrong PIN ends the socket).
    Each PIN first passes the node's throttle, which may refuse it unchecked or hold it."""
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
    joined = {
        "type": "joined",
        "participantId": participant.id,
        "role": participant.role.value,
        "token": participant.token,
        "state": participant.state.value,
        "lobbyReason": participant.lobby_reason,
        "muted": participant.muted,
        "conference": {"alias": config.alias, "vmrType": config.vmr_type},
        # TURN credentials only now: the alias named an open room and the PIN (if any) was right
        "iceServers": rooms.ice.servers_for(participant.id),
    }
    first = [joined]
    if participant.lobby_reason is not None:
        first.append(wire(Lobby(participant.lobby_reason)))
    session.release(*first)
    return conference, participant


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
    session.send({"type": "answer", "sdp": answer})


async def _answer(rooms: Rooms, conference: Conference, participant: Participant, offer_sdp: str) -> str:
    """Build the participant's WebRTC leg and answer their offer; attached before the answer so a
    failure or an end of the conference meanwhile closes it, and again after (its codecs are known)."""
    feed = conference.feed(participant)
    leg = WebRtcLeg(
        rooms.ice,
        on_video=feed.on_video,
        on_audio=feed.on_audio,
        on_keyframe_request=feed.on_keyframe_request,
        on_failed=feed.on_failed,
        executor=conference.executor,
    )
    conference.attach(participant, leg)
    try:
        answer = await leg.answer(offer_sdp)
    except Exception:
        conference.detach(participant)
        await leg.close()
        raise
    conference.attach(participant, leg)
    return answer
