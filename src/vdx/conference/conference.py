"""A conference: the live instance of a VMR, from its first participant to its last.

It owns the participants (lobby and stage), the audio mixer (a tick on the event loop: a
mix-minus for each voice in the mix, one common mix encoded once per codec for everyone else,
active speaker) and the views (one encoder per distinct view). Rules of who waits and who may
speak come from ``policy``; participants' media comes and goes through the leg interface
(``leg``). Everything runs on the event loop except composition and encoding, which views hand
to the thread pool, and the store of a decoded picture, which a leg makes from its decode thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import av

from vdx.conference import layouts, policy
from vdx.conference.audio_mixer import ActiveSpeaker, Mix, NoiseGate, level, mix_minus
from vdx.conference.compositor import ScaleCache, TileSource
from vdx.conference.events import Admitted, Bye, Knock, Lobby, Muted, Roster, Speaker, Stage, StageTile
from vdx.conference.leg import Leg, MediaFeed, PcmEncoder
from vdx.conference.participant import Participant, State
from vdx.conference.policy import GuestMicrophone, LobbyReason, Role, RoomConfig
from vdx.conference.views import View, ViewKey
from vdx.legs.pcm import CHUNK_SAMPLES, SAMPLE_RATE, Pcm

log = logging.getLogger("vdx.conference")


@dataclass(frozen=True)
class MediaOptions:
    """Node-wide media knobs (settings ``VDX_MEDIA_*``)."""

    fps: int = 20
    size_cap: tuple[int, int] | None = None
    keyframe_interval: float = 0.5
    # False: every participant gets a view (and an encoder) of their own; for benchmarks only.
    shared_views: bool = True


class ConferenceError(Exception):
    """A refused action; ``code`` is the signalling/control error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Conference:
    def __init__(
        self,
        config: RoomConfig,
        options: MediaOptions,
        executor: Executor,
        on_end: Callable[[Conference], None],
        on_join: Callable[[Conference, Participant], None] | None = None,
        on_leave: Callable[[Conference, Participant], None] | None = None,
    ) -> None:
        self.config = config
        self.options = options
        self._executor = executor
        self._on_end = on_end
        self._on_join = on_join
        self._on_leave = on_leave
        self.participants: dict[str, Participant] = {}
        self.locked = False
        self.started_at = time.time()
        self.ended = False
        self.speaker = ActiveSpeaker()
        self.gate = NoiseGate()
        # One encoder per codec for the common mix (what everyone out of the mix hears).
        self._common_encoders: dict[str, PcmEncoder] = {}
        self.stage_order: list[str] = []
        self.views: dict[ViewKey, View] = {}
        self.scale_cache = ScaleCache()  # shared by the views: each picture scaled once per tile size
        self._published: dict[ViewKey, list[str]] = {}
        self._mixer: asyncio.Task[None] | None = None
        self._end_timer: asyncio.TimerHandle | None = None
        self._schedule_end()

    # --- membership --------------------------------------------------------------------------
    @property
    def executor(self) -> Executor:
        """The node's media thread pool (composition, encoding, legs' video decoding)."""
        return self._executor

    @property
    def alias(self) -> str:
        return self.config.alias

    @property
    def size(self) -> tuple[int, int]:
        return layouts.fit_size(self.config.max_size, self.options.size_cap)

    def hosts_present(self) -> bool:
        return any(p.role is Role.HOST and p.in_conference for p in self.participants.values())

    def by_token(self, token: str) -> Participant | None:
        for p in self.participants.values():
            if p.token == token:
                return p
        return None

    def get(self, pid: str) -> Participant:
        p = self.participants.get(pid)
        if p is None:
            raise ConferenceError("participant_not_found", f"no participant {pid} in {self.alias}")
        return p

    def add(self, participant: Participant) -> None:
        """Place a newcomer: refused when the room is full, else into the lobby or onto the stage."""
        if self.ended:
            raise ConferenceError("ended", "the conference has ended")
        if policy.is_full(self.config, len(self.participants)):
            raise ConferenceError(
                "room_full", f"the room is full ({self.config.max_participants} participants)"
            )
        if participant.role is Role.GUEST:
            participant.muted = policy.guest_audio_muted(self.config)
            participant.mic_locked = (
                self.config.mute_all_guests or self.config.guest_microphone is GuestMicrophone.OFF
            )
        self.participants[participant.id] = participant
        if self._on_join is not None:
            self._on_join(self, participant)
        reason = policy.lobby_reason(
            participant.role,
            hosts_present=self.hosts_present(),
            locked=self.locked,
            has_pins=self.config.has_pins,
        )
        if self._mixer is None:
            self._mixer = asyncio.get_running_loop().create_task(self._mix_loop(), name=f"mixer {self.alias}")
        if reason is None:
            self._enter(participant)
        else:
            participant.state = State.LOBBY
            participant.lobby_reason = reason.value
            if reason is LobbyReason.LOCKED:
                # Pexip's "knock": hosts hear that someone waits at a locked room.
                knock = Knock(participant.id, participant.display_name)
                for p in self.participants.values():
                    if p.role is Role.HOST and p.in_conference:
                        p.notify(knock)
        self._roster_changed()

    def _enter(self, p: Participant) -> None:
        was_waiting = p.lobby_reason is not None
        p.state = State.CONFERENCE
        p.lobby_reason = None
        self.stage_order.append(p.id)
        if p.role is Role.HOST:
            # Guests waiting for a host come in with the first host (Pexip); a lock keeps them.
            for other in self.participants.values():
                if other.state is State.LOBBY and other.lobby_reason == LobbyReason.WAITING_FOR_HOST:
                    if self.locked:
                        other.lobby_reason = LobbyReason.LOCKED.value
                        other.notify(Lobby(other.lobby_reason))
                    else:
                        self._enter(other)
        if was_waiting:
            p.notify(Admitted())
        self._attach_view(p)

    def admit(self, pid: str) -> None:
        p = self.get(pid)
        if p.state is not State.LOBBY:
            raise ConferenceError("not_in_lobby", f"participant {pid} is not in the lobby")
        self._enter(p)
        self._roster_changed()

    def set_locked(self, locked: bool) -> None:
        """Lock or unlock. Unlocking lets in everyone held by the lock (Pexip)."""
        self.locked = locked
        if not locked:
            for p in list(self.participants.values()):
                if (
                    p.state is State.LOBBY
                    and p.lobby_reason == LobbyReason.LOCKED
                    and (p.role is Role.HOST or self.hosts_present())
                ):
                    self._enter(p)
        self._roster_changed()

    def feed(self, p: Participant) -> MediaFeed:
        """The callbacks a leg of ``p`` is built with: its far end's media and failures."""
        return MediaFeed(
            on_video=lambda frame: self._on_video(p, frame),
            on_audio=lambda pcm: self._on_audio(p, pcm),
            on_keyframe_request=lambda: self._on_keyframe_request(p),
            on_failed=lambda: self._media_failed(p),
        )

    def attach(self, p: Participant, leg: Leg) -> None:
        """Connect a participant's leg, built with ``feed(p)``; again whenever its negotiated media
        changes (an answer, a re-INVITE). Video joins the view once they are on stage."""
        p.leg = leg
        if p.in_conference:
            self._attach_view(p)

    def detach(self, p: Participant) -> None:
        """Forget a leg that never carried media (its offer was refused); the caller closes it."""
        p.leg = None

    def _media_failed(self, p: Participant) -> None:
        """The leg lost its far end (a failed or closed connection): the participant is gone."""
        if p.id in self.participants:
            asyncio.get_running_loop().create_task(self.remove(p.id, "media_failed", notify=True))

    async def remove(self, pid: str, reason: str, notify: bool = False) -> None:
        p = self.participants.pop(pid, None)
        if p is None:
            return
        if self._on_leave is not None:
            self._on_leave(self, p)
        if notify:
            p.notify(Bye(reason))
        p.state = State.GONE
        if p.id in self.stage_order:
            self.stage_order.remove(p.id)
        self.speaker.forget(p.id)
        self._detach_view(p)
        if p.leg is not None:
            await p.leg.close()
        log.info("participant %s left %s: %s", p.id, self.alias, reason)
        if not self.participants:
            await self.end("empty")
            return
        self._roster_changed()

    async def end(self, reason: str) -> None:
        """End the conference: everyone is told why, media stops, the directory forgets it."""
        if self.ended:
            return
        self.ended = True
        if self._end_timer is not None:
            self._end_timer.cancel()
        for p in list(self.participants.values()):
            await self.remove(p.id, reason, notify=True)
        if self._mixer is not None:
            self._mixer.cancel()
        for view in list(self.views.values()):
            await view.stop()
        self.views.clear()
        log.info("conference %s ended: %s", self.alias, reason)
        self._on_end(self)

    def reconfigure(self, config: RoomConfig) -> None:
        """New settings from the directory (the booking changed): layout and end time now."""
        old_layouts = (self.config.host_view, self.config.guest_view)
        self.config = config
        if self._end_timer is not None:
            self._end_timer.cancel()
            self._end_timer = None
        self._schedule_end()
        if (config.host_view, config.guest_view) != old_layouts:
            self.set_layout(config.host_view, config.guest_view)

    def _schedule_end(self) -> None:
        cfg = self.config
        if not (cfg.end_meeting_on_end_time and cfg.end_time is not None):
            return
        delay = (cfg.end_time - datetime.now(UTC)).total_seconds()
        loop = asyncio.get_running_loop()
        self._end_timer = loop.call_later(max(0.0, delay), lambda: loop.create_task(self.end("end_time")))

    # --- control -----------------------------------------------------------------------------
    def set_muted(self, pid: str, muted: bool, *, by_self: bool) -> None:
        p = self.get(pid)
        if by_self and not muted and p.mic_locked:
            raise ConferenceError("microphone_locked", "guests may not unmute themselves in this room")
        p.muted = muted
        if not by_self:
            # A host's or operator's unmute also releases the guest's lock.
            p.mic_locked = p.mic_locked and muted
        p.notify(Muted(muted))
        self._roster_changed()

    def mute_guests(self, muted: bool) -> None:
        """Pexip's "mute all guests": guests muted and unable to unmute themselves; newcomers too."""
        self.config = replace(self.config, mute_all_guests=muted)
        for p in self.participants.values():
            if p.role is Role.GUEST:
                p.muted = muted or self.config.guest_microphone is not GuestMicrophone.ON
                p.mic_locked = muted or self.config.guest_microphone is GuestMicrophone.OFF
                p.notify(Muted(p.muted))
        self._roster_changed()

    def set_layout(self, host_view: str | None, guest_view: str | None) -> None:
        for name in (host_view, guest_view):
            if name is not None and name not in policy.LAYOUTS:
                raise ConferenceError("bad_layout", f"unknown layout '{name}' ({', '.join(policy.LAYOUTS)})")
        if self.config.vmr_type != "lecture" and host_view and not guest_view:
            guest_view = host_view
        self.config = self.config.with_views(host_view, guest_view)
        self._restage()

    # --- video -------------------------------------------------------------------------------
    def view_key_for(self, p: Participant) -> ViewKey | None:
        """The view a participant receives. Views are shared, so people see themselves in it,
        except in the main tile of a one-main layout: whoever is there (the active speaker)
        gets the variant with the next person in the main tile instead, so a speaker never
        looks at themselves full size (Pexip shows nobody themselves). At most one extra
        encoder per layout, size and codec."""
        if p.leg is None or p.leg.video_codec is None:
            return None
        w, h = layouts.fit_size(self.size, p.leg.size_cap)
        audience = "hosts" if self.config.vmr_type == "lecture" and p.role is Role.GUEST else "all"
        key = ViewKey(self.config.view_for(p.role), w, h, p.leg.video_codec, audience)
        if layouts.mains(key.layout) == 1:
            shown = self._candidates(key)
            if len(shown) >= 2 and shown[0] is p:
                key = replace(key, swap_main=True)
        if not self.options.shared_views:
            key = replace(key, owner=p.id)
        return key

    def _restage(self) -> None:
        """After a change of who is where: move participants whose view changed, and tell
        every view's audience its new stage."""
        for p in list(self.participants.values()):
            if p.in_conference:
                self._attach_view(p)
        self._publish_stage()

    def _attach_view(self, p: Participant) -> None:
        key = self.view_key_for(p)
        if key is None or key == p.view or p.leg is None:
            return
        self._detach_view(p)
        view = self.views.get(key)
        if view is None:
            view = View(
                key,
                self._stage_sources,
                self._executor,
                self.options.fps,
                self.options.keyframe_interval,
                self.scale_cache,
            )
            self.views[key] = view
        p.view = key
        p.leg.video_out.restart()
        view.subscribe(p.leg.video_out)
        self._send_stage(p, key)

    def _detach_view(self, p: Participant) -> None:
        if p.view is None:
            return
        view = self.views.get(p.view)
        p.view = None
        if view is None or p.leg is None:
            return
        view.unsubscribe(p.leg.video_out)
        if not view.subscribers:
            del self.views[view.key]
            self._published.pop(view.key, None)
            asyncio.get_running_loop().create_task(view.stop())

    def _candidates(self, key: ViewKey) -> list[Participant]:
        """Everyone a view may show, most recent speakers first, then by arrival; auditorium
        guests see hosts only."""
        shown: list[Participant] = []
        for pid in self.stage_order:
            p = self.participants.get(pid)
            if p is None or not p.in_conference:
                continue
            if key.audience == "hosts" and p.role is not Role.HOST:
                continue
            shown.append(p)
        return shown

    def on_stage(self, key: ViewKey) -> list[Participant]:
        """Who a view shows, in tile order (the main tile first: the active speaker, or for the
        speaker's own variant the one before them)."""
        shown = self._candidates(key)
        if key.swap_main and len(shown) >= 2:
            shown[0], shown[1] = shown[1], shown[0]
        return shown[: layouts.capacity(key.layout)]

    def _stage_sources(self, key: ViewKey) -> tuple[Sequence[TileSource | None], bool]:
        return [
            TileSource(p.latest_frame, p.display_name, p.id) for p in self.on_stage(key)
        ], self.config.enable_overlay_text

    def _stage(self, key: ViewKey) -> Stage:
        tiles = layouts.tiles(key.layout, key.width, key.height)
        return Stage(
            layout=key.layout,
            width=key.width,
            height=key.height,
            codec=key.codec,
            tiles=tuple(
                StageTile(p.id, p.display_name, t.x, t.y, t.width, t.height, t.main)
                for t, p in zip(tiles, self.on_stage(key), strict=False)
            ),
        )

    def _send_stage(self, p: Participant, key: ViewKey) -> None:
        p.notify(self._stage(key))

    def _publish_stage(self) -> None:
        for key in list(self.views):
            ids = [p.id for p in self.on_stage(key)]
            if self._published.get(key) == ids:
                continue
            self._published[key] = ids
            stage = self._stage(key)
            for p in self.participants.values():
                if p.view == key:
                    p.notify(stage)

    def _on_video(self, p: Participant, frame: av.VideoFrame) -> None:
        """Only a store (one reference, atomic): legs call it from their decode thread."""
        p.latest_frame = frame

    def _on_keyframe_request(self, p: Participant) -> None:
        if p.view is not None and p.view in self.views:
            self.views[p.view].request_keyframe()

    def _roster_changed(self) -> None:
        roster = Roster(tuple(x.member() for x in self.participants.values()))
        for p in self.participants.values():
            if p.state is State.CONFERENCE or p.role is Role.HOST:
                p.notify(roster)
        self._restage()

    # --- audio -------------------------------------------------------------------------------
    def _on_audio(self, p: Participant, pcm: Pcm) -> None:
        if p.in_conference:
            p.voice.append(pcm)

    def mix_once(self) -> None:
        """One tick: take a chunk from every talker, update the active speaker, send each voice
        in the mix everyone but themselves and everyone else the common mix."""
        on_stage = [p for p in self.participants.values() if p.in_conference]
        chunks = {p.id: p.voice.popleft() for p in on_stage if p.voice}
        muted = {p.id for p in on_stage if p.muted}
        levels = {}
        for p in on_stage:
            lv = level(chunks[p.id]) if p.id in chunks and p.id not in muted else 0.0
            p.last_level = lv
            levels[p.id] = lv
        self._follow_speaker(on_stage, levels)
        voices = self.gate.update(levels)
        self._send_mix(on_stage, mix_minus({pid: c for pid, c in chunks.items() if pid in voices}, muted))

    def _follow_speaker(self, on_stage: list[Participant], levels: dict[str, float]) -> None:
        """A new active speaker takes the main tile; everyone on stage is told."""
        before = self.speaker.current
        current = self.speaker.update(levels)
        if current is not None and current != before and current in self.stage_order:
            self.stage_order.remove(current)
            self.stage_order.insert(0, current)
            self._restage()
            for p in on_stage:
                p.notify(Speaker(current))

    def _send_mix(self, on_stage: list[Participant], mix: Mix) -> None:
        """Each voice in the mix gets its own mix-minus; everyone else the common mix, encoded
        once per codec for all its listeners."""
        encoded: dict[str, list[bytes]] = {}
        for p in on_stage:
            if p.leg is None:
                continue
            out = p.leg.audio_out
            own = mix.own.get(p.id)
            if own is not None:
                out.push(own)
                continue
            key = out.codec_key
            if key is None:
                continue
            payloads = encoded.get(key)
            if payloads is None:
                encoder = self._common_encoders.get(key)
                if encoder is None:
                    encoder = self._common_encoders[key] = out.new_encoder()
                payloads = encoded[key] = encoder.encode(mix.common)
            out.push_encoded(payloads)

    async def _mix_loop(self) -> None:
        loop = asyncio.get_running_loop()
        period = CHUNK_SAMPLES / SAMPLE_RATE
        start = loop.time()
        ticks = 0
        while True:
            due = int((loop.time() - start) / period) + 1
            if due - ticks > 10:  # the loop was stalled: skip rather than burst
                ticks = due - 1
            while ticks < due:
                try:
                    self.mix_once()
                except Exception:
                    log.exception("mixer of %s failed a tick", self.alias)
                ticks += 1
            await asyncio.sleep(max(0.0, start + ticks * period - loop.time()))

    # --- reporting ---------------------------------------------------------------------------
    async def status(self) -> dict[str, Any]:
        parts = []
        for p in list(self.participants.values()):
            entry = p.summary()
            entry["lobbyReason"] = p.lobby_reason
            entry["audioLevel"] = round(p.last_level, 1)
            entry["view"] = (
                None
                if p.view is None
                else {
                    "layout": p.view.layout,
                    "width": p.view.width,
                    "height": p.view.height,
                    "codec": p.view.codec,
                }
            )
            entry["media"] = await p.leg.stats() if p.leg is not None else None
            parts.append(entry)
        return {
            "alias": self.alias,
            "locked": self.locked,
            "startedAt": int(self.started_at),
            "hostView": self.config.host_view,
            "guestView": self.config.guest_view,
            "vmrType": self.config.vmr_type,
            "muteAllGuests": self.config.mute_all_guests,
            "activeSpeaker": self.speaker.current,
            "views": [
                {
                    "layout": k.layout,
                    "width": k.width,
                    "height": k.height,
                    "codec": k.codec,
                    "audience": k.audience,
                    "speakerVariant": k.swap_main,
                    "owner": k.owner,
                    "subscribers": len(v.subscribers),
                    "framesEncoded": v.frames_encoded,
                    "keyframes": v.keyframes,
                }
                for k, v in self.views.items()
            ],
            "participants": parts,
        }
