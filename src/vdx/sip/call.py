"""A SIP call as the node sees it: the :class:`CallHandler` interface and the live :class:`SipCall`.

The handler never sees SIP messages: it gets an :class:`IncomingCall` and returns :class:`Accept`,
:class:`Reject`, :class:`RequirePin` or :class:`Ring`; afterwards it gets the :class:`SipCall` (negotiated streams
and bound RTP endpoints) on establishment, session changes (hold/resume, codec change), DTMF and end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .dialog import Dialog
from .media import MediaSession
from .sdp import Negotiation, Negotiator
from .transaction import InviteServerTransaction

if TYPE_CHECKING:
    from .liveness import MediaWatch


@dataclass(frozen=True)
class IncomingCall:
    """What the policy needs to decide on an INVITE (for a dial-out: the party we called)."""

    call_id: str
    alias: str  # user part of the Request-URI, e.g. "12345678"
    domain: str  # host part of the Request-URI
    caller_uri: str
    caller_name: str
    secure: bool  # arrived over TLS
    srtp_offered: bool = False  # the offer carries SDES keys (a=crypto) on some m-line
    source: str = ""  # the address the INVITE came from (the PIN throttle keys on it)
    transport: str = "udp"  # what the INVITE came on: udp, tcp or tls (a redirect keeps it)
    video_offered: bool = True  # the offer has a video stream (or there is no offer yet)
    outbound: bool = False  # a dial-out: we sent the INVITE


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
class Ring:
    """Answer 180 Ringing, then what ``outcome()`` decides (someone answers: Accept; declines,
    is away or lets it ring out: Reject). A CANCEL from the caller cancels ``outcome()``."""

    outcome: Callable[[], Awaitable[Accept | Reject]]


@dataclass(frozen=True)
class Reject:
    """Answer the INVITE with this final status (and Retry-After, when given; Contact, the
    address to try instead, for a 3xx redirect, RFC 3261 §8.1.3.4)."""

    status: int
    reason: str | None = None
    retry_after: int | None = None
    contact: str | None = None


class CallHandler(Protocol):
    async def on_invite(self, call: IncomingCall) -> Accept | Reject | RequirePin | Ring: ...

    async def on_established(self, call: SipCall) -> None: ...

    async def on_session_changed(self, call: SipCall) -> None: ...

    async def on_dtmf(self, call: SipCall, digit: str) -> None: ...

    async def on_ended(self, call: SipCall, reason: str) -> None: ...


@dataclass(eq=False)
class SipCall:
    """One dialog with its media. ``negotiation.streams`` says what flows; ``media`` holds the
    bound RTP endpoints (``media.endpoint("video")``)."""

    incoming: IncomingCall
    dialog: Dialog
    negotiator: Negotiator
    media: MediaSession
    send_bye: Callable[[SipCall, str], Awaitable[None]] = field(repr=False)
    invite_txn: InviteServerTransaction | None = None
    awaiting_answer_in_ack: bool = False
    established: bool = False
    ended: bool = False
    session_expires: int | None = None
    we_refresh: bool = False  # RFC 4028: we send the refreshes, rather than waiting for them
    refreshing: bool = False  # our refresh's offer is out: a crossing offer gets 491
    session_timer: asyncio.TimerHandle | None = None  # our refresh, or the end when none came
    media_watch: MediaWatch | None = None  # ends an answered call whose media stopped
    last_remote_version: str | None = None
    context: Any = None  # Accept.context
    pin_digits: asyncio.Queue[str] | None = None

    @property
    def negotiation(self) -> Negotiation | None:
        return self.negotiator.current

    @property
    def on_hold(self) -> bool:
        n = self.negotiation
        return n is not None and all(s.direction in ("recvonly", "inactive") for s in n.streams)

    @property
    def media_expected(self) -> bool:
        """Whether the far end should be sending RTP: some stream receives, and the call is not
        on hold (a held room system may send nothing at all)."""
        n = self.negotiation
        return (
            n is not None
            and not self.on_hold
            and any(s.direction in ("sendrecv", "recvonly") for s in n.streams)
        )

    async def hangup(self, reason: str = "hangup") -> None:
        """End the call from our side with a BYE (room ended, participant removed...)."""
        await self.send_bye(self, reason)
