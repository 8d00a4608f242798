"""Rooms placed on nodes by hand: a :class:`~vdx.node.routing.Locator` from a table, for tests of
what a node does with a route (redirect, 302, moving) without the cluster's placement."""

from __future__ import annotations

from vdx.node.routing import HERE, NodeInfo, Route, Where


class Placed:
    """alias -> route; any other room is here."""

    def __init__(self, routes: dict[str, Route] | None = None) -> None:
        self.routes = dict(routes or {})
        self.asked: list[str] = []

    def route(self, alias: str) -> Route:
        self.asked.append(alias)
        return self.routes.get(alias, HERE)

    def place(self, alias: str, node: NodeInfo) -> None:
        self.routes[alias] = Route(Where.ELSEWHERE, node)
