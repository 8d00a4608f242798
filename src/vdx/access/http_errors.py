"""Errors as HTTP answers (spec 1.0): a ``VdxError`` as the ``DetailedError`` body, the errors the
reference raises before its controllers as the framework body, and the framework's own errors.
"""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from vdx.booking.errors import CATALOGUE, VdxError
from vdx.booking.timefmt import format_ts


class BasicError(Exception):
    """Errors the reference raises before its controllers: body ``{timestamp,status,error,path}``."""

    def __init__(self, status: int, headers: dict[str, str] | None = None, body: bool = True) -> None:
        super().__init__(status)
        self.status = status
        self.headers = headers or {}
        self.body = body


def reason_phrase(status: int) -> str:
    """The HTTP reason phrase of ``status`` (the bodies' ``error``/``status_text``)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _basic(request: Request, status: int) -> dict[str, Any]:
    return {
        "timestamp": format_ts(datetime.now(UTC)),
        "status": status,
        "error": reason_phrase(status),
        "path": request.url.path,
    }


def detailed_body(request: Request, status: int, code: str, detail: str | None) -> dict[str, Any]:
    return _basic(request, status) | {"detailed_error": detail, "detailed_error_code": code}


async def handle_vdx_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, VdxError)
    return JSONResponse(detailed_body(request, exc.status, exc.code, exc.detail), status_code=exc.status)


async def handle_basic_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BasicError)
    if not exc.body:
        return Response(status_code=exc.status, headers=exc.headers)
    return JSONResponse(_basic(request, exc.status), status_code=exc.status, headers=exc.headers)


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def describe_validation_errors(exc: RequestValidationError) -> str:
    """``<field>: <message>`` for each violation, joined by ``; `` (spec 1.0, code "10")."""
    messages = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            messages.append(f"body: malformed JSON ({err.get('ctx', {}).get('error', 'parse error')})")
        else:
            messages.append(f"{_field_name(tuple(err.get('loc', ())))}: {err.get('msg', 'invalid')}")
    return "; ".join(messages)


async def handle_validation_error(request: Request, exc: Exception) -> Response:
    """Schema violations: 400 code "10" with ``<field>: <message>`` (spec 1.0); year > 9999 is code "25"."""
    assert isinstance(exc, RequestValidationError)
    for err in exc.errors():
        if err.get("type") == "year_too_long":
            return JSONResponse(detailed_body(request, 400, "25", CATALOGUE["25"][1]), status_code=400)
    return JSONResponse(detailed_body(request, 400, "10", describe_validation_errors(exc)), status_code=400)


class BodyTooLarge(HTTPException):
    """The request body exceeds ``VDX_MAX_BODY_BYTES`` (raised while the body streams in)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"body: request body larger than {limit} bytes")


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """The framework's own errors. A body it cannot read (400: not UTF-8, nested too deeply) or one
    that is too large (413) is the client's input error: ``DetailedError`` code "10", as schema
    violations are. Unknown paths (404) and methods (405) keep the framework body, as the
    reference's Spring Boot answers them."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code in (400, 413):
        detail = exc.detail if isinstance(exc.detail, str) else "body: unreadable request body"
        if exc.status_code == 400 and not detail.startswith("body:"):
            detail = f"body: {detail}"
        return JSONResponse(
            detailed_body(request, exc.status_code, "10", detail),
            status_code=exc.status_code,
            headers=headers,
        )
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=headers)
    return JSONResponse(_basic(request, exc.status_code), status_code=exc.status_code, headers=headers)
