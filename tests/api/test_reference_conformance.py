"""Drop-in conformance with the reference's OpenAPI document (``shared/reference/video-api-v2.yaml``).

For every operation of theirs: the same path and method exist in our OpenAPI document, with every
query parameter of theirs, and our request body and success response carry every property name
of theirs. For every component schema of theirs: the mapped schema of ours has every property.
Extra properties of ours are allowed (clients ignore what they do not know); missing ones break
clients. Each operation and each schema is its own test case, so a failure names exactly what
is missing.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import BaseModel

from vdx.api import schemas
from vdx.app import create_app
from vdx.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _reference_yaml() -> Path | None:
    """``../shared/reference/video-api-v2.yaml`` beside the project (or beside a folder of
    worktrees above it); ``VDX_REFERENCE_YAML`` overrides."""
    if os.environ.get("VDX_REFERENCE_YAML"):
        return Path(os.environ["VDX_REFERENCE_YAML"])
    for base in (ROOT, *ROOT.parents):
        candidate = base.parent / "shared/reference/video-api-v2.yaml"
        if candidate.exists():
            return candidate
    return None


REFERENCE = _reference_yaml()
pytestmark = pytest.mark.skipif(
    REFERENCE is None or not REFERENCE.exists(),
    reason="reference OpenAPI document not found: expected ../shared/reference/video-api-v2.yaml "
    "beside the project (or set VDX_REFERENCE_YAML)",
)
THEIRS: dict[str, Any] = yaml.safe_load(REFERENCE.read_text()) if REFERENCE and REFERENCE.exists() else {}

# Their component name -> (our component name in the OpenAPI document, our pydantic model).
# The model stands in while no served operation uses the component yet.
COMPONENTS: dict[str, tuple[str, type[BaseModel]]] = {
    "info": ("Info", schemas.Info),
    "infoType": ("InfoItem", schemas.InfoItem),
    "meeting": ("Meeting", schemas.Meeting),
    "create-meeting": ("CreateMeeting", schemas.CreateMeeting),
    "update-meeting": ("UpdateMeeting", schemas.UpdateMeeting),
    "patch-meeting": ("PatchMeeting", schemas.PatchMeeting),
    "meetingUser": ("MeetingUser", schemas.MeetingUser),
    "additionalInformationType": ("AdditionalInformation", schemas.AdditionalInformation),
    "scheduling-info": ("SchedulingInfo", schemas.SchedulingInfo),
    "create-scheduling-info": ("CreateSchedulingInfo", schemas.CreateSchedulingInfo),
    "update-scheduling-info": ("UpdateSchedulingInfo", schemas.UpdateSchedulingInfo),
    "scheduling-template": ("SchedulingTemplate", schemas.SchedulingTemplate),
    "schedulingTemplateRequest": ("SchedulingTemplateRequest", schemas.SchedulingTemplateRequest),
    "pool-info": ("PoolInfo", schemas.PoolInfo),
    "detailedError": ("DetailedError", schemas.DetailedError),
}
REQUEST_COMPONENTS = {
    "create-meeting",
    "update-meeting",
    "patch-meeting",
    "create-scheduling-info",
    "update-scheduling-info",
    "schedulingTemplateRequest",
}
METHODS = ("get", "put", "post", "patch", "delete")


def _operations() -> Iterator[tuple[str, str]]:
    for path, item in (THEIRS.get("paths") or {}).items():
        for method in METHODS:
            if method in item:
                yield method, path


def _normal(path: str) -> str:
    """Path parameters compared by position, not by name."""
    return re.sub(r"\{[^}]+\}", "{}", path)


def resolve(doc: dict[str, Any], schema: dict[str, Any] | None, seen: frozenset[str] = frozenset()) -> dict:
    """Follow ``$ref`` and merge ``allOf``/``anyOf`` members into one schema with ``properties``."""
    if not schema:
        return {}
    if "$ref" in schema:
        ref = schema["$ref"]
        if ref in seen:
            return {}
        node: Any = doc
        for part in ref.lstrip("#/").split("/"):
            node = node[part]
        return resolve(doc, node, seen | {ref})
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k not in ("allOf", "anyOf")}
    props = dict(schema.get("properties") or {})
    for key in ("allOf", "anyOf"):
        for member in schema.get(key) or []:
            sub = resolve(doc, member, seen)
            props.update(sub.get("properties") or {})
            if "items" in sub and "items" not in merged:
                merged["items"] = sub["items"]
    merged["properties"] = props
    return merged


def property_names(doc: dict[str, Any], schema: dict[str, Any] | None) -> set[str]:
    """Property names of an object schema, or of the items of an array schema."""
    s = resolve(doc, schema)
    if s.get("type") == "array" or ("items" in s and not s.get("properties")):
        s = resolve(doc, s.get("items"))
    return set(s.get("properties") or {})


def body_schema(content: dict[str, Any] | None) -> dict[str, Any] | None:
    """The schema of a request or response ``content`` (any JSON media type)."""
    for media, entry in (content or {}).items():
        if "json" in media:
            return entry.get("schema")
    return None


def success_response(op: dict[str, Any]) -> dict[str, Any] | None:
    for status in ("200", "201"):
        if status in (op.get("responses") or {}):
            return op["responses"][status]
    return None


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Our OpenAPI document as the app serves it (``GET {context}/openapi.json``; serving it needs
    no database, so one app answers for the whole module)."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("openapi"))
    app = create_app(settings, migrate=False)

    async def fetch() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://vdx.test") as client:
            return await client.get(f"{settings.api_context}/openapi.json")

    r = asyncio.run(fetch())
    assert r.status_code == 200
    doc: dict[str, Any] = r.json()
    ctx = settings.api_context
    # their paths are relative to the context
    doc["_by_path"] = {
        _normal(p[len(ctx) :]): item for p, item in doc["paths"].items() if p.startswith(ctx + "/")
    }
    return doc


@pytest.mark.parametrize(("method", "path"), list(_operations()), ids=lambda v: v)
def test_operation_exists_with_their_parameters_and_bodies(ours, method, path):
    # spec 7 MUST rows: every v2 endpoint of the reference, unchanged for its clients
    theirs_op = THEIRS["paths"][path][method]
    item = ours["_by_path"].get(_normal(path))
    assert item is not None and method in item, (
        f"{method.upper()} {path} is missing from our OpenAPI document"
    )
    our_op = item[method]
    problems: list[str] = []

    their_query = {
        p["name"]
        for p in (resolve(THEIRS, p) for p in theirs_op.get("parameters") or [])
        if p.get("in") == "query"
    }
    our_query = {p["name"] for p in our_op.get("parameters") or [] if p.get("in") == "query"}
    if their_query - our_query:
        problems.append(f"query parameters missing: {sorted(their_query - our_query)}")

    their_body = body_schema((theirs_op.get("requestBody") or {}).get("content"))
    if their_body is not None:
        our_body = body_schema((our_op.get("requestBody") or {}).get("content"))
        if our_body is None:
            problems.append("request body missing")
        else:
            missing = property_names(THEIRS, their_body) - property_names(ours, our_body)
            if missing:
                problems.append(f"request body properties missing: {sorted(missing)}")

    their_ok = success_response(theirs_op)
    their_schema = body_schema((their_ok or {}).get("content"))
    if their_schema is not None:
        our_ok = success_response(our_op)
        our_schema = body_schema((our_ok or {}).get("content"))
        if our_schema is None:
            problems.append("success response schema missing")
        else:
            missing = property_names(THEIRS, their_schema) - property_names(ours, our_schema)
            if missing:
                problems.append(f"response properties missing: {sorted(missing)}")
            their_is_array = resolve(THEIRS, their_schema).get("type") == "array"
            if their_is_array != (resolve(ours, our_schema).get("type") == "array"):
                problems.append("response is a list in one document and not in the other")
    elif (
        their_ok is None
        and "204" in (theirs_op.get("responses") or {})
        and "204" not in (our_op.get("responses") or {})
    ):
        problems.append("204 No Content not declared")
    assert not problems, f"{method.upper()} {path}: " + "; ".join(problems)


def test_every_component_of_theirs_is_mapped():
    # the mapping below is explicit; a new component in the reference must be added to it
    objects = {
        name for name, s in THEIRS["components"]["schemas"].items() if s.get("properties") or s.get("allOf")
    }
    unmapped = objects - set(COMPONENTS) - {"basicError"}  # basicError: part of detailedError
    assert not unmapped, f"reference components without a counterpart here: {sorted(unmapped)}"


def _our_component(doc: dict[str, Any], name: str) -> dict[str, Any] | None:
    comps = (doc.get("components") or {}).get("schemas") or {}
    for candidate in (name, f"{name}-Output", f"{name}-Input"):
        if candidate in comps:
            return {"$ref": f"#/components/schemas/{candidate}"}
    return None


@pytest.mark.parametrize("their_name", list(COMPONENTS))
def test_component_has_every_property_of_theirs(ours, their_name):
    # spec 1.6: field for field as the reference names them
    our_name, model = COMPONENTS[their_name]
    theirs = property_names(THEIRS, {"$ref": f"#/components/schemas/{their_name}"})
    assert theirs, f"{their_name} has no properties in the reference"
    served = _our_component(ours, our_name)
    if served is not None:
        source, names = "our OpenAPI document", property_names(ours, served)
    else:
        # Not served by any operation yet: the model that will serve it must already be complete.
        mode = "validation" if their_name in REQUEST_COMPONENTS else "serialization"
        model_schema = model.model_json_schema(by_alias=True, mode=mode)
        source, names = f"model {model.__name__} (not served yet)", property_names(model_schema, model_schema)
    missing = theirs - names
    assert not missing, f"{their_name} -> {our_name} in {source}: missing {sorted(missing)}"
