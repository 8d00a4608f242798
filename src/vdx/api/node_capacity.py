"""A node's admission limits at run time: ``{API_CONTEXT}/node/v1/capacity``.

``GET`` shows the capacity (set or measured), the clinical reserve, the units in use, who carries
media and the refused joins; ``PUT`` sets a capacity override (or goes back to the measured
figure) and the reserve. A change applies to the next joins only: nobody already in a room is cut
off. Who may call: a ``meeting-admin`` of the organisation that operates the nodes
(``VDX_NODE_ORGANISATION``, the organisation of the node's provisioner token) or of an ancestor of
it; every change is in the audit trail (resource ``node``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from vdx.access.callers import node_operator
from vdx.booking.errors import VdxError, validation_error
from vdx.node.capacity import NodeCapacity
from vdx.services import audit
from vdx.settings import Settings

router = APIRouter(prefix="/node/v1", tags=["Node capacity"], include_in_schema=False)


class LimitsRequest(BaseModel):
    capacity: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="HD units (absent: unchanged)"
    )
    measured: bool = Field(False, description="true: back to the start-up self-test's figure")
    clinicalReserve: float | None = Field(
        None, ge=0, le=1, allow_inf_nan=False, description="share kept for clinical joins (absent: unchanged)"
    )


def _capacity(request: Request) -> NodeCapacity:
    rooms = getattr(request.app.state, "rooms", None)
    if rooms is None:
        raise VdxError(404, "11", "This server hosts no conferences (VDX_NODE_ENABLED=false).")
    capacity: NodeCapacity = rooms.capacity
    return capacity


def limits(c: NodeCapacity) -> dict[str, Any]:
    return {
        "node": c.node,
        "capacity": c.capacity,
        "measured": c.measured,
        "measuredCapacity": c.measured_capacity,
        "clinicalReserve": c.reserve,
        "unitsInUse": c.units_in_use(),
        "participants": [
            {"kind": kind, "quality": quality, "count": n}
            for (kind, quality), n in sorted(c.participants().items())
        ],
        "refused": [
            {"reason": reason, "organisation": org, "clinical": clinical, "count": n}
            for (reason, org, clinical), n in sorted(c.refused_total.items())
        ],
    }


@router.get("/capacity")
async def show(request: Request) -> dict[str, Any]:
    capacity = _capacity(request)
    await node_operator(request)
    return limits(capacity)


@router.put("/capacity")
async def change(request: Request, body: LimitsRequest) -> dict[str, Any]:
    capacity = _capacity(request)
    op = await node_operator(request)
    if body.measured and body.capacity is not None:
        raise validation_error("give capacity or measured, not both")
    if not body.measured and body.capacity is None and body.clinicalReserve is None:
        raise validation_error("give capacity, measured or clinicalReserve")
    before = {
        "capacity": capacity.capacity,
        "measured": capacity.measured,
        "clinicalReserve": capacity.reserve,
    }
    reserve = capacity.reserve if body.clinicalReserve is None else body.clinicalReserve
    try:
        capacity.set_limits(capacity=body.capacity, reserve=reserve, measured=body.measured)
    except ValueError as exc:
        raise VdxError(409, "10", str(exc)) from None
    after = {
        "capacity": capacity.capacity,
        "measured": capacity.measured,
        "clinicalReserve": capacity.reserve,
    }
    settings: Settings = request.app.state.settings
    await audit.node_limits_changed(
        request.app.state.sessions,
        settings,
        node=capacity.node,
        organisation_code=settings.node_organisation,
        actor=op.caller.email,
        data={"before": before, "after": after},
    )
    return limits(capacity)
