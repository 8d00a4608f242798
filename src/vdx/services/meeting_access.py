"""Who may see and change a meeting (spec 3.4): the caller as the meeting rules see it."""

from __future__ import annotations

from dataclasses import dataclass

from vdx.booking.errors import forbidden
from vdx.booking.roles import Principal
from vdx.store.models import Meeting, Organisation
from vdx.store.records import Record


@dataclass(frozen=True)
class Actor:
    """The caller as the meeting rules see it: token principal and (detached) organisation."""

    principal: Principal
    organisation: Organisation

    @property
    def email(self) -> str:
        return self.principal.email or ""

    @property
    def org_id(self) -> int:
        return self.organisation.id


def _is_organiser(actor: Actor, meeting: Meeting | Record) -> bool:
    return meeting.organized_by.organisation_id == actor.org_id and meeting.organized_by.email == actor.email


def check_access(actor: Actor, meeting: Meeting | Record) -> None:
    """Same organisation only (no descendants); a caller with only meeting-user must organise it."""
    if meeting.organisation_id != actor.org_id:
        raise forbidden()
    if actor.principal.only_user and not _is_organiser(actor, meeting):
        raise forbidden()
