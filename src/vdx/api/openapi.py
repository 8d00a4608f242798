"""Our OpenAPI document says what vdx answers: a request that fails validation gets 400 with the
``DetailedError`` body (spec 1.0), not FastAPI's 422, so clients generated from the document (and
schemathesis) see the real contract."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI

from vdx.api import schemas

_REF = "#/components/schemas/{model}"


def declare_validation_errors(app: FastAPI, api_context: str) -> None:
    """Replace each operation's 422 by a 400 ``DetailedError`` on the video API (routers that
    declare their own 400, such as the organisation service, keep theirs)."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = original()  # caches the document on the app; adjusted in place below
        v2 = f"{api_context}/v2/"
        used = False
        for path, item in doc.get("paths", {}).items():
            for op in item.values():
                responses = op.get("responses", {})
                if responses.pop("422", None) is not None and path.startswith(v2):
                    responses.setdefault(
                        "400",
                        {
                            "description": "Bad Request",
                            "content": {
                                "application/json": {"schema": {"$ref": _REF.format(model="DetailedError")}}
                            },
                        },
                    )
                    used = True
        components = doc.setdefault("components", {}).setdefault("schemas", {})
        if used:
            components.setdefault("DetailedError", schemas.DetailedError.model_json_schema(ref_template=_REF))
        # FastAPI's 422 bodies are never sent now; drop their schemas unless still referenced.
        for name in ("HTTPValidationError", "ValidationError"):
            others = {k: v for k, v in components.items() if k != name}
            if f'"{_REF.format(model=name)}"' not in json.dumps([doc["paths"], others]):
                components.pop(name, None)
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
