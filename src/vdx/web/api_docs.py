"""``{api_context}/docs``: the interactive API docs, Swagger UI served from this node itself
(``static/swagger-ui``, ``static/api-docs.js``) instead of FastAPI's page, which loads it from a
CDN with an inline script: so no other site's code runs on the node's origin and the page needs
nothing beyond ``script-src 'self'``."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from vdx.web.pages import STATIC


def api_docs_router(api_context: str, title: str) -> APIRouter:
    page = (
        (STATIC / "api-docs.html")
        .read_text(encoding="utf-8")
        .replace("{{title}}", escape(title))
        .replace("{{openapi_url}}", escape(f"{api_context}/openapi.json"))
    )
    router = APIRouter(include_in_schema=False)

    @router.get(f"{api_context}/docs")
    async def api_docs() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    return router
