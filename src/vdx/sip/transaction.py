"""SIP transaction state machines (RFC 3261 §17, with RFC 6026's Accepted state).

Server side: INVITE (Proceeding -> Completed -> Confirmed, or Accepted after a 2xx) and non-INVITE
(Trying/Proceeding -> Completed). Client side: non-INVITE (for the BYE we send when a room ends or a
session timer expires), with Timers E, F and K; INVITE (for dial-out and our own re-INVITEs), with
Timers A, B and D and the ACK for non-2xx finals. Timers are ``loop.call_later`` handles; intervals
follow T1/T2/T4 of §17.1.1.2 and the table of Appendix A:

- G: resend a final response (non-2xx in Completed, 2xx in Accepted) every min(2^n*T1, T2) on UDP
- H: give up waiting for the ACK after 64*T1
- I: linger in Confirmed for T4 (UDP) to absorb ACK retransmissions
- J: linger in non-INVITE Completed for 64*T1 (UDP) to answer request retransmissions
- E/F/K: client non-INVITE retransmit / timeout / linger
- A/B/D: client INVITE retransmit / timeout / linger in Completed (absorbing final retransmissions)
- M: client INVITE lingers in Accepted after a 2xx, passing 2xx retransmissions up (RFC 6026)
"""

from __future__ import annotations

import abc
import asyncio
import enum
from collections.abc import Callable
from dataclasses import dataclass

from .message import BRANCH_COOKIE, SipParseError, SipRequest, SipResponse
from .transport import Source


@dataclass(frozen=True)
class Timers:
    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0


class State(enum.Enum):
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"
    TERMINATED = "terminated"


def transaction_key(request: SipRequest) -> tuple[str, ...]:
    """RFC 3261 §17.2.3: branch + sent-by + method, with ACK matching its INVITE.

    Requests from pre-3261 peers (no magic cookie) fall back to the §17.2.3 legacy match on
    Request-URI, From tag, Call-ID, CSeq number and top Via."""
    method = request.method.upper()
    if method == "ACK":
        method = "INVITE"
    via = request.vias[0]
    branch = via.branch or ""
    if branch.startswith(BRANCH_COOKIE):
        return (branch, via.host, str(via.port or ""), method)
    num, _ = request.cseq
    return ("legacy", request.uri, request.from_.tag or "", request.call_id, str(num), str(via), method)


class ServerTransaction(abc.ABC):
    def __init__(
        self,
        layer: TransactionLayer,
        request: SipRequest,
        source: Source,
    ) -> None:
        self.layer = layer
        self.request = request
        self.source = source
        self.key = transaction_key(request)
        self.state = State.TRYING
        self.last_response: SipResponse | None = None
        self._timers: dict[str, asyncio.TimerHandle] = {}

    @property
    def timers(self) -> Timers:
        return self.layer.timers

    def _start(self, name: str, delay: float, fn: Callable[[], None]) -> None:
        self._cancel(name)
        self._timers[name] = self.layer.loop.call_later(delay, fn)

    def _cancel(self, name: str) -> None:
        h = self._timers.pop(name, None)
        if h is not None:
            h.cancel()

    def _send(self, resp: SipResponse) -> None:
        self.source.send(resp.serialise())

    def terminate(self) -> None:
        self.state = State.TERMINATED
        for h in self._timers.values():
            h.cancel()
        self._timers.clear()
        self.layer.forget(self)

    @property
    def final(self) -> bool:
        return self.state in (State.COMPLETED, State.CONFIRMED, State.ACCEPTED, State.TERMINATED)

    @abc.abstractmethod
    def respond(self, resp: SipResponse) -> None:
        """Send a response through this transaction (the INVITE and non-INVITE rules differ)."""

    @abc.abstractmethod
    def on_retransmission(self, request: SipRequest) -> None:
        """A retransmitted request arrived: answer it from the transaction's state."""


class InviteServerTransaction(ServerTransaction):
    """§17.2.1 + RFC 6026. ``on_timeout`` fires when no ACK arrived for a 2xx (Timer H/L)."""

    def __init__(
        self,
        layer: TransactionLayer,
        request: SipRequest,
        source: Source,
        on_ack_timeout: Callable[[ServerTransaction], None] | None = None,
    ) -> None:
        super().__init__(layer, request, source)
        self.state = State.PROCEEDING
        self.on_ack_timeout = on_ack_timeout
        self._interval = self.timers.t1

    def respond(self, resp: SipResponse) -> None:
        if self.state == State.PROCEEDING:
            self.last_response = resp
            self._send(resp)
            if resp.status < 200:
                return
            if resp.status < 300:
                # RFC 6026 Accepted: retransmit the 2xx until the ACK (§13.3.1.4 Timer G rule).
                self.state = State.ACCEPTED
                self._interval = self.timers.t1
                self._start("G", self._interval, self._retransmit)
                self._start("H", 64 * self.timers.t1, self._ack_timeout)
                return
            self.state = State.COMPLETED
            if not self.source.reliable:
                self._interval = self.timers.t1
                self._start("G", self._interval, self._retransmit)
            self._start("H", 64 * self.timers.t1, self._ack_timeout)
        elif self.state == State.ACCEPTED and 200 <= resp.status < 300:
            # A re-sent 2xx from the core (same dialog): send it, timers already run.
            self.last_response = resp
            self._send(resp)

    def _retransmit(self) -> None:
        if self.state not in (State.COMPLETED, State.ACCEPTED) or self.last_response is None:
            return
        self._send(self.last_response)
        self._interval = min(2 * self._interval, self.timers.t2)
        self._start("G", self._interval, self._retransmit)

    def _ack_timeout(self) -> None:
        accepted = self.state == State.ACCEPTED
        self.terminate()
        if accepted and self.on_ack_timeout is not None:
            self.on_ack_timeout(self)

    def on_retransmission(self, request: SipRequest) -> None:
        if request.method.upper() == "ACK":
            if self.state == State.COMPLETED:
                self.state = State.CONFIRMED
                self._cancel("G")
                self._cancel("H")
                self._start("I", 0.0 if self.source.reliable else self.timers.t4, self.terminate)
            return
        # A retransmitted INVITE: repeat the last provisional/final (Accepted absorbs it, RFC 6026).
        if self.state in (State.PROCEEDING, State.COMPLETED) and self.last_response is not None:
            self._send(self.last_response)

    def ack_received(self) -> None:
        """The UAS core saw the ACK for our 2xx: stop retransmitting, linger to absorb retransmits."""
        if self.state == State.ACCEPTED:
            self._cancel("G")
            self._cancel("H")
            self._start("L", 64 * self.timers.t1, self.terminate)


class NonInviteServerTransaction(ServerTransaction):
    """§17.2.2."""

    def respond(self, resp: SipResponse) -> None:
        if self.final:
            return
        self.last_response = resp
        self._send(resp)
        if resp.status >= 200:
            self.state = State.COMPLETED
            self._start("J", 0.0 if self.source.reliable else 64 * self.timers.t1, self.terminate)
        else:
            self.state = State.PROCEEDING

    def on_retransmission(self, request: SipRequest) -> None:
        if self.last_response is not None:
            self._send(self.last_response)


class NonInviteClientTransaction:
    """§17.1.2: send a request, retransmit on UDP (Timer E), give up after 64*T1 (Timer F)."""

    def __init__(self, layer: TransactionLayer, request: SipRequest, source: Source) -> None:
        self.layer = layer
        self.request = request
        self.source = source
        self.key = (request.branch or "", request.cseq[1])
        self.state = State.TRYING
        self.result: asyncio.Future[SipResponse | None] = layer.loop.create_future()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._interval = layer.timers.t1

    def start(self) -> None:
        self.layer.clients[self.key] = self
        self.source.send(self.request.serialise())
        if not self.source.reliable:
            self._timers["E"] = self.layer.loop.call_later(self._interval, self._retransmit)
        self._timers["F"] = self.layer.loop.call_later(64 * self.layer.timers.t1, self._timeout)

    def _retransmit(self) -> None:
        if self.state not in (State.TRYING, State.PROCEEDING):
            return
        self.source.send(self.request.serialise())
        self._interval = min(2 * self._interval, self.layer.timers.t2)
        if self.state == State.PROCEEDING:
            self._interval = self.layer.timers.t2
        self._timers["E"] = self.layer.loop.call_later(self._interval, self._retransmit)

    def _timeout(self) -> None:
        if not self.result.done():
            self.result.set_result(None)
        self._terminate()

    def _terminate(self) -> None:
        self.state = State.TERMINATED
        for h in self._timers.values():
            h.cancel()
        self._timers.clear()
        self.layer.clients.pop(self.key, None)

    def on_response(self, resp: SipResponse) -> None:
        if self.state in (State.COMPLETED, State.TERMINATED):
            return
        if resp.status < 200:
            self.state = State.PROCEEDING
            return
        self.state = State.COMPLETED
        if not self.result.done():
            self.result.set_result(resp)
        for name in ("E", "F"):
            h = self._timers.pop(name, None)
            if h:
                h.cancel()
        delay = 0.0 if self.source.reliable else self.layer.timers.t4
        self._timers["K"] = self.layer.loop.call_later(delay, self._terminate)


class InviteClientTransaction:
    """§17.1.1 + RFC 6026. ``result`` resolves with the first final response (None on Timer B);
    ``on_response`` callbacks see every response, including provisionals and 2xx retransmissions
    (the dialog layer ACKs each 2xx itself, §13.2.2.4)."""

    def __init__(
        self,
        layer: TransactionLayer,
        request: SipRequest,
        source: Source,
        on_response: Callable[[SipResponse], None] | None = None,
    ) -> None:
        self.layer = layer
        self.request = request
        self.source = source
        self.key = (request.branch or "", request.cseq[1])
        self.state = State.TRYING  # "Calling"
        self.result: asyncio.Future[SipResponse | None] = layer.loop.create_future()
        self.callback = on_response
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._interval = layer.timers.t1
        self._ack: bytes | None = None

    def start(self) -> None:
        self.layer.clients[self.key] = self
        self.source.send(self.request.serialise())
        if not self.source.reliable:
            self._timers["A"] = self.layer.loop.call_later(self._interval, self._retransmit)
        self._timers["B"] = self.layer.loop.call_later(64 * self.layer.timers.t1, self._timeout)

    def _retransmit(self) -> None:
        if self.state != State.TRYING:
            return
        self.source.send(self.request.serialise())
        self._interval *= 2  # Timer A doubles without the T2 cap (§17.1.1.2)
        self._timers["A"] = self.layer.loop.call_later(self._interval, self._retransmit)

    def _timeout(self) -> None:
        if not self.result.done():
            self.result.set_result(None)
        self._terminate()

    def _terminate(self) -> None:
        self.state = State.TERMINATED
        for h in self._timers.values():
            h.cancel()
        self._timers.clear()
        if self.layer.clients.get(self.key) is self:
            del self.layer.clients[self.key]

    def _stop(self, *names: str) -> None:
        for name in names:
            h = self._timers.pop(name, None)
            if h is not None:
                h.cancel()

    def ack_for(self, resp: SipResponse) -> SipRequest:
        """The ACK for a non-2xx final (§17.1.1.3): same branch, To with the response's tag."""
        ack = SipRequest(method="ACK", uri=self.request.uri)
        ack.add("Via", self.request.get_all("Via")[0])
        for name in ("Max-Forwards", "From"):
            value = self.request.get(name)
            if value is not None:
                ack.add(name, value)
        ack.add("To", resp.get("To") or "")
        ack.add("Call-ID", self.request.call_id)
        ack.add("CSeq", f"{self.request.cseq[0]} ACK")
        for route in self.request.get_all("Route"):
            ack.add("Route", route)
        return ack

    @property
    def pending(self) -> bool:
        """No final response yet: the request may still ring (and be cancelled)."""
        return self.state in (State.TRYING, State.PROCEEDING)

    def cancel_request(self) -> SipRequest:
        """The CANCEL of this INVITE (§9.1): its Request-URI, top Via, Call-ID, From, To, Route and
        CSeq number; sent only once a provisional came (§9.1)."""
        cancel = SipRequest(method="CANCEL", uri=self.request.uri)
        cancel.add("Via", self.request.get_all("Via")[0])
        for name in ("Max-Forwards", "From", "To", "Call-ID"):
            value = self.request.get(name)
            if value is not None:
                cancel.add(name, value)
        cancel.add("CSeq", f"{self.request.cseq[0]} CANCEL")
        for route in self.request.get_all("Route"):
            cancel.add("Route", route)
        return cancel

    def abandon(self) -> None:
        """Stop an INVITE nobody answered, not even provisionally (no CANCEL is allowed then)."""
        if not self.result.done():
            self.result.set_result(None)
        self._terminate()

    def on_response(self, resp: SipResponse) -> None:
        if self.state == State.TERMINATED:
            return
        if self.state == State.COMPLETED:
            if resp.status >= 300 and self._ack is not None:
                self.source.send(self._ack)  # a retransmitted final: ACK again
            return
        if self.state == State.ACCEPTED:
            if 200 <= resp.status < 300 and self.callback is not None:
                self.callback(resp)
            return
        if self.callback is not None:
            self.callback(resp)
        if resp.status < 200:
            self.state = State.PROCEEDING
            self._stop("A")
            return
        self._stop("A", "B")
        if not self.result.done():
            self.result.set_result(resp)
        if resp.status < 300:
            self.state = State.ACCEPTED
            self._timers["M"] = self.layer.loop.call_later(64 * self.layer.timers.t1, self._terminate)
            return
        self.state = State.COMPLETED
        self._ack = self.ack_for(resp).serialise()
        self.source.send(self._ack)
        delay = 0.0 if self.source.reliable else max(32.0, 64 * self.layer.timers.t1)
        self._timers["D"] = self.layer.loop.call_later(delay, self._terminate)


class TransactionLayer:
    """Holds live transactions and matches requests/responses to them."""

    def __init__(self, timers: Timers | None = None, max_transactions: int = 20000) -> None:
        self.timers = timers or Timers()
        self.loop = asyncio.get_running_loop()
        self.servers: dict[tuple[str, ...], ServerTransaction] = {}
        # (branch, CSeq method): a CANCEL shares its INVITE's branch (§17.1.3)
        self.clients: dict[tuple[str, str], NonInviteClientTransaction | InviteClientTransaction] = {}
        self.max_transactions = max_transactions

    def match(self, request: SipRequest) -> ServerTransaction | None:
        try:
            return self.servers.get(transaction_key(request))
        except SipParseError:
            return None

    def full(self) -> bool:
        return len(self.servers) >= self.max_transactions

    def create_server(
        self,
        request: SipRequest,
        source: Source,
        on_ack_timeout: Callable[[ServerTransaction], None] | None = None,
    ) -> ServerTransaction:
        txn: ServerTransaction
        if request.method.upper() == "INVITE":
            txn = InviteServerTransaction(self, request, source, on_ack_timeout)
        else:
            txn = NonInviteServerTransaction(self, request, source)
        self.servers[txn.key] = txn
        return txn

    def find_invite(self, cancel: SipRequest) -> InviteServerTransaction | None:
        """The INVITE transaction a CANCEL refers to (§9.2: same key but method INVITE)."""
        key = transaction_key(cancel)
        txn = self.servers.get((*key[:-1], "INVITE"))
        return txn if isinstance(txn, InviteServerTransaction) else None

    def forget(self, txn: ServerTransaction) -> None:
        if self.servers.get(txn.key) is txn:
            del self.servers[txn.key]

    def on_response(self, resp: SipResponse) -> None:
        try:
            key = (resp.vias[0].branch or "", resp.cseq[1])
        except (SipParseError, IndexError):
            return
        client = self.clients.get(key)
        if client is not None:
            client.on_response(resp)

    def send_request(self, request: SipRequest, source: Source) -> NonInviteClientTransaction:
        txn = NonInviteClientTransaction(self, request, source)
        txn.start()
        return txn

    def send_invite(
        self,
        request: SipRequest,
        source: Source,
        on_response: Callable[[SipResponse], None] | None = None,
    ) -> InviteClientTransaction:
        txn = InviteClientTransaction(self, request, source, on_response)
        txn.start()
        return txn

    def close(self) -> None:
        for txn in list(self.servers.values()):
            txn.terminate()
        for c in list(self.clients.values()):
            c._timeout()
