"""What conferencing nodes read from and report to the API (vdx extensions, not in the reference):
which organisations are clinical (``GET /v2/clinical-organisations``) and the nodes' per-minute
counters (``POST /v2/node-minutes``). Both take the node's provisioner token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.access.callers import Caller, require
from vdx.access.sessions import get_read_session, get_session
from vdx.booking import commands
from vdx.booking.roles import ADMIN, PROVISIONER, PROVISIONER_USER
from vdx.services import node_minutes

router = APIRouter(tags=["Nodes (vdx extension)"])

Name = Annotated[str, Field(min_length=1, max_length=40)]
Count = Annotated[int, Field(ge=0, le=1_000_000)]
Units = Annotated[float, Field(ge=0, le=1_000_000)]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ParticipantsIn(_In):
    kind: Name
    quality: Name
    count: Count


class OrganisationIn(_In):
    organisation: Annotated[str, Field(min_length=1, max_length=250)]
    clinical: bool
    participants: Count


class RefusedIn(_In):
    reason: Name
    organisation: Annotated[str, Field(min_length=1, max_length=250)]
    clinical: bool
    count: Count


class MinuteIn(_In):
    minute: commands.InTimestamp
    capacity: Units
    unitsInUse: Units
    reserve: Annotated[float, Field(ge=0, le=1)] = 0.0
    participants: Annotated[list[ParticipantsIn], Field(max_length=100)] = []
    organisations: Annotated[list[OrganisationIn], Field(max_length=10_000)] = []
    refused: Annotated[list[RefusedIn], Field(max_length=10_000)] = []

    def as_minute(self) -> node_minutes.Minute:
        """Rows naming the same key twice are added up."""
        parts: dict[tuple[str, str], int] = {}
        orgs: dict[tuple[str, bool], int] = {}
        refused: dict[tuple[str, str, bool], int] = {}
        for p in self.participants:
            parts[p.kind, p.quality] = parts.get((p.kind, p.quality), 0) + p.count
        for o in self.organisations:
            orgs[o.organisation, o.clinical] = orgs.get((o.organisation, o.clinical), 0) + o.participants
        for r in self.refused:
            key = (r.reason, r.organisation, r.clinical)
            refused[key] = refused.get(key, 0) + r.count
        return node_minutes.Minute(
            minute=self.minute.replace(second=0, microsecond=0),
            capacity=self.capacity,
            units_in_use=self.unitsInUse,
            reserve=self.reserve,
            participants=parts,
            organisations=orgs,
            refused=refused,
        )


class NodeMinutesIn(_In):
    node: Annotated[str, Field(min_length=1, max_length=100)]
    minutes: Annotated[list[MinuteIn], Field(min_length=1, max_length=1440)]


class ClinicalOrganisations(BaseModel):
    clinical: list[str]


# Nodes poll it: a read session, which on SQLite never waits for the write lock.
NodeReader = Depends(require(PROVISIONER_USER, PROVISIONER, ADMIN, reading=True))


@router.get(
    "/clinical-organisations",
    response_model=ClinicalOrganisations,
    summary="Codes of the clinical organisations (vdx extension)",
    description=(
        "Not part of the reference API. The codes of every organisation marked clinical; a node "
        "reads them to decide whether a join is clinical (a meeting's `clinical`/`non-clinical` "
        "label overrides its organisation). For provisioner tokens and meeting-admins."
    ),
)
async def clinical_organisations(
    caller: Caller = NodeReader, session: AsyncSession = Depends(get_read_session)
) -> ClinicalOrganisations:
    return ClinicalOrganisations(clinical=await node_minutes.clinical_codes(session))


@router.post(
    "/node-minutes",
    status_code=204,
    response_class=Response,
    summary="Store a node's per-minute counters (vdx extension)",
    description=(
        "Not part of the reference API. A conferencing node's minutes: HD units in use (the most "
        "during the minute), capacity, reserve, participants by kind and quality and per "
        "organisation, joins refused by reason and organisation. A minute sent again replaces "
        "the stored one. For the node's provisioner token."
    ),
)
async def post_node_minutes(
    body: NodeMinutesIn,
    caller: Caller = Depends(require(PROVISIONER_USER, PROVISIONER)),
    session: AsyncSession = Depends(get_session),
) -> Response:
    async with session.begin():
        await node_minutes.store(session, body.node, [m.as_minute() for m in body.minutes])
    return Response(status_code=204)
