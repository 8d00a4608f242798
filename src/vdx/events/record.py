"""Recording events: rows in the outbox, in the caller's transaction (never lost, never published
for a change that rolled back). A publisher sends them to the bus afterwards."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import event, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import instance_state

from vdx.events import payloads
from vdx.events.payloads import MessageType, Operation
from vdx.settings import Settings
from vdx.store.db import now_utc, table_of
from vdx.store.models import AuditRecord, Meeting, Organisation, Outbox, SchedulingInfo

# the outbox rows a transaction has recorded, inserted when it commits (session.info key)
_PENDING = "vdx_outbox_rows"
# the audit-trail rows likewise
_PENDING_AUDIT = "vdx_audit_rows"


def _enqueue(session: AsyncSession, subject: str, payload: dict[str, Any], ordering_key: str | None) -> None:
    session.info["outbox"] = True  # wakes the relay when this transaction commits
    session.info.setdefault(_PENDING, []).append(
        {
            "subject": subject,
            "message_id": uuid.uuid4().hex,
            "ordering_key": ordering_key,
            "payload": json.dumps(payload, separators=(",", ":")),
            "created_time": now_utc(),
            "published_time": None,
            "attempts": 0,
        }
    )


# Built once, on the table: ``insert(Outbox)`` per commit took the ORM's bulk-insert path and
# built and keyed a new statement each time, more CPU than the round trip.
_INSERT_OUTBOX = insert(table_of(Outbox))
_INSERT_AUDIT = insert(table_of(AuditRecord))


@event.listens_for(Session, "before_commit")
def _insert_recorded(session: Session) -> None:
    """The transaction's outbox rows in one INSERT as it commits, in the order they were
    recorded (the relay publishes by id). A Core insert: as ORM objects they cost a flush of
    their own, the CPU of three SQL statements per booking."""
    rows = session.info.pop(_PENDING, None)
    if rows:
        session.execute(_INSERT_OUTBOX, rows)
    audits = session.info.pop(_PENDING_AUDIT, None)
    if audits:
        session.execute(_INSERT_AUDIT, audits)


@event.listens_for(Session, "after_soft_rollback")
def _drop_recorded(session: Session, _previous: Any) -> None:
    """A transaction that rolls back records nothing (a retried create records afresh)."""
    session.info.pop(_PENDING, None)
    session.info.pop(_PENDING_AUDIT, None)


async def _with_id(session: AsyncSession, obj: Meeting | SchedulingInfo) -> None:
    """The payload carries the database id: flush only when ``obj`` has none yet, so that the
    outbox rows of one change wait for the commit's flush and go in one INSERT (a flush per
    event cost a statement per row)."""
    if obj.id is None:
        await session.flush()


async def _loaded(obj: Meeting | SchedulingInfo, *names: str) -> None:
    """Load the relationships a payload reads, with a query only for those the caller did not set
    (a full refresh per event cost a handful of queries per booking; and awaiting even a loaded
    one costs a greenlet switch, so only the unloaded ones are awaited)."""
    unloaded = instance_state(obj).unloaded
    for name in names:
        if name in unloaded:
            await getattr(obj.awaitable_attrs, name)


async def scheduling_info_event(
    session: AsyncSession, settings: Settings, si: SchedulingInfo, message_type: MessageType
) -> None:
    """Queue the spec 4.2 event for ``si`` when its organisation is driven by events."""
    if not si.new_provisioner:
        return
    await _with_id(session, si)
    await _loaded(si, "organisation", "meeting", "created_by")
    payload = payloads.scheduling_info_event(si, message_type, si.organisation.code)
    _enqueue(session, settings.nats_subject_scheduling_info, payload, si.uuid)


async def audit(
    session: AsyncSession,
    settings: Settings,
    *,
    operation: Operation,
    obj: Meeting | SchedulingInfo,
    user: str | None,
) -> None:
    """Queue the spec 4.4 audit event for a change of ``obj`` made by ``user`` (e-mail)."""
    await _with_id(session, obj)
    if isinstance(obj, Meeting):
        await _loaded(
            obj,
            "organisation",
            "created_by",
            "updated_by",
            "organized_by",
            "labels",
            "additional_information",
        )
    else:
        await _loaded(obj, "organisation", "created_by", "updated_by")
    meeting_uuid: str | None
    if isinstance(obj, Meeting):
        resource: payloads.Resource = "meeting"
        identifier = obj.uuid
        data = payloads.meeting_audit_data(obj)
        meeting_uuid = obj.uuid
    else:
        resource = "schedulingInfo"
        identifier = obj.uri_with_domain or obj.uuid
        data = payloads.scheduling_info_audit_data(obj)
        meeting_uuid = None
        if obj.meeting_id is not None:
            await _loaded(obj, "meeting")
            meeting_uuid = obj.meeting.uuid if obj.meeting is not None else None
    change(
        session,
        settings,
        organisation=obj.organisation,
        resource=resource,
        operation=operation,
        identifier=identifier,
        user=user,
        data=data,
        meeting_uuid=meeting_uuid,
    )


def change(
    session: AsyncSession,
    settings: Settings,
    *,
    organisation: Organisation | None,
    resource: payloads.Resource,
    operation: payloads.Operation | payloads.ControlOperation,
    identifier: str | None,
    user: str | None,
    data: dict[str, Any],
    meeting_uuid: str | None = None,
) -> None:
    """Record a change for the audit trail: the spec 4.4 envelope in the outbox (published like
    every event) and a row of ``audit_record`` (read by meeting-admins of the organisation's
    tree), both inserted as the transaction commits. The stored row keeps no PINs or keys."""
    at = now_utc()
    code = organisation.code if organisation is not None else None
    envelope = payloads.audit_envelope(
        organisation_code=code,
        resource=resource,
        operation=operation,
        identifier=identifier,
        user=user,
        at=at,
        audit_data=data,
    )
    _enqueue(session, settings.nats_subject_audit, envelope, identifier[:64] if identifier else None)
    kept = {k: v for k, v in data.items() if k not in payloads.SECRET_KEYS}
    session.info.setdefault(_PENDING_AUDIT, []).append(
        {
            "at": at,
            "organisation_id": organisation.id if organisation is not None else None,
            "organisation_code": code,
            "resource": resource,
            "operation": operation,
            "identifier": identifier[:250] if identifier else None,
            "meeting_uuid": meeting_uuid,
            "actor": user[:250] if user else None,
            "data": json.dumps(kept, separators=(",", ":"), default=str),
        }
    )
