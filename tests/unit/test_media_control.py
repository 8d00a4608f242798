"""Keyframe requests in SIP INFO (RFC 5168): the document of the RFC asks for a picture update;
other media control does not; what is no media control document is refused, and no input makes
the parser do anything but answer or raise MediaControlError."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vdx.sip.media_control import MAX_BODY, MediaControlError, asks_picture_update

# RFC 5168 section 2.1's example, as linphone and room systems send it
FAST_UPDATE = b"""<?xml version="1.0" encoding="utf-8" ?>
<media_control>
  <vc_primitive>
    <to_encoder>
      <picture_fast_update/>
    </to_encoder>
  </vc_primitive>
</media_control>"""


def test_the_rfc_example_asks_for_a_picture_update() -> None:
    assert asks_picture_update(FAST_UPDATE)
    with_stream = FAST_UPDATE.replace(b"<to_encoder>", b"<stream_id>1</stream_id><to_encoder>")
    assert asks_picture_update(with_stream)


def test_other_media_control_asks_nothing() -> None:
    assert not asks_picture_update(b"<media_control><general_error>x</general_error></media_control>")
    assert not asks_picture_update(
        b"<media_control><vc_primitive><to_encoder/></vc_primitive></media_control>"
    )


@pytest.mark.parametrize(
    "body",
    [
        b"<media_control>",  # unclosed
        b"<html><picture_fast_update/></html>",  # not media control
        b'<!DOCTYPE m [<!ENTITY a "aaaa">]><media_control>&a;</media_control>',  # a DTD: refused unread
        b"<media_control>" + b" " * MAX_BODY + b"</media_control>",
    ],
)
def test_what_is_no_media_control_document_is_refused(body: bytes) -> None:
    with pytest.raises(MediaControlError):
        asks_picture_update(body)


@given(
    st.binary(max_size=300)
    | st.text(max_size=200).map(lambda t: f"<media_control>{t}</media_control>".encode())
)
def test_any_body_is_answered_or_refused(body: bytes) -> None:
    with contextlib.suppress(MediaControlError):
        assert isinstance(asks_picture_update(body), bool)
