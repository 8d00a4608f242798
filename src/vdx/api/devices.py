"""Devices of the point-to-point page: ``{API_CONTEXT}/node/v1/devices`` for the admins of the
organisation that operates the nodes (``node_operator``, as routing rules), and
``/node/v1/device-sign-in`` for the nodes (their provisioner token), which check a waiting
browser's name and secret there rather than in the database. A secret is in the answer that made
the device, and nowhere after; every change is audited (resource ``device``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.access.callers import node_caller, node_operator
from vdx.access.http_errors import BasicError
from vdx.access.sessions import get_read_session, get_session
from vdx.api.routing import admin_actor, admin_remove, admin_write
from vdx.booking.devices import device_json
from vdx.booking.errors import VdxError, validation_error
from vdx.booking.routing import RoutingError
from vdx.services import devices

# Not in the VDX API's OpenAPI document, like the routing rules (README documents these).
router = APIRouter(prefix="/node/v1", tags=["Devices"], include_in_schema=False)


class DeviceBody(BaseModel):
    name: str = Field(description="the name a rule's browser:NAME destination names")


class SignInBody(BaseModel):
    name: str
    secret: str


@router.get("/devices")
async def list_devices(
    request: Request, session: AsyncSession = Depends(get_read_session)
) -> list[dict[str, Any]]:
    """The devices, for their admins and for the nodes (which let go of a page whose device is
    gone or made anew)."""
    try:
        await node_operator(request)
    except BasicError as refused:
        if refused.status == 401:
            raise
        await node_caller(request)
    return [device_json(d) for d in await devices.devices(session)]


@router.post("/devices", status_code=201)
async def add_device(
    request: Request, body: DeviceBody, session: AsyncSession = Depends(get_session)
) -> dict[str, Any]:
    """A new device; its ``secret`` is in this answer only (409 when the name is taken)."""
    await node_operator(request)
    try:
        device, secret = await admin_write(
            session,
            lambda: devices.add(session, request.app.state.settings, body.name, admin_actor(request)),
        )
    except RoutingError as exc:
        raise validation_error(f"{exc.field}: {exc.message}") from None
    except devices.DeviceExists as exc:
        raise VdxError(409, "10", str(exc)) from None
    return {**device_json(device), "secret": secret}


@router.delete("/devices/{name}", status_code=204)
async def delete_device(request: Request, name: str, session: AsyncSession = Depends(get_session)) -> None:
    await admin_remove(request, session, name, devices.remove, "device", devices.NotFound)


@router.post("/device-sign-in")
async def sign_in(
    request: Request, body: SignInBody, response: Response, session: AsyncSession = Depends(get_read_session)
) -> dict[str, Any]:
    """Whether a waiting browser's name and secret are a device's: ``{"name", "valid",
    "createdTime"}`` (which making of the device it is), for the nodes' own token only (the node
    throttles wrong tries per name and address)."""
    await node_caller(request)
    response.headers["Cache-Control"] = "no-store"
    device = await devices.signs_in(session, body.name, body.secret)
    if device is None:
        return {"name": body.name, "valid": False, "createdTime": None}
    return {**device_json(device), "valid": True}
