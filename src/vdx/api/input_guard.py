"""Text the database cannot store is refused as bad input: NUL characters (``\\u0000`` in JSON,
``%00`` in a URL) make PostgreSQL fail the statement, which would otherwise surface as a 500.

A router-level dependency rather than a middleware, so that each router renders the refusal with
its own error body (``DetailedError`` code "10" on the video API, the organisation service's body
below ``/services``). FastAPI has read and cached the body before dependencies run.
"""

from __future__ import annotations

import re

from fastapi import Request
from fastapi.exceptions import RequestValidationError

# \u0000 preceded by an even number of backslashes (an odd number would escape the backslash).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def _refuse(where: str) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "string_nul", "loc": (where,), "msg": "NUL characters are not allowed", "input": None}]
    )


async def reject_nul_characters(request: Request) -> None:
    if "\x00" in request.scope.get("path", ""):
        raise _refuse("URL path")
    query: bytes = request.scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        raise _refuse("query string")
    if request.method in ("POST", "PUT", "PATCH"):
        body = await request.body()
        if b"\x00" in body or _JSON_NUL.search(body):
            raise _refuse("body")
