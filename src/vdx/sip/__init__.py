"""SIP for room systems, dialling in and dialled out: signalling (RFC 3261), SDP offer/answer, RTP/RTCP, DTMF, TLS.

A compact asyncio stack of our own rather than a library: the one maintained Python SIP stack that
fits a UAS, ``sippy``, runs its own thread-based reactor instead of asyncio, speaks neither TCP nor
TLS and knows no offer/answer; pyVoIP is audio-only and pjsua2 does not build from PyPI.

Each module is one concern: message.py (§7/§20/§25), transport.py (§18), transaction.py (§17 +
RFC 6026), dialog.py (§12), server.py (the UAS core, §8/§13 + RFC 4028, and the UAC of dial-outs), uac.py
(dial-out addresses, outcomes, digest answers, §22), call.py (a call as the
node sees it), offer_answer.py (RFC 3264 with §13/§14 and RFC 3311), liveness.py (silent media,
RFC 4028 session timers), pin_entry.py, rate_limit.py,
sdp.py (RFC 8866 + RFC 3264, RFC 6184, RFC 7741, RFC 4568), rtp.py/rtcp.py (RFC 3550, RFC 4585,
RFC 5104), dtmf.py (RFC 4733), media.py (RTP ports + SDES-SRTP), tls.py (certificates), prompts.py
(spoken IVR prompts).
"""

from __future__ import annotations

from pathlib import Path

from ..settings import Settings
from .call import Accept, CallHandler, IncomingCall, Reject, RequirePin, Ring, SipCall
from .sdp import MediaConfig
from .server import SipServer, SipServerConfig
from .tls import ensure_self_signed
from .uac import BadDestination, Credentials, DialState, OutgoingCall, parse_destination

__all__ = [
    "Accept",
    "BadDestination",
    "CallHandler",
    "Credentials",
    "DialState",
    "IncomingCall",
    "OutgoingCall",
    "Reject",
    "RequirePin",
    "Ring",
    "SipCall",
    "SipServer",
    "SipServerConfig",
    "config_from_settings",
    "parse_destination",
]


def config_from_settings(settings: Settings) -> SipServerConfig:
    """Server configuration from ``VDX_*`` settings; creates the self-signed TLS pair if needed."""
    cert: Path | None = settings.sip_tls_cert
    key: Path | None = settings.sip_tls_key
    if settings.sip_tls_port and (cert is None or key is None):
        cert, key = ensure_self_signed(settings.data_dir, settings.sip_domain)
    return SipServerConfig(
        host=settings.sip_host,
        port=settings.sip_port,
        tls_port=settings.sip_tls_port or None,
        tls_cert=str(cert) if cert else None,
        tls_key=str(key) if key else None,
        rtp_host=settings.sip_host,
        rtp_ports=settings.rtp_ports,
        max_invites_per_second=settings.sip_max_invites_per_second,
        media=MediaConfig(require_srtp=settings.sip_require_srtp),
        advertised_host=settings.sip_advertised_host,
        media_timeout=settings.sip_media_timeout or None,
        domain=settings.sip_domain,
        tls_cafile=str(settings.sip_dial_tls_cafile) if settings.sip_dial_tls_cafile else None,
        tls_verify=settings.sip_dial_tls_verify,
        dns_servers=tuple(settings.dns_server_addresses),
        dial_target_timeout=settings.sip_dial_target_timeout,
    )
