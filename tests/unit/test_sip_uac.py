"""The dial-out's pure parts (issue 19): which addresses may be dialled, how an attempt ended, where a
3xx points, and the digest answer to a challenge (RFC 2617 §3.5's worked example)."""

from __future__ import annotations

import pytest

from vdx.sip.message import SipRequest, make_response
from vdx.sip.uac import (
    BadDestination,
    Credentials,
    DialState,
    answer_challenge,
    digest_authorization,
    outcome_of,
    parse_destination,
    port_of,
    redirect_target,
    transport_of,
    wants_encryption,
)


@pytest.mark.parametrize(
    ("text", "transport", "port", "secure"),
    [
        ("sip:alice@192.0.2.1", "UDP", 5060, False),
        ("sip:alice@192.0.2.1:5070;transport=tcp", "TCP", 5070, False),
        ("sip:alice@room.example.org;transport=TLS", "TLS", 5061, True),
        ("sips:alice@room.example.org", "TLS", 5061, True),
        ("sip:[2001:db8::1]:5080", "UDP", 5080, False),
    ],
)
def test_destinations_that_may_be_dialled(text: str, transport: str, port: int, secure: bool) -> None:
    uri = parse_destination(text)
    assert (transport_of(uri), port_of(uri), wants_encryption(uri)) == (transport, port, secure)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "alice@192.0.2.1",
        "tel:+4512345678",
        "http://example.org/",
        "sip:",
        "sip:alice@",
        "sip:alice@host:0",
        "sip:alice@host:65536",
        "sip:alice@host;transport=sctp",
        "sips:alice@host;transport=tcp",
        "sip:alice@host\r\nVia: x",
        "<sip:alice@host>",
        "sip:" + "a" * 600 + "@host",
    ],
)
def test_destinations_refused_before_dialling(text: str) -> None:
    with pytest.raises(BadDestination):
        parse_destination(text)


def test_outcomes_of_final_answers() -> None:
    assert outcome_of(486) is DialState.BUSY and outcome_of(603) is DialState.BUSY
    assert outcome_of(480) is DialState.NO_ANSWER and outcome_of(487) is DialState.NO_ANSWER
    assert outcome_of(404) is DialState.FAILED and outcome_of(503) is DialState.FAILED


def test_a_redirect_goes_to_its_best_dialable_contact() -> None:
    contacts = ['<sip:a@192.0.2.1>;q=0.5, "B" <sip:b@192.0.2.2;transport=tcp>;q=0.9', "<http://x>"]
    target = redirect_target(contacts)
    assert target is not None and (target.user, target.host, transport_of(target)) == (
        "b",
        "192.0.2.2",
        "TCP",
    )
    assert redirect_target(["<mailto:x@y>"]) is None and redirect_target([]) is None


def test_digest_answer_matches_rfc_2617s_example() -> None:
    challenge = (
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    header = digest_authorization(
        challenge, "GET", "/dir/index.html", Credentials("Mufasa", "Circle Of Life"), cnonce="0a4f113b"
    )
    assert 'response="6629fae49393a05397450978507c4ef1"' in header
    assert "qop=auth" in header and "nc=00000001" in header
    assert 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in header


def test_digest_without_qop_and_refusals() -> None:
    header = digest_authorization('Digest realm="r", nonce="n"', "INVITE", "sip:x@y", Credentials("u", "p"))
    assert "qop" not in header and header.startswith("Digest ")
    with pytest.raises(ValueError):
        digest_authorization('Basic realm="r"', "INVITE", "sip:x@y", Credentials("u", "p"))
    with pytest.raises(ValueError):
        digest_authorization(
            'Digest realm="r", nonce="n", algorithm=SHA-512', "INVITE", "sip:x@y", Credentials("u", "p")
        )


def test_a_proxy_challenge_is_answered_in_proxy_authorization() -> None:
    invite = SipRequest(method="INVITE", uri="sip:interpreter@remote.example")
    for name, value in (
        ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx"),
        ("From", "<sip:7400@vdx.test>;tag=a"),
        ("To", "<sip:interpreter@remote.example>"),
        ("Call-ID", "c"),
        ("CSeq", "1 INVITE"),
    ):
        invite.add(name, value)
    challenged = make_response(invite, 407)
    challenged.add("Proxy-Authenticate", 'Basic realm="x"')
    challenged.add("Proxy-Authenticate", 'Digest realm="trunk", nonce="n1", qop="auth"')
    answered = answer_challenge(challenged, invite, Credentials("dialer", "secret"))
    assert answered is not None and answered[0] == "Proxy-Authorization"
    assert 'realm="trunk"' in answered[1] and 'uri="sip:interpreter@remote.example"' in answered[1]
    assert answer_challenge(make_response(invite, 401), invite, Credentials("u", "p")) is None
