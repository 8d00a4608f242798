"""SDP offer/answer over SIP (RFC 3264 on RFC 3261 §13 and RFC 3311): what an INVITE, a re-INVITE
and an UPDATE share.

Each is checked the same way before its offer is read (Session-Expires, body), and an
offer that cannot be taken gets the same answer whichever request carried it: the functions raise
:class:`Refused` with the final response's status and headers, and the server sends it.
"""

from __future__ import annotations

from .call import SipCall
from .media import MediaSession
from .message import SipRequest, SipResponse, digits
from .sdp import Negotiator, NoCommonCodec, SdpError, SessionDescription


class Refused(Exception):
    """A request answered with a final non-2xx: its status, reason phrase and explaining headers."""

    def __init__(self, status: int, reason: str | None = None, *headers: tuple[str, str]) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason
        self.headers = headers


def read_offer(req: SipRequest, min_session_expires: int) -> tuple[SessionDescription | None, int | None]:
    """The request's offer and session interval (each None when absent); :class:`Refused` with
    400/422 (Session-Expires, RFC 4028 §6), 415 (not SDP) or 400 (bad SDP)."""
    interval = _session_interval(req, min_session_expires)
    if not req.body.strip():
        return None, interval
    if req.content_type != "application/sdp":
        raise Refused(415, None, ("Accept", "application/sdp"))
    try:
        return SessionDescription.parse(req.body), interval
    except SdpError as e:
        raise Refused(400, "Bad SDP", ("Warning", f'399 vdx "{e}"')) from e


def _session_interval(req: SipRequest, min_session_expires: int) -> int | None:
    raw = req.get("Session-Expires")
    if raw is None:
        return None
    value = raw.split(";", 1)[0].strip()
    if not digits(value) or len(value) > 9:
        raise Refused(400, "Bad Session-Expires")
    interval = int(value)
    if interval < min_session_expires:
        raise Refused(422, None, ("Min-SE", str(min_session_expires)))
    return interval


async def answer(
    negotiator: Negotiator,
    media: MediaSession,
    offer: SessionDescription | None,
    *,
    no_ports_status: int,
    retry_after: int,
) -> bytes:
    """Our answer with RTP ports bound, or our offer when there is none (RFC 3261 §13.2.1).
    :class:`Refused` with 488 without a common codec, ``no_ports_status`` when no ports are free."""
    try:
        if offer is None:
            return negotiator.offer(await media.ports_for(2)).serialise()
        wanted = negotiator.served(offer)
        ports = await media.ports_for(max(wanted) + 1) if wanted else {}
        negotiation = negotiator.answer(offer, {i: p for i, p in ports.items() if i in wanted})
        media.apply(negotiation.streams)
        return negotiation.local.serialise()
    except NoCommonCodec as e:
        raise Refused(488, None, ("Warning", f'304 vdx "{e}"')) from e
    except OSError as e:
        raise Refused(no_ports_status, "No media ports", ("Retry-After", str(retry_after))) from e


async def answer_reoffer(call: SipCall, offer: SessionDescription | None, *, invite: bool) -> bytes:
    """The 2xx's SDP: the answer (the current one for an unchanged o= version, RFC 3264 §8), our
    offer when a re-INVITE has none (answered in the ACK), or nothing. A refusal keeps the session."""
    if offer is None:
        if not invite:
            return b""
        call.awaiting_answer_in_ack = True
        ports = {i: ep.port for i, ep in call.media.endpoints.items()}
        return call.negotiator.offer(ports).serialise()
    if offer.origin == call.last_remote_version and call.negotiation is not None:
        return call.negotiation.local.serialise()
    # Inside a dialog a lack of ports is a 500 + Retry-After: the request fails, the dialog stays.
    body = await answer(call.negotiator, call.media, offer, no_ports_status=500, retry_after=2)
    call.last_remote_version = offer.origin
    return body


def take_answer(call: SipCall, message: SipRequest | SipResponse) -> None:
    """Apply the answer to our offer (in the ACK of our 2xx, or in the 2xx to our refresh);
    SdpError or NoCommonCodec when it is missing or unusable, and the session must then end with a
    BYE (RFC 3261 §13.3.1.4)."""
    if message.content_type != "application/sdp" or not message.body.strip():
        raise NoCommonCodec("no SDP answer")
    sd = SessionDescription.parse(message.body)
    negotiation = call.negotiator.accept_answer(sd)
    call.media.apply(negotiation.streams)
    call.last_remote_version = sd.origin


def take_refresh_answer(call: SipCall, response: SipResponse) -> bool:
    """The answer to our unchanged re-offer (a session refresh); True when the far end changed
    the session. An answer of the same o= version is the same session (RFC 3264 §8)."""
    if (
        response.content_type != "application/sdp"
        or not response.body.strip()
        or SessionDescription.parse(response.body).origin == call.last_remote_version
    ):
        call.negotiator.withdraw_offer()  # a 2xx without an answer still says the peer is there
        return False
    take_answer(call, response)
    return True
