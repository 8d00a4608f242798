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
import secrets
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import av

from vdx.conference import layouts, link_adaptation, policy
from vdx.conference.audio_mixer import ActiveSpeaker, Mix, NoiseGate, level, mix_minus
from vdx.conference.compositor import Canvases, TileSource
from vdx.conference.events import (
    Admitted,
    Bye,
    Dialling,
    Event,
    Knock,
    Lobby,
    Member,
    Muted,
    Notify,
    Presentation,
    PresentationTaken,
    Roster,
    Speaker,
    Stage,
    StageTile,
)
from vdx.conference.leg import Leg, MediaFeed, PcmEncoder
from vdx.conference.participant import Participant, State
from vdx.conference.policy import GuestMicrophone, LobbyReason, Role, RoomConfig
from vdx.conference.views import View, ViewKey, bitrate_for
from vdx.legs.link_feedback import LinkReport
from vdx.legs.pcm import CHUNK_SAMPLES, SAMPLE_RATE, Pcm

log = logging.getLogger("vdx.conference")

MAX_DIALS_KEPT = 20  # dial-outs whose outcome the status still shows


@dataclass(frozen=True)
class MediaOptions:
    """Node-wide media knobs (settings ``VDX_MEDIA_*``)."""

    fps: int = 20
    size_cap: tuple[int, int] | None = None
    keyframe_interval: float = 0.5
    # "distinct": one view per distinct picture, nobody sees themselves. "shared" (everyone sees
    # the same picture, themselves in it) and "personal" (a view per participant) exist only to
    # measure what the default costs beside them (bench/capacity.py).
    views: str = "distinct"
    # Each receiver gets the layer (picture size) its link carries (link_adaptation); False: the
    # full size always.
    adapt: bool = True
    # How long a participant whose page lost its signalling or its media keeps their place for
    # the page to come back (``keep``, ``resume``) or to offer media again.
    reconnect_grace_s: float = 30.0


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
        self._layers: dict[str, link_adaptation.LayerControl] = {}  # by participant: their link's layer
        self.canvases = Canvases()  # the views' canvases and their scaled pictures
        self._published: dict[ViewKey, list[str]] = {}
        self._mixer: asyncio.Task[None] | None = None
        self._end_timer: asyncio.TimerHandle | None = None
        self.dials: dict[str, Dialling] = {}  # the latest dial-outs' progress, by participant id
        self._kept: dict[str, asyncio.TimerHandle] = {}  # participants whose signalling dropped
        self._media_lost: dict[str, asyncio.TimerHandle] = {}  # whose media ended, signalling alive
        # The one presenter (None: nobody presents), the leg their presentation comes in on and
        # its latest picture; the legs the presentation goes out on to those who watch it.
        self.presenter: str | None = None
        self.presentation_frame: av.VideoFrame | None = None
        self._presentation_leg: Leg | None = None
        self._watchers: dict[str, tuple[Leg, ViewKey]] = {}
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

    def add(self, participant: Participant, *, lobby: bool = True) -> None:
        """Place a newcomer: refused when the room is full, else into the lobby or onto the stage
        (straight onto it with ``lobby`` False: someone the room dialled)."""
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
        reason = (
            policy.lobby_reason(
                participant.role,
                hosts_present=self.hosts_present(),
                locked=self.locked,
                has_pins=self.config.has_pins,
            )
            if lobby
            else None
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

    def dial_progress(self, progress: Dialling) -> None:
        """A dial-out from the room got further: kept for the status (the latest few), told to
        the hosts on stage."""
        self.dials.pop(progress.participant_id, None)
        self.dials[progress.participant_id] = progress
        while len(self.dials) > MAX_DIALS_KEPT:
            del self.dials[next(iter(self.dials))]
        for p in list(self.participants.values()):
            if p.role is Role.HOST and p.in_conference:
                p.notify(progress)

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
            on_link=lambda report: self._on_link(p, report),
        )

    def attach(self, p: Participant, leg: Leg) -> None:
        """Connect a participant's leg, built with ``feed(p)``; again whenever its negotiated media
        changes (an answer, a re-INVITE). A new leg replaces the old one, which is closed (a page
        that restarts its media after a network change). Video joins the view once on stage."""
        old = p.leg
        if old is not None and old is not leg:
            self._detach_view(p)
            self._layers.pop(p.id, None)  # a new connection: its link is learnt afresh
            asyncio.get_running_loop().create_task(old.close())
        lost = self._media_lost.pop(p.id, None)
        if lost is not None:
            lost.cancel()
        p.leg = leg
        if p.in_conference:
            self._attach_view(p)

    def detach(self, p: Participant) -> None:
        """Forget a leg that never carried media (its offer was refused); the caller closes it."""
        p.leg = None

    def _media_failed(self, p: Participant) -> None:
        """The leg lost its far end (a failed or closed connection). Without signalling the
        participant is gone; with it their page may offer again (a media restart after a network
        change) within the grace period, else they are removed."""
        if p.id not in self.participants or p.id in self._media_lost:
            return
        if p.id in self._kept:
            asyncio.get_running_loop().create_task(self.remove(p.id, "media_failed"))
            return
        loop = asyncio.get_running_loop()
        self._media_lost[p.id] = loop.call_later(
            self.options.reconnect_grace_s,
            lambda: loop.create_task(self.remove(p.id, "media_failed", notify=True)),
        )

    def keep(self, pid: str) -> None:
        """The participant's signalling dropped: they stay where they are (stage or lobby, their
        media as it is) for the grace period, so a page that comes back with their resume token
        takes up their place (``resume``); then they are removed. Without media they are gone."""
        p = self.participants.get(pid)
        if p is None or pid in self._kept:
            return
        if pid in self._media_lost:
            asyncio.get_running_loop().create_task(self.remove(pid, "disconnected"))
            return
        loop = asyncio.get_running_loop()
        p.notify = _nobody
        # A presenter nobody can tell of a takeover presents no more; their page starts again.
        self.stop_presenting(pid)
        grace = self.options.reconnect_grace_s
        self._kept[pid] = loop.call_later(grace, lambda: loop.create_task(self.remove(pid, "disconnected")))
        log.info("participant %s of %s kept %.0f s for a reconnect", pid, self.alias, grace)

    def resume(self, token: str, notify: Notify) -> Participant:
        """The participant whose resume token this is, back with a new signalling ``notify`` (also
        one whose old signalling has not been seen to drop yet): same id, same place, admitted
        if they were. They get a new token, and what they missed: the roster, lobby, stage."""
        p = next(
            (x for x in self.participants.values() if secrets.compare_digest(x.resume_token, token)), None
        )
        if p is None:
            raise ConferenceError(
                "resume_refused",
                "this session cannot be resumed (it ended or the token is not valid): join again",
            )
        handle = self._kept.pop(p.id, None)
        if handle is not None:
            handle.cancel()
        p.resume_token = secrets.token_urlsafe(24)
        p.notify = notify
        log.info("participant %s resumed in %s (%s)", p.id, self.alias, p.state.value)
        if p.state is State.CONFERENCE or p.role is Role.HOST:
            p.notify(Roster(self._members()))
        if p.state is State.LOBBY and p.lobby_reason is not None:
            p.notify(Lobby(p.lobby_reason))
        if p.view is not None:
            self._send_stage(p, p.view)
        if p.in_conference:
            p.notify(self._presentation())
        return p

    async def remove(self, pid: str, reason: str, notify: bool = False) -> None:
        for timers in (self._kept, self._media_lost):
            handle = timers.pop(pid, None)
            if handle is not None:
                handle.cancel()
        p = self.participants.pop(pid, None)
        self._layers.pop(pid, None)
        if p is None:
            return
        if self._on_leave is not None:
            self._on_leave(self, p)
        if notify:
            p.notify(Bye(reason))
        p.state = State.GONE
        self.unwatch(p.id)
        if self.presenter == p.id:
            self.stop_presenting(p.id, restage=False)
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
        """New settings from the directory (the booking changed): layout, end time and who may
        present, now."""
        old_layouts = (self.config.host_view, self.config.guest_view)
        self.config = config
        if self._end_timer is not None:
            self._end_timer.cancel()
            self._end_timer = None
        self._schedule_end()
        presenter = self.participants.get(self.presenter) if self.presenter is not None else None
        if presenter is not None and not policy.may_present(config, presenter.role):
            self.stop_presenting(presenter.id)  # guests may no longer present here
        if (config.host_view, config.guest_view) != old_layouts:
            self.set_layout(config.host_view, config.guest_view)
        else:
            self._restage()  # forcePresenterIntoMain may have changed

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
        """The view a participant receives: the picture of everyone on stage, or, when they are
        on it themselves, the same picture without them (their tiles move up by one). Everyone
        off stage shares one view, so a room costs a view per person on stage at most."""
        if p.leg is None or p.leg.video_codec is None:
            return None
        w, h = layouts.fit_size(self.size, p.leg.size_cap)
        if self.options.adapt:
            w, h = self._layer_size(p, w, h)
        audience = "hosts" if self.config.vmr_type == "lecture" and p.role is Role.GUEST else "all"
        layout = self.config.view_for(p.role)
        if self.presenter is not None and p.protocol != "webrtc" and not p.separate_presentation:
            # A receiver of one video (SIP) gets the presentation composed in, large, the people
            # small; browsers get it as a second video of its own (``watch``).
            layout = layouts.WITH_PRESENTATION
        key = ViewKey(layout, w, h, p.leg.video_codec, audience)
        if self.options.views != "shared" and p in self.on_stage(key):
            key = replace(key, without=p.id)
        if self.options.views == "personal":
            key = replace(key, owner=p.id)
        return key

    def _restage(self) -> None:
        """After a change of who is where: move participants whose view changed, and tell
        every view's audience its new stage."""
        for p in list(self.participants.values()):
            if p.in_conference:
                self._attach_view(p)
        self._publish_stage()

    def _attach_view(self, p: Participant, after_loss: bool = False) -> None:
        key = self.view_key_for(p)
        if key is None or key == p.view or p.leg is None:
            return
        self._detach_view(p)
        view = self.views.get(key)
        if view is None:
            view = self.views[key] = self._new_view(key)
        p.view = key
        p.leg.video_out.restart(after_loss)
        view.subscribe(p.leg.video_out)
        self._send_stage(p, key)

    def _new_view(self, key: ViewKey) -> View:
        return View(
            key,
            self._stage_sources,
            self._executor,
            self.options.fps,
            self.options.keyframe_interval,
            self.canvases,
        )

    def _detach_view(self, p: Participant) -> None:
        if p.view is None:
            return
        key, p.view = p.view, None
        if p.leg is not None:
            self._leave_view(key, p.leg)

    def _leave_view(self, key: ViewKey, leg: Leg) -> None:
        """``leg`` no longer receives view ``key``; a view nobody receives stops."""
        view = self.views.get(key)
        if view is None:
            return
        view.unsubscribe(leg.video_out)
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
        if self.presenter is not None and self.config.force_presenter_into_main:
            shown.sort(key=lambda p: p.id != self.presenter)  # stable: the others keep their order
        return shown

    def on_stage(self, key: ViewKey) -> list[Participant]:
        """Who a view shows, in tile order (the main tile first: the active speaker, or for the
        speaker's own picture the one before them)."""
        shown = [p for p in self._candidates(key) if p.id != key.without]
        return shown[: layouts.people(key.layout)]

    def _stage_sources(self, key: ViewKey) -> tuple[Sequence[TileSource | None], bool]:
        people: list[TileSource | None] = [
            TileSource(p.latest_frame, p.display_name, p.id) for p in self.on_stage(key)
        ]
        if key.layout in (layouts.PRESENTATION, layouts.WITH_PRESENTATION):
            # Cached under the presenter: scaled once per tile size for every picture showing it.
            shown = TileSource(self.presentation_frame, "", f"presentation {self.presenter}")
            people.insert(0, shown)
        return people, self.config.enable_overlay_text

    def _stage(self, key: ViewKey) -> Stage:
        tiles = layouts.tiles(key.layout, key.width, key.height)
        if key.layout in (layouts.PRESENTATION, layouts.WITH_PRESENTATION):
            tiles = tiles[1:]  # the first is the presentation's
        return Stage(
            layout=key.layout,
            width=key.width,
            height=key.height,
            codec=key.codec,
            tiles=tuple(
                StageTile(p.id, p.display_name, t.x, t.y, t.width, t.height, t.main)
                for t, p in zip(tiles, self.on_stage(key), strict=False)
            ),
            presenter=self.presenter,
        )

    def _send_stage(self, p: Participant, key: ViewKey) -> None:
        p.notify(self._stage(key))

    def _publish_stage(self) -> None:
        for key in list(self.views):
            ids = [p.id for p in self.on_stage(key)] + [f"presenter {self.presenter}"]
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

    def _layer_size(self, p: Participant, width: int, height: int) -> tuple[int, int]:
        """The size of the layer ``p``'s link carries, of a view ``width`` x ``height``."""
        sizes = link_adaptation.ladder(width, height)
        needs = [bitrate_for(w, h) for w, h in sizes]
        control = self._layers.get(p.id)
        if control is None or control.needs != needs:
            control = self._layers[p.id] = link_adaptation.LayerControl(needs)
        return sizes[control.layer]

    def _on_link(self, p: Participant, report: LinkReport) -> None:
        """Feedback on the video ``p`` receives: a move to another layer when its link asks."""
        control = self._layers.get(p.id)
        if control is None or not self.options.adapt:
            return
        before, now = control.layer, time.monotonic()
        if control.fresh_start_due(now) and p.leg is not None and p.view in self.views:
            p.leg.video_out.restart(after_loss=True)
            self.views[p.view].request_keyframe()
        if control.report(report, now) != before:
            log.info(
                "room %s: %s moves to video layer %d (estimate %s, loss %.2f, sending %.0f kb/s)",
                self.alias,
                p.id,
                control.layer,
                report.estimate_bps,
                control.lost_now,
                report.sending_bps / 1000,
            )
            self._attach_view(p, after_loss=control.layer > before)

    def _on_keyframe_request(self, p: Participant) -> None:
        if p.view is not None and p.view in self.views:
            self.views[p.view].request_keyframe()

    def _members(self) -> tuple[Member, ...]:
        return tuple(
            replace(x.member(), presenting=x.id == self.presenter) for x in self.participants.values()
        )

    def _roster_changed(self) -> None:
        roster = Roster(self._members())
        for p in self.participants.values():
            if p.state is State.CONFERENCE or p.role is Role.HOST:
                p.notify(roster)
        self._restage()

    # --- presentation ------------------------------------------------------------------------
    # One presenter at a time. Their screen comes in on a leg of its own and is encoded once per
    # size and codec as a picture of the presentation alone, which each browser takes on a leg of
    # its own (``watch``); receivers of one video (SIP) get it composed into their picture.
    def presentation_feed(self, p: Participant) -> MediaFeed:
        """The callbacks of the leg ``p``'s presentation comes in on."""
        return MediaFeed(
            on_video=lambda frame: self._on_presentation(p, frame),
            on_audio=lambda pcm: None,
            on_keyframe_request=lambda: None,
            on_failed=lambda: self.stop_presenting(p.id),
            on_link=lambda report: None,  # nothing goes out on the screen's connection
        )

    def watch_feed(self, p: Participant) -> MediaFeed:
        """The callbacks of the leg the presentation goes out to ``p`` on."""
        return MediaFeed(
            on_video=lambda frame: None,
            on_audio=lambda pcm: None,
            on_keyframe_request=lambda: self._watcher_wants_keyframe(p.id),
            on_failed=lambda: self.unwatch(p.id),
            on_link=lambda report: None,  # the presentation goes out at one size for all
        )

    def check_may_present(self, p: Participant) -> None:
        """Refused unless ``p`` is in the conference and a host, or a guest where guests may
        present (``guestsCanPresent``)."""
        if not p.in_conference:
            raise ConferenceError("not_in_conference", "only participants in the meeting may present")
        if not policy.may_present(self.config, p.role):
            raise ConferenceError("presentation_not_allowed", "guests may not present in this meeting")

    def present(self, p: Participant, leg: Leg) -> None:
        """``p`` presents on ``leg`` (built with ``presentation_feed(p)``): a presentation under
        way is taken over, and its presenter told."""
        self.check_may_present(p)
        before, old_leg = self.presenter, self._presentation_leg
        self.presenter, self._presentation_leg = p.id, leg
        self.presentation_frame = None
        if old_leg is not None and old_leg is not leg:
            asyncio.get_running_loop().create_task(old_leg.close())
        if before is not None and before != p.id:
            old = self.participants.get(before)
            if old is not None:
                old.notify(PresentationTaken(p.id, p.display_name))
        log.info("participant %s presents in %s (was: %s)", p.id, self.alias, before)
        self._presentation_changed()

    def stop_presenting(self, pid: str, restage: bool = True) -> None:
        """``pid``'s presentation ends (stopped, left, disconnected, its media failed); nothing
        when someone else presents."""
        if self.presenter != pid:
            return
        leg = self._presentation_leg
        self.presenter = self._presentation_leg = self.presentation_frame = None
        if leg is not None:
            asyncio.get_running_loop().create_task(leg.close())
        for watcher in list(self._watchers):
            self.unwatch(watcher)
        log.info("presentation of %s in %s ended", pid, self.alias)
        if restage:
            self._presentation_changed()
        else:
            self._tell_presentation()

    def watch(self, p: Participant, leg: Leg) -> None:
        """Send the presentation to ``p`` on ``leg`` (built with ``watch_feed(p)``), from the one
        presentation picture of its size and codec; replaces ``p``'s earlier one."""
        if self.presenter is None:
            raise ConferenceError("no_presentation", "nobody presents now")
        if not p.in_conference:
            raise ConferenceError(
                "not_in_conference", "only participants in the meeting see the presentation"
            )
        if leg.video_codec is None:
            raise ConferenceError("bad_request", "a presentation needs video")
        self.unwatch(p.id)
        w, h = layouts.fit_size(self.size, leg.size_cap)
        key = ViewKey(layouts.PRESENTATION, w, h, leg.video_codec, audience="presentation")
        view = self.views.get(key)
        if view is None:
            view = self.views[key] = self._new_view(key)
        self._watchers[p.id] = (leg, key)
        leg.video_out.restart()
        view.subscribe(leg.video_out)

    def unwatch(self, pid: str) -> None:
        entry = self._watchers.pop(pid, None)
        if entry is None:
            return
        leg, key = entry
        self._leave_view(key, leg)
        asyncio.get_running_loop().create_task(leg.close())

    def _watcher_wants_keyframe(self, pid: str) -> None:
        entry = self._watchers.get(pid)
        if entry is not None and entry[1] in self.views:
            self.views[entry[1]].request_keyframe()

    def _on_presentation(self, p: Participant, frame: av.VideoFrame) -> None:
        """Only a store, as ``_on_video``: called from the leg's decode thread."""
        if self.presenter == p.id:
            self.presentation_frame = frame

    def _presentation(self) -> Presentation:
        p = self.participants.get(self.presenter) if self.presenter is not None else None
        return Presentation(self.presenter, p.display_name if p is not None else None)

    def _tell_presentation(self) -> None:
        event = self._presentation()
        for x in list(self.participants.values()):
            if x.in_conference:
                x.notify(event)

    def _presentation_changed(self) -> None:
        """Everyone is told; the roster shows the presenter; pictures change (SIP receivers'
        composed presentation, the presenter's camera into the main tile)."""
        self._tell_presentation()
        self._roster_changed()

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
            "presenter": self.presenter,
            "presentationWatchers": len(self._watchers),
            "views": [
                {
                    "layout": k.layout,
                    "width": k.width,
                    "height": k.height,
                    "codec": k.codec,
                    "audience": k.audience,
                    "without": k.without,
                    "owner": k.owner,
                    "subscribers": len(v.subscribers),
                    "framesEncoded": v.frames_encoded,
                    "keyframes": v.keyframes,
                }
                for k, v in self.views.items()
            ],
            "participants": parts,
            "dialOuts": [
                {
                    "participantId": d.participant_id,
                    "destination": d.destination,
                    "state": d.state,
                    "detail": d.detail,
                }
                for d in self.dials.values()
            ],
        }


def _nobody(event: Event) -> None:
    """Where a kept participant's events go while nobody listens: they get a fresh picture of
    the room when they resume."""
