"""The gateway routing rules and outbound trunks a node routes calls by, as last read from the
API (``GET {context}/node/v1/routing`` with the node's provisioner token, by a
``vdx.node.refresher.Refresher``: every ``VDX_NODE_ROUTING_REFRESH`` seconds and at once when a
rule or trunk changes). What makes a rule match is ``vdx.booking.routing``."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from vdx.booking.routing import (
    Decision,
    RoutingError,
    Rule,
    Trunk,
    check_rule,
    check_trunk,
    decide,
    rule_from_json,
    trunk_from_json,
)

log = logging.getLogger("vdx.node.call_routing")


class CallRouting:
    def __init__(self, rules: Iterable[Rule] = (), trunks: Iterable[Trunk] = ()) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.trunks: dict[str, Trunk] = {t.name: t for t in trunks}
        self.loaded = False  # a read has succeeded at least once

    def replace(self, rules: Iterable[Rule], trunks: Iterable[Trunk]) -> None:
        new_rules, new_trunks = tuple(rules), {t.name: t for t in trunks}
        if self.loaded and (new_rules, new_trunks) != (self.rules, self.trunks):
            log.info("routing now %d rules, %d trunks", len(new_rules), len(new_trunks))
        self.rules, self.trunks, self.loaded = new_rules, new_trunks, True

    def trunk(self, name: str) -> Trunk | None:
        return self.trunks.get(name)

    def decide(self, alias: str, source_domain: str | None, source_ip: str | None) -> Decision:
        return decide(self.rules, alias, source_domain, source_ip)

    def apply(self, body: Mapping[str, Any]) -> None:
        """Take the API's answer; a rule or trunk the node cannot use (a newer API's) is left out."""
        rules, trunks = [], []
        for r in body.get("rules") or []:
            try:
                rules.append(check_rule(rule_from_json(r)))
            except (RoutingError, KeyError, TypeError, ValueError) as exc:
                log.warning("routing rule %r left out: %s", r.get("name") if isinstance(r, dict) else r, exc)
        for t in body.get("trunks") or []:
            try:
                trunks.append(check_trunk(trunk_from_json(t)))
            except (RoutingError, KeyError, TypeError, ValueError) as exc:
                log.warning("trunk %r left out: %s", t.get("name") if isinstance(t, dict) else t, exc)
        self.replace(rules, trunks)
