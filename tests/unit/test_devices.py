"""Devices of the point-to-point page (``vdx.booking.devices``): names as rules name them, secrets
made here and kept only as a salted hash that the right secret alone matches."""

from __future__ import annotations

import pytest

from vdx.booking.devices import MAX_SECRET, check_name, hash_secret, new_secret, verify_secret
from vdx.booking.routing import RoutingError


def test_a_secret_matches_its_own_hash_only() -> None:
    secret = new_secret()
    stored = hash_secret(secret)
    assert secret not in stored and stored.startswith("scrypt$")
    assert verify_secret(secret, stored)
    assert hash_secret(secret) != stored  # salted: the same secret hashes apart
    for wrong in ("", secret[:-1], secret + "x", secret.upper(), new_secret()):
        assert not verify_secret(wrong, stored)
    assert not verify_secret("x" * (MAX_SECRET + 1), hash_secret("x" * (MAX_SECRET + 1)))


@pytest.mark.parametrize("stored", ["", "plain", "md5$x$y", "scrypt$a$b$c$d$e", "scrypt$16384$8$1$!!$!!"])
def test_a_stored_value_not_made_here_matches_nothing(stored: str) -> None:
    assert not verify_secret("anything", stored)


def test_device_names_are_those_a_rule_can_name() -> None:
    assert check_name("reception-1.dk_a") == "reception-1.dk_a"
    for bad in ("", "front desk", "-lead", "x" * 101, "a/b", "browser:x"):
        with pytest.raises(RoutingError) as refused:
            check_name(bad)
        assert refused.value.field == "name"
