"""Keyframe requests in SIP INFO (RFC 5168, ``application/media_control+xml``): what room systems
and softphones that negotiate plain RTP/AVP (no RTCP feedback, so no PLI or FIR) send when their
decoder needs a fresh picture. Pure: a body in, whether it asks for a picture update out."""

from __future__ import annotations

import xml.etree.ElementTree as ET

CONTENT_TYPE = "application/media_control+xml"
MAX_BODY = 4096  # a picture_fast_update is a few hundred bytes


class MediaControlError(ValueError):
    """A media control body that is not one (malformed, too large, or with a DTD)."""


def asks_picture_update(body: bytes) -> bool:
    """Whether ``body`` is a ``media_control`` asking the encoder for a picture update
    (``vc_primitive/to_encoder/picture_fast_update``); :class:`MediaControlError` if it is no
    media control document at all. A DTD is refused unread: no entity is ever expanded."""
    if len(body) > MAX_BODY:
        raise MediaControlError("media control body too large")
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise MediaControlError("media control body with a DTD")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise MediaControlError(f"malformed media control: {exc}") from None
    if _local(root.tag) != "media_control":
        raise MediaControlError(f"not a media_control document: <{_local(root.tag)}>")
    for primitive in root:
        if _local(primitive.tag) != "vc_primitive":
            continue
        for target in primitive:
            if _local(target.tag) == "to_encoder" and any(
                _local(e.tag) == "picture_fast_update" for e in target
            ):
                return True
    return False


def _local(tag: object) -> str:
    """An element's name without its namespace."""
    return str(tag).rsplit("}", 1)[-1]
