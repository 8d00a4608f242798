"""The headers every response of the app carries, so that the pages run only what this node
serves them: a Content-Security-Policy, frame-ancestors (``VDX_FRAME_ANCESTORS``), nosniff and
no referrer.

What the pages load, and so all the policy allows: scripts and styles from the node's own
``/web/static`` (no inline script, style or attribute anywhere, Swagger UI included); images from
the node and ``data:`` (Swagger UI's icons); fetches and the signalling WebSocket to the node
itself (``'self'`` and the ``ws``/``wss`` form of ``VDX_PUBLIC_URL``, for browsers whose
``'self'`` does not cover WebSockets), to the cluster's other nodes (``VDX_NODE_ORIGINS``: the
join page's WebSocket is redirected to the node that hosts the room) and to the OpenID Connect
issuer (discovery, token exchange). Camera, microphone and the room's media are MediaStreams, which
no fetch directive governs. The join link's PIN never leaves the browser as a referrer (``no-referrer``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from vdx.settings import Settings

_WS_SCHEME = {"http": "ws", "https": "wss"}


def _origin(url: str, scheme: str | None = None) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{scheme or parts.scheme}://{parts.netloc}"


def content_security_policy(settings: Settings) -> str:
    public = settings.public_url_clean
    ws_scheme = "wss" if public.startswith("https:") else "ws"
    connect = ["'self'", _origin(public, ws_scheme)]
    for node in settings.node_origins.split():
        scheme, _, rest = node.partition("://")
        connect.append(f"{_WS_SCHEME.get(scheme, scheme)}://{rest}")
    if settings.oidc_issuer:
        connect.append(_origin(settings.oidc_issuer))
    directives = {
        "default-src": "'none'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "connect-src": " ".join(dict.fromkeys(c for c in connect if c)),
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": settings.frame_ancestors,
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def security_headers(settings: Settings) -> list[tuple[bytes, bytes]]:
    headers = [
        ("content-security-policy", content_security_policy(settings)),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
    ]
    # X-Frame-Options for browsers without frame-ancestors; it can say only these two
    frame_options = {"'none'": "DENY", "'self'": "SAMEORIGIN"}.get(settings.frame_ancestors)
    if frame_options:
        headers.append(("x-frame-options", frame_options))
    return [(name.encode(), value.encode()) for name, value in headers]
