"""When the node provisions and deprovisions a VMR: pure rules, no I/O.

The node behaves like the reference's provisioners (spec 2.12):
- a meeting VMR is provisioned when its ``vmrStartTime`` (start minus ``vmrAvailableBefore``)
  arrives and the meeting has not ended (``vmrStartTime <= now <= endTime``, spec 1.3.5), not at
  booking time: a provisioned meeting can only have its end time changed (spec 2.10), so
  provisioning early would freeze meetings that people still edit;
- it is deprovisioned once the meeting has ended (``endTime < now``, spec 1.3.6);
- a pool VMR (no meeting, no end) is provisioned at once and stays until the pool shrinks
  (``POOL_DELETE``): only ``PROVISIONED_OK`` pool VMRs can be attached by ad-hoc meetings (2.13).

The ``Schedule`` is what the node knows (from events, the polling lists and the start-up resync),
keyed by the VMR's alias, which survives the uuid change of a pool VMR attached to a meeting.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from vdx.booking.timefmt import format_ts, parse_ts

# A deprovision is due strictly after the end (spec 1.3.6 ``endTime < now``); times have whole
# seconds, so waking this long after the end is enough.
AFTER_END = timedelta(milliseconds=1)
VMR_ID_MAX = 50  # provisionVmrId length limit (spec 1.3.4)


class Phase(enum.StrEnum):
    WAITING = "waiting"  # known, not provisioned yet
    PROVISIONED = "provisioned"  # the room is in the directory and the API says PROVISIONED_OK
    PROBLEM = "problem"  # reported PROVISION_PROBLEMS; waits for a change (an UPDATE) or its end
    ELSEWHERE = "elsewhere"  # provisioned, placed on another node of the cluster: in the directory
    # (to route its callers and to take it over fast), reported by its host


class Action(enum.StrEnum):
    PROVISION = "provision"  # fetch the details, put the room, report PROVISIONED_OK
    REFRESH = "refresh"  # a provisioned room changed (new end time): fetch and put it again
    DEPROVISION = "deprovision"  # the meeting ended: retire the room, report DEPROVISION_OK
    REMOVE = "remove"  # deleted (DELETE / POOL_DELETE): drop the room at once
    FORGET = "forget"  # ended before it was ever provisioned: nothing to report


@dataclass(frozen=True)
class Booking:
    """One scheduling info as the node schedules it."""

    uuid: str
    alias: str
    vmr_start: datetime | None  # None: at once (pool VMR)
    end: datetime | None  # None: no end (pool VMR)
    phase: Phase = Phase.WAITING
    stale: bool = False  # a change arrived for a provisioned room
    deleted: bool = False

    @property
    def key(self) -> str:
        return self.alias.lower()


def action(b: Booking, now: datetime) -> Action | None:
    """What is due for ``b`` at ``now`` (None = nothing yet)."""
    if b.deleted:
        return Action.REMOVE
    ended = b.end is not None and now > b.end
    if b.phase in (Phase.PROVISIONED, Phase.ELSEWHERE):
        if ended:
            return Action.DEPROVISION
        return Action.REFRESH if b.stale else None
    if ended:
        return Action.FORGET
    if b.phase is Phase.PROBLEM:
        return None
    if b.vmr_start is None or b.vmr_start <= now:
        return Action.PROVISION
    return None


def wake_at(b: Booking, now: datetime) -> datetime | None:
    """The first instant from ``now`` at which ``action`` has something to do for ``b``."""
    if action(b, now) is not None:
        return now
    after_end = b.end + AFTER_END if b.end is not None else None
    if b.phase is Phase.WAITING and b.vmr_start is not None:
        return b.vmr_start if after_end is None else min(b.vmr_start, after_end)
    return after_end


class Schedule:
    """The node's bookings by alias, with what is due and when to look again."""

    def __init__(self) -> None:
        self.bookings: dict[str, Booking] = {}

    def get(self, alias: str) -> Booking | None:
        return self.bookings.get(alias.lower())

    def learn(self, b: Booking, *, authoritative: bool = False) -> Booking:
        """Take news of a booking. Events carry no provision status: a known booking keeps its
        phase (a provisioned one becomes ``stale`` so the node refreshes the live room; one with
        problems is tried again). ``authoritative`` news (the API's own lists) sets the phase."""
        known = self.bookings.get(b.key)
        if known is not None and not authoritative:
            if known.phase in (Phase.PROVISIONED, Phase.ELSEWHERE):
                b = replace(b, phase=known.phase, stale=True)
            else:
                b = replace(b, phase=Phase.WAITING)
        elif known is not None and known.phase is Phase.ELSEWHERE and b.phase is Phase.PROVISIONED:
            b = replace(b, phase=Phase.ELSEWHERE)  # the API's PROVISIONED_OK says not where
        self.bookings[b.key] = b
        return b

    def delete(self, alias: str, uuid: str) -> Booking | None:
        """Mark a booking deleted (DELETE / POOL_DELETE event); unknown ones are recorded too so
        the node still drops a room it may hold under that alias."""
        known = self.bookings.get(alias.lower())
        if known is not None and known.uuid != uuid:
            return None  # an old event for an alias that now belongs to another booking
        b = replace(known, deleted=True) if known else Booking(uuid, alias, None, None, deleted=True)
        self.bookings[b.key] = b
        return b

    def set(self, b: Booking) -> None:
        self.bookings[b.key] = b

    def drop(self, alias: str) -> None:
        self.bookings.pop(alias.lower(), None)

    def due(self, now: datetime) -> list[tuple[Action, Booking]]:
        out = []
        for b in list(self.bookings.values()):
            a = action(b, now)
            if a is not None:
                out.append((a, b))
        return out

    def next_wake(self, now: datetime) -> datetime | None:
        times = [t for b in self.bookings.values() if (t := wake_at(b, now)) is not None]
        return min(times) if times else None


# --- reading scheduling infos -------------------------------------------------------------------


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        return parse_ts(value)
    return None


def booking_from_event(event: Mapping[str, Any]) -> Booking:
    """A booking from a scheduling-info event (spec 4.2 keys). A pool VMR has no
    ``meetingEndTime`` and no ``vMRStartTime``: it is due at once. Raises ValueError."""
    alias = event.get("uriWithDomain")
    uuid = event.get("uuid")
    if not alias or not uuid:
        raise ValueError("scheduling-info event without uuid or uriWithDomain")
    end = _time(event.get("meetingEndTime"))
    return Booking(
        uuid=str(uuid),
        alias=str(alias),
        vmr_start=_time(event.get("vMRStartTime")) if end is not None else None,
        end=end,
    )


def booking_from_api(si: Mapping[str, Any]) -> Booking:
    """A booking from the API's scheduling-info representation (spec 1.6), phase from its
    ``provisionStatus``. Raises ValueError."""
    alias = si.get("uriWithDomain")
    if not alias or not si.get("uuid"):
        raise ValueError("scheduling-info without uuid or uriWithDomain")
    meeting = si.get("meetingDetails") or {}
    start = _time(meeting.get("startTime"))
    end = _time(meeting.get("endTime"))
    vmr_start = None
    if start is not None:
        vmr_start = start - timedelta(minutes=max(int(si.get("vmrAvailableBefore") or 0), 0))
    phase = Phase.PROVISIONED if si.get("provisionStatus") == "PROVISIONED_OK" else Phase.WAITING
    return Booking(uuid=str(si["uuid"]), alias=str(alias), vmr_start=vmr_start, end=end, phase=phase)


def event_as_scheduling_info(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event as ``RoomConfig.from_scheduling_info`` reads it: the event has no meeting start
    time, so it is derived (start = ``vMRStartTime`` + ``vmravailableBefore`` minutes, spec 2.8).
    It lacks ``guestMicrophone`` too: the node fetches the scheduling info when it provisions."""
    si = dict(event)
    vmr_start = _time(event.get("vMRStartTime"))
    if vmr_start is not None and event.get("meetingEndTime"):
        before = int(event.get("vmravailableBefore") or 0)
        si["meetingStartTime"] = format_ts(vmr_start + timedelta(minutes=max(before, 0)))
    return si


def _digest(alias: str) -> str:
    return hashlib.sha256(alias.encode()).hexdigest()[:16]


def vmr_id(node_id: str, alias: str) -> str:
    """``provisionVmrId``: ``<node id>/<room id>`` within the 50 characters of spec 1.3.4 (the
    alias, or a digest of it when node id and alias are too long together)."""
    full = f"{node_id}/{alias}"
    if len(full) <= VMR_ID_MAX:
        return full
    digest = _digest(alias)
    return f"{node_id[: VMR_ID_MAX - len(digest) - 1]}/{digest}"


def provisioned_by_a_node(vmr: str | None, alias: str) -> bool:
    """Whether a ``provisionVmrId`` is one a vdx node wrote (``vmr_id``). A node takes back only
    such rooms after a restart (and deprovisions only those): a VMR another provisioner made
    (a Pexip conference id) is that provisioner's to end."""
    if not vmr or "/" not in vmr:
        return False
    room = vmr.rsplit("/", 1)[1]
    return room == alias or room == _digest(alias)
