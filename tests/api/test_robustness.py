"""Bad input gets a clean 4xx, never a 500 (spec 1.0, 1.0.1 codes "10" and "25", spec 2.15).

The cases run against every v2 endpoint with a JSON body that the app has (meetings, scheduling
info, templates, as their branches land; ``ENDPOINTS`` lists them, absent ones are left out at
collection), and always against a probe route that takes the
``create-meeting`` body through the same schema and error handlers, so the plumbing is pinned
even before the resources exist.
"""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute

from vdx.app import create_app
from vdx.booking import commands
from vdx.booking.roles import ADMIN, PLANNER, PROVISIONER_USER, USER
from vdx.settings import Settings

DETAILED_KEYS = {"timestamp", "status", "error", "path", "detailed_error", "detailed_error_code"}
BASIC_KEYS = {"timestamp", "status", "error", "path"}
PROBE = "/v2/_probe/create-meeting"
ALL_ROLES = (ADMIN, USER, PLANNER, PROVISIONER_USER)


@dataclass
class BodyEndpoint:
    """A v2 endpoint with a JSON object body, and field mutations that must fail validation."""

    method: str
    path: str  # relative to the context, as the reference names it
    good: dict[str, Any]
    # (field, bad value, expected detailed_error_code)
    bad_fields: list[tuple[str, Any, str]] = field(default_factory=list)

    def url(self, ctx: str) -> str:
        return ctx + self.path.replace("{uuid}", str(uuid.uuid4())).replace("{id}", "1")

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


MEETING = {"subject": "s", "startTime": "2030-01-01T10:00:00Z", "endTime": "2030-01-01T11:00:00Z"}
MEETING_BAD = [
    ("startTime", "10000-01-01T10:00:00Z", "25"),
    ("endTime", "+10000-01-01T10:00:00Z", "25"),
    ("startTime", "yesterday", "10"),
    ("startTime", 1234, "10"),
    ("subject", {"nested": True}, "10"),
    ("subject", "x" * 101, "10"),
    ("labels", "not-a-list", "10"),
]
TEMPLATE = {
    "conferencingSysId": 1,
    "uriPrefix": "",
    "uriDomain": "vdx.test",
    "hostPinRequired": False,
    "guestPinRequired": False,
    "uriNumberRangeLow": 1000,
    "uriNumberRangeHigh": 9999,
}
TEMPLATE_BAD = [
    ("vmrType", "auditorium", "10"),
    ("hostView", "one_big_tile", "10"),
    ("uriNumberRangeLow", "many", "10"),
    ("uriNumberRangeLow", 2**70, "10"),
    ("hostPinRequired", [True], "10"),
]

ENDPOINTS = [
    BodyEndpoint("POST", PROBE, MEETING, [*MEETING_BAD, ("vmrType", "auditorium", "10")]),
    BodyEndpoint(
        "POST",
        "/v2/meetings",
        MEETING,
        [
            *MEETING_BAD,
            ("vmrType", "auditorium", "10"),
            ("guestMicrophone", "loud", "10"),
            ("meetingType", "ADHOC", "10"),
            ("uuid", "not-a-uuid", "10"),
            ("maxParticipants", "ten", "10"),
            ("guestPin", 12, "10"),
        ],
    ),
    BodyEndpoint("PUT", "/v2/meetings/{uuid}", MEETING, MEETING_BAD),
    BodyEndpoint(
        "PATCH",
        "/v2/meetings/{uuid}",
        {"subject": "s"},
        [*MEETING_BAD, ("guestMicrophone", "loud", "10")],
    ),
    BodyEndpoint(
        "POST",
        "/v2/scheduling-info",
        {"organizationId": "org1", "schedulingTemplateId": 1},
        [("schedulingTemplateId", "one", "10"), ("organizationId", None, "10")],
    ),
    BodyEndpoint(
        "PUT",
        "/v2/scheduling-info/{uuid}",
        {"provisionStatus": "PROVISIONED_OK"},
        [("provisionStatus", "DONE", "10"), ("provisionStatus", 3, "10"), ("provisionVmrId", "x" * 51, "10")],
    ),
    BodyEndpoint("POST", "/v2/scheduling-templates", TEMPLATE, TEMPLATE_BAD),
    BodyEndpoint("PUT", "/v2/scheduling-templates/{id}", TEMPLATE, TEMPLATE_BAD),
]


@pytest.fixture
async def probed(api):
    """The app with the probe route: the create-meeting body through the app's handlers."""

    async def probe(body: commands.CreateMeeting) -> dict[str, str]:
        return {"subject": body.subject}

    api.app.router.routes.append(
        APIRoute(f"{api.settings.api_context}{PROBE}", probe, methods=["POST"], response_model=None)
    )
    await api.add_org("org1")
    return api


def present(api, ep: BodyEndpoint) -> bool:
    path = api.settings.api_context + ep.path
    return any(
        isinstance(r, APIRoute) and r.path == path and ep.method in r.methods for r in api.app.router.routes
    )


def headers(api) -> dict[str, str]:
    return api.auth("org1", "a@x.dk", *ALL_ROLES) | {"content-type": "application/json"}


def assert_detailed(r, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == DETAILED_KEYS, body
    assert body["status"] == status and body["detailed_error_code"] == code, body
    assert body["path"] == r.request.url.path


def _routes() -> set[tuple[str, str]]:
    """(method, path relative to the context) of every route the app has (building the app needs
    no database), so that only present endpoints become test cases."""
    settings = Settings(data_dir=Path(tempfile.gettempdir()) / "vdx-unused")
    app = create_app(settings, migrate=False)
    ctx = settings.api_context
    return {
        (m, r.path[len(ctx) :])
        for r in app.routes
        if isinstance(r, APIRoute) and r.path.startswith(ctx)
        for m in r.methods
    }


_PRESENT = _routes() | {("POST", PROBE)}
PRESENT_ENDPOINTS = [ep for ep in ENDPOINTS if (ep.method, ep.path) in _PRESENT]


@pytest.fixture(params=PRESENT_ENDPOINTS, ids=lambda ep: ep.id)
def endpoint(request, probed) -> BodyEndpoint:
    ep: BodyEndpoint = request.param
    assert present(probed, ep)
    return ep


MALFORMED: dict[str, bytes] = {
    "broken JSON": b'{"subject": "s", ',
    "trailing garbage": b'{"subject": "s"} x',
    "JSON array": b'[{"subject": "s"}]',
    "JSON number": b"42",
    "JSON string": b'"subject"',
    "JSON null": b"null",
    "empty body": b"",
    "not UTF-8": b'{"subject": "\xff\xfe"}',
    "deeply nested": b'{"subject": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "NaN": b'{"subject": "s", "maxParticipants": NaN}',
    "NUL character": b'{"subject": "a\\u0000b"}',
    "NUL after an escaped backslash": b'{"subject": "a\\\\\\u0000b"}',
}


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_malformed_bodies_are_400_code_10(probed, endpoint, case):
    # spec 1.0 / 2.15: unreadable JSON and non-object bodies are input errors, never 500
    api = probed
    r = await api.client.request(
        endpoint.method, endpoint.url(api.settings.api_context), content=MALFORMED[case], headers=headers(api)
    )
    assert_detailed(r, 400, "10")


async def test_bad_fields_are_400_with_their_code(probed, endpoint):
    # spec 1.0.1: schema violations 400/10 naming the field; a year beyond 9999 is 400/25;
    # spec 2.15: unknown enum literals and wrong types are input errors too
    api = probed
    for name, value, code in endpoint.bad_fields:
        body = endpoint.good | {name: value}
        r = await api.client.request(
            endpoint.method, endpoint.url(api.settings.api_context), json=body, headers=headers(api)
        )
        assert_detailed(r, 400, code)
        if code == "10":
            assert name in r.json()["detailed_error"], (name, r.json())
        else:
            assert r.json()["detailed_error"] == "Date format is wrong, year must only have 4 digits"


async def test_other_content_types_are_refused_cleanly(probed, endpoint):
    # a body that is not declared JSON is not parsed as JSON: 4xx with the error body, no 500
    api = probed
    h = headers(api) | {"content-type": "text/plain"}
    r = await api.client.request(
        endpoint.method, endpoint.url(api.settings.api_context), content=b'{"subject": "s"}', headers=h
    )
    assert 400 <= r.status_code < 500
    assert set(r.json()) == DETAILED_KEYS


async def _chunks(total: int, size: int = 64 * 1024):
    yield b'{"subject": "'
    sent = 0
    while sent < total:
        yield b"x" * size
        sent += size
    yield b'"}'


async def test_body_limit_by_content_length_and_while_streaming(api_factory):
    # robustness: bodies over VDX_MAX_BODY_BYTES -> 413 DetailedError code 10, also when the size is
    # not declared up front (chunked) and the limit is crossed while the body streams in
    api = await api_factory(max_body_bytes=10_000)
    await api.add_org("org1")

    async def echo(body: commands.CreateMeeting) -> dict[str, str]:
        return {"subject": body.subject}

    api.app.router.routes.append(
        APIRoute(f"{api.settings.api_context}{PROBE}", echo, methods=["POST"], response_model=None)
    )
    url = api.settings.api_context + PROBE
    r = await api.client.post(url, json=MEETING | {"subject": "x" * 20_000}, headers=headers(api))
    assert_detailed(r, 413, "10")
    r = await api.client.post(url, content=_chunks(50_000), headers=headers(api))
    assert "content-length" not in r.request.headers
    assert_detailed(r, 413, "10")
    # below the limit, chunked or not, the body goes through
    r = await api.client.post(url, json=MEETING, headers=headers(api))
    assert r.status_code == 200 and r.json() == {"subject": "s"}
    # the organisation service answers the same limit with its own body (spec 5.1)
    r = await api.client.post(
        f"{api.settings.api_context}/services/v2/organisation/uri",
        content=_chunks(50_000),
        headers=api.auth("org1", "a@x.dk", ADMIN) | {"content-type": "application/json"},
    )
    assert r.status_code == 413
    assert set(r.json()) == {"error", "path", "status", "status_text", "timestamp"}


async def test_unknown_paths_and_methods_keep_the_framework_body(api):
    # spec 1.0: errors raised before a controller use the framework body {timestamp,status,error,path}
    await api.add_org("org1")
    r = await api.client.get(f"{api.v2}/no-such-resource", headers=headers(api))
    assert r.status_code == 404 and set(r.json()) == BASIC_KEYS and r.json()["error"] == "Not Found"
    r = await api.client.delete(f"{api.v2}/info", headers=headers(api))
    assert r.status_code == 405 and set(r.json()) == BASIC_KEYS
    assert "GET" in r.headers["allow"]


async def test_body_limit_on_a_served_process(live_server_factory):
    # the limit holds behind a real HTTP server too, for declared and for chunked bodies
    import httpx

    server = live_server_factory(extra_env={"VDX_MAX_BODY_BYTES": "10000"})
    assert server.cli("org", "add", "org1").returncode == 0
    url = f"{server.base_url}/api/services/v2/organisation/uri"
    h = {
        "Authorization": f"Bearer {server.token('org1', 'a@x.dk', ADMIN)}",
        "Content-Type": "application/json",
    }

    async def chunks():
        yield b'["'
        for _ in range(20):
            yield b"x" * 4096
        yield b'"]'

    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(url, content=b"[" + b'"x",' * 5000 + b'"x"]', headers=h)
        assert r.status_code == 413  # refused by the declared length, with the service's body
        assert set(r.json()) == {"error", "path", "status", "status_text", "timestamp"}
        r = await client.post(url, content=b"[" + b'"x",' * 500_000 + b'"x"]', headers=h)
        assert r.status_code == 413  # 2 MB: the client still reads the answer
        r = await client.post(url, content=chunks(), headers=h)
        assert r.request.headers.get("transfer-encoding") == "chunked"
        assert r.status_code == 413
        assert r.json()["status"] == 413
        r = await client.post(
            f"{server.base_url}/api/v2/info", content=b"x" * 20_000, headers=h
        )  # a route that never reads its body answers as usual
        assert r.status_code == 405
        r = await client.post(url, content=b'["1@nowhere.test"]', headers=h)
        assert r.status_code == 200 and r.json() == []


async def test_openapi_declares_400_detailed_error_not_422(probed):
    # spec 1.0: validation failures are 400 DetailedError; the document must say so (clients and
    # schemathesis read it), and it never promises FastAPI's 422
    api = probed
    doc = (await api.client.get(f"{api.settings.api_context}/openapi.json")).json()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert "422" not in op["responses"], (method, path)
    probe = doc["paths"][api.settings.api_context + PROBE]["post"]["responses"]
    assert probe["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DetailedError"
    }
    assert set(doc["components"]["schemas"]["DetailedError"]["properties"]) == DETAILED_KEYS
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    r = await api.client.post(api.settings.api_context + PROBE, json={}, headers=headers(api))
    assert_detailed(r, 400, "10")


async def test_an_escaped_backslash_before_u0000_is_text_not_nul(probed):
    # the NUL guard reads JSON escapes: "\\u0000" is a backslash followed by "u0000"
    api = probed
    body = (
        b'{"subject": "a\\\\u0000", "startTime": "2030-01-01T10:00:00Z", "endTime": "2030-01-01T11:00:00Z"}'
    )
    r = await api.client.post(api.settings.api_context + PROBE, content=body, headers=headers(api))
    assert r.status_code == 200 and r.json() == {"subject": "a\\u0000"}
