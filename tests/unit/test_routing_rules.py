"""Gateway routing rules (``vdx.booking.routing``): what makes a rule or trunk valid, and which
rule a call takes: in priority order, matched whole, only from the sources a rule admits."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from vdx.booking.routing import (
    RoutingError,
    Rule,
    Trunk,
    browser_name,
    check_rule,
    check_trunk,
    decide,
    parse_sip_uri,
)
from vdx.sip.uac import parse_destination


def rule(
    name: str = "r", match: str = r"(\d{4})@gw\.test", replace: str = r"sip:\1@pbx.test", **kw: object
) -> Rule:
    return check_rule(Rule(name, match, replace, **kw))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"match": "(unclosed"}, "match"),
        ({"replace": r"sip:\2@x"}, "replace"),
        ({"replace": r"sip:\g<who>@x"}, "replace"),
        ({"replace": "pbx.test"}, "replace"),
        ({"replace": "sip:trailing\\"}, "replace"),
        ({"name": "no spaces"}, "name"),
        ({"name": ""}, "name"),
        ({"priority": -1}, "priority"),
        ({"priority": 1001}, "priority"),
        ({"target": "fax"}, "target"),
        ({"source_networks": ("10.0.0.0/33",)}, "sourceNetworks"),
        ({"source_domains": ("not a domain",)}, "sourceDomains"),
        ({"trunk": "bad trunk"}, "trunk"),
        ({"target": "browser", "replace": r"desk-\1", "trunk": "t"}, "trunk"),
        ({"replace": "browser:"}, "replace"),
        ({"replace": "browser:front desk"}, "replace"),
        ({"replace": "browser:-desk"}, "replace"),
        ({"replace": r"browser:desk/\1"}, "replace"),
        ({"replace": r"browser:desk-\2"}, "replace"),
        ({"target": "browser", "replace": "sip:desk@x"}, "replace"),
    ],
)
def test_a_rule_that_cannot_be_used_names_its_field(fields: dict[str, object], where: str) -> None:
    with pytest.raises(RoutingError) as refused:
        rule(**fields)  # type: ignore[arg-type]
    assert refused.value.field == where


def test_rules_are_tried_in_priority_order_and_match_whole() -> None:
    rules = [
        rule("late", r".*@gw\.test", "sip:operator@pbx.test", priority=50),
        rule("early", r"(\d{4})@gw\.test", r"sip:\1@pbx.test", priority=10),
        rule("off", r".*", "sip:never@pbx.test", priority=0, enabled=False),
    ]
    chosen = decide(rules, "1234@gw.test", None, None)
    assert chosen.route is not None and chosen.route.rule.name == "early"
    assert chosen.route.destination == "sip:1234@pbx.test"
    assert decide(rules, "12345@gw.test", None, None).route.rule.name == "late"  # type: ignore[union-attr]
    assert decide(rules, "1234@gw.test.evil", None, None).route is None  # not a whole match


def test_a_rule_for_some_sources_refuses_the_others() -> None:
    rules = [
        rule("partners", source_domains=("Region.DK",), source_networks=("10.1.0.0/16",)),
    ]
    assert decide(rules, "1234@gw.test", "region.dk", "192.0.2.1").route is not None
    assert decide(rules, "1234@gw.test", "other.dk", "10.1.2.3").route is not None
    refused = decide(rules, "1234@gw.test", "other.dk", "192.0.2.1")
    assert refused.route is None and refused.refused
    nothing = decide(rules, "room@elsewhere", "region.dk", "10.1.2.3")
    assert nothing.route is None and not nothing.refused


def test_a_browser_destination_is_written_browser_colon_name() -> None:
    """``browser:NAME`` says the target, and target ``browser`` with a bare name is written so."""
    written = rule(replace=r"browser:desk-\1")
    assert (written.target, written.replace) == ("browser", r"browser:desk-\1")
    bare = rule(replace="reception", target="browser")
    assert (bare.target, bare.replace) == ("browser", "browser:reception")
    chosen = decide([written], "1234@gw.test", None, None).route
    assert chosen is not None and browser_name(chosen.destination) == "desk-1234"
    assert browser_name("sip:desk@pbx.test") is None
    # a name the match made that no device can have: no browser (the call finds nobody waiting)
    odd = rule(match=r"(.+)@gw\.test", replace=r"browser:\1")
    route = decide([odd], "a b@gw.test", None, None).route
    assert route is not None and browser_name(route.destination) is None


def test_trunks_are_checked() -> None:
    assert check_trunk(Trunk("pbx", "pbx.test:5061", "tls", "vdx", "secret")).proxy == "pbx.test:5061"
    for bad, where in (
        (Trunk("pbx", "pbx.test:99999"), "proxy"),
        (Trunk("pbx", "not a host"), "proxy"),
        (Trunk("pbx", "pbx.test", "sctp"), "transport"),
        (Trunk("pbx", "pbx.test", username="vdx"), "password"),
        (Trunk("pbx", "pbx.test", max_calls=-1), "maxCalls"),
    ):
        with pytest.raises(RoutingError) as refused:
            check_trunk(bad)
        assert refused.value.field == where


def test_sip_uris() -> None:
    assert parse_sip_uri("sip:alice@pbx.test:5070;transport=tcp")["transport"] == "tcp"
    assert parse_sip_uri("sips:pbx.test")["host"] == "pbx.test"
    for bad in (
        "alice@pbx.test",
        "sip:",
        "sip:a@b:70000",
        "http://x",
        "sip:a@b;transport=sctp",
        "sips:a@b;transport=udp",
    ):
        with pytest.raises(RoutingError):
            parse_sip_uri(bad)


@given(
    st.from_regex(
        r"sips?:([a-z0-9.!~*'()&=+$,;?/%-]{1,8}@)?([a-z0-9.-]{1,12}|\[[0-9a-f:.]{2,12}\])(:[0-9]{1,5})?"
        r"(;transport=(udp|tcp|tls|UDP|TLS))?",
        fullmatch=True,
    )
)
def test_a_uri_the_booking_rules_take_is_one_the_node_dials(uri: str) -> None:
    """What a meeting's auto-dial list or a trunk accepts at booking must not fail only when dialled."""
    try:
        parse_sip_uri(uri)
    except RoutingError:
        return
    parse_destination(uri)  # BadDestination here is a disagreement between the two checks


@given(st.text(max_size=30), st.text(max_size=30), st.text(max_size=40))
@example("", "\\", "")
@example("(a)?", "\\g<0>x\\9", "")
def test_any_rule_text_is_refused_or_routes_without_crashing(match: str, replace: str, alias: str) -> None:
    try:
        checked = check_rule(Rule("fuzz", match, "sip:" + replace))
    except RoutingError:
        return
    try:
        decide([checked], alias, "x.test", "127.0.0.1")
    except (re.error, IndexError) as exc:  # the replacement was checked: never
        raise AssertionError(f"{match!r} {replace!r} {alias!r}: {exc}") from exc
