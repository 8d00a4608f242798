"""Logs on stderr: one readable line per event for a person at a terminal, JSON lines for a
collector, each carrying the request's correlation id (spec 2.18 ``x-request-id``)."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal, TextIO

from starlette.types import ASGIApp, Receive, Scope, Send

LogFormat = Literal["auto", "text", "json"]

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# True while the in-process node calls its own API (see ``internal_calls``).
_internal_call: contextvars.ContextVar[bool] = contextvars.ContextVar("internal_call", default=False)

# Loggers whose INFO lines repeat what vdx's own lines already say.
_QUIET_LOGGERS = ("uvicorn.access", "httpx")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id.get()
        if rid:
            entry["request_id"] = rid
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """``21:41:04 INFO  vdx.node.provisioner: provisioned ...`` plus the record's fields and the
    correlation id; a traceback follows on its own lines."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-5s %(name)s: %(message)s", datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        head, sep, trace = line.partition("\n")
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            head += " " + " ".join(f"{k}={v}" for k, v in extra.items())
        rid = request_id.get()
        if rid:
            head += f" [{rid}]"
        return head + sep + trace


def chosen_format(fmt: LogFormat, stream: TextIO) -> Literal["text", "json"]:
    """``auto`` is text on a terminal (a person reads it) and JSON otherwise (a collector does)."""
    if fmt == "auto":
        return "text" if stream.isatty() else "json"
    return fmt


class WebSocketPathsWithoutQuery(logging.Filter):
    """uvicorn logs each WebSocket handshake as ``<client> - "WebSocket <path>?<query>" ...``: keep
    the path, drop the query, which may carry what a client put there (a PIN, a token)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 2 and str(record.msg).startswith('%s - "WebSocket %s"'):
            record.args = (args[0], str(args[1]).partition("?")[0], *args[2:])
        return True


def setup(fmt: LogFormat = "auto", level: str = "INFO", stream: TextIO | None = None) -> None:
    out = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter() if chosen_format(fmt, out) == "json" else TextFormatter())
    handler.addFilter(WebSocketPathsWithoutQuery())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in _QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def access_level(status: int) -> int:
    """The level of a request's access-log line: DEBUG for a successful call of the in-process
    node to its own API (it polls every few seconds, and logs what a call changes itself)."""
    return logging.DEBUG if status < 400 and _internal_call.get() else logging.INFO


def internal_calls(app: ASGIApp) -> ASGIApp:
    """``app`` as the in-process node calls it: requests through this wrapper are internal."""

    async def call(scope: Scope, receive: Receive, send: Send) -> None:
        token = _internal_call.set(True)
        try:
            await app(scope, receive, send)
        finally:
            _internal_call.reset(token)

    return call
