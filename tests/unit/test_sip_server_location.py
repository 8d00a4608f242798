"""Locating a dialled SIP server (RFC 3263): which lookups an address calls for, NAPTR choices,
RFC 2782's SRV order, and the locator asking a real DNS server on loopback for them."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.dns_server import dns_server
from vdx.settings import Settings
from vdx.sip import config_from_settings
from vdx.sip.locator import LocationFailed, ServerLocator
from vdx.sip.message import SipUri
from vdx.sip.server_location import ByDomain, Direct, Naptr, Srv, naptr_choices, order_srv, plan

srvs = st.builds(
    Srv,
    priority=st.integers(0, 3),
    weight=st.integers(0, 5),
    port=st.integers(1, 65535),
    target=st.sampled_from(["a.test.", "b.test.", "c.test.", "d.test.", "."]),
)


@given(st.lists(srvs, max_size=12), st.integers(0, 2**32))
def test_srv_order_keeps_priorities_and_takes_every_record_once(records: list[Srv], seed: int) -> None:
    ordered = order_srv(records, random.Random(seed))
    assert sorted(ordered, key=repr) == sorted({r for r in records if r.target != "."}, key=repr)
    assert [r.priority for r in ordered] == sorted(r.priority for r in ordered)


class Draws(random.Random):
    """Each weighted draw at one end of its range."""

    def __init__(self, highest: bool) -> None:
        super().__init__(0)
        self.highest = highest

    def randint(self, a: int, b: int) -> int:
        return b if self.highest else a


@given(st.lists(srvs, min_size=1, max_size=12))
def test_zero_weights_go_first_only_on_a_zero_draw(records: list[Srv]) -> None:
    """RFC 2782: weight-0 records head the running sum, so a draw of 0 picks them first and the
    largest draw never picks one while a weighted record of its priority is left."""
    for highest in (False, True):
        ordered = order_srv(records, Draws(highest))
        for priority in {r.priority for r in ordered}:
            group = [r.weight == 0 for r in ordered if r.priority == priority]
            zeros_first = sorted(group, reverse=True)
            assert group == (sorted(group) if highest else zeros_first)


def test_weights_share_the_first_place_as_rfc_2782_draws() -> None:
    """The draw is 0..sum inclusive and takes the first running sum >= it: weights 1 and 3 put
    the heavier first for 3 of the 5 draws (the RFC's own slight bias towards the earlier)."""
    rng = random.Random(7)
    records = [Srv(10, 1, 5060, "light.test."), Srv(10, 3, 5060, "heavy.test."), Srv(20, 90, 5060, "late.")]
    first = Counter(order_srv(records, rng)[0].target for _ in range(4000))
    assert set(first) == {"light.test.", "heavy.test."}
    assert 0.55 < first["heavy.test."] / 4000 < 0.65
    assert all(order_srv(records, rng)[-1].target == "late." for _ in range(50))


naptrs = st.builds(
    Naptr,
    order=st.integers(0, 3),
    preference=st.integers(0, 3),
    flags=st.sampled_from(["s", "S", "a", ""]),
    service=st.sampled_from(["SIP+D2U", "SIP+D2T", "SIPS+D2T", "SIP+D2S", "E2U+sip"]),
    replacement=st.sampled_from(["_sip._udp.x.test.", "_sip._tcp.x.test.", "_sips._tcp.x.test.", "."]),
)


@given(st.lists(naptrs, max_size=10), st.sampled_from([("TLS",), ("TLS", "TCP", "UDP"), ("UDP",)]))
def test_naptr_choices_are_the_allowed_srv_services_in_order(
    records: list[Naptr], allowed: tuple[str, ...]
) -> None:
    chosen = naptr_choices(records, allowed)
    assert len(chosen) == len(set(chosen))
    assert all(transport in allowed and not name.endswith(".") and name for transport, name in chosen)
    rank = {
        (t, r.replacement.rstrip(".")): (r.order, r.preference)
        for r in sorted(records, key=lambda r: (r.order, r.preference), reverse=True)
        for t in [{"SIP+D2U": "UDP", "SIP+D2T": "TCP", "SIPS+D2T": "TLS"}.get(r.service)]
        if t in allowed and r.flags.lower() == "s" and r.replacement != "."
    }
    assert set(chosen) == set(rank)
    assert [rank[c] for c in chosen] == sorted(rank[c] for c in chosen)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sip:a@192.0.2.1", Direct("UDP", "192.0.2.1", 5060)),
        ("sips:a@[2001:db8::1]", Direct("TLS", "2001:db8::1", 5061)),
        ("sip:a@Tolk.Example:5070;transport=tcp", Direct("TCP", "tolk.example", 5070)),
        ("sip:a@tolk.example", ByDomain("tolk.example", ("TLS", "TCP", "UDP"), True, "UDP")),
        ("sips:a@tolk.example", ByDomain("tolk.example", ("TLS",), True, "TLS")),
        ("sip:a@tolk.example;transport=tcp", ByDomain("tolk.example", ("TCP",), False, "TCP")),
        ("sips:a@tolk.example;transport=tls", ByDomain("tolk.example", ("TLS",), False, "TLS")),
    ],
)
def test_what_an_address_is_located_by(uri: str, expected: Direct | ByDomain) -> None:
    assert plan(SipUri.parse(uri)) == expected


RECORDS = {
    ("_sip._udp.municipality.test", "SRV"): [
        "20 0 5070 backup.municipality.test.",
        "10 0 5060 rs.municipality.test.",
    ],
    ("rs.municipality.test", "A"): ["127.0.0.2"],
    ("rs.municipality.test", "AAAA"): ["::2"],
    ("backup.municipality.test", "A"): ["127.0.0.3"],
    ("tolk.test", "NAPTR"): [
        '20 10 "s" "SIP+D2U" "" _sip._udp.tolk.test.',
        '10 10 "s" "SIPS+D2T" "" _sips._tcp.tolk.test.',
        '10 20 "s" "SIP+D2T" "" _sip._tcp.tolk.test.',
    ],
    ("_sips._tcp.tolk.test", "SRV"): ["0 0 5061 edge.tolk.test."],
    ("_sip._tcp.tolk.test", "SRV"): ["0 0 5060 edge.tolk.test."],
    ("_sip._udp.tolk.test", "SRV"): ["0 0 5060 edge.tolk.test."],
    ("edge.tolk.test", "A"): ["127.0.0.4"],
    ("plain.test", "A"): ["127.0.0.5"],
    ("closed.test", "SRV"): ["0 0 0 ."],
    ("_sip._udp.closed.test", "SRV"): ["0 0 0 ."],
}


async def test_the_locator_follows_naptr_srv_and_a_records() -> None:
    async with dns_server(RECORDS) as server:
        locator = ServerLocator([("127.0.0.1", server.port)])

        async def located(uri: str) -> list[str]:
            return [str(t) for t in await locator.locate(SipUri.parse(uri))]

        assert await located("sip:roomsystem@municipality.test") == [
            "rs.municipality.test 127.0.0.2:5060/UDP",
            "rs.municipality.test [::2]:5060/UDP",
            "backup.municipality.test 127.0.0.3:5070/UDP",
        ]
        assert await located("sip:interpreter@tolk.test") == [
            "edge.tolk.test 127.0.0.4:5061/TLS",
            "edge.tolk.test 127.0.0.4:5060/TCP",
            "edge.tolk.test 127.0.0.4:5060/UDP",
        ]
        assert await located("sips:interpreter@tolk.test") == ["edge.tolk.test 127.0.0.4:5061/TLS"]
        assert await located("sip:a@tolk.test;transport=udp") == ["edge.tolk.test 127.0.0.4:5060/UDP"]
        assert await located("sip:a@plain.test") == ["plain.test 127.0.0.5:5060/UDP"]
        assert await located("sip:a@plain.test:5999") == ["plain.test 127.0.0.5:5999/UDP"]
        assert await located("sip:a@192.0.2.9") == ["192.0.2.9:5060/UDP"]
        asked = len(server.asked)
        assert await located("sip:a@127.0.0.1:5070;transport=tcp") == ["127.0.0.1:5070/TCP"]
        assert len(server.asked) == asked  # an IP literal asks nothing
        for uri, why in [
            ("sip:a@nowhere.test", "nowhere.test: no such domain"),
            ("sip:a@closed.test", "closed.test: no SIP server and no address found"),
        ]:
            with pytest.raises(LocationFailed) as failed:
                await locator.locate(SipUri.parse(uri))
            assert failed.value.message == why and failed.value.domain == uri.split("@")[1]


async def test_an_unanswering_dns_server_fails_the_location_with_the_domain() -> None:
    locator = ServerLocator([("127.0.0.1", 9)], lifetime=0.5)  # discard: nothing answers
    with pytest.raises(LocationFailed) as failed:
        await locator.locate(SipUri.parse("sip:a@tolk.example"))
    assert "tolk.example" in failed.value.message


def test_dns_servers_setting() -> None:
    settings = Settings(dns_servers="127.0.0.1:5353, 192.0.2.53,[::1]:54")
    assert settings.dns_server_addresses == [("127.0.0.1", 5353), ("192.0.2.53", 53), ("::1", 54)]
    assert config_from_settings(settings.model_copy(update={"sip_tls_port": 0})).dns_servers == (
        ("127.0.0.1", 5353),
        ("192.0.2.53", 53),
        ("::1", 54),
    )
    assert Settings().dns_server_addresses == []
    for bad in ("dns.example", "127.0.0.1:0", "127.0.0.1:x"):
        with pytest.raises(ValueError, match="dns_servers"):
            Settings(dns_servers=bad)
