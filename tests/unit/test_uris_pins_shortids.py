"""URIs (spec 2.4), PINs (spec 2.5) and short ids (spec 2.6): the pure rules."""

from __future__ import annotations

import hashlib
import random
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vdx.booking import pins, shortids, uris
from vdx.booking.errors import VdxError


@given(st.integers(-(10**12), 10**12), st.integers(1, 10**6))
def test_uri_number_in_half_open_range(low, width):
    # spec 2.4: [low, high), high exclusive
    n = uris.draw_number(low, low + width)
    assert low <= n < low + width


def test_uri_number_range_of_one_gives_low():
    assert {uris.draw_number(5, 6) for _ in range(20)} == {5}


@pytest.mark.parametrize(("low", "high"), [(10, 10), (201, 100)])
def test_uri_bad_range_is_406_14(low, high):
    # spec 2.4 / 1.0.1 code 14
    with pytest.raises(VdxError) as e:
        uris.draw_number(low, high)
    assert e.value.code == "14"


def test_uri_with_domain_applies_prefix():
    # spec 2.4: uriPrefix + number + "@" + uriDomain
    assert uris.uri_with_domain("99", 12345, "vdx.test") == "9912345@vdx.test"
    assert uris.uri_with_domain(None, 12345, "vdx.test") == "12345@vdx.test"


def test_custom_uri_has_no_prefix():
    # spec 2.4: custom address -> custom + "@" + domain (prefix not applied)
    assert uris.custom_uri_with_domain("myRoom1", "vdx.test") == "myRoom1@vdx.test"


@pytest.mark.parametrize("bad", ["", "with space", "æøå", "a-b", "x@y", "a.b"])
def test_custom_uri_regex_400_33(bad):
    # spec 2.4 / code 33: [a-zA-Z0-9]+, empty fails too
    with pytest.raises(VdxError) as e:
        uris.validate_custom_uri(bad)
    assert e.value.code == "33"


@given(st.from_regex(r"[a-zA-Z0-9]{1,40}", fullmatch=True))
def test_custom_uri_regex_accepts(good):
    assert uris.validate_custom_uri(good) == good


@given(st.integers(0, 10**9), st.integers(1, 10**6))
def test_pins_in_half_open_range(low, width):
    # spec 2.5: random in [low, high)
    assert low <= pins.host_pin(True, low, low + width) < low + width
    assert low <= pins.guest_pin(True, low, low + width) < low + width


def test_pin_not_required_is_none_even_without_range():
    assert pins.host_pin(False, None, None) is None
    assert pins.guest_pin(None, 5, 1) is None


@pytest.mark.parametrize(("low", "high"), [(None, 10), (10, None), (None, None), (10, 10), (20, 10)])
def test_pin_required_but_unusable_range(low, high):
    # spec 2.5: guest 406/16, host 406/17
    with pytest.raises(VdxError) as e:
        pins.guest_pin(True, low, high)
    assert e.value.code == "16"
    with pytest.raises(VdxError) as e:
        pins.host_pin(True, low, high)
    assert e.value.code == "17"


def test_pin_uses_given_rng():
    assert pins.host_pin(True, 1000, 10000, random.Random(1)) == pins.host_pin(
        True, 1000, 10000, random.Random(1)
    )


def test_short_id_is_sha256_of_fresh_uuid_string():
    # spec 2.6: first 12 lowercase hex of SHA-256 of a random UUID string
    fixed = uuid.UUID("3f2504e0-4f89-11d3-9a0c-0305e82c3301")
    assert shortids.new_short_id(fixed) == hashlib.sha256(str(fixed).encode()).hexdigest()[:12]
    ids = {shortids.new_short_id() for _ in range(200)}
    assert len(ids) == 200 and all(shortids.is_short_id(i) for i in ids)
    assert not shortids.is_short_id("ABCDEF123456") and not shortids.is_short_id("abc")
