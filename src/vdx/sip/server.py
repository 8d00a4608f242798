"""The SIP user agent server of a conferencing node: room systems dial ``sip:<alias>@<domain>``.

It routes requests to transactions and dialogs, answers everything with the right status, and
asks a :class:`CallHandler` (the node's room policy, later the MCU) what to do with each INVITE.
The handler never sees SIP messages: it gets an :class:`IncomingCall` and returns
:class:`Accept` or :class:`Reject`; afterwards it gets the live :class:`SipCall` (negotiated
streams and bound RTP endpoints) on establishment, session changes (hold/resume, codec change),
DTMF and end.

Answers: 400 malformed, 404 unknown alias / 480 not open / 486 full / 403 (from the handler),
405/501 for methods we do not serve, 415 non-SDP bodies, 420 unknown Require, 422 too-small
session interval (RFC 4028), 481 unknown dialog/transaction, 487 cancelled, 488 no common codec,
491 glare, 503 + Retry-After when INVITEs arrive faster than ``max_invites_per_second``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from . import sdp as sdpmod
from .dialog import Dialog, DialogState, new_tag
from .dtmf import parse_info_body
from .media import MediaSession, PortAllocator
from .message import (
    SipParseError,
    SipRequest,
    SipResponse,
    SipUri,
    Via,
    digits,
    make_response,
    parse_message,
    split_list,
)
from .tls import server_context
from .transaction import (
    InviteServerTransaction,
    ServerTransaction,
    Timers,
    TransactionLayer,
)
from .transport import SipListeners, Source

log = logging.getLogger("vdx.sip.server")

ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE"
SUPPORTED = "timer"
KNOWN_UNSUPPORTED = {"REGISTER", "SUBSCRIBE", "NOTIFY", "PUBLISH", "MESSAGE", "REFER", "PRACK"}
MIN_SE = 90  # RFC 4028 §4: the smallest session interval a UA may demand
USER_AGENT = "vdx"


# --- the interface the node implements ----------------------------------------------------------


@dataclass(frozen=True)
class IncomingCall:
    """What the policy needs to decide on an INVITE."""

    call_id: str
    alias: str  # user part of the Request-URI, e.g. "12345678"
    domain: str  # host part of the Request-URI
    request_uri: str
    caller_uri: str
    caller_name: str
    transport: str
    remote: tuple[str, int]
    secure: bool  # arrived over TLS
    srtp_offered: bool = False  # the offer carries SDES keys (a=crypto) on some m-line


@dataclass(frozen=True)
class Accept:
    """Answer 200 OK with our SDP (or an offer, when the INVITE had none). ``context`` is the
    node's own data (room, role...), handed back as ``SipCall.context``."""

    context: Any = None


@dataclass(frozen=True)
class RequirePin:
    """Collect a PIN before answering: ``check(pin)`` returns Accept (right PIN, e.g. with the
    host/guest role as context), None (wrong PIN) or Reject; 403 after ``attempts`` wrong PINs."""

    check: Callable[[str], Awaitable[Accept | Reject | None]]
    attempts: int = 3
    timeout_s: float = 60.0
    # Called once the 183 is out and the early-media RTP endpoints are live (a spoken prompt);
    # PIN entry lasts while ``call.pin_digits`` is set and the call has not ended.
    on_early_media: Callable[[SipCall], None] | None = None


@dataclass(frozen=True)
class Reject:
    status: int
    reason: str | None = None
    retry_after: int | None = None


class CallHandler(Protocol):
    async def on_invite(self, call: IncomingCall) -> Accept | Reject | RequirePin: ...

    async def on_established(self, call: SipCall) -> None: ...

    async def on_session_changed(self, call: SipCall) -> None: ...

    async def on_dtmf(self, call: SipCall, digit: str) -> None: ...

    async def on_ended(self, call: SipCall, reason: str) -> None: ...


# --- a live call ---------------------------------------------------------------------------------


@dataclass(eq=False)
class SipCall:
    """One dialog with its media. ``negotiation.streams`` says what flows; ``media`` holds the
    bound RTP endpoints (``media.endpoint("video")``)."""

    server: SipServer
    incoming: IncomingCall
    dialog: Dialog
    negotiator: sdpmod.Negotiator
    media: MediaSession
    invite_txn: InviteServerTransaction | None = None
    awaiting_answer_in_ack: bool = False
    established: bool = False
    ended: bool = False
    session_expires: int | None = None
    _expiry: asyncio.TimerHandle | None = None
    last_remote_version: str | None = None
    ended_reason: str = ""
    history: list[str] = field(default_factory=list)
    context: Any = None  # Accept.context
    pin_digits: asyncio.Queue[str] | None = None

    @property
    def negotiation(self) -> sdpmod.Negotiation | None:
        return self.negotiator.current

    @property
    def on_hold(self) -> bool:
        n = self.negotiation
        return n is not None and all(s.direction in ("recvonly", "inactive") for s in n.streams)

    async def hangup(self, reason: str = "hangup") -> None:
        """End the call from our side with a BYE (room ended, participant removed...)."""
        await self.server._bye(self, reason)


class TokenBucket:
    """Admission for new INVITEs: ``rate`` per second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else max(rate, 1.0)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class SipServerConfig:
    host: str = "0.0.0.0"
    port: int = 5060
    tls_port: int | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    rtp_host: str = "0.0.0.0"
    rtp_ports: str = "40000-40999"
    max_invites_per_second: float = 20.0
    retry_after: int = 5
    media: sdpmod.MediaConfig = field(default_factory=sdpmod.MediaConfig)
    timers: Timers = field(default_factory=Timers)
    advertised_host: str | None = None  # address written into Contact/SDP; default: the local one
    min_session_expires: int = MIN_SE  # RFC 4028 Min-SE: shorter Session-Expires get 422


class SipServer:
    def __init__(self, config: SipServerConfig, handler: CallHandler) -> None:
        self.config = config
        self.handler = handler
        self.listeners = SipListeners(self._receive)
        self.calls: dict[tuple[str, str, str], SipCall] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._bucket = TokenBucket(config.max_invites_per_second)
        self._txn: TransactionLayer | None = None
        self._allocator = PortAllocator(config.rtp_host, config.rtp_ports)
        self.rejected_overload = 0
        self.retransmissions_absorbed = 0
        self.task_failures = 0  # bugs: a request whose handling raised (logged with its traceback)

    @property
    def txn(self) -> TransactionLayer:
        assert self._txn is not None, "server not started"
        return self._txn

    async def start(self) -> None:
        self._txn = TransactionLayer(self.config.timers)
        ctx: ssl.SSLContext | None = None
        if self.config.tls_port is not None and self.config.tls_cert and self.config.tls_key:
            ctx = server_context(Path(self.config.tls_cert), Path(self.config.tls_key))
        await self.listeners.start(self.config.host, self.config.port, self.config.tls_port, ctx)

    async def stop(self) -> None:
        for call in list(self.calls.values()):
            with contextlib.suppress(Exception):
                await self._bye(call, "node stopping", wait=False)
        await self.listeners.stop()
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._txn is not None:
            self._txn.close()

    @property
    def port(self) -> int:
        return self.listeners.udp_port

    @property
    def tls_port(self) -> int:
        return self.listeners.tls_port

    # --- plumbing ------------------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.task_failures += 1
            log.error("SIP task failed", exc_info=task.exception())

    def _notify(self, fn: Callable[[], Awaitable[None]]) -> None:
        self._spawn(fn())

    def _receive(self, data: bytes, source: Source) -> None:
        if not data.strip(b"\r\n"):
            return  # CRLF keep-alive (RFC 5626 §4.4.1)
        try:
            msg = parse_message(data, stream=source.reliable)
        except SipParseError as e:
            log.debug("dropping unparseable message from %s:%s: %s", source.host, source.port, e)
            return
        if isinstance(msg, SipResponse):
            self.txn.on_response(msg)
            return
        self._rport(msg, source)
        if msg.defect is not None:
            if msg.method.upper() != "ACK":
                reason = "Bad Request"
                if msg.defect == "unsupported SIP version":
                    source.send(make_response(msg, 505).serialise())
                    return
                resp = make_response(msg, 400, reason)
                resp.add("Warning", f'399 vdx "{msg.defect}"')
                source.send(resp.serialise())
            return
        txn = self.txn.match(msg)
        if txn is not None:
            self.retransmissions_absorbed += 1
            txn.on_retransmission(msg)
            return
        method = msg.method.upper()
        if method == "ACK":
            self._on_ack(msg)
            return
        if method == "CANCEL":
            self._on_cancel(msg, source)
            return
        if self.txn.full():
            self._stateless(msg, source, 503, retry_after=self.config.retry_after)
            return
        # The transaction exists before any await, so a retransmission arriving meanwhile is absorbed.
        txn = self.txn.create_server(msg, source)
        self._spawn(self._on_request(msg, source, txn))

    def _rport(self, msg: SipRequest, source: Source) -> None:
        """RFC 3581 / §18.2.1: note where the request really came from in the top Via."""
        for i, (k, v) in enumerate(msg.headers):
            if k == "Via":
                vias = split_list(v)
                top = Via.parse(vias[0])
                if top.host != source.host:
                    top.params["received"] = source.host
                if "rport" in top.params:
                    top.params["rport"] = str(source.port)
                    top.params.setdefault("received", source.host)
                vias[0] = str(top)
                msg.headers[i] = (k, ", ".join(vias))
                return

    def _stateless(
        self,
        msg: SipRequest,
        source: Source,
        status: int,
        reason: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        resp = make_response(msg, status, reason, to_tag=new_tag())
        if retry_after is not None:
            resp.add("Retry-After", str(retry_after))
        source.send(resp.serialise())

    def _response(
        self, req: SipRequest, status: int, reason: str | None = None, *, to_tag: str | None = None
    ) -> SipResponse:
        resp = make_response(req, status, reason, to_tag=to_tag)
        resp.add("Server", USER_AGENT)
        if status == 405 or (req.method.upper() == "OPTIONS" and status == 200):
            resp.add("Allow", ALLOW)
        return resp

    def _find_call(self, req: SipRequest) -> SipCall | None:
        to_tag = req.to.tag
        from_tag = req.from_.tag
        if not to_tag:
            return None
        return self.calls.get((req.call_id, to_tag, from_tag or ""))

    def _local_host(self, source: Source) -> str:
        if self.config.advertised_host:
            return self.config.advertised_host
        if source.local_host not in ("0.0.0.0", "::", ""):
            return source.local_host
        with socket.socket(socket.AF_INET6 if ":" in source.host else socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((source.host, source.port or 9))
            return str(s.getsockname()[0])

    def _contact(self, source: Source, alias: str) -> str:
        host = self._local_host(source)
        host = f"[{host}]" if ":" in host else host
        # sip: with transport=tls, not sips: (RFC 3261 §8.1.1.8 asks for sips only when the
        # Request-URI was sips); libre-based phones (baresip) drop a dialog whose remote target is
        # sips: ("Function not implemented").
        scheme = "sip"
        params = "" if source.transport == "UDP" else f";transport={source.transport.lower()}"
        user = f"{alias}@" if alias else ""
        return f"<{scheme}:{user}{host}:{source.local_port}{params}>"

    # --- requests ------------------------------------------------------------------------------

    async def _on_request(self, req: SipRequest, source: Source, txn: ServerTransaction) -> None:
        method = req.method.upper()
        mf = req.get("Max-Forwards")
        call = self._find_call(req)
        if req.to.tag and call is None and method != "OPTIONS":
            txn.respond(self._response(req, 481))
            return
        if mf is not None and int(mf.strip()) == 0 and method != "OPTIONS":
            txn.respond(self._response(req, 483, to_tag=new_tag()))
            return
        if call is not None:
            await self._in_dialog(call, req, txn)
            return
        if method == "INVITE":
            assert isinstance(txn, InviteServerTransaction)
            await self._on_invite(req, source, txn)
        elif method == "OPTIONS":
            resp = self._response(req, 200, to_tag=new_tag())
            resp.add("Accept", "application/sdp")
            resp.add("Supported", SUPPORTED)
            txn.respond(resp)
        elif method in ("BYE", "INFO", "UPDATE"):
            txn.respond(self._response(req, 481))
        elif method in KNOWN_UNSUPPORTED:
            txn.respond(self._response(req, 405, to_tag=new_tag()))
        else:
            txn.respond(self._response(req, 501, to_tag=new_tag()))

    def _check_extensions(self, req: SipRequest) -> SipResponse | None:
        unsupported = req.tokens("Require") - {"timer"}
        if unsupported:
            resp = self._response(req, 420, to_tag=new_tag())
            resp.add("Unsupported", ", ".join(sorted(unsupported)))
            return resp
        return None

    def _offer_from(self, req: SipRequest) -> sdpmod.SessionDescription | None:
        """The SDP offer of a request; raises SdpError (-> 400) or ValueError for non-SDP (-> 415)."""
        if not req.body.strip():
            return None
        if req.content_type != "application/sdp":
            raise TypeError(req.content_type)
        return sdpmod.SessionDescription.parse(req.body)

    def _session_interval(self, req: SipRequest) -> tuple[int | None, SipResponse | None]:
        raw = req.get("Session-Expires")
        if raw is None:
            return None, None
        value = raw.split(";", 1)[0].strip()
        if not digits(value) or len(value) > 9:
            return None, self._response(req, 400, "Bad Session-Expires", to_tag=new_tag())
        interval = int(value)
        if interval < self.config.min_session_expires:
            resp = self._response(req, 422, to_tag=new_tag())
            resp.add("Min-SE", str(self.config.min_session_expires))
            return None, resp
        return interval, None

    async def _on_invite(self, req: SipRequest, source: Source, txn: InviteServerTransaction) -> None:
        if not self._bucket.take():
            self.rejected_overload += 1
            resp = self._response(req, 503, to_tag=new_tag())
            resp.add("Retry-After", str(self.config.retry_after))
            txn.respond(resp)
            return
        txn.respond(self._response(req, 100))
        reject = self._check_extensions(req)
        if reject is None:
            interval, reject = self._session_interval(req)
        if reject is not None:
            txn.respond(reject)
            return
        try:
            offer = self._offer_from(req)
        except TypeError:
            resp = self._response(req, 415, to_tag=new_tag())
            resp.add("Accept", "application/sdp")
            txn.respond(resp)
            return
        except sdpmod.SdpError as e:
            resp = self._response(req, 400, "Bad SDP", to_tag=new_tag())
            resp.add("Warning", f'399 vdx "{e}"')
            txn.respond(resp)
            return
        uri = SipUri.parse(req.uri)
        from_ = req.from_
        incoming = IncomingCall(
            call_id=req.call_id,
            alias=uri.user or "",
            domain=uri.host,
            request_uri=req.uri,
            caller_uri=from_.uri,
            caller_name=from_.display,
            transport=source.transport,
            remote=(source.host, source.port),
            secure=source.transport == "TLS",
            srtp_offered=offer is not None and any(m.attrs("crypto") for m in offer.media if m.port),
        )
        try:
            decision = await self.handler.on_invite(incoming)
        except Exception:
            # A policy failure (database down...) must still end the transaction: 500, and log it.
            log.exception("call policy failed for %s", incoming.alias)
            self.task_failures += 1
            if not txn.final:
                txn.respond(self._response(req, 500, to_tag=new_tag()))
            return
        if txn.final:
            return  # cancelled while the policy was deciding
        tag = new_tag()
        if isinstance(decision, Reject):
            resp = self._response(req, decision.status, decision.reason, to_tag=tag)
            if decision.retry_after is not None:
                resp.add("Retry-After", str(decision.retry_after))
            txn.respond(resp)
            return
        local_host = self._local_host(source)
        negotiator = sdpmod.Negotiator(self.config.media, local_host)
        media = MediaSession(self._allocator)
        try:
            body = await self._negotiate(negotiator, media, offer)
        except sdpmod.NoCommonCodec as e:
            media.close()
            resp = self._response(req, 488, to_tag=tag)
            resp.add("Warning", f'304 vdx "{e}"')
            txn.respond(resp)
            return
        except OSError:
            media.close()
            resp = self._response(req, 503, "No media ports", to_tag=tag)
            resp.add("Retry-After", str(self.config.retry_after))
            txn.respond(resp)
            return
        if txn.final:
            media.close()
            return
        contact = self._contact(source, incoming.alias)
        dialog = Dialog.from_invite(req, source, tag, contact)
        call = SipCall(self, incoming, dialog, negotiator, media, invite_txn=txn)
        call.awaiting_answer_in_ack = offer is None
        call.last_remote_version = offer.origin if offer is not None else None
        self.calls[dialog.key] = call
        self._wire_media(call)
        if isinstance(decision, RequirePin):
            accepted = await self._collect_pin(call, req, txn, decision, body if offer is not None else b"")
            if accepted is None:
                self._discard(call)
                return
            decision = accepted
        call.context = decision.context
        txn.on_ack_timeout = lambda _t, c=call: self._spawn(self._bye(c, "no ACK"))  # type: ignore[misc]
        resp = self._ok(req, call, body, tag, interval)
        txn.respond(resp)

    async def _collect_pin(
        self,
        call: SipCall,
        req: SipRequest,
        txn: InviteServerTransaction,
        ask: RequirePin,
        early_sdp: bytes,
    ) -> Accept | None:
        """PIN entry before answering: 183 with early media (so RFC 4733 digits can flow; SIP INFO
        works too), digits up to '#', ``ask.check`` per PIN; 403 after ``ask.attempts`` wrong ones."""
        progress = self._response(req, 183, to_tag=call.dialog.local_tag)
        progress.add("Contact", call.dialog.local_contact)
        if early_sdp:
            progress.add("Content-Type", "application/sdp")
            progress.body = early_sdp
        txn.respond(progress)
        call.pin_digits = asyncio.Queue(maxsize=64)
        if ask.on_early_media is not None:
            try:
                ask.on_early_media(call)
            except Exception:
                log.exception("early media for %s failed", call.incoming.alias)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ask.timeout_s
        wrong = 0
        pin = ""
        while not txn.final:
            remaining = deadline - loop.time()
            if remaining <= 0:
                txn.respond(self._response(req, 480, "PIN entry timed out", to_tag=call.dialog.local_tag))
                return None
            try:
                digit = await asyncio.wait_for(call.pin_digits.get(), min(remaining, 0.5))
            except TimeoutError:
                continue  # re-check for CANCEL and the deadline
            if digit != "#":
                pin = (pin + digit)[-32:]
                continue
            try:
                result = await ask.check(pin)
            except Exception:
                log.exception("PIN check failed for %s", call.incoming.alias)
                self.task_failures += 1
                result = Reject(500)
            pin = ""
            if txn.final:
                return None
            if isinstance(result, Reject):
                resp = self._response(req, result.status, result.reason, to_tag=call.dialog.local_tag)
                txn.respond(resp)
                return None
            if result is not None:
                call.pin_digits = None
                return result
            wrong += 1
            call.history.append("wrong PIN")
            if wrong >= ask.attempts:
                txn.respond(self._response(req, 403, "Wrong PIN", to_tag=call.dialog.local_tag))
                return None
        return None  # cancelled

    def _discard(self, call: SipCall) -> None:
        """Forget a call that never got its 2xx (rejected after PIN entry, cancelled)."""
        call.ended = True
        self.calls.pop(call.dialog.key, None)
        call.media.close()

    async def _negotiate(
        self,
        negotiator: sdpmod.Negotiator,
        media: MediaSession,
        offer: sdpmod.SessionDescription | None,
    ) -> bytes:
        if offer is None:
            ports = await media.ports_for(2)
            return negotiator.offer(ports).serialise()
        wanted = [
            i
            for i, m in enumerate(offer.media)
            if m.port and m.kind in ("audio", "video") and m.proto.upper() in sdpmod.RTP_PROTOS
        ]
        ports = await media.ports_for(max(wanted) + 1) if wanted else {}
        ports = {i: p for i, p in ports.items() if i in wanted}
        negotiation = negotiator.answer(offer, ports)
        media.apply(negotiation.streams)
        return negotiation.local.serialise()

    def _ok(self, req: SipRequest, call: SipCall, body: bytes, tag: str, interval: int | None) -> SipResponse:
        resp = self._response(req, 200, to_tag=tag)
        resp.add("Contact", call.dialog.local_contact)
        resp.add("Allow", ALLOW)
        resp.add("Supported", SUPPORTED)
        if interval is not None and "timer" in req.tokens("Supported"):
            refresher = "uac"
            raw = req.get("Session-Expires") or ""
            if "refresher=uas" in raw.replace(" ", "").lower():
                refresher = "uas"
            if refresher == "uas":
                refresher = "uac"  # we never send refreshes ourselves; RFC 4028 §9 lets the UAS pick
            resp.add("Session-Expires", f"{interval};refresher={refresher}")
            resp.add("Require", "timer")
            self._arm_session_timer(call, interval)
        if body:
            resp.add("Content-Type", "application/sdp")
            resp.body = body
        return resp

    def _arm_session_timer(self, call: SipCall, interval: int) -> None:
        """RFC 4028 §10: without a refresh, the session ends before the interval runs out."""
        call.session_expires = interval
        if call._expiry is not None:
            call._expiry.cancel()
        delay = interval - min(32, interval / 3)
        loop = asyncio.get_running_loop()
        call._expiry = loop.call_later(delay, lambda: self._spawn(self._bye(call, "session timer expired")))

    def _on_ack(self, ack: SipRequest) -> None:
        call = self._find_call(ack)
        if call is None or call.ended:
            return
        txn = call.invite_txn
        if txn is None:
            return
        num, _ = ack.cseq
        if num != txn.request.cseq[0]:
            return
        txn.ack_received()
        call.invite_txn = None
        if call.awaiting_answer_in_ack:
            call.awaiting_answer_in_ack = False
            try:
                if ack.content_type != "application/sdp" or not ack.body.strip():
                    raise sdpmod.NoCommonCodec("ACK carried no SDP answer")
                answer = sdpmod.SessionDescription.parse(ack.body)
                negotiation = call.negotiator.accept_answer(answer)
            except (sdpmod.SdpError, sdpmod.NoCommonCodec) as e:
                # RFC 3261 §13.3.1.4: a bad answer in the ACK ends the session with a BYE.
                self._spawn(self._bye(call, f"bad answer in ACK: {e}"))
                return
            call.media.apply(negotiation.streams)
            call.last_remote_version = answer.origin
        call.dialog.state = DialogState.CONFIRMED
        if not call.established:
            call.established = True
            self._notify(lambda: self.handler.on_established(call))
        else:
            self._notify(lambda: self.handler.on_session_changed(call))

    def _wire_media(self, call: SipCall) -> None:
        for ep in call.media.endpoints.values():
            ep.on_dtmf = lambda d, c=call: self._dtmf(c, d)  # type: ignore[misc]

    def _dtmf(self, call: SipCall, digit: str) -> None:
        """A digit from RTP or INFO: to PIN entry while it runs, else to the handler (IVR, *8...)."""
        if call.pin_digits is not None:
            with contextlib.suppress(asyncio.QueueFull):
                call.pin_digits.put_nowait(digit)
            return
        self._notify(lambda: self.handler.on_dtmf(call, digit))

    def _on_cancel(self, cancel: SipRequest, source: Source) -> None:
        txn = self.txn.create_server(cancel, source)
        invite = self.txn.find_invite(cancel)
        if invite is None:
            txn.respond(self._response(cancel, 481))
            return
        txn.respond(self._response(cancel, 200))
        if not invite.final:
            resp = self._response(invite.request, 487, to_tag=new_tag())
            invite.respond(resp)

    async def _in_dialog(self, call: SipCall, req: SipRequest, txn: ServerTransaction) -> None:
        method = req.method.upper()
        if not call.dialog.accept_cseq(req):
            resp = self._response(req, 500, "CSeq out of order")
            txn.respond(resp)
            return
        if method == "BYE":
            txn.respond(self._response(req, 200))
            self._end(call, "remote hangup")
        elif method == "OPTIONS":
            resp = self._response(req, 200)
            resp.add("Accept", "application/sdp")
            resp.add("Supported", SUPPORTED)
            txn.respond(resp)
        elif method == "INFO":
            self._on_info(call, req, txn)
        elif method in ("INVITE", "UPDATE"):
            await self._on_reoffer(call, req, txn)
        elif method in KNOWN_UNSUPPORTED:
            txn.respond(self._response(req, 405))
        else:
            txn.respond(self._response(req, 501))

    def _on_info(self, call: SipCall, req: SipRequest, txn: ServerTransaction) -> None:
        if not req.body.strip():
            txn.respond(self._response(req, 200))  # an empty INFO is a keep-alive
            return
        digit = parse_info_body(req.content_type, req.body)
        if digit is None:
            resp = self._response(req, 415)
            resp.add("Accept", "application/dtmf-relay, application/dtmf")
            txn.respond(resp)
            return
        txn.respond(self._response(req, 200))
        self._dtmf(call, digit)

    async def _on_reoffer(self, call: SipCall, req: SipRequest, txn: ServerTransaction) -> None:
        """re-INVITE / UPDATE (RFC 3311): hold, resume, codec change, session refresh."""
        is_invite = req.method.upper() == "INVITE"
        if is_invite:
            txn.respond(self._response(req, 100))
        if (call.invite_txn is not None and is_invite) or call.awaiting_answer_in_ack:
            # §14.2: an INVITE while one is pending -> 500 + Retry-After (491 is for glare with ours).
            resp = self._response(req, 500, "Previous INVITE pending")
            resp.add("Retry-After", str(1 + secrets.randbelow(10)))
            txn.respond(resp)
            return
        reject = self._check_extensions(req)
        interval: int | None = None
        if reject is None:
            interval, reject = self._session_interval(req)
        if reject is not None:
            txn.respond(reject)
            return
        try:
            offer = self._offer_from(req)
        except TypeError:
            txn.respond(self._response(req, 415))
            return
        except sdpmod.SdpError as e:
            resp = self._response(req, 400, "Bad SDP")
            resp.add("Warning", f'399 vdx "{e}"')
            txn.respond(resp)
            return
        body = b""
        if offer is not None:
            if offer.origin == call.last_remote_version and call.negotiation is not None:
                body = call.negotiation.local.serialise()  # unchanged session (RFC 3264 §8)
            else:
                try:
                    body = await self._negotiate(call.negotiator, call.media, offer)
                except sdpmod.NoCommonCodec as e:
                    resp = self._response(req, 488)
                    resp.add("Warning", f'304 vdx "{e}"')
                    txn.respond(resp)
                    return  # the previous session stays in force (RFC 3264 §8)
                except OSError:
                    resp = self._response(req, 500, "No media ports")
                    resp.add("Retry-After", "2")
                    txn.respond(resp)
                    return
                call.last_remote_version = offer.origin
        elif is_invite:
            # Delayed offer in a re-INVITE: our offer in the 200, their answer in the ACK.
            ports = {i: ep.port for i, ep in call.media.endpoints.items()}
            body = call.negotiator.offer(ports).serialise()
            call.awaiting_answer_in_ack = True
        resp = self._response(req, 200)
        resp.add("Contact", call.dialog.local_contact)
        resp.add("Supported", SUPPORTED)
        if interval is not None and "timer" in req.tokens("Supported"):
            resp.add("Session-Expires", f"{interval};refresher=uac")
            resp.add("Require", "timer")
            self._arm_session_timer(call, interval)
        elif call.session_expires is not None:
            self._arm_session_timer(call, call.session_expires)  # any refresh restarts the timer
        if body:
            resp.add("Content-Type", "application/sdp")
            resp.body = body
        if is_invite:
            assert isinstance(txn, InviteServerTransaction)
            call.invite_txn = txn
            txn.on_ack_timeout = lambda _t: self._spawn(self._bye(call, "no ACK for re-INVITE"))
        txn.respond(resp)
        if offer is not None and not is_invite:
            self._notify(lambda: self.handler.on_session_changed(call))

    # --- ending calls --------------------------------------------------------------------------

    def _end(self, call: SipCall, reason: str) -> None:
        if call.ended:
            return
        call.ended = True
        call.ended_reason = reason
        call.dialog.state = DialogState.TERMINATED
        if call._expiry is not None:
            call._expiry.cancel()
        self.calls.pop(call.dialog.key, None)
        call.media.close()
        self._notify(lambda: self.handler.on_ended(call, reason))

    async def _bye(self, call: SipCall, reason: str, wait: bool = True) -> None:
        if call.ended:
            return
        bye = call.dialog.request("BYE")
        bye.add("Reason", f'SIP;cause=200;text="{reason}"')
        client = self.txn.send_request(bye, call.dialog.source)
        self._end(call, reason)
        if wait:
            await client.result
