"""HTTP plumbing around the API: trailing slashes, correlation id, access log, metrics, CORS, body
limit, headers on every response."""

from __future__ import annotations

import logging
import random
import re
import time
import uuid
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vdx import logs
from vdx.access.http_errors import BodyTooLarge, detailed_body

log = logging.getLogger("vdx.http")


class TrailingSlash:
    """Accept ``/v2/meetings/`` as ``/v2/meetings`` (spec 1.0), without a redirect that would make
    clients resend their POST bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if len(path) > 1 and path.endswith("/"):
                # In place, so outer middleware sees the route the router resolves.
                scope["path"] = path.rstrip("/") or "/"
                scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "vdx_http_requests", "HTTP requests", ["method", "route", "status"], registry=registry
        )
        self.latency = Histogram(
            "vdx_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=registry,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )


class RequestContext:
    """Correlation id in and out (``x-request-id`` by default), one access-log line, metrics, and
    the keep-alive limit: about one response in ``keepalive_requests`` says ``Connection: close``
    (at random, no count per connection), so a client's kept connections are spread anew over the
    worker processes of ``vdx api --workers N`` instead of staying where they first landed."""

    def __init__(self, app: ASGIApp, header: str, metrics: HttpMetrics, keepalive_requests: int = 0) -> None:
        self.app = app
        self.header = header.lower()
        self.metrics = metrics
        self.close_chance = 1 / keepalive_requests if keepalive_requests else 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = None
        for k, v in scope.get("headers", []):
            if k.decode("latin-1").lower() == self.header:
                rid = v.decode("latin-1")[:200]
                break
        rid = rid or uuid.uuid4().hex
        token = logs.request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((self.header.encode(), rid.encode("latin-1")))
                if self.close_chance and random.random() < self.close_chance:
                    headers.append((b"connection", b"close"))
                message = dict(message)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route_path = route_label(scope)
            method = scope.get("method", "")
            self.metrics.requests.labels(method, route_path, str(status)).inc()
            self.metrics.latency.labels(method, route_path).observe(elapsed)
            log.log(
                logs.access_level(status),
                "%s %s %s",
                method,
                logged_path(scope),
                status,
                extra={"fields": {"status": status, "ms": round(elapsed * 1000, 2), "route": route_path}},
            )
            logs.request_id.reset(token)


# Routes whose path parameter is a capability: a short link's id leads to the meeting's join
# link (with its PIN unless guests must type it), so the access log shows the route instead.
_CAPABILITY_ROUTES = frozenset({"/s/{short_id}"})


def logged_path(scope: Scope) -> str:
    """The path as the access log shows it: never the query (the join page's PIN, an OpenID
    Connect code), and a capability route as its template."""
    template = getattr(scope.get("route"), "path", None)
    if template in _CAPABILITY_ROUTES:
        return str(template)
    return str(scope.get("path", ""))


_ID_SEGMENT = re.compile(r"/(?:[0-9a-fA-F-]{36}|\d+|[0-9a-f]{12})(?=/|$)")


def route_label(scope: Scope) -> str:
    """A bounded metrics label: the path with ids folded, or "unmatched" when no route answered."""
    if scope.get("route") is None:
        return "unmatched"
    return _ID_SEGMENT.sub("/{id}", scope.get("path", ""))


class ResponseHeaders:
    """Add ``headers`` to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp, headers: list[tuple[bytes, bytes]]) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in present]
                message = dict(message)
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class StrictCORSMiddleware(CORSMiddleware):
    """Starlette answers a refused preflight with 400; the reference answers 403 (spec 1.0 CORS)."""

    def preflight_response(self, request_headers: Any) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code == 400:
            return Response("Invalid CORS request", status_code=403)
        return response


class BodySizeLimit:
    """Refuse request bodies above ``max_bytes`` with 413 (code "10" of ``DetailedError``, or the
    organisation service's body below its prefix).

    The first read of a body whose declared ``Content-Length`` is above the limit fails at once,
    without reading it; a chunked or understated body is counted while it streams in. Either way
    :class:`BodyTooLarge` is raised inside the app, whose handlers render it for the route; if
    nothing there catches it, it is answered here. The connection is not closed on the client:
    the server discards the rest of the body, so the client reliably reads the 413 (closing with
    unread data would reset the connection before the client sees the answer).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            if declared > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            request = Request(scope)
            body = detailed_body(request, 413, "10", f"body: request body larger than {self.max_bytes} bytes")
            response = JSONResponse(body, status_code=413)
            await response(scope, receive, send)


def _declared_length(scope: Scope) -> int:
    """The request's ``Content-Length`` (the last one given); 0 when absent or not a number."""
    declared = 0
    for k, v in scope.get("headers", []):
        if k.lower() == b"content-length":
            try:
                declared = int(v)
            except ValueError:
                declared = 0
    return declared
