"""The citizen portal link (spec 2.7), built from the ``portal_link_template`` setting.

Seven placeholders. In the query string a parameter whose value is *exactly* a placeholder is
resolved and dropped entirely when the value is absent; any other query value is kept verbatim (a
placeholder inside a longer value is not substituted). In the path and the ``#fragment``
placeholders are replaced textually, an absent value by the empty string.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from vdx.booking.timefmt import format_local

PIN = "__pin__"
URI_WITH_DOMAIN = "__uri-with-domain__"
URI_DOMAIN = "__uri-domain__"
START_DATE = "__start-date__"
RETURN_URL = "__return-url__"
MICROPHONE = "__microphone__"
CALL_TYPE = "__call-type__"

# Characters a resolved query value keeps as they are; others (``&``, ``#``, space, ...) are
# percent-encoded so a value can never split the query. The reference inserts values raw; every
# value it produces (numbers, addresses, dates, enum words) is unchanged by this encoding.
_SAFE_QUERY_CHARS = ":/?@=,;!$'()*~.-_"


@dataclass(frozen=True)
class PortalValues:
    """What a portal link is built from: the meeting start and its scheduling info's fields."""

    start_time: datetime
    uri_with_domain: str | None = None
    uri_domain: str | None = None
    guest_pin: int | None = None
    host_pin: int | None = None
    return_url: str | None = None
    guest_microphone: str | None = None
    call_type: str | None = None


def placeholder_values(v: PortalValues) -> dict[str, str | None]:
    """Each placeholder's value; None = absent.

    ``__pin__`` is the guest PIN, else the host PIN, else the empty string (never absent);
    ``__microphone__`` is present only for ``off``/``muted``; ``__start-date__`` is the start in the
    server zone (UTC) as ``yyyy-MM-dd'T'HH:mm:ss``.
    """
    pin = v.guest_pin if v.guest_pin is not None else v.host_pin
    mic = str(v.guest_microphone) if v.guest_microphone is not None else None
    return {
        PIN: str(pin) if pin is not None else "",
        URI_WITH_DOMAIN: v.uri_with_domain,
        URI_DOMAIN: v.uri_domain,
        START_DATE: format_local(v.start_time),
        RETURN_URL: v.return_url,
        MICROPHONE: mic if mic in ("off", "muted") else None,
        CALL_TYPE: v.call_type,
    }


def _textual(text: str, values: dict[str, str | None]) -> str:
    for name, value in values.items():
        text = text.replace(name, value or "")
    return text


def build_portal_link(template: str, v: PortalValues) -> str:
    """The portal link for ``v`` from ``template`` (spec 2.7)."""
    values = placeholder_values(v)
    rest, hash_sign, fragment = template.partition("#")
    path, question, query = rest.partition("?")
    out = _textual(path, values)
    if question:
        kept: list[str] = []
        for item in query.split("&"):
            if not item:
                continue
            key, eq, value = item.partition("=")
            if eq and value in values:
                resolved = values[value]
                if resolved is None:
                    continue
                kept.append(f"{key}={quote(resolved, safe=_SAFE_QUERY_CHARS)}")
            else:
                kept.append(item)
        if kept:
            out += "?" + "&".join(kept)
    if hash_sign:
        out += "#" + _textual(fragment, values)
    return out
