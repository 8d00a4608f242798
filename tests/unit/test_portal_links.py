"""The portal link builder (spec 2.7): placeholders, query-drop rules, path and fragment."""

from __future__ import annotations

from datetime import UTC, datetime

from vdx.booking.portal_links import PortalValues, build_portal_link, placeholder_values

START = datetime(2019, 10, 10, 9, 0, 0, tzinfo=UTC)
ALL = (
    "http://citizen/?pin=__pin__&conference=__uri-with-domain__&microphone=__microphone__"
    "&start_dato=__start-date__&domain=__uri-domain__&redirectTo=__return-url__&callType=__call-type__&join=1"
    "#pin=__pin__&conference=__uri-with-domain__&microphone=__microphone__&start_dato=__start-date__"
    "&domain=__uri-domain__&redirectTo=__return-url__&callType=__call-type__&join=1"
)
FULL = PortalValues(
    start_time=START,
    uri_with_domain="asdf",
    uri_domain="fdsa",
    guest_pin=1234,
    host_pin=4321,
    return_url="qwer",
    guest_microphone="off",
    call_type="zxcv",
)


def test_all_values_present():
    # spec 2.7: every placeholder resolved in query and fragment
    assert build_portal_link(ALL, FULL) == (
        "http://citizen/?pin=1234&conference=asdf&microphone=off&start_dato=2019-10-10T09:00:00"
        "&domain=fdsa&redirectTo=qwer&callType=zxcv&join=1"
        "#pin=1234&conference=asdf&microphone=off&start_dato=2019-10-10T09:00:00"
        "&domain=fdsa&redirectTo=qwer&callType=zxcv&join=1"
    )


def test_no_values_present_drops_absent_query_parameters_only():
    # spec 2.7: absent -> query parameter dropped, fragment gets ""; pin is "" (never absent)
    assert build_portal_link(ALL, PortalValues(start_time=START)) == (
        "http://citizen/?pin=&start_dato=2019-10-10T09:00:00&join=1"
        "#pin=&conference=&microphone=&start_dato=2019-10-10T09:00:00&domain=&redirectTo=&callType=&join=1"
    )


def test_microphone_off():
    t = "http://citizen/?microphone=__microphone__#microphone=__microphone__"
    assert (
        build_portal_link(t, PortalValues(start_time=START, guest_microphone="off"))
        == "http://citizen/?microphone=off#microphone=off"
    )


def test_microphone_on_is_absent_and_empty_query_disappears():
    t = "http://citizen/?microphone=__microphone__#microphone=__microphone__"
    assert (
        build_portal_link(t, PortalValues(start_time=START, guest_microphone="on"))
        == "http://citizen/#microphone="
    )


def test_microphone_muted():
    t = "http://citizen/?microphone=__microphone__#microphone=__microphone__"
    assert (
        build_portal_link(t, PortalValues(start_time=START, guest_microphone="muted"))
        == "http://citizen/?microphone=muted#microphone=muted"
    )


def test_microphone_not_set():
    t = "http://citizen/?microphone=__microphone__#microphone=__microphone__"
    assert build_portal_link(t, PortalValues(start_time=START)) == "http://citizen/#microphone="


def test_guest_pin_wins_over_host_pin():
    t = "http://citizen/?pin=__pin__#pin=__pin__"
    v = PortalValues(start_time=START, guest_pin=1234, host_pin=4321)
    assert build_portal_link(t, v) == "http://citizen/?pin=1234#pin=1234"


def test_host_pin_when_no_guest_pin():
    t = "http://citizen/?pin=__pin__#pin=__pin__"
    v = PortalValues(start_time=START, host_pin=4321)
    assert build_portal_link(t, v) == "http://citizen/?pin=4321#pin=4321"


def test_no_pin_is_empty_not_dropped():
    t = "http://citizen/?pin=__pin__#pin=__pin__"
    assert build_portal_link(t, PortalValues(start_time=START)) == "http://citizen/?pin=#pin="


def test_no_trailing_slash_and_constants_verbatim():
    assert build_portal_link("http://citizen?join=1#join=1", PortalValues(start_time=START)) == (
        "http://citizen?join=1#join=1"
    )


def test_embedded_placeholder_in_query_value_is_not_substituted():
    # spec 2.7: only a value that is exactly a placeholder is resolved
    t = "https://p/?c=x__pin__&pin=__pin__"
    v = PortalValues(start_time=START, guest_pin=55)
    assert build_portal_link(t, v) == "https://p/?c=x__pin__&pin=55"


def test_placeholders_in_path_replaced_textually():
    t = "https://p/room/__uri-with-domain__/__call-type__/?x=1"
    assert (
        build_portal_link(t, PortalValues(start_time=START, uri_with_domain="7@d"))
        == "https://p/room/7@d//?x=1"
    )


def test_start_date_is_utc_wall_clock_without_offset():
    from datetime import timedelta, timezone

    start = datetime(3025, 11, 2, 15, 0, tzinfo=timezone(timedelta(hours=2)))
    assert placeholder_values(PortalValues(start_time=start))["__start-date__"] == "3025-11-02T13:00:00"


def test_query_value_cannot_break_the_query():
    t = "https://p/?r=__return-url__&join=1"
    v = PortalValues(start_time=START, return_url="https://back.example/x?a=1&b=2#top")
    assert build_portal_link(t, v) == "https://p/?r=https://back.example/x?a=1%26b=2%23top&join=1"


def test_reference_default_template():
    # the IT template of the reference (spec 2.7)
    t = "https://portal.vconf.dk/?conference=__uri-with-domain__&pin=__pin__&start_dato=__start-date__&muteMicrophone=__microphone__&join=1"
    v = PortalValues(start_time=START, uri_with_domain="1234@vdx.test", guest_pin=9876, guest_microphone="on")
    assert build_portal_link(t, v) == (
        "https://portal.vconf.dk/?conference=1234@vdx.test&pin=9876&start_dato=2019-10-10T09:00:00&join=1"
    )
