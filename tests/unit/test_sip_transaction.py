"""SIP transaction state machines (RFC 3261 §17 + RFC 6026) with shortened T1/T2/T4."""

from __future__ import annotations

import asyncio

from harness.waiting import until
from vdx.sip.message import SipRequest, SipResponse, make_response, parse_message
from vdx.sip.transaction import (
    InviteServerTransaction,
    NonInviteServerTransaction,
    ServerTransaction,
    State,
    Timers,
    TransactionLayer,
    transaction_key,
)
from vdx.sip.transport import Source

FAST = Timers(t1=0.01, t2=0.04, t4=0.05)


def request(method: str, branch: str = "z9hG4bKabc", cseq_method: str | None = None) -> SipRequest:
    raw = (
        f"{method} sip:1000@vdx.local SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}\r\n"
        f"From: <sip:a@b>;tag=f\r\nTo: <sip:1000@vdx.local>\r\nCall-ID: c1\r\n"
        f"CSeq: 1 {cseq_method or method}\r\nContent-Length: 0\r\n\r\n"
    )
    msg = parse_message(raw.encode())
    assert isinstance(msg, SipRequest)
    return msg


def source(transport: str = "UDP") -> tuple[Source, list[SipResponse | SipRequest]]:
    sent: list[SipResponse | SipRequest] = []
    src = Source(transport, "10.0.0.1", 5060, "127.0.0.1", 5060, lambda d: sent.append(parse_message(d)))
    return src, sent


def statuses(sent: list[SipResponse | SipRequest]) -> list[int]:
    return [m.status for m in sent if isinstance(m, SipResponse)]


def test_keys_match_ack_to_invite_and_keep_cancel_apart() -> None:
    assert transaction_key(request("ACK")) == transaction_key(request("INVITE"))
    assert transaction_key(request("CANCEL")) != transaction_key(request("INVITE"))
    assert transaction_key(request("INVITE")) != transaction_key(request("INVITE", "z9hG4bKother"))
    legacy = transaction_key(request("INVITE", "1234"))  # pre-RFC 3261 branch (§17.2.3 fallback)
    assert legacy[0] == "legacy" and legacy == transaction_key(request("ACK", "1234"))


async def test_invite_non_2xx_is_retransmitted_until_ack_then_confirmed() -> None:
    layer = TransactionLayer(FAST)
    src, sent = source()
    txn = layer.create_server(request("INVITE"), src)
    assert isinstance(txn, InviteServerTransaction)
    txn.respond(make_response(txn.request, 100))
    txn.on_retransmission(request("INVITE"))  # Proceeding: the last provisional again
    assert statuses(sent) == [100, 100]
    txn.respond(make_response(txn.request, 486, to_tag="t"))
    await until(lambda: statuses(sent).count(486) >= 3, 5.0, poll_s=0.005)  # Timer G: T1, 2*T1, ...
    txn.on_retransmission(request("ACK"))
    assert txn.state == State.CONFIRMED
    count = statuses(sent).count(486)
    await until(lambda: txn.state == State.TERMINATED)  # Timer I (T4, 5.0, poll_s=0.005)
    assert statuses(sent).count(486) == count and layer.match(request("INVITE")) is None


async def test_invite_non_2xx_without_ack_times_out_with_timer_h() -> None:
    layer = TransactionLayer(FAST)
    src, sent = source()
    txn = layer.create_server(request("INVITE"), src)
    fired: list[ServerTransaction] = []
    assert isinstance(txn, InviteServerTransaction)
    txn.on_ack_timeout = fired.append
    txn.respond(make_response(txn.request, 404, to_tag="t"))
    await until(lambda: txn.state == State.TERMINATED, 5.0, poll_s=0.005)  # 64*T1 = 0.64 s
    intervals = statuses(sent).count(404)
    assert 4 <= intervals <= 25  # capped at T2: roughly 0.64 / 0.04 + the doubling steps
    assert fired == []  # only a 2xx without ACK concerns the dialog layer


async def test_2xx_retransmitted_in_accepted_until_the_core_sees_the_ack() -> None:
    layer = TransactionLayer(FAST)
    src, sent = source()
    txn = layer.create_server(request("INVITE"), src)
    assert isinstance(txn, InviteServerTransaction)
    txn.respond(make_response(txn.request, 200, to_tag="t"))
    assert txn.state == State.ACCEPTED
    await until(lambda: statuses(sent).count(200) >= 3, 5.0, poll_s=0.005)
    txn.on_retransmission(request("INVITE"))  # RFC 6026: absorbed
    txn.ack_received()
    count = statuses(sent).count(200)
    await until(lambda: txn.state == State.TERMINATED, 5.0, poll_s=0.005)  # Timer L
    assert statuses(sent).count(200) <= count + 1


async def test_2xx_without_ack_reports_timeout() -> None:
    layer = TransactionLayer(FAST)
    src, _ = source()
    fired: list[ServerTransaction] = []
    txn = layer.create_server(request("INVITE"), src)
    assert isinstance(txn, InviteServerTransaction)
    txn.on_ack_timeout = fired.append
    txn.respond(make_response(txn.request, 200, to_tag="t"))
    await until(lambda: fired == [txn], 5.0, poll_s=0.005)


async def test_reliable_transport_does_not_retransmit_final_responses() -> None:
    layer = TransactionLayer(FAST)
    src, sent = source("TCP")
    txn = layer.create_server(request("INVITE"), src)
    txn.respond(make_response(txn.request, 486, to_tag="t"))
    txn.on_retransmission(request("ACK"))
    await until(lambda: txn.state == State.TERMINATED, 5.0, poll_s=0.005)  # Timer I = 0 on TCP
    assert statuses(sent) == [486]


async def test_non_invite_answers_retransmissions_then_lingers_timer_j() -> None:
    layer = TransactionLayer(FAST)
    src, sent = source()
    txn = layer.create_server(request("OPTIONS"), src)
    assert isinstance(txn, NonInviteServerTransaction)
    txn.respond(make_response(txn.request, 200, to_tag="t"))
    txn.on_retransmission(request("OPTIONS"))
    assert statuses(sent) == [200, 200]
    assert layer.match(request("OPTIONS")) is txn
    await until(lambda: layer.match(request("OPTIONS")) is None)  # Timer J (64*T1 on UDP, 5.0, poll_s=0.005)


async def test_client_non_invite_retransmits_until_answered_timer_e() -> None:
    layer = TransactionLayer(FAST)
    src, sent = source()
    bye = request("BYE", "z9hG4bKbye")
    client = layer.send_request(bye, src)
    await until(lambda: len(sent) >= 3, 5.0, poll_s=0.005)  # Timer E
    layer.on_response(make_response(bye, 200))
    assert (await client.result) is not None and client.state == State.COMPLETED
    await until(lambda: client.state == State.TERMINATED, 5.0, poll_s=0.005)  # Timer K
    assert ("z9hG4bKbye", "BYE") not in layer.clients


async def test_client_non_invite_gives_up_after_timer_f() -> None:
    layer = TransactionLayer(FAST)
    src, _ = source()
    client = layer.send_request(request("BYE", "z9hG4bKlost"), src)
    assert await asyncio.wait_for(client.result, 5) is None


async def test_client_invite_retransmits_until_provisional_then_acks_a_failure() -> None:
    layer = TransactionLayer(FAST)
    src, sent = source()
    invite = request("INVITE", "z9hG4bKout")
    seen: list[int] = []
    client = layer.send_invite(invite, src, lambda r: seen.append(r.status))
    await until(lambda: len(sent) >= 3, 5.0, poll_s=0.005)  # Timer A: T1, 2*T1, 4*T1
    layer.on_response(make_response(invite, 100))
    count = len(sent)
    busy = make_response(invite, 486, to_tag="remote")
    layer.on_response(busy)
    assert (await client.result) is busy and client.state == State.COMPLETED
    acks = [m for m in sent[count:] if isinstance(m, SipRequest)]
    assert [a.method for a in acks] == ["ACK"]
    assert acks[0].branch == "z9hG4bKout" and acks[0].to.tag == "remote" and acks[0].cseq == (1, "ACK")
    layer.on_response(busy)  # a retransmitted final is ACKed again (Timer D absorbs it)
    assert [m.method for m in sent[count:] if isinstance(m, SipRequest)] == ["ACK", "ACK"]
    assert seen == [100, 486]
    layer.close()


async def test_client_invite_2xx_retransmissions_reach_the_dialog_layer() -> None:
    layer = TransactionLayer(FAST)
    src, _ = source()
    invite = request("INVITE", "z9hG4bKok")
    seen: list[int] = []
    client = layer.send_invite(invite, src, lambda r: seen.append(r.status))
    ok = make_response(invite, 200, to_tag="remote")
    layer.on_response(ok)
    layer.on_response(ok)
    assert (await client.result) is ok and client.state == State.ACCEPTED
    assert seen == [200, 200]
    await until(lambda: client.state == State.TERMINATED, 5.0, poll_s=0.005)  # Timer M


async def test_client_invite_times_out_with_timer_b() -> None:
    layer = TransactionLayer(FAST)
    src, sent = source()
    client = layer.send_invite(request("INVITE", "z9hG4bKnone"), src)
    assert await asyncio.wait_for(client.result, 5) is None
    assert 3 <= len(sent) <= 7  # at most 0, T1, 3*T1, 7*T1, 15*T1, 31*T1, 63*T1 within 64*T1
