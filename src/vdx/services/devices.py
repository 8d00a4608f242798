"""Devices of the point-to-point page, stored and audited like routing rules (the organisation that
operates the nodes owns them; ``vdx.booking.devices`` holds what makes them valid). The database
keeps a salted hash of each secret only: the secret is returned once, when the device is made."""

from __future__ import annotations

from functools import cache

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.booking.devices import Device, check_name, hash_secret, new_secret, verify_secret
from vdx.services.routing import NotFound, audit_node_change
from vdx.settings import Settings
from vdx.store.db import now_utc
from vdx.store.models import Device as DeviceRow

__all__ = ["DeviceExists", "NotFound", "add", "devices", "remove", "signs_in"]


class DeviceExists(LookupError):
    pass


async def devices(s: AsyncSession) -> list[Device]:
    rows = (await s.scalars(select(DeviceRow).order_by(DeviceRow.name))).all()
    return [Device(r.name, r.created_time) for r in rows]


async def add(s: AsyncSession, settings: Settings, name: str, actor: str | None) -> tuple[Device, str]:
    """A new device and its secret (``DeviceExists`` when the name is taken: remove it first, so a
    secret is never replaced by mistake)."""
    check_name(name)
    if await s.get(DeviceRow, name) is not None:
        raise DeviceExists(f"a device named {name!r} exists (vdx device remove {name}, then add it again)")
    secret = new_secret()
    row = DeviceRow(name=name, secret_hash=hash_secret(secret), created_time=now_utc())
    s.add(row)
    await s.flush()
    await audit_node_change(s, settings, "device", "create", name, actor, {"name": name})
    return Device(name, row.created_time), secret


async def remove(s: AsyncSession, settings: Settings, name: str, actor: str | None) -> None:
    row = await s.get(DeviceRow, name)
    if row is None:
        raise NotFound(f"no device named {name!r}")
    await s.delete(row)
    await audit_node_change(s, settings, "device", "delete", name, actor, {"name": name})


async def signs_in(s: AsyncSession, name: str, secret: str) -> Device | None:
    """The device ``name`` if ``secret`` is its own (an unknown name is not told apart)."""
    row = await s.get(DeviceRow, name)
    # an unknown name costs a hash check too, so the time taken does not tell which names exist
    if verify_secret(secret, row.secret_hash if row is not None else _nobody()) and row is not None:
        return Device(row.name, row.created_time)
    return None


@cache
def _nobody() -> str:
    return hash_secret(new_secret())
