"""The SIP user agent server of a conferencing node: room systems dial ``sip:<alias>@<domain>``.

It routes requests to transactions and dialogs and answers each with the right status; a
:class:`~vdx.sip.call.CallHandler` (the node's room policy) decides on each INVITE. Offers are read
and answered in :mod:`.offer_answer`, PINs collected in :mod:`.pin_entry`. A call the peer never
hangs up still ends (:mod:`.liveness`): when its media falls silent, when its refresh is missing,
or when our own refresh fails (RFC 4028: we refresh when the peer asks us to, or cannot).

Its own answers: 400 malformed, 405/501 methods we do not serve, 415 non-SDP bodies, 420 unknown
Require, 422 too-small session interval (RFC 4028), 481 unknown dialog or transaction, 483 no hops
left, 487 cancelled, 488 no common codec, 500 out-of-order CSeq or an INVITE already pending, 503 +
Retry-After when INVITEs arrive faster than ``max_invites_per_second``; the handler's own (404,
480, 486, 403...) pass through.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import secrets
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from . import media_control
from .call import Accept, CallHandler, IncomingCall, Reject, RequirePin, Ring, SipCall
from .dialog import Dialog, new_branch, new_tag
from .dtmf import parse_info_body
from .liveness import MediaWatch, SessionTimer, answer_timer, refresh_request, refreshed_timer
from .locator import LocationFailed, ServerLocator
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
from .offer_answer import Refused, answer, answer_reoffer, read_offer, take_answer, take_refresh_answer
from .pin_entry import collect_pin
from .rate_limit import TokenBucket
from .sdp import MediaConfig, Negotiator, NoCommonCodec, SdpError, SessionDescription
from .server_location import Target, describe_tried
from .tls import client_context, server_context
from .transaction import (
    InviteClientTransaction,
    InviteServerTransaction,
    ServerTransaction,
    State,
    Timers,
    TransactionLayer,
)
from .transport import SipListeners, Source
from .uac import (
    MAX_REDIRECTS,
    DialState,
    OutgoingCall,
    answer_challenge,
    outcome_of,
    port_of,
    redirect_target,
    wants_encryption,
)

log = logging.getLogger("vdx.sip.server")

ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE"
SERVED = frozenset({"INVITE", "BYE", "OPTIONS", "INFO", "UPDATE"})  # what reaches _on_request of ALLOW
SUPPORTED = "timer"
KNOWN_UNSUPPORTED = {"REGISTER", "SUBSCRIBE", "NOTIFY", "PUBLISH", "MESSAGE", "REFER", "PRACK"}
MIN_SE = 90  # RFC 4028 §4: the smallest session interval a UA may demand
MAX_SE = 86400  # the largest a peer's 422 may make us refresh at (a day)
USER_AGENT = "vdx"

A = TypeVar("A")
R = TypeVar("R")


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
    media: MediaConfig = field(default_factory=MediaConfig)
    timers: Timers = field(default_factory=Timers)
    advertised_host: str | None = None  # address written into Contact/SDP; default: the local one
    min_session_expires: int = MIN_SE  # RFC 4028 Min-SE: shorter Session-Expires get 422
    media_timeout: float | None = 30.0  # no RTP/RTCP for this long ends an answered call (None: never)
    domain: str = ""  # the From host of our dial-outs; default: the local address
    tls_cafile: str | None = None  # what a dial-out over TLS trusts besides the system's CAs
    tls_verify: bool = True  # check the certificate of a peer we call over TLS
    dns_servers: tuple[tuple[str, int], ...] = ()  # where dial-outs locate servers; (): the system's
    # how long one located server may stay silent before the next is tried; None: Timer B
    dial_target_timeout: float | None = None


class SipServer:
    def __init__(self, config: SipServerConfig, handler: CallHandler) -> None:
        self.config = config
        self.handler = handler
        self.listeners = SipListeners(self._receive)
        self.calls: dict[tuple[str, str, str], SipCall] = {}
        # INVITEs ringing (``Ring``): the task deciding each, which a CANCEL cancels
        self._ringing: dict[InviteServerTransaction, asyncio.Task[Accept | Reject]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._bucket = TokenBucket(config.max_invites_per_second)
        self._txn: TransactionLayer | None = None
        self._allocator = PortAllocator(config.rtp_host, config.rtp_ports)
        self._tls_client: ssl.SSLContext | None = None
        self.locator = ServerLocator(config.dns_servers)
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

    async def _ask(self, fn: Callable[[A], Awaitable[R]], arg: A, what: str, alias: str) -> R | Reject:
        """The node's answer; a failure there (database down...) is logged and counted, and the
        transaction still ends, with 500."""
        try:
            return await fn(arg)
        except Exception:
            log.exception("%s failed for %s", what, alias)
            self.task_failures += 1
            return Reject(500)

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
            self._answer_defect(msg, source)
            return
        txn = self.txn.match(msg)
        if txn is not None:
            self.retransmissions_absorbed += 1
            txn.on_retransmission(msg)
            return
        method = msg.method.upper()
        if method == "ACK":
            self._on_ack(msg)
        elif method == "CANCEL":
            self._on_cancel(msg, source)
        elif self.txn.full():
            self._stateless(msg, source, 503, retry_after=self.config.retry_after)
        else:
            # The transaction exists before any await, so a retransmission arriving meanwhile is absorbed.
            self._spawn(self._on_request(msg, source, self.txn.create_server(msg, source)))

    def _answer_defect(self, msg: SipRequest, source: Source) -> None:
        """A request that parsed but is malformed: 505, or 400 with the defect as Warning (an ACK
        is never answered)."""
        if msg.method.upper() == "ACK":
            return
        if msg.defect == "unsupported SIP version":
            source.send(make_response(msg, 505).serialise())
            return
        resp = make_response(msg, 400, "Bad Request")
        resp.add("Warning", f'399 vdx "{msg.defect}"')
        source.send(resp.serialise())

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

    def _refusal(self, req: SipRequest, refused: Refused, to_tag: str | None = None) -> SipResponse:
        resp = self._response(req, refused.status, refused.reason, to_tag=to_tag)
        for name, value in refused.headers:
            resp.add(name, value)
        return resp

    def _rejection(self, req: SipRequest, reject: Reject, to_tag: str) -> SipResponse:
        resp = self._response(req, reject.status, reject.reason, to_tag=to_tag)
        if reject.retry_after is not None:
            resp.add("Retry-After", str(reject.retry_after))
        if reject.contact is not None:
            resp.add("Contact", reject.contact)
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
        unsupported = req.tokens("Require") - {SUPPORTED}
        if unsupported and method in SERVED:
            # §8.2.2.3: every request we serve (ACK and CANCEL never come here) is checked alike.
            resp = self._response(req, 420, to_tag=None if req.to.tag else new_tag())
            resp.add("Unsupported", ", ".join(sorted(unsupported)))
            txn.respond(resp)
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

    async def _on_invite(self, req: SipRequest, source: Source, txn: InviteServerTransaction) -> None:
        if not self._bucket.take():
            self.rejected_overload += 1
            overload = Refused(503, None, ("Retry-After", str(self.config.retry_after)))
            txn.respond(self._refusal(req, overload, new_tag()))
            return
        txn.respond(self._response(req, 100))
        try:
            offer, interval = read_offer(req, self.config.min_session_expires)
        except Refused as refused:
            txn.respond(self._refusal(req, refused, new_tag()))
            return
        incoming = _incoming_call(req, source, offer)
        decision = await self._ask(self.handler.on_invite, incoming, "call policy", incoming.alias)
        if txn.final:
            return  # cancelled while the policy was deciding
        tag = new_tag()
        if isinstance(decision, Ring):
            rung = await self._ring_until_answered(req, txn, decision, tag, incoming.alias)
            if rung is None:
                return  # cancelled while it rang
            decision = rung
        if isinstance(decision, Reject):
            txn.respond(self._rejection(req, decision, tag))
            return
        opened = await self._open_call(req, source, txn, incoming, offer, tag)
        if opened is None:
            return
        call, body = opened
        if isinstance(decision, RequirePin):
            accepted = await self._pin_entry(call, req, txn, decision, body if offer is not None else b"")
            if accepted is None:
                return
            decision = accepted
        call.context = decision.context
        txn.on_ack_timeout = lambda _t, c=call: self._spawn(self._bye(c, "no ACK"))  # type: ignore[misc]
        txn.respond(self._ok(req, call, body, interval, new_dialog=True))

    async def _ring_until_answered(
        self, req: SipRequest, txn: InviteServerTransaction, ring: Ring, tag: str, alias: str
    ) -> Accept | Reject | None:
        """180 Ringing, then the node's outcome; None when the caller CANCELs meanwhile (the CANCEL
        cancels the outcome's task, so whoever was ringing hears of it at once)."""
        ringing = self._response(req, 180, to_tag=tag)
        txn.respond(ringing)
        task = asyncio.ensure_future(self._ask(lambda _: ring.outcome(), None, "ringing", alias))
        self._ringing[txn] = task
        try:
            return await task
        except asyncio.CancelledError:
            if txn.final and task.cancelled():
                return None
            raise
        finally:
            self._ringing.pop(txn, None)

    async def _open_call(
        self,
        req: SipRequest,
        source: Source,
        txn: InviteServerTransaction,
        incoming: IncomingCall,
        offer: SessionDescription | None,
        tag: str,
    ) -> tuple[SipCall, bytes] | None:
        """Bind RTP ports and answer the offer (or make ours), then register the call so that
        requests inside its dialog find it; None when refused or cancelled meanwhile."""
        negotiator = Negotiator(self.config.media, self._local_host(source))
        media = MediaSession(self._allocator)
        try:
            body = await answer(
                negotiator, media, offer, no_ports_status=503, retry_after=self.config.retry_after
            )
        except Refused as refused:
            media.close()
            txn.respond(self._refusal(req, refused, tag))
            return None
        if txn.final:
            media.close()
            return None
        dialog = Dialog.from_invite(req, source, tag, self._contact(source, incoming.alias))
        call = SipCall(incoming, dialog, negotiator, media, self._bye, invite_txn=txn)
        call.awaiting_answer_in_ack = offer is None
        call.last_remote_version = offer.origin if offer is not None else None
        self.calls[dialog.key] = call
        for ep in media.endpoints.values():
            ep.on_dtmf = lambda d, c=call: self._dtmf(c, d)  # type: ignore[misc]
        return call, body

    async def _pin_entry(
        self, call: SipCall, req: SipRequest, txn: InviteServerTransaction, ask: RequirePin, early_sdp: bytes
    ) -> Accept | None:
        """183 with early media (so RFC 4733 digits can flow; SIP INFO works too), then PIN entry;
        a refused or cancelled call is forgotten."""
        progress = self._response(req, 183, to_tag=call.dialog.local_tag)
        progress.add("Contact", call.dialog.local_contact)
        if early_sdp:
            progress.add("Content-Type", "application/sdp")
            progress.body = early_sdp
        txn.respond(progress)
        alias = call.incoming.alias
        outcome = await collect_pin(
            call, ask, lambda pin: self._ask(ask.check, pin, "PIN check", alias), lambda: txn.final
        )
        if isinstance(outcome, Accept):
            return outcome
        if outcome is not None:
            txn.respond(self._rejection(req, outcome, call.dialog.local_tag))
        call.ended = True
        self.calls.pop(call.dialog.key, None)
        call.media.close()
        return None

    def _ok(
        self, req: SipRequest, call: SipCall, body: bytes, interval: int | None, *, new_dialog: bool
    ) -> SipResponse:
        """The 2xx to an INVITE, re-INVITE or UPDATE; the one that makes the dialog also lists our
        methods. A refresh restarts the session timer (RFC 4028 §10)."""
        resp = self._response(req, 200, to_tag=call.dialog.local_tag)
        resp.add("Contact", call.dialog.local_contact)
        if new_dialog:
            resp.add("Allow", ALLOW)
        resp.add("Supported", SUPPORTED)
        if interval is not None:
            timer, headers = answer_timer(req, interval)
            for name, value in headers:
                resp.add(name, value)
            self._arm_session_timer(call, timer)
        elif call.session_expires is not None:
            self._arm_session_timer(call, SessionTimer(call.session_expires, call.we_refresh))
        if body:
            resp.add("Content-Type", "application/sdp")
            resp.body = body
        return resp

    def _arm_session_timer(self, call: SipCall, timer: SessionTimer, delay: float | None = None) -> None:
        """RFC 4028: as the refresher we refresh at half the interval (§7.2); otherwise, without
        a refresh, the session ends before the interval runs out (§10)."""
        call.session_expires = timer.interval
        call.we_refresh = timer.we_refresh
        if call.session_timer is not None:
            call.session_timer.cancel()
        act = self._refresh if timer.we_refresh else self._expired
        call.session_timer = asyncio.get_running_loop().call_later(
            timer.delay if delay is None else delay, lambda: self._spawn(act(call))
        )

    async def _expired(self, call: SipCall) -> None:
        await self._bye(call, "session timer expired")

    async def _refresh(self, call: SipCall) -> None:
        """Our session refresh (RFC 4028 §7.4); one that fails ends the call (§10)."""
        interval = call.session_expires
        if call.ended or interval is None:
            return
        if call.invite_txn is not None or call.awaiting_answer_in_ack:
            # The peer's own re-INVITE is under way (and refreshes too): ours would meet a 491.
            self._arm_session_timer(call, SessionTimer(interval, True), delay=1.0)
            return
        method = "UPDATE" if "UPDATE" in call.dialog.remote_methods else "INVITE"
        request = refresh_request(call, method, interval)
        call.refreshing = True
        try:
            response = await self._send_in_dialog(call, request)
        finally:
            call.refreshing = False
        if call.ended:
            return
        if response is not None and 200 <= response.status < 300:
            self._refreshed(call, response)
        elif not self._retry_refresh(call, response):
            outcome = "no answer" if response is None else f"{response.status} {response.reason}"
            await self._bye(call, f"session refresh failed: {outcome}")

    async def _send_in_dialog(self, call: SipCall, request: SipRequest) -> SipResponse | None:
        """Our request's final response (None on timeout); every 2xx to a re-INVITE, the
        retransmitted ones too, gets the ACK (§13.2.2.4)."""
        source = call.dialog.source
        if request.method != "INVITE":
            return await self.txn.send_request(request, source).result
        ack = call.dialog.ack(request).serialise()

        def on_response(resp: SipResponse) -> None:
            if 200 <= resp.status < 300:
                source.send(ack)

        return await self.txn.send_invite(request, source, on_response).result

    def _refreshed(self, call: SipCall, response: SipResponse) -> None:
        """A 2xx to our refresh: its answer, and the timer it names (none without Session-Expires, §7.2)."""
        try:
            changed = take_refresh_answer(call, response)
        except (SdpError, NoCommonCodec) as e:
            self._spawn(self._bye(call, f"bad answer to our refresh: {e}"))
            return
        if changed:
            self._notify(lambda: self.handler.on_session_changed(call))
        timer = refreshed_timer(response)
        if timer is None:
            call.session_expires = None
        else:
            self._arm_session_timer(call, timer)

    def _retry_refresh(self, call: SipCall, response: SipResponse | None) -> bool:
        """491 (glare): again after a random 2.1-4 s (RFC 3261 §14.1); 422: again at once with the
        peer's larger Min-SE (RFC 4028 §7.4). False when the refresh simply failed."""
        interval = call.session_expires
        if response is None or interval is None:
            return False
        if response.status == 491:
            self._arm_session_timer(
                call, SessionTimer(interval, True), delay=2.1 + secrets.randbelow(1900) / 1000
            )
            return True
        min_se = (response.get("Min-SE") or "").split(";", 1)[0].strip()
        if response.status == 422 and digits(min_se) and interval < int(min_se) <= MAX_SE:
            self._arm_session_timer(call, SessionTimer(int(min_se), True), delay=0)
            return True
        return False

    def _on_ack(self, ack: SipRequest) -> None:
        call = self._find_call(ack)
        if call is None or call.ended or call.invite_txn is None:
            return
        txn = call.invite_txn
        if ack.cseq[0] != txn.request.cseq[0]:
            return
        txn.ack_received()
        call.invite_txn = None
        if call.awaiting_answer_in_ack:
            call.awaiting_answer_in_ack = False
            try:
                take_answer(call, ack)
            except (SdpError, NoCommonCodec) as e:
                self._spawn(self._bye(call, f"bad answer in ACK: {e}"))
                return
        if not call.established:
            call.established = True
            self._watch_media(call)
            self._notify(lambda: self.handler.on_established(call))
        else:
            self._notify(lambda: self.handler.on_session_changed(call))

    def _watch_media(self, call: SipCall) -> None:
        timeout = self.config.media_timeout
        if timeout:
            call.media_watch = MediaWatch(call, timeout, lambda reason: self._spawn(self._bye(call, reason)))
            call.media_watch.start()

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
            invite.respond(self._response(invite.request, 487, to_tag=new_tag()))
        ringing = self._ringing.pop(invite, None)
        if ringing is not None:
            ringing.cancel()

    async def _in_dialog(self, call: SipCall, req: SipRequest, txn: ServerTransaction) -> None:
        method = req.method.upper()
        if not call.dialog.accept_cseq(req):
            txn.respond(self._response(req, 500, "CSeq out of order"))
        elif method == "BYE":
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
        if req.content_type.lower() == media_control.CONTENT_TYPE:
            self._on_media_control(call, req, txn)
            return
        digit = parse_info_body(req.content_type, req.body)
        if digit is None:
            resp = self._response(req, 415)
            resp.add("Accept", f"application/dtmf-relay, application/dtmf, {media_control.CONTENT_TYPE}")
            txn.respond(resp)
            return
        txn.respond(self._response(req, 200))
        self._dtmf(call, digit)

    def _on_media_control(self, call: SipCall, req: SipRequest, txn: ServerTransaction) -> None:
        """RFC 5168: a picture_fast_update is a keyframe request on the call's video, as a PLI
        would be; other media control is taken (200) and left alone; a body that is none, 400."""
        try:
            wanted = media_control.asks_picture_update(req.body)
        except media_control.MediaControlError:
            txn.respond(self._response(req, 400, "Not a media control document"))
            return
        txn.respond(self._response(req, 200))
        video = call.media.endpoint("video")
        if wanted and video is not None:
            video.keyframe_requested()

    async def _on_reoffer(self, call: SipCall, req: SipRequest, txn: ServerTransaction) -> None:
        """re-INVITE / UPDATE (RFC 3311): hold, resume, codec change, session refresh."""
        invite = req.method.upper() == "INVITE"
        if invite:
            txn.respond(self._response(req, 100))
        if (call.invite_txn is not None and invite) or call.awaiting_answer_in_ack:
            # §14.2: an INVITE while one is pending -> 500 + Retry-After (491 is for glare with ours).
            pending = Refused(500, "Previous INVITE pending", ("Retry-After", str(1 + secrets.randbelow(10))))
            txn.respond(self._refusal(req, pending))
            return
        if call.refreshing and (invite or req.body.strip()):
            txn.respond(self._response(req, 491))  # glare with our refresh's offer (§14.2, RFC 3311 §5.2)
            return
        try:
            offer, interval = read_offer(req, self.config.min_session_expires)
            body = await answer_reoffer(call, offer, invite=invite)
        except Refused as refused:
            txn.respond(self._refusal(req, refused))
            return
        if invite:
            assert isinstance(txn, InviteServerTransaction)
            call.invite_txn = txn
            txn.on_ack_timeout = lambda _t: self._spawn(self._bye(call, "no ACK for re-INVITE"))
        txn.respond(self._ok(req, call, body, interval, new_dialog=False))
        if offer is not None and not invite:
            self._notify(lambda: self.handler.on_session_changed(call))

    # --- calling out (the UAC) ------------------------------------------------------------------

    def is_self(self, uri: SipUri) -> bool:
        """Whether ``uri`` names this node: its SIP domain, or one of its listeners (a dial-out
        there would call back into the node)."""
        host = uri.host.lower()
        if self.config.domain and host == self.config.domain.lower():
            return True
        return self.listens_at(host, port_of(uri))

    def listens_at(self, host: str, port: int) -> bool:
        """Whether ``host`` (a name or an address) and ``port`` are one of this node's listeners."""
        if port not in {self.port, self.tls_port} - {0}:
            return False
        if host in {"localhost", (self.config.advertised_host or "").lower(), self.config.host.lower()}:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return address.is_loopback or (
            self.config.host in ("0.0.0.0", "::") and str(address) in _local_addresses()
        )

    async def dial(self, out: OutgoingCall, on_progress: Callable[[DialState, str], None]) -> SipCall | None:
        """Call ``out.target`` (RFC 3261 §8.1, §13.2): our offer in the INVITE, 3xx followed, a
        digest challenge answered, CANCEL once ``ring_timeout`` passed. Its server is located per
        RFC 3263 (:mod:`.locator`); a server that cannot be reached, stays silent or answers 503
        hands the INVITE to the next one (§4.3). The answered call is a :class:`SipCall` like an
        incoming one, handed to ``handler.on_established``; None when the dial ended otherwise
        (told to ``on_progress`` with why). Nothing stays behind."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + out.ring_timeout
        target, call_id, tag, cseq = out.target, f"{secrets.token_hex(12)}@vdx", new_tag(), 0
        authorization: tuple[str, str] | None = None
        challenges = redirects = 0
        on_progress(DialState.CALLING, str(target))
        source: Source | None = None  # kept for a challenge's retry; a redirect away opens another
        servers = _Servers(
            self.locator, self._connect, self.listens_at, lambda d: on_progress(DialState.CALLING, d)
        )
        while True:
            hop = out.proxy or target
            if source is None:
                reached = await servers.reach(hop)
                if isinstance(reached, str):
                    on_progress(DialState.FAILED, reached)
                    return None
                source = reached
            try:
                media, negotiator, offer = await self._offer(out, target, hop, source)
            except OSError:
                source.close()
                on_progress(DialState.FAILED, "no media ports free")
                return None
            cseq += 1
            invite = self._invite(out, target, source, (call_id, tag, cseq), offer, authorization)
            silence = (
                (self.config.dial_target_timeout or 64 * self.config.timers.t1) if servers.more else None
            )
            try:
                response, dialog, timed_out, heard = await self._ring(
                    invite, source, deadline, on_progress, silence
                )
            except asyncio.CancelledError:
                media.close()
                # the CANCEL's answer and the 487 still come back on a TCP/TLS connection
                loop.call_later(8 * self.config.timers.t1, source.close)
                on_progress(DialState.CANCELLED, "dial cancelled")
                raise
            if response is not None and dialog is not None and 200 <= response.status < 300:
                call = SipCall(_dialled(out, target, source, call_id), dialog, negotiator, media, self._bye)
                return await self._answered(call, response, out, on_progress, timed_out)
            media.close()
            failed = _server_failure(response, heard, timed_out)
            if failed is not None and servers.more:  # §4.3: the next server of the same address
                source.close()
                source = None
                servers.failed(failed)
                continue
            if response is None or timed_out:
                source.close()
                unanswered = (DialState.NO_ANSWER, "no answer")
                silent = servers.detail(f"no response from {hop.host}", "no response")
                on_progress(*(unanswered if heard else (DialState.FAILED, silent)))
                return None
            retry = self._retry(response, invite, out, redirects, challenges)
            if isinstance(retry, SipUri):
                log.info("dial-out %s redirected to %s", target, retry)
                if out.proxy is None:  # through a trunk, its proxy carries the new INVITE too
                    source.close()
                    source = None
                target, redirects, authorization = retry, redirects + 1, None
                continue
            if retry is not None:
                authorization, challenges = retry, challenges + 1
                continue
            source.close()
            ended = f"{response.status} {response.reason}".strip()
            on_progress(outcome_of(response.status), servers.detail(ended, ended))
            return None

    def _retry(
        self, response: SipResponse, invite: SipRequest, out: OutgoingCall, redirects: int, challenges: int
    ) -> SipUri | tuple[str, str] | None:
        """What a final non-2xx leads to: the address a 3xx names (§8.1.3.4; never this node), the
        header answering a 401/407 challenge (§22.2, §22.3), or None: the dial ends there."""
        if 300 <= response.status < 400 and redirects < MAX_REDIRECTS:
            redirected = redirect_target(response.get_all("Contact"))
            if redirected is not None and not self.is_self(redirected):
                return redirected
        if response.status in (401, 407) and out.credentials is not None and challenges < 2:
            return answer_challenge(response, invite, out.credentials)
        return None

    async def _offer(
        self, out: OutgoingCall, target: SipUri, hop: SipUri, source: Source
    ) -> tuple[MediaSession, Negotiator, bytes]:
        """Our offer for one INVITE, its RTP ports bound; SDES keys when the room, the address or
        the node asks for encryption. OSError when no ports are free."""
        secure = (
            out.secure or wants_encryption(target) or wants_encryption(hop) or self.config.media.require_srtp
        )
        negotiator = Negotiator(replace(self.config.media, require_srtp=secure), self._local_host(source))
        media = MediaSession(self._allocator)
        try:
            return media, negotiator, negotiator.offer(await media.ports_for(2)).serialise()
        except OSError:
            media.close()
            raise

    async def _connect(self, place: Target, hop: SipUri) -> Source:
        """The way to one located server of ``hop`` (TLS checks the certificate names the
        dialled host, RFC 5922 §4); OSError when unreachable."""
        ctx = None
        if place.transport == "TLS":
            if self._tls_client is None:
                cafile = Path(self.config.tls_cafile) if self.config.tls_cafile else None
                self._tls_client = client_context(cafile, self.config.tls_verify)
            ctx = self._tls_client
        connecting = self.listeners.connect(place.transport, place.address, place.port, ctx, hop.host)
        return await asyncio.wait_for(connecting, 10.0)

    def _invite(
        self,
        out: OutgoingCall,
        target: SipUri,
        source: Source,
        ids: tuple[str, str, int],
        offer: bytes,
        authorization: tuple[str, str] | None,
    ) -> SipRequest:
        call_id, tag, cseq = ids
        host = self._local_host(source)
        host = f"[{host}]" if ":" in host else host
        invite = SipRequest(method="INVITE", uri=str(target))
        invite.add(
            "Via", f"SIP/2.0/{source.transport} {host}:{source.local_port};branch={new_branch()};rport"
        )
        invite.add("Max-Forwards", "70")
        display = out.display_name.replace('"', "").replace("\\", "")[:64]
        domain = out.from_domain or self.config.domain or host
        invite.add("From", f'"{display}" <sip:{out.alias}@{domain}>;tag={tag}')
        to = SipUri(target.scheme, target.user, target.host, target.port)
        invite.add("To", f"<{to}>")
        invite.add("Call-ID", call_id)
        invite.add("CSeq", f"{cseq} INVITE")
        if out.proxy is not None:
            proxy = SipUri(out.proxy.scheme, None, out.proxy.host, out.proxy.port, dict(out.proxy.params))
            proxy.params["lr"] = None
            invite.add("Route", f"<{proxy}>")
        invite.add("Contact", self._contact(source, out.alias))
        invite.add("Allow", ALLOW)
        invite.add("Supported", SUPPORTED)
        invite.add("User-Agent", USER_AGENT)
        if authorization is not None:
            invite.add(*authorization)
        invite.add("Content-Type", "application/sdp")
        invite.body = offer
        return invite

    async def _ring(
        self,
        invite: SipRequest,
        source: Source,
        deadline: float,
        on_progress: Callable[[DialState, str], None],
        silence: float | None = None,
    ) -> tuple[SipResponse | None, Dialog | None, bool, bool]:
        """Send the INVITE and wait for its final response until ``deadline``; then CANCEL it
        (once it rang, §9.1) or drop it. Every 2xx, retransmissions too, gets our ACK (§13.2.2.4).
        Returns the final, the dialog of a 2xx, whether the deadline passed, and whether the peer
        answered anything at all (a 100 Trying will do). A peer silent for ``silence`` seconds
        is dropped then (another server may take the INVITE)."""
        loop = asyncio.get_running_loop()
        made: list[Dialog] = []
        rang = False
        answered: asyncio.Future[None] = loop.create_future()

        def on_response(resp: SipResponse) -> None:
            nonlocal rang
            if not answered.done():
                answered.set_result(None)
            if resp.status in (180, 183) and not rang:
                rang = True
                on_progress(DialState.RINGING, f"{resp.status} {resp.reason}".strip())
            elif 200 <= resp.status < 300:
                if not made:
                    made.append(Dialog.from_answer(invite, resp, source))
                source.send(made[0].ack(invite).serialise())

        txn = self.txn.send_invite(invite, source, on_response)
        try:
            if silence is not None and loop.time() + silence < deadline:
                either: set[asyncio.Future[Any]] = {answered, txn.result}
                await asyncio.wait(either, timeout=silence)
                if not answered.done() and not txn.result.done():
                    txn.abandon()
                    return None, None, False, False
            response = await asyncio.wait_for(asyncio.shield(txn.result), max(0.0, deadline - loop.time()))
            return response, (made[0] if made else None), False, response is not None
        except TimeoutError:
            pass
        except asyncio.CancelledError:
            self._give_up(txn, source)
            raise
        heard = txn.state is not State.TRYING
        if self._give_up(txn, source):
            with contextlib.suppress(TimeoutError):
                response = await asyncio.wait_for(asyncio.shield(txn.result), 8 * self.config.timers.t1)
                return response, (made[0] if made else None), True, True
        txn.abandon()
        return None, None, True, heard

    def _give_up(self, txn: InviteClientTransaction, source: Source) -> bool:
        """CANCEL a ringing INVITE (True), or stop one that never rang."""
        if not txn.pending:
            return False
        if txn.state is State.PROCEEDING:
            self.txn.send_request(txn.cancel_request(), source)
            return True
        txn.abandon()
        return False

    async def _answered(
        self,
        call: SipCall,
        response: SipResponse,
        out: OutgoingCall,
        on_progress: Callable[[DialState, str], None],
        too_late: bool,
    ) -> SipCall | None:
        """Our INVITE's 2xx: apply its answer and run the call as an established one; a 2xx after
        we gave up, or with an unusable answer, is ended with a BYE (§13.2.2.4, §13.3.1.4)."""
        self.calls[call.dialog.key] = call
        for ep in call.media.endpoints.values():
            ep.on_dtmf = lambda d, c=call: self._dtmf(c, d)  # type: ignore[misc]
        problem = "answered too late" if too_late else None
        if problem is None:
            try:
                take_answer(call, response)
            except (SdpError, NoCommonCodec) as e:
                problem = f"unusable answer: {e}"
        if problem is not None:
            await self._bye(call, problem)
            call.dialog.source.close()
            on_progress(DialState.NO_ANSWER if too_late else DialState.FAILED, problem)
            return None
        call.context = out.context
        call.established = True
        timer = refreshed_timer(response)
        if timer is not None:
            self._arm_session_timer(call, timer)
        self._watch_media(call)
        on_progress(DialState.CONNECTED, f"{response.status} {response.reason}".strip())
        self._notify(lambda: self.handler.on_established(call))
        return call

    # --- ending calls --------------------------------------------------------------------------

    def _end(self, call: SipCall, reason: str) -> None:
        if call.ended:
            return
        call.ended = True
        if call.session_timer is not None:
            call.session_timer.cancel()
        if call.media_watch is not None:
            call.media_watch.stop()
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


class _Servers:
    """The located servers of the address a dial-out sends to, tried in turn (RFC 3263 §4.3):
    each taken off the list when tried, those that failed kept with how, for the outcome;
    ``tell`` hears of each failure another server follows."""

    def __init__(
        self,
        locator: ServerLocator,
        connect: Callable[[Target, SipUri], Awaitable[Source]],
        ours: Callable[[str, int], bool],
        tell: Callable[[str], None],
    ) -> None:
        self.locator = locator
        self.connect = connect
        self.ours = ours  # a server that is this node itself is never called: the call would loop
        self.tell = tell
        self.hop: SipUri | None = None  # the address ``places`` were located for
        self.places: list[Target] = []  # not tried yet, in order
        self.tried: list[tuple[Target, str]] = []
        self.place: Target | None = None  # the one the INVITE went to last

    @property
    def more(self) -> bool:
        return bool(self.places)

    async def reach(self, hop: SipUri) -> Source | str:
        """A connection to the first server of ``hop`` that takes one (``hop`` located first,
        unless it is the address already located); else why none did."""
        if hop is not self.hop:
            try:
                self.places, self.hop, self.tried = await self.locator.locate(hop), hop, []
            except LocationFailed as e:
                return e.message
        while self.places:
            self.place = self.places.pop(0)
            if self.ours(self.place.address, self.place.port):
                self.failed("is this node itself (the call would loop)")
                continue
            try:
                return await self.connect(self.place, hop)
            except TimeoutError:
                self.failed("unreachable (timed out)")
            except OSError as e:
                why = os.strerror(e.errno).lower() if e.errno else str(e) or type(e).__name__
                self.failed(f"unreachable ({why})")
        if len(self.tried) == 1 and self.tried[0][0].address == hop.host:  # an address dialled as such
            return f"cannot reach {hop.host}: {self.tried[0][1]}"
        return f"cannot reach {hop.host}: tried {describe_tried(self.tried)}"

    def failed(self, why: str) -> None:
        """The server last tried failed the INVITE with ``why`` (told when another follows)."""
        assert self.place is not None
        self.tried.append((self.place, why))
        if self.places:
            self.tell(f"{self.place} {why}: trying the next server")

    def detail(self, outcome: str, why: str) -> str:
        """The dial's ``outcome``, with every server tried when there was more than one."""
        if not self.tried or self.place is None:
            return outcome
        return f"{outcome}; tried {describe_tried([*self.tried, (self.place, why)])}"


def _server_failure(response: SipResponse | None, heard: bool, timed_out: bool) -> str | None:
    """How a server failed the INVITE so that another may take it (RFC 3263 §4.3): silent
    (before the dial's own deadline) or 503; None when it answered as the called party."""
    if response is None and not heard and not timed_out:
        return "no response"
    if response is not None and response.status == 503 and not timed_out:
        return f"{response.status} {response.reason}".strip()
    return None


def _dialled(out: OutgoingCall, target: SipUri, source: Source, call_id: str) -> IncomingCall:
    """The far end of a dial-out, described as the handler knows calls."""
    return IncomingCall(
        call_id=call_id,
        alias=out.alias,
        domain=target.host,
        caller_uri=str(target),
        caller_name=out.peer_name,
        secure=source.transport == "TLS",
        srtp_offered=out.secure or wants_encryption(target),
        source=source.host,
        transport=source.transport.lower(),
        outbound=True,
    )


def _local_addresses() -> set[str]:
    """This host's addresses (for the loop check of a node bound to every interface)."""
    with contextlib.suppress(OSError):
        return {str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None)}
    return set()


def _incoming_call(req: SipRequest, source: Source, offer: SessionDescription | None) -> IncomingCall:
    uri = SipUri.parse(req.uri)
    from_ = req.from_
    return IncomingCall(
        call_id=req.call_id,
        alias=uri.user or "",
        domain=uri.host,
        caller_uri=from_.uri,
        caller_name=from_.display,
        secure=source.transport == "TLS",
        srtp_offered=offer is not None and any(m.attrs("crypto") for m in offer.media if m.port),
        source=source.host,
        transport=source.transport.lower(),
        video_offered=offer is None or any(m.kind == "video" and m.port for m in offer.media),
    )
