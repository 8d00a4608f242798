"""Gateway routing rules and outbound trunks, stored and audited (``vdx.booking.routing`` holds
what makes them valid). They belong to the organisation that operates the nodes
(``VDX_NODE_ORGANISATION``): its admins change them, each change is in its audit trail, and the
nodes read them with their provisioner token."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vdx.booking.routing import RoutingError, Rule, Trunk, check_rule, check_trunk, in_order
from vdx.events import record
from vdx.events.payloads import Operation, Resource
from vdx.services import organisations
from vdx.services.audit import columns_data
from vdx.settings import Settings
from vdx.store.db import now_utc
from vdx.store.models import RoutingRule as RuleRow
from vdx.store.models import Trunk as TrunkRow


class NotFound(LookupError):
    pass


def _split(text: str) -> tuple[str, ...]:
    return tuple(x for x in text.split(",") if x)


def rule_of(row: RuleRow) -> Rule:
    return Rule(
        name=row.name,
        match=row.match,
        replace=row.replace,
        priority=row.priority,
        target=row.target,
        trunk=row.trunk,
        source_domains=_split(row.source_domains),
        source_networks=_split(row.source_networks),
        enabled=row.enabled,
    )


def trunk_of(row: TrunkRow) -> Trunk:
    return Trunk(
        name=row.name,
        proxy=row.proxy,
        transport=row.transport,
        username=row.username,
        password=row.password,
        from_domain=row.from_domain,
        max_calls=row.max_calls,
    )


async def rules(s: AsyncSession) -> list[Rule]:
    return in_order(rule_of(r) for r in (await s.scalars(select(RuleRow))).all())


async def trunks(s: AsyncSession) -> list[Trunk]:
    return [trunk_of(t) for t in (await s.scalars(select(TrunkRow).order_by(TrunkRow.name))).all()]


async def put_rule(s: AsyncSession, settings: Settings, rule: Rule, actor: str | None) -> tuple[Rule, bool]:
    """Create or replace the rule of that name; returns it as stored and whether it is new. A
    rule naming a trunk that does not exist is refused (``RoutingError`` on ``trunk``)."""
    rule = check_rule(rule)
    if rule.trunk is not None and await s.get(TrunkRow, rule.trunk) is None:
        raise RoutingError("trunk", f"no trunk named {rule.trunk!r} (vdx trunk list)")
    row = await s.get(RuleRow, rule.name)
    created = row is None
    if row is None:
        row = RuleRow(name=rule.name)
        s.add(row)
    row.priority, row.match, row.replace, row.target = rule.priority, rule.match, rule.replace, rule.target
    row.trunk, row.enabled = rule.trunk, rule.enabled
    row.source_domains = ",".join(rule.source_domains)
    row.source_networks = ",".join(rule.source_networks)
    row.updated_time = now_utc()
    await s.flush()
    await audit_node_change(
        s, settings, "routingRule", "create" if created else "update", rule.name, actor, columns_data(row)
    )
    return rule, created


async def remove_rule(s: AsyncSession, settings: Settings, name: str, actor: str | None) -> None:
    row = await s.get(RuleRow, name)
    if row is None:
        raise NotFound(f"no routing rule named {name!r}")
    data = columns_data(row)
    await s.delete(row)
    await audit_node_change(s, settings, "routingRule", "delete", name, actor, data)


async def put_trunk(
    s: AsyncSession, settings: Settings, trunk: Trunk, actor: str | None
) -> tuple[Trunk, bool]:
    trunk = check_trunk(trunk)
    row = await s.get(TrunkRow, trunk.name)
    created = row is None
    if row is None:
        row = TrunkRow(name=trunk.name)
        s.add(row)
    row.proxy, row.transport, row.from_domain, row.max_calls = (
        trunk.proxy,
        trunk.transport,
        trunk.from_domain,
        trunk.max_calls,
    )
    row.username, row.password = trunk.username, trunk.password
    row.updated_time = now_utc()
    await s.flush()
    await audit_node_change(
        s, settings, "trunk", "create" if created else "update", trunk.name, actor, columns_data(row)
    )
    return trunk, created


async def remove_trunk(s: AsyncSession, settings: Settings, name: str, actor: str | None) -> None:
    """Remove a trunk no rule routes through (``RoutingError`` names the rules that do)."""
    row = await s.get(TrunkRow, name)
    if row is None:
        raise NotFound(f"no trunk named {name!r}")
    users = (await s.scalars(select(RuleRow.name).where(RuleRow.trunk == name))).all()
    if users:
        raise RoutingError("trunk", f"routing rules use it: {', '.join(sorted(users))}")
    data = columns_data(row)
    await s.delete(row)
    await audit_node_change(s, settings, "trunk", "delete", name, actor, data)


async def audit_node_change(
    s: AsyncSession,
    settings: Settings,
    resource: Resource,
    operation: Operation,
    name: str,
    actor: str | None,
    data: dict[str, Any],
) -> None:
    """In the change's transaction, as a record of the organisation that operates the nodes."""
    record.change(
        s,
        settings,
        organisation=await organisations.by_code(s, settings.node_organisation),
        resource=resource,
        operation=operation,
        identifier=name,
        user=actor,
        data=data,
    )
