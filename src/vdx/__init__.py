"""vdx: an open national video node for healthcare (VDX booking API v2, rooms, SIP/WebRTC bridging)."""

__version__ = "0.1.0"
