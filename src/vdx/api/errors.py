"""The VDX error bodies (spec 1.0): ``DetailedError`` with codes "10".."36", and the framework body.

Texts are quoted exactly from the reference because integrations match on them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from vdx.booking.timefmt import format_ts

# spec 1.0.1: code -> (HTTP status, text); %s is substituted.
CATALOGUE: dict[str, tuple[int, str]] = {
    "12": (
        406,
        "Meeting must have status AWAITS_PROVISION (0)  or PROVISIONED_OK (3) in order to be updated",
    ),
    "13": (406, "Meeting must have status AWAITS_PROVISION (0) in order to be deleted"),
    "14": (406, "The Uri assignment failed due to invalid setup on the template used"),
    "15": (
        406,
        "The Uri assignment failed. It was not possible to create a unique. Consider changing the interval on the template",
    ),
    "16": (406, "The guest pincode assignment failed due to invalid setup on the template used"),
    "17": (406, "The host pincode assignment failed due to invalid setup on the template used"),
    "18": (406, "Create or update of pool template failed due to only one pool template allowed"),
    "19": (400, "Can not create ad hoc meeting on non ad hoc organization: %s"),
    "20": (400, "Unused scheduling information not found for organisation tree for %s"),
    "21": (400, "ExternalId not unique within organisation."),
    "22": (400, "OrganisationId %s in request not found."),
    "23": (400, "Scheduling information can not be created on organisation %s that is not pool enabled."),
    "24": (400, "Unable to generate unique shortId. Try again."),
    "25": (400, "Date format is wrong, year must only have 4 digits"),
    "26": (400, "Scheduling template %s not found."),
    "27": (400, "Scheduling template %s does not belong to organisation %s."),
    "28": (
        400,
        "Either both from-start-time and to-start-time must be provided or none of them must be provided.",
    ),
    "29": (400, "ReservationId not owned by organisation or not found."),
    "30": (400, "Field can not be set to null"),
    "31": (400, "Organisation does not allow setting custom meeting address."),
    "32": (400, "Supplied URI already used"),
    "33": (400, "Supplied URI contains invalid characters. Valid characters: [A-Z], [a-z] and [0-9]."),
    "34": (400, "Scheduling info reservation can not be used in combination with guest pin and/or host pin."),
    "35": (400, "Additional info keys not unique for meeting."),
    "36": (400, "Must set at least one query parameter, when searching for meeting."),
}


class ApiError(Exception):
    """An error answered with the ``DetailedError`` body."""

    def __init__(self, status: int, code: str, detail: str | None) -> None:
        super().__init__(detail or code)
        self.status = status
        self.code = code
        self.detail = detail


def vdx_error(code: str, *args: Any) -> ApiError:
    """The catalogued error ``code`` with its exact text (spec 1.0.1)."""
    status, text = CATALOGUE[code]
    return ApiError(status, code, text % args if args else text)


def validation_error(message: str) -> ApiError:
    return ApiError(400, "10", message)


def not_found(resource: str, field: str) -> ApiError:
    return ApiError(404, "11", f"Resource: {resource} in field: {field} not found.")


def forbidden() -> ApiError:
    return ApiError(403, "11", None)


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


async def handle_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
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
