"""The endpoints only the web pages use (issue 6), without a browser: pages and static files are
served, invitations go through the pluggable sender, live counts show only one's own rooms; the
demo sign-in answers only under ``--demo`` and only this machine, every page carries its security
headers, and no PIN or token of a URL reaches the log (issue 15)."""

from __future__ import annotations

import contextlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import websockets

from harness.waiting import until
from vdx.web.invitations import Invitation, LoggingSender, build_sender
from vdx.web.pages import STATIC

PLANNER = "meeting-planner"


async def _book(api: Any, org: str, email: str, **extra: Any) -> dict[str, Any]:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    r = await api.client.post(
        f"{api.v2}/meetings",
        json={
            "subject": "Consultation",
            "startTime": start.isoformat(),
            "endTime": (start + timedelta(minutes=30)).isoformat(),
            **extra,
        },
        headers=api.auth(org, email, PLANNER),
    )
    assert r.status_code == 200, r.text
    meeting: dict[str, Any] = r.json()
    return meeting


@pytest.mark.parametrize(
    ("path", "marker"),
    [("/join/", 'id="join-form"'), ("/booking/", 'id="meeting-form"'), ("/dashboard/", 'id="conferences"')],
)
async def test_pages_are_served_with_and_without_the_trailing_slash(api: Any, path: str, marker: str) -> None:
    for p in (path, path.rstrip("/")):
        r = await api.client.get(p, params={"conference": "1@vdx.test"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert marker in r.text


async def test_static_files_and_texts_in_both_languages(api: Any) -> None:
    r = await api.client.get("/web/static/join.js")
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    texts = (await api.client.get("/web/static/i18n.json")).json()
    assert set(texts) == {"en", "da"} and set(texts["en"]) == set(texts["da"])
    # every key a page or script names has a text
    used: set[str] = set()
    # the pages as served (the staff pages are put together from staff.html and their own part)
    pages = [f.read_text() for f in STATIC.glob("*.html")]
    pages += [(await api.client.get(p)).text for p in ("/booking/", "/dashboard/")]
    for page in pages:
        used |= {k for k in re.findall(r'data-i18n="([^"]+)"', page) if not k.startswith("{{")}
        used |= {
            k
            for pair in re.findall(r'data-i18n-attr="([^"]+)"', page)
            for k in re.findall(r":([\w.]+)", pair)
        }
    assert {"booking.title", "dash.title"} <= used
    for f in STATIC.glob("*.js"):
        used |= {k for k in re.findall(r'vdx\.t\("([\w.]+)"', f.read_text())}
    missing = sorted(k for k in used if k not in texts["en"] and not k.endswith("."))  # "x." + code: composed
    assert not missing, missing


async def test_invitation_by_sms_and_email_carries_the_short_link(api: Any) -> None:
    await api.add_org("clinic")
    m = await _book(api, "clinic", "doc@clinic.test")
    headers = api.auth("clinic", "doc@clinic.test", PLANNER)
    r = await api.client.post(
        "/web/invitations",
        json={"meetingUuid": m["uuid"], "channel": "sms", "to": "+45 12 34 56 78"},
        headers=headers,
    )
    assert r.status_code == 202 and r.json()["link"] == m["shortLink"]
    r = await api.client.post(
        "/web/invitations",
        json={"meetingUuid": m["uuid"], "channel": "email", "to": "citizen@example.test", "language": "en"},
        headers=headers,
    )
    assert r.status_code == 202
    sms, mail = api.app.state.invitation_sender.sent[-2:]
    assert sms.channel == "sms" and "Deltag her: " + m["shortLink"] in sms.text  # Danish by default
    assert mail.subject == "Invitation to a video meeting: Consultation" and m["shortLink"] in mail.text


async def test_invitation_refusals(api: Any) -> None:
    await api.add_org("clinic")
    await api.add_org("other")
    m = await _book(api, "clinic", "doc@clinic.test")
    body = {"meetingUuid": m["uuid"], "channel": "email", "to": "not-an-address"}
    r = await api.client.post(
        "/web/invitations", json=body, headers=api.auth("clinic", "doc@clinic.test", PLANNER)
    )
    assert r.status_code == 400
    body = {"meetingUuid": m["uuid"], "channel": "sms", "to": "call me"}
    r = await api.client.post(
        "/web/invitations", json=body, headers=api.auth("clinic", "doc@clinic.test", PLANNER)
    )
    assert r.status_code == 400
    body = {"meetingUuid": m["uuid"], "channel": "sms", "to": "+4512345678"}
    r = await api.client.post(
        "/web/invitations", json=body, headers=api.auth("other", "x@other.test", PLANNER)
    )
    assert r.status_code == 403  # another organisation's meeting
    assert (await api.client.post("/web/invitations", json=body)).status_code == 401
    assert api.app.state.invitation_sender.sent == []


async def test_live_counts_only_for_own_meetings(api: Any) -> None:
    await api.add_org("clinic")
    await api.add_org("other")
    m = await _book(api, "clinic", "doc@clinic.test")
    si = (
        await api.client.get(
            f"{api.v2}/scheduling-info/{m['uuid']}", headers=api.auth("clinic", "doc@clinic.test", PLANNER)
        )
    ).json()
    alias = si["uriWithDomain"]
    r = await api.client.get(
        "/web/live", params={"alias": alias}, headers=api.auth("clinic", "doc@clinic.test", PLANNER)
    )
    assert r.json() == {alias: 0}  # nobody there (the browser test sees real counts)
    r = await api.client.get(
        "/web/live", params={"alias": alias}, headers=api.auth("other", "x@other.test", PLANNER)
    )
    assert r.json() == {alias: 0}


class _Recorder:
    def __init__(self, settings: Any) -> None:
        self.settings = settings


def test_sender_is_pluggable(settings_factory: Any) -> None:
    assert isinstance(build_sender(settings_factory()), LoggingSender)
    custom = build_sender(settings_factory(invitation_sender=f"{__name__}:_Recorder"))
    assert isinstance(custom, _Recorder)
    with pytest.raises(ValueError):
        build_sender(settings_factory(invitation_sender="no-colon"))


async def test_logging_sender_keeps_the_last_ones() -> None:
    sender = LoggingSender(keep=2)
    for i in range(3):
        await sender.send(Invitation(channel="sms", to=str(i), subject="s", text="t"))
    assert [i.to for i in sender.sent] == ["1", "2"]


_SIGN_IN = {"organisation": "clinic", "email": "a@clinic.test", "roles": ["meeting-user"]}


async def _dev_token(api: Any, peer: tuple[str, int], host: str, **headers: str) -> httpx.Response:
    """``POST /web/dev-token`` as sent from ``peer`` (the ASGI client address) to ``Host: host``."""
    transport = httpx.ASGITransport(app=api.app, client=peer)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as client:
        config = (await client.get("/web/config", headers=headers)).json()
        r = await client.post("/web/dev-token", json=_SIGN_IN, headers=headers)
    assert config["devSignIn"] is (r.status_code == 200), "the page offers it exactly when it answers"
    return r


async def test_dev_sign_in_is_not_there_without_demo(api_factory: Any) -> None:
    # vdx serve and vdx api make the app without demo_sign_in: whatever else is configured, the
    # endpoint is not there, even for a browser on this machine
    api = await api_factory()
    r = await _dev_token(api, ("127.0.0.1", 40000), "127.0.0.1:8080")
    assert r.status_code == 404 and "access_token" not in r.text


async def test_demo_sign_in_answers_only_this_machine(api_factory: Any) -> None:
    api = await api_factory(demo_sign_in=True)
    await api.add_org("clinic")
    for peer, host in [
        (("127.0.0.1", 40000), "127.0.0.1:8080"),
        (("127.0.0.2", 40000), "localhost:8080"),
        (("::1", 40000), "[::1]:8080"),
        (("::ffff:127.0.0.1", 40000), "localhost"),
    ]:
        r = await _dev_token(api, peer, host)
        assert r.status_code == 200, (peer, host)
        token = r.json()["access_token"]
        me = await api.client.get(
            f"{api.v2}/meetings", params={"subject": "x"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert me.status_code == 200
    refused = [
        # another machine, on the LAN or the internet
        (("192.0.2.7", 1234), "127.0.0.1:8080", {}),
        (("10.0.0.5", 1234), "vdx.example.dk", {}),
        (("2001:db8::7", 1234), "[::1]:8080", {}),
        # through a reverse proxy on this machine: the person is elsewhere
        (("127.0.0.1", 40000), "127.0.0.1:8080", {"X-Forwarded-For": "192.0.2.7"}),
        (("127.0.0.1", 40000), "127.0.0.1:8080", {"Forwarded": "for=192.0.2.7;proto=https"}),
        (("127.0.0.1", 40000), "127.0.0.1:8080", {"X-Real-IP": "192.0.2.7"}),
        # a page of another site whose name resolves to 127.0.0.1 (DNS rebinding)
        (("127.0.0.1", 40000), "attacker.example:8080", {}),
    ]
    for peer, host, headers in refused:
        r = await _dev_token(api, peer, host, **headers)
        assert r.status_code == 404 and "access_token" not in r.text, (peer, host, headers)


async def test_demo_sign_in_steps_aside_for_an_identity_provider(api_factory: Any) -> None:
    api = await api_factory(demo_sign_in=True, oidc_issuer="https://idp.example/realms/vdx")
    r = await _dev_token(api, ("127.0.0.1", 40000), "127.0.0.1:8080")
    assert r.status_code == 404


PAGES = ["/", "/join/?conference=1@vdx.test&pin=1234", "/booking/", "/dashboard/", "/api/docs"]


@pytest.mark.parametrize("path", PAGES)
async def test_pages_carry_the_security_headers_and_no_inline_code(api: Any, path: str) -> None:
    r = await api.client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    policy = dict(d.strip().split(" ", 1) for d in r.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'" and policy["base-uri"] == "'none'"
    assert policy["connect-src"] == "'self' ws://vdx.test"  # the signalling WebSocket of VDX_PUBLIC_URL
    assert "unsafe" not in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    # what a policy without 'unsafe-inline' would refuse: inline scripts, styles, handlers
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", r.text), "inline script"
    assert not re.search(r"<style|\sstyle=|\son[a-z]+=", r.text), "inline style or handler"
    # and every script and stylesheet it names is served here
    for ref in re.findall(r'(?:src|href)="(/web/static/[^"]+)"', r.text):
        assert (await api.client.get(ref)).status_code == 200, ref


async def test_api_docs_load_nothing_from_elsewhere(api: Any) -> None:
    page = (await api.client.get("/api/docs")).text
    assert "http" not in page.replace('data-openapi-url="/api/openapi.json"', "")
    assert 'data-openapi-url="/api/openapi.json"' in page
    assert (await api.client.get("/api/openapi.json")).status_code == 200


async def test_frame_ancestors_can_let_a_portal_embed_the_pages(api_factory: Any) -> None:
    portal = await api_factory(frame_ancestors="https://portal.region.example, https://*.hospital.example")
    r = await portal.client.get("/join/")
    assert (
        "frame-ancestors https://portal.region.example https://*.hospital.example"
        in (r.headers["content-security-policy"])
    )
    assert "x-frame-options" not in r.headers  # it cannot name origins; frame-ancestors decides
    same = await api_factory(frame_ancestors="'self'")
    assert (await same.client.get("/join/")).headers["x-frame-options"] == "SAMEORIGIN"


@pytest.mark.parametrize(
    "value", ["https://portal.example; script-src *", "*", "javascript:", "'unsafe-inline'", ""]
)
def test_frame_ancestors_takes_only_origins(settings_factory: Any, value: str) -> None:
    with pytest.raises(ValueError, match="frame_ancestors"):
        settings_factory(frame_ancestors=value)


async def test_the_identity_provider_is_a_place_the_pages_may_fetch(api_factory: Any) -> None:
    api = await api_factory(oidc_issuer="https://idp.example/realms/vdx", public_url="https://video.example")
    policy = (await api.client.get("/booking/")).headers["content-security-policy"]
    assert "connect-src 'self' wss://video.example https://idp.example;" in policy


async def test_the_logs_of_a_served_node_show_no_pin_token_or_short_link(live_server_factory: Any) -> None:
    # what a person's browser, an integration or a client of the signalling socket may put in a
    # URL; none of it may reach the log (an operator, a log collector)
    secrets = ["918273645", "OIDC-CODE-5f2e", "TOKEN-Q9x", "564738291", "a1b2c3d4e5f6"]
    server = live_server_factory()  # a default vdx serve
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        assert (await client.get("/join/?conference=1%40vdx.test&pin=918273645")).status_code == 200
        assert (await client.get("/booking/?code=OIDC-CODE-5f2e&state=x")).status_code == 200
        assert (await client.get("/api/v2/meetings?access_token=TOKEN-Q9x")).status_code == 401
        assert (await client.get("/s/a1b2c3d4e5f6", follow_redirects=False)).status_code == 404
        # and no demo sign-in on a default vdx serve, even for this machine
        assert (await client.post("/web/dev-token", json=_SIGN_IN)).status_code == 404
    async with websockets.connect(f"{server.ws_base}/ws/rooms/1@vdx.test?pin=564738291") as ws:
        # an unknown room is refused at once: the join may find the socket closed, but the error
        # sent before the close is there to read
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(json.dumps({"type": "join", "displayName": "Probe", "pin": "564738291"}))
        assert json.loads(await ws.recv())["code"] == "not_found"

    def logged() -> str:
        text = server.log.read_text()
        return (
            text if '"WebSocket /ws/rooms/1@vdx.test"' in text and "POST /web/dev-token 404" in text else ""
        )

    log = await until(logged, 10, "the access lines in the log")
    for line in ("GET /join 200", "GET /booking 200", "GET /api/v2/meetings 401", "GET /s/{short_id} 404"):
        assert line in log, log[-3000:]
    for secret in secrets:
        assert secret not in log, (secret, log[-3000:])


async def test_the_cluster_nodes_are_places_the_join_page_may_connect_to(api_factory: Any) -> None:
    # a join page is redirected to the node that hosts the room: its WebSocket goes there
    api = await api_factory(
        public_url="https://video.example", node_origins="https://*.nodes.video.example http://127.0.0.1:*"
    )
    policy = (await api.client.get("/join/")).headers["content-security-policy"]
    assert "connect-src 'self' wss://video.example wss://*.nodes.video.example ws://127.0.0.1:*;" in policy


@pytest.mark.parametrize(
    "value", ["https://a.example; script-src *", "*", "'self'", "javascript:", "a.example"]
)
def test_node_origins_takes_only_origins(settings_factory: Any, value: str) -> None:
    with pytest.raises(ValueError, match="node_origins"):
        settings_factory(node_origins=value)
