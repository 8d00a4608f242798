"""Dial-out from a live room (issue 19): a host asks the node to call a SIP address into the room
(``POST .../participants/dial``); the answered party joins with the chosen role, decoding the
room's picture and tone; a decline, an unanswered call and bad input leave nothing behind."""

from __future__ import annotations

import json
import shutil
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from harness.bot import GREEN, PALETTE, colour_close
from harness.dns_server import dns_server
from harness.ports import free_port
from harness.waiting import until
from tests.conftest import Api
from tests.node.booking import book, wait_for_status, whole_seconds
from tests.node.conftest import drop_consumer
from vdx.booking.roles import PLANNER, PROVISIONER_USER
from vdx.booking.routing import Trunk
from vdx.sip.tls import ensure_self_signed
from vdx.store.db import now_utc
from vdx.store.models import AuditRecord

from .conftest import sipp_answering
from .sipnode import SipNode, run_sip_node
from .softphones import Baresip, Linphonec
from .test_sip_room_peers import RED_YUV, heard_wav, tone_power

pytestmark = pytest.mark.interop

ROOM = "7400@vdx.test"


async def dial(node: SipNode, token: str, body: dict[str, Any]) -> httpx.Response:
    url = f"{node.base}{node.settings.api_context}/node/v1/conferences/{ROOM}/participants/dial"
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(url, json=body, headers={"Authorization": f"Bearer {token}"})


async def status(node: SipNode, token: str) -> dict[str, Any]:
    url = f"{node.base}{node.settings.api_context}/node/v1/conferences/{ROOM}"
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.get(url, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def dial_state(report: dict[str, Any], pid: str) -> str | None:
    return next((d["state"] for d in report["dialOuts"] if d["participantId"] == pid), None)


def nothing_left(node: SipNode, tickets: int = 0) -> bool:
    """No SIP call, no pending INVITE, no admission ticket beyond ``tickets`` (the bots' own), no
    SIP participant."""
    conf = node.rooms.live_conference(ROOM)
    return (
        not node.sip.calls
        and not node.calls.joined
        and not any(getattr(t, "pending", False) for t in node.sip.txn.clients.values())
        and len(node.rooms.capacity._tickets) <= tickets
        and (conf is None or all(p.protocol != "sip" for p in conf.participants.values()))
    )


async def audited(node: SipNode) -> list[tuple[str, str, str | None]] | None:
    """The conference's dial records in the audit trail (operation, participant, outcome), once
    there are two."""
    async with node.app.state.sessions() as s:
        rows = (await s.execute(select(AuditRecord).order_by(AuditRecord.id))).scalars().all()
    trail = [
        (r.operation, json.loads(r.data)["participantId"], json.loads(r.data).get("state"))
        for r in rows
        if r.operation.startswith("dial")
    ]
    return trail if len(trail) >= 2 else None


async def host_bot(node: SipNode, **kw: Any) -> Any:
    bot = node.bot(ROOM, "Host", **kw)
    await bot.connect()
    assert (await bot.join())["role"] == "host"
    return bot


async def test_bad_destinations_get_400_and_nothing_is_dialled(settings_factory) -> None:
    async with run_sip_node(settings_factory) as node:
        node.add_room(ROOM)
        bot = await host_bot(node)
        tickets = len(node.rooms.capacity._tickets)
        for destination in (
            "not a uri",
            "http://example.org/",
            "sip:",
            "sip:user@host:99999",
            "sip:user@host;transport=sctp",
            "sips:user@host;transport=udp",
            f"sip:7400@127.0.0.1:{node.sip.port}",  # the node itself: a loop
            f"sip:someone@{node.settings.sip_domain}",
        ):
            r = await dial(node, bot.token, {"destination": destination, "role": "guest"})
            assert r.status_code == 400, (destination, r.text)
            assert r.json()["detailed_error_code"] == "10" and r.json()["detailed_error"], r.text
        r = await dial(node, bot.token, {"destination": "sip:a@127.0.0.1", "role": "boss"})
        assert r.status_code in (400, 422), r.text
        assert (await status(node, bot.token))["dialOuts"] == []
        assert nothing_left(node, tickets)


async def test_a_guest_may_not_dial(settings_factory) -> None:
    async with run_sip_node(settings_factory) as node:
        node.add_room(ROOM, host_pin="1234", guest_pin="5678")
        host = node.bot(ROOM, "Host")
        await host.connect()
        await host.join("1234")
        guest = node.bot(ROOM, "Guest")
        await guest.connect()
        await guest.join("5678")
        r = await dial(node, guest.token, {"destination": "sip:a@127.0.0.1:5999"})
        assert r.status_code == 403, r.text


@pytest.mark.parametrize(
    ("scenario", "state", "transport"),
    [
        ("dialled_busy.xml", "busy", "udp"),
        ("dialled_busy.xml", "busy", "tcp"),
        ("dialled_unanswered.xml", "no_answer", "udp"),
        ("dialled_unanswered.xml", "no_answer", "tcp"),
    ],
)
async def test_a_declined_or_unanswered_dial_reports_so_and_leaves_nothing(
    settings_factory, tmp_path: Path, scenario: str, state: str, transport: str
) -> None:
    port = free_port(socket.SOCK_STREAM if transport == "tcp" else socket.SOCK_DGRAM)
    async with run_sip_node(settings_factory, sip_dial_timeout=2.0) as node:
        node.add_room(ROOM)
        bot = await host_bot(node)
        tickets = len(node.rooms.capacity._tickets)
        sipp = await sipp_answering(
            tmp_path, scenario, listen=port, transport="t1" if transport == "tcp" else "u1"
        )
        destination = f"sip:peer@127.0.0.1:{port}" + (";transport=tcp" if transport == "tcp" else "")
        r = await dial(node, bot.token, {"destination": destination, "role": "guest"})
        assert r.status_code == 202, r.text
        pid = r.json()["participantId"]
        await bot.until(
            lambda: (m := bot.last("dial")) is not None and m["state"] == state, 15, f"{state} told"
        )
        assert dial_state(await status(node, bot.token), pid) == state
        result = await sipp
        assert result.returncode == 0, result.describe()
        await until(lambda: nothing_left(node, tickets), 5, "nothing left behind")
        told = [m["state"] for m in bot.messages if m.get("type") == "dial"]
        assert told[:2] == ["calling", "ringing"] and told[-1] == state, told
        trail = await until(lambda: audited(node), 5, "the dial and its outcome in the audit trail")
        assert trail == [("dial", pid, None), ("dial_outcome", pid, state)], trail


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_a_dial_still_ringing_when_the_room_ends_is_cancelled(
    settings_factory, tmp_path: Path, transport: str
) -> None:
    port = free_port(socket.SOCK_STREAM if transport == "tcp" else socket.SOCK_DGRAM)
    async with run_sip_node(settings_factory) as node:
        node.add_room(ROOM)
        bot = await host_bot(node)
        sipp = await sipp_answering(
            tmp_path, "dialled_unanswered.xml", listen=port, transport="t1" if transport == "tcp" else "u1"
        )
        r = await dial(node, bot.token, {"destination": f"sip:peer@127.0.0.1:{port};transport={transport}"})
        assert r.status_code == 202, r.text
        await bot.until(
            lambda: (m := bot.last("dial")) is not None and m["state"] == "ringing", 15, "ringing"
        )
        await bot.leave()  # the last one leaves: the conference ends
        result = await sipp  # it got the CANCEL, answered 487 and had it acknowledged
        assert result.returncode == 0, result.describe()
        await until(lambda: nothing_left(node), 5, "nothing left behind")


async def test_a_peer_that_never_answers_fails_after_the_timeout(settings_factory) -> None:
    port = free_port(socket.SOCK_DGRAM)  # nobody listens there
    async with run_sip_node(settings_factory, sip_dial_timeout=1.0) as node:
        node.add_room(ROOM)
        bot = await host_bot(node)
        tickets = len(node.rooms.capacity._tickets)
        r = await dial(node, bot.token, {"destination": f"sip:peer@127.0.0.1:{port}"})
        assert r.status_code == 202, r.text
        message = await bot.until(
            lambda: (m := bot.last("dial")) is not None and m["state"] == "failed" and m, 15, "failed told"
        )
        assert message["detail"] == "no response from 127.0.0.1", message
        await until(lambda: nothing_left(node, tickets), 5, "nothing left behind")


@pytest.mark.parametrize("transport", ["tcp", "udp"])
async def test_a_dead_first_server_of_a_domain_hands_the_dial_to_the_next(
    settings_factory, tmp_path: Path, transport: str
) -> None:
    """SRV names two servers of municipality.test: nothing listens at the preferred one (over TCP
    it refuses, over UDP it stays silent past the per-server timeout), the other is sipp, which
    gets the INVITE and declines. The progress names the server that failed."""
    kind = socket.SOCK_STREAM if transport == "tcp" else socket.SOCK_DGRAM
    dead, live = free_port(kind), free_port(kind)
    records = {
        (f"_sip._{transport}.municipality.test", "SRV"): [
            f"10 0 {dead} dead.municipality.test.",
            f"20 0 {live} rs.municipality.test.",
        ],
        ("dead.municipality.test", "A"): ["127.0.0.1"],
        ("rs.municipality.test", "A"): ["127.0.0.1"],
    }
    async with (
        dns_server(records) as dns,
        run_sip_node(settings_factory, dns_servers=dns.address, sip_dial_target_timeout=1.0) as node,
    ):
        node.add_room(ROOM)
        bot = await host_bot(node)
        tickets = len(node.rooms.capacity._tickets)
        sipp = await sipp_answering(
            tmp_path, "dialled_busy.xml", listen=live, transport="t1" if transport == "tcp" else "u1"
        )
        r = await dial(node, bot.token, {"destination": "sip:roomsystem@municipality.test", "role": "guest"})
        assert r.status_code == 202, r.text
        await bot.until(lambda: (m := bot.last("dial")) is not None and m["state"] == "busy", 15, "busy told")
        result = await sipp
        assert result.returncode == 0, result.describe()
        failed_over = [
            m["detail"] for m in bot.messages if m.get("type") == "dial" and m["state"] == "calling"
        ]
        assert any(
            d.startswith(f"dead.municipality.test 127.0.0.1:{dead}/{transport.upper()} ") for d in failed_over
        ), failed_over
        await until(lambda: nothing_left(node, tickets), 5, "nothing left behind")


async def test_a_domain_that_cannot_be_located_or_reached_fails_the_dial_naming_it(settings_factory) -> None:
    """nowhere.test does not exist (NXDOMAIN); both servers of closed.test refuse; loop.test's
    server is the node itself: each dial ends failed, telling the domain or every server tried,
    and leaves nothing behind."""
    first, second = free_port(), free_port()  # nothing listens there
    records = {
        ("_sip._tcp.closed.test", "SRV"): [f"10 0 {first} a.closed.test.", f"20 0 {second} b.closed.test."],
        ("a.closed.test", "A"): ["127.0.0.1"],
        ("b.closed.test", "A"): ["127.0.0.1"],
    }
    expected = {
        "sip:interpreter@nowhere.test": "nowhere.test: no such domain",
        "sip:roomsystem@closed.test": "cannot reach closed.test: tried "
        f"a.closed.test 127.0.0.1:{first}/TCP unreachable (connection refused); "
        f"b.closed.test 127.0.0.1:{second}/TCP unreachable (connection refused)",
    }
    async with dns_server(records) as dns, run_sip_node(settings_factory, dns_servers=dns.address) as node:
        dns.records[("_sip._udp.loop.test", "SRV")] = [f"10 0 {node.sip.port} vdx.loop.test."]
        dns.records[("vdx.loop.test", "A")] = ["127.0.0.1"]
        expected["sip:7400@loop.test"] = (
            f"cannot reach loop.test: tried vdx.loop.test 127.0.0.1:{node.sip.port}/UDP "
            "is this node itself (the call would loop)"
        )
        node.add_room(ROOM)
        bot = await host_bot(node)
        tickets = len(node.rooms.capacity._tickets)
        for destination, detail in expected.items():
            r = await dial(node, bot.token, {"destination": destination, "role": "guest"})
            assert r.status_code == 202, r.text
            pid = r.json()["participantId"]
            message = await bot.until(
                lambda pid=pid: (
                    (m := bot.last("dial")) is not None
                    and m["participantId"] == pid
                    and m["state"] == "failed"
                    and m
                ),
                15,
                f"{destination} failed told",
            )
            assert message["detail"] == detail, message
            assert dial_state(await status(node, bot.token), pid) == "failed"
            await until(lambda: nothing_left(node, tickets), 5, "nothing left behind")


async def test_a_redirect_is_followed_to_where_it_points(settings_factory, tmp_path: Path) -> None:
    """sipp answers 302 with another sipp's address; the room dials that one, which declines."""
    first, second = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    async with run_sip_node(settings_factory) as node:
        node.add_room(ROOM)
        bot = await host_bot(node)
        tickets = len(node.rooms.capacity._tickets)
        target = f"sip:moved@127.0.0.1:{second}"
        redirecting = await sipp_answering(
            tmp_path, "dialled_redirect.xml", "-key", "target", target, listen=first
        )
        busy = await sipp_answering(tmp_path, "dialled_busy.xml", listen=second)
        r = await dial(node, bot.token, {"destination": f"sip:peer@127.0.0.1:{first}"})
        assert r.status_code == 202, r.text
        await bot.until(lambda: (m := bot.last("dial")) is not None and m["state"] == "busy", 15, "busy told")
        for result in (await redirecting, await busy):
            assert result.returncode == 0, result.describe()
        await until(lambda: nothing_left(node, tickets), 5, "nothing left behind")


async def test_a_digest_challenged_dial_is_answered_with_the_credentials(
    settings_factory, tmp_path: Path
) -> None:
    port = free_port(socket.SOCK_DGRAM)
    async with run_sip_node(settings_factory, sip_dial_username="dialer", sip_dial_password="secret") as node:
        node.add_room(ROOM)
        bot = await host_bot(node)
        tickets = len(node.rooms.capacity._tickets)
        sipp = await sipp_answering(tmp_path, "dialled_digest.xml", listen=port)
        r = await dial(node, bot.token, {"destination": f"sip:peer@127.0.0.1:{port}", "role": "host"})
        assert r.status_code == 202, r.text
        pid = r.json()["participantId"]
        conf = node.rooms.live_conference(ROOM)
        assert conf is not None
        joined = await until(lambda: conf.participants.get(pid), 10, "the dialled party in the room")
        assert joined.role.value == "host" and joined.in_conference and joined.protocol == "sip"
        assert dial_state(await status(node, bot.token), pid) == "connected"
        url = (
            f"{node.base}{node.settings.api_context}/node/v1/conferences/{ROOM}/participants/{pid}/disconnect"
        )
        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.post(url, headers={"Authorization": f"Bearer {bot.token}"})
        assert r.status_code == 204, r.text
        result = await sipp
        assert result.returncode == 0, result.describe()
        assert "Authorization: Digest" in result.messages
        await until(lambda: nothing_left(node, tickets), 5, "the call gone")


@pytest.mark.parametrize("by_name", [False, True], ids=["address", "dns-srv"])
async def test_a_dial_through_a_trunk_goes_to_its_proxy_with_its_credentials(
    settings_factory, tmp_path: Path, by_name: bool
) -> None:
    """sipp is the trunk's proxy: it gets the INVITE for the destination with a Route to itself
    and the trunk's From domain, challenges and answers the trunk's digest. The trunk's
    call limit (one) refuses a second dial meanwhile; an unknown trunk is 400. ``by_name``: the
    proxy is ``carrier.test``, found by its SRV record."""
    port = free_port(socket.SOCK_DGRAM)
    proxy = "carrier.test" if by_name else f"127.0.0.1:{port}"
    trunk = Trunk("carrier", proxy, "udp", "dialer", "secret", "trunk.example", max_calls=1)
    records = {
        ("_sip._udp.carrier.test", "SRV"): [f"0 0 {port} sbc.carrier.test."],
        ("sbc.carrier.test", "A"): ["127.0.0.1"],
    }

    async with dns_server(records) as dns, run_sip_node(settings_factory, dns_servers=dns.address) as node:
        node.add_room(ROOM)
        node.rooms.call_routing.replace([], [trunk])  # as the node reads the admins' trunks
        bot = await host_bot(node)
        body = {"destination": "sip:interpreter@remote.example", "role": "guest", "trunk": "nowhere"}
        r = await dial(node, bot.token, body)
        assert r.status_code == 400 and "unknown trunk" in r.json()["detailed_error"], r.text
        sipp = await sipp_answering(tmp_path, "trunk_proxy.xml", listen=port)
        r = await dial(node, bot.token, body | {"trunk": "carrier"})
        assert r.status_code == 202, r.text
        pid = r.json()["participantId"]
        conf = node.rooms.live_conference(ROOM)
        assert conf is not None
        await until(lambda: conf.participants.get(pid), 10, "the dialled party in the room")
        r = await dial(node, bot.token, body | {"trunk": "carrier"})
        assert r.status_code == 503 and "limit" in r.json()["detailed_error"], r.text
        url = (
            f"{node.base}{node.settings.api_context}/node/v1/conferences/{ROOM}/participants/{pid}/disconnect"
        )
        async with httpx.AsyncClient(timeout=10) as http:
            assert (await http.post(url, headers={"Authorization": f"Bearer {bot.token}"})).status_code == 204
        result = await sipp
        assert result.returncode == 0, result.describe()
        assert 'Authorization: Digest username="dialer", realm="trunk.example"' in result.messages


@pytest.mark.parametrize(
    ("video_module", "codec", "tls", "by_name"),
    [
        ("avcodec.so", "H264", False, False),
        ("vp8.so", "VP8", False, False),
        ("vp8.so", "VP8", True, False),
        ("avcodec.so", "H264", False, True),
    ],
    ids=["h264", "vp8", "vp8-tls-srtp", "h264-dns-srv"],
)
async def test_a_room_dials_baresip_and_each_sees_and_hears_the_other(
    settings_factory, tmp_path: Path, video_module: str, codec: str, tls: bool, by_name: bool
) -> None:
    """baresip auto-answers the room's call (over TLS with SDES-SRTP only, for transport=tls); it
    and the host bot decode each other's colour and tone. ``by_name``: the room dials
    ``sip:roomsystem@municipality.test``, found by the SRV and A records of a DNS server."""
    if shutil.which("baresip") is None:
        pytest.fail("baresip is missing: apt-get install -y baresip baresip-ffmpeg (make test installs it)")
    cert, key = ensure_self_signed(tmp_path / "peer-tls", "localhost")  # names 127.0.0.1 too
    pem = tmp_path / "peer-tls" / "both.pem"
    pem.write_text(cert.read_text() + key.read_text())
    async with (
        dns_server({}) as dns,
        run_sip_node(settings_factory, sip_dial_tls_cafile=cert, dns_servers=dns.address) as node,
    ):
        # The phone's ports are picked once the node holds its own (a port picked and let go
        # before could be the one the node is then given).
        phone = Baresip(
            tmp_path / "baresip",
            RED_YUV,
            300.0,
            video_module,
            answer=True,
            srtp=tls,
            certificate=pem if tls else None,
        )
        node.add_room(ROOM, enable_overlay_text=False)
        bot = await host_bot(node, colour=GREEN, tone=700.0)
        await bot.start_media()
        try:
            await phone.listen(60)  # its port is known from here on
            dns.records[("_sip._udp.municipality.test", "SRV")] = [
                f"10 0 {phone.sip_port} rs.municipality.test."
            ]
            dns.records[("rs.municipality.test", "A")] = ["127.0.0.1"]
            address = f"127.0.0.1:{phone.tls_port};transport=tls" if tls else f"127.0.0.1:{phone.sip_port}"
            address = "municipality.test" if by_name else address
            body = {
                "destination": f"sip:roomsystem@{address}",
                "role": "guest",
                "displayName": "Interpreter",
            }
            r = await dial(node, bot.token, body)
            assert r.status_code == 202, r.text
            pid = r.json()["participantId"]
            conf = node.rooms.live_conference(ROOM)
            assert conf is not None
            p = await until(lambda: conf.participants.get(pid), 20, lambda: f"baresip joins: {phone.tail()}")
            assert p.display_name == "Interpreter" and p.role.value == "guest" and p.in_conference
            call = next(c for c, j in node.calls.joined.items() if j.participant.id == pid)
            video = call.negotiation.stream("video") if call.negotiation else None
            assert video is not None and video.codecs[0].name == codec
            assert (call.incoming.secure and video.srtp_suite is not None) is tls
            assert not by_name or ("_sip._udp.municipality.test", "SRV") in dns.asked

            def bot_sees_red() -> bool:
                stage = bot.last("stage")
                tiles = [t for t in (stage or {}).get("tiles", []) if t["participantId"] == pid]
                return bool(tiles) and colour_close(bot.tile_colour(tiles[0]), RED_YUV, 30)

            await bot.until(bot_sees_red, 20, "baresip's red at the bot")
            await bot.until(lambda: bot.tone_power(300.0) > 50, 15, "baresip's 300 Hz at the bot")
            await until(
                lambda: (c := phone.seen()) is not None and colour_close(c, GREEN, 30),
                20,
                lambda: f"baresip sees the bot's green (last {phone.seen()}): {phone.tail()}",
            )
            await until(lambda: phone.hears(700.0) > 50, 15, "baresip hears the bot")
            assert dial_state(await status(node, bot.token), pid) == "connected"
        finally:
            await phone.stop()


async def test_a_room_dials_baresip_and_linphonec_and_all_see_and_hear_each_other(
    settings_factory, tmp_path: Path
) -> None:
    """Two room systems called into one room: baresip (H.264) and linphonec, each auto-answering,
    with the host bot; every one decodes the others' colours and tones, and nobody their own."""
    for tool in ("baresip", "linphonec"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: apt-get install -y baresip baresip-ffmpeg linphone-cli")
    yellow = PALETTE[3]
    async with run_sip_node(settings_factory) as node:
        node.add_room(ROOM, enable_overlay_text=False)
        bot = await host_bot(node, colour=GREEN, tone=700.0)
        await bot.start_media()
        baresip = Baresip(tmp_path / "baresip", RED_YUV, 300.0, "avcodec.so", answer=True)
        linphonec = Linphonec(tmp_path / "linphone", 500.0, colour=yellow, answer=True)
        try:
            await baresip.listen(60)
            await linphonec.start()
            await until(lambda: "Auto answer enabled" in linphonec.tail(), 10, "linphonec ready")
            pids = {}
            for name, port in (("baresip", baresip.sip_port), ("linphonec", linphonec.sip_port)):
                body = {
                    "destination": f"sip:roomsystem@127.0.0.1:{port}",
                    "role": "guest",
                    "displayName": name,
                }
                r = await dial(node, bot.token, body)
                assert r.status_code == 202, r.text
                pids[name] = r.json()["participantId"]
            conf = node.rooms.live_conference(ROOM)
            assert conf is not None
            await until(
                lambda: all(
                    conf.participants.get(p) and conf.participants[p].in_conference for p in pids.values()
                ),
                20,
                lambda: f"both join: {linphonec.tail()[-600:]}",
            )
            video = {
                name: next(c for c, j in node.calls.joined.items() if j.participant.id == pid).negotiation
                for name, pid in pids.items()
            }
            assert video["baresip"] is not None and video["baresip"].stream("video").codecs[0].name == "H264"  # type: ignore[union-attr]

            def bot_sees(pid: str, colour: tuple[int, int, int]) -> bool:
                tiles = [t for t in (bot.last("stage") or {}).get("tiles", []) if t["participantId"] == pid]
                return bool(tiles) and colour_close(bot.tile_colour(tiles[0]), colour, 30)

            await bot.until(lambda: bot_sees(pids["baresip"], RED_YUV), 20, "baresip's red at the bot")
            await bot.until(lambda: bot_sees(pids["linphonec"], yellow), 20, "linphonec's yellow at the bot")
            await bot.until(
                lambda: bot.tone_power(300.0) > 50 and bot.tone_power(500.0) > 50, 15, "both tones"
            )
            others = {"baresip": (GREEN, yellow), "linphonec": (GREEN, RED_YUV)}
            for name, phone in (("baresip", baresip), ("linphonec", linphonec)):
                # its main tile holds whoever spoke last of the others, never itself
                await until(
                    lambda p=phone, n=name: (
                        (c := p.seen()) is not None and any(colour_close(c, o, 30) for o in others[n])
                    ),
                    20,
                    lambda p=phone, n=name: f"{n} sees another's colour (last {p.seen()})",
                )
            await until(
                lambda: baresip.hears(700.0) > 50 and baresip.hears(500.0) > 50, 15, "baresip hears both"
            )
            # linphonec writes what it heard when its call ends: two seconds of the call first
            leg = next(j.leg for j in node.calls.joined.values() if j.participant.id == pids["linphonec"])
            await until(lambda: leg.counters.audio_frames_in > 100, 10, "two seconds of linphonec's call")
            await linphonec.say("terminate")
            await until(lambda: pids["linphonec"] not in conf.participants, 10, "linphonec's BYE")
            pcm, rate = await until(
                lambda: (
                    (r := heard_wav(linphonec.home, 2.0, pattern="heard.wav")) and len(r[0]) >= r[1] and r
                ),
                10,
            )
            assert tone_power(pcm, rate, 700.0) > 50 and tone_power(pcm, rate, 300.0) > 50
        finally:
            await baresip.stop()
            await linphonec.stop()


async def test_a_booked_rooms_automatic_participant_is_called_when_the_meeting_starts(
    settings_factory, tmp_path: Path
) -> None:
    """The room provisioned from a booking calls the meeting's automatic participants (kept through
    the API) when its first participant comes; SIPp declines, and the trail has the dial by
    ``auto-dial`` and its outcome."""
    port = free_port(socket.SOCK_DGRAM)
    overrides = {"node_provisioner": True, "node_id": f"adp-{port}", "node_poll_interval": 0.2}
    async with run_sip_node(settings_factory, **overrides) as node:
        api = Api(node.app, httpx.AsyncClient(base_url=node.base, timeout=10), node.settings)
        try:
            await api.add_org("clinic")
            now = whole_seconds(now_utc())
            uuid, alias = await book(
                api, "clinic", start=now - timedelta(minutes=1), end=now + timedelta(hours=1)
            )
            await wait_for_status(api, uuid, "PROVISIONED_OK")
            planner = api.auth("clinic", "planner@clinic.dk", PLANNER)
            entry = {"destination": f"sip:interpreter@127.0.0.1:{port}", "displayName": "Interpreter"}
            r = await api.client.put(
                f"{node.settings.api_context}/node/v1/meetings/{uuid}/auto-dial",
                json=[entry],
                headers=planner,
            )
            assert r.status_code == 200, r.text
            sipp = await sipp_answering(tmp_path, "dialled_busy.xml", listen=port)

            bot = node.bot(alias, "Doctor")  # the first participant starts the conference
            await bot.connect()
            si = (
                await api.client.get(
                    f"{api.v2}/scheduling-info/{uuid}",
                    headers=api.auth(
                        node.settings.node_organisation, node.settings.node_email, PROVISIONER_USER
                    ),
                )
            ).json()
            joined = await bot.join(str(si["hostPin"]))
            assert joined["type"] == "joined", joined
            result = await sipp
            assert result.returncode == 0, result.describe()

            async def dialled() -> list[tuple[str, str | None, str | None]] | None:
                async with node.app.state.sessions() as s:
                    rows = (await s.execute(select(AuditRecord).order_by(AuditRecord.id))).scalars().all()
                found = [
                    (r.operation, r.actor, json.loads(r.data).get("state"))
                    for r in rows
                    if r.operation.startswith("dial")
                ]
                return found if len(found) >= 2 else None

            trail = await until(dialled, 10, "the automatic dial and its outcome in the trail")
            assert sorted(trail, key=str) == [
                ("dial", "auto-dial", None),
                ("dial_outcome", "auto-dial", "busy"),
            ]
        finally:
            await api.client.aclose()
            await drop_consumer(api)
