"""SIP calls into the node's rooms: the :class:`~vdx.sip.CallHandler` the SIP server asks.

The same rules as WebRTC signalling (``vdx.conference.policy``), answered in SIP terms:
404 unknown alias, 480 room not open yet / meeting ended, 486 room full, 488 when the room has
``forceEncryption`` and the call is not TLS + SDES-SRTP, 503 + Retry-After when the node carries
its participant cap. PIN rooms answer 183 with a spoken prompt as early media and read the PIN
by RFC 4733 or SIP INFO (the server counts the three attempts, then 403); the PIN decides host
or guest, and guests wait in the lobby until a host is present, as on WebRTC. Every PIN first
passes the node's PIN throttle (``vdx.conference.pin_guard``), keyed by the INVITE's source
address: a source that must wait gets 403 "Too many wrong PINs, retry in N s", before the 183 or,
during PIN entry, after a spoken prompt saying so.

Once answered, the call is an ordinary participant (``protocol: sip``) whose media is a
:class:`~vdx.legs.sip.SipLeg`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vdx.conference import policy
from vdx.conference.conference import Conference, ConferenceError
from vdx.conference.events import Admitted, Bye, Event, Stage
from vdx.conference.participant import Participant
from vdx.conference.pin_guard import whole_seconds
from vdx.conference.policy import Role, RoomConfig
from vdx.legs.pcm import Pcm
from vdx.legs.sip import AudioSender, SipLeg, main_codec, play, wav_chunks
from vdx.node.rooms import Rooms
from vdx.sip import Accept, IncomingCall, Reject, RequirePin, SipCall
from vdx.sip import prompts as prompt_files
from vdx.sip.message import SipUri

log = logging.getLogger("vdx.node.sip")

MAX_NAME = 64


@dataclass(frozen=True)
class Admission:
    """What an answered call brings into the room (``Accept.context``)."""

    config: RoomConfig
    role: Role


@dataclass(eq=False)
class _Joined:
    conference: Conference
    participant: Participant
    leg: SipLeg


class SipRoomCalls:
    """Answers INVITEs from the room directory and runs answered calls as participants."""

    def __init__(
        self,
        rooms: Rooms,
        *,
        max_participants: int = 0,
        retry_after: int = 5,
        prompt_dir: Path | None = None,
        fps: int = 20,
        sip_domain: str | None = None,
    ) -> None:
        self.rooms = rooms
        self.sip_domain = sip_domain
        self.max_participants = max_participants
        self.retry_after = retry_after
        self.prompt_dir = prompt_dir
        self.fps = fps
        self.joined: dict[SipCall, _Joined] = {}
        self._prompts: dict[str, list[Pcm]] = {}
        self._prompting: dict[SipCall, asyncio.Task[Any]] = {}  # the PIN prompt's loop of a call
        self._tasks: set[asyncio.Task[Any]] = set()
        self.refusals: dict[int, int] = {}

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

    def _load(self) -> int:
        return sum(len(c.participants) for c in self.rooms.live.values())

    def lookup(self, call: IncomingCall) -> RoomConfig | None:
        """The room dialled: ``alias@domain`` as dialled, then at the node's own SIP domain (room
        systems often dial the node's address, ``sip:12345678@10.0.0.5``), then the bare alias."""
        if not call.alias:
            return None
        for candidate in (f"{call.alias}@{call.domain}", f"{call.alias}@{self.sip_domain}", call.alias):
            config = self.rooms.lookup(candidate)
            if config is not None:
                return config
        return None

    async def on_invite(self, call: IncomingCall) -> Accept | Reject | RequirePin:
        config = self.lookup(call)
        if config is None:
            return self._reject(404, "Unknown alias")
        refusal = policy.time_refusal(config, datetime.now(UTC))
        if refusal is policy.Refusal.NOT_OPEN:
            return self._reject(480, "Room not open yet")
        if refusal is not None:
            return self._reject(480, "Meeting has ended")
        if self.max_participants and self._load() >= self.max_participants:
            return self._reject(503, "Node at capacity", self.retry_after)
        live = self.rooms.live_conference(config.alias)
        if policy.is_full(config, len(live.participants) if live is not None else 0):
            return self._reject(486, "Room full")
        if config.force_encryption and not (call.secure and call.srtp_offered):
            return self._reject(488, "Encryption required (SIP over TLS with SRTP)")
        if not config.has_pins:
            return Accept(Admission(config, Role.HOST))
        waiting = self.rooms.pin_guard.waiting(config.alias, call.source)
        if waiting > 0:
            return self._pin_wait(config, call, waiting)
        return self._require_pin(config, call)

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
                return Accept(Admission(config, decision.role))
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
        conference = self.rooms.conference(config)
        name = call.incoming.caller_name or _user_of(call.incoming.caller_uri) or "SIP"
        participant = Participant(
            display_name=name[:MAX_NAME],
            role=admission.role,
            notify=lambda event: self._notify(call, event),
            protocol="sip",
        )
        try:
            conference.add(participant)
        except ConferenceError as exc:
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
            fps=self.fps,
            executor=conference.executor,
        )
        self.joined[call] = _Joined(conference, participant, leg)
        conference.attach(participant, leg)
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
            case _:
                pass

    async def on_session_changed(self, call: SipCall) -> None:
        joined = self.joined.get(call)
        if joined is None:
            return
        joined.leg.update(call.media.endpoint("audio"), call.media.endpoint("video"))
        joined.conference.attach(joined.participant, joined.leg)

    async def on_dtmf(self, call: SipCall, digit: str) -> None:
        log.debug("DTMF %s from %s after admission (no in-call menu)", digit, call.incoming.caller_uri)

    async def on_ended(self, call: SipCall, reason: str) -> None:
        joined = self.joined.pop(call, None)
        if joined is None:
            return
        await joined.conference.remove(joined.participant.id, f"sip: {reason}")

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()


def _user_of(uri: str) -> str:
    try:
        return SipUri.parse(uri).user or ""
    except Exception:
        return ""
