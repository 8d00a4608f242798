"""Capacity in HD units with a clinical reserve (issue 17), with real legs: SIP callers (a scripted
UAC offering audio and video) and WebRTC bots in SD rooms of one node whose capacity is 2 HD
units with half of it kept for clinical meetings."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from harness.bot import Bot
from harness.waiting import until
from vdx.booking.roles import ADMIN
from vdx.services import organisations
from vdx.sip.message import SipResponse
from vdx.tokens import mint_token

from .rtp_peer import RtpPeer
from .sipnode import SipNode, run_sip_node
from .uac import Uac

pytestmark = pytest.mark.interop

PLAIN = "8001@vdx.test"  # non-clinical (no label), organisation "gp"
LOBBY = "8002@vdx.test"  # non-clinical, with PINs: guests wait for a host
CLINICAL = "8003@vdx.test"  # labelled clinical
MEANT = "8004@vdx.test"  # a label meant as clinical that is neither: ignored


def av_offer(audio: int, video: int) -> str:
    """Audio and video, both ways: an SD participant weighs half an HD unit."""
    return (
        "v=0\r\no=uac 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {audio} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
        f"a=fmtp:101 0-16\r\na=sendrecv\r\nm=video {video} RTP/AVP 100\r\na=rtpmap:100 VP8/90000\r\na=sendrecv\r\n"
    )


class Caller:
    """One SIP room system: a UAC and the RTP ports it offers."""

    def __init__(self, node: SipNode, audio: RtpPeer, video: RtpPeer) -> None:
        self.uac = Uac(node.sip.port)
        self.audio, self.video = audio, video

    @classmethod
    async def open(cls, node: SipNode) -> Caller:
        return cls(node, await RtpPeer.open(), await RtpPeer.open())

    async def invite(self, alias: str) -> SipResponse:
        self.uac.send(self.uac.build("INVITE", alias, body=av_offer(self.audio.port, self.video.port)))
        resp = await asyncio.to_thread(self.uac.recv)
        self.uac.ack(alias)
        return resp

    def close(self) -> None:
        self.uac.close()
        self.audio.close()
        self.video.close()


async def refused_bot(node: SipNode, alias: str, name: str, code: str) -> dict[str, Any]:
    bot = node.bot(alias, name)
    await bot.connect()
    answer = await bot.join()
    assert answer["type"] == "error" and answer["code"] == code, answer
    await bot.until(bot.closed.is_set, 10, "the socket closed")
    assert bot.close_code == 4503
    return answer


async def admitted_bot(node: SipNode, alias: str, name: str, pin: str | None = None) -> Bot:
    bot = node.bot(alias, name)
    await bot.connect()
    answer = await bot.join(pin)
    assert answer["type"] == "joined", answer
    await bot.start_media()
    return bot


async def test_sd_node_keeps_its_clinical_reserve_for_sip_and_webrtc(settings_factory, caplog) -> None:
    caplog.set_level(logging.INFO)
    async with run_sip_node(
        settings_factory, node_capacity=2.0, clinical_reserve=0.5, sip_media_timeout=0.0
    ) as node:
        node.add_room(PLAIN, vmr_quality="sd", organisation="gp")
        node.add_room(LOBBY, vmr_quality="sd", host_pin="1234", guest_pin="5678")
        node.add_room(CLINICAL, vmr_quality="sd", labels=frozenset({"clinical"}))
        node.add_room(MEANT, vmr_quality="sd", labels=frozenset({"Klinisk", "cardiology"}))
        capacity = node.rooms.capacity
        callers: list[Caller] = []
        try:
            # A guest waiting in the lobby with media set up counts nothing.
            guest = await admitted_bot(node, LOBBY, "Guest", pin="5678")
            assert guest.last("joined")["state"] == "lobby"  # type: ignore[index]
            await guest.until(lambda: capacity.participants() == {} and guest.last("answer"), 10, "media")
            assert node.rooms.load_units() == 0

            # Two non-clinical SD participants, one SIP and one WebRTC: 1 unit, (1 - 0.5) x 2.
            callers.append(await Caller.open(node))
            assert (await callers[-1].invite(PLAIN)).status == 200
            await until(lambda: node.rooms.load_units() == 0.5, 10, "the SIP caller counts half a unit")
            await admitted_bot(node, PLAIN, "Web 1")
            await until(lambda: node.rooms.load_units() == 1.0, 10, "the browser counts half a unit")
            assert capacity.participants() == {("sip", "sd"): 1, ("webrtc", "sd"): 1}

            # The third non-clinical one is refused: on WebRTC with a code and when to retry ...
            refused = await refused_bot(node, PLAIN, "Web 2", "capacity_clinical_reserve")
            assert refused["retryAfter"] == 30 and "clinical" in refused["message"]
            await refused_bot(node, MEANT, "Meant", "capacity_clinical_reserve")  # the label is ignored
            # ... on SIP with 503, Retry-After and the reason, at once in a room without PINs ...
            callers.append(await Caller.open(node))
            resp = await callers[-1].invite(PLAIN)
            assert (resp.status, resp.get("Retry-After"), resp.reason) == (
                503,
                "30",
                "Capacity reserved for clinical use",
            )
            # ... and after the right PIN (and a spoken prompt on the early media) in a PIN room.
            callers.append(await Caller.open(node))
            uac = callers[-1].uac
            body = av_offer(callers[-1].audio.port, callers[-1].video.port)
            assert (await uac.early_dialog("8002", body)).status == 183
            heard = callers[-1].audio.received
            uac.sock.settimeout(30)  # the 503 follows the spoken prompt
            uac.send_digits("8002", "1234#")
            before = len(heard)
            final = await uac.final()
            assert (final.status, final.get("Retry-After")) == (503, "30")
            prompt = len(node.calls._prompts["capacity_clinical_reserve"])  # 20 ms a packet
            await until(lambda: len(heard) - before >= prompt, 10, "the whole capacity prompt")
            assert guest.last("joined")["state"] == "lobby" and not guest.last("admitted")  # type: ignore[index]

            # Clinical joins are admitted up to the capacity.
            await admitted_bot(node, CLINICAL, "Clinic 1")
            await until(lambda: node.rooms.load_units() == 1.5, 10, "a clinical browser")
            callers.append(await Caller.open(node))
            assert (await callers[-1].invite(CLINICAL)).status == 200
            await until(lambda: node.rooms.load_units() == 2.0, 10, "a clinical SIP caller")

            # Beyond it everyone is refused.
            await refused_bot(node, CLINICAL, "Clinic 2", "capacity_full")
            await refused_bot(node, PLAIN, "Web 3", "capacity_full")
            callers.append(await Caller.open(node))
            resp = await callers[-1].invite(CLINICAL)
            assert (resp.status, resp.get("Retry-After"), resp.reason) == (503, "30", "Service full")

            unbooked = "(unbooked)"  # rooms no booking names
            assert dict(capacity.refused_total) == {
                ("capacity_clinical_reserve", "gp", False): 2,
                ("capacity_clinical_reserve", unbooked, False): 2,
                ("capacity_full", unbooked, True): 2,
                ("capacity_full", "gp", False): 1,
            }
            meant = [r for r in caplog.records if "'Klinisk'" in r.getMessage()]
            assert len(meant) == 1  # named once, though two joins read it

            # Prometheus has the same figures, and so has the minute the steering figures store.
            async with httpx.AsyncClient(base_url=node.base) as http:
                metrics = (await http.get("/manage/metrics")).text
            assert "vdx_node_units_in_use 2.0" in metrics
            assert "vdx_node_capacity_units 2.0" in metrics
            assert (
                'vdx_node_refused_joins_total{organisation="gp",reason="capacity_clinical_reserve"} 2.0'
                in metrics
            )
            assert 'vdx_node_participants{kind="sip",quality="sd"} 2.0' in metrics
            minute = capacity.minute(datetime.now(UTC).replace(second=0, microsecond=0))
            assert (minute.units_in_use, minute.capacity, minute.reserve) == (2.0, 2.0, 0.5)
            assert minute.participants == {("sip", "sd"): 2, ("webrtc", "sd"): 2}
            assert minute.organisations == {("gp", False): 2, (unbooked, True): 2}
            assert sum(minute.refused.values()) == 7
            assert capacity.minute(datetime.now(UTC)).refused == {}  # each refusal in one minute
        finally:
            for c in callers:
                c.close()


async def test_changing_the_limits_at_run_time_cuts_nobody_off(settings_factory) -> None:
    """An operator halves the capacity and keeps all of it for clinical use while the node is
    full: everyone stays, only newcomers are refused; the change is audited."""
    async with run_sip_node(
        settings_factory, node_capacity=2.0, clinical_reserve=0.5, sip_media_timeout=0.0
    ) as node:
        node.add_room(PLAIN, vmr_quality="sd", organisation="gp")
        node.add_room(CLINICAL, vmr_quality="sd", labels=frozenset({"clinical"}))
        async with node.app.state.sessions() as s, s.begin():
            await organisations.create(s, node.settings.node_organisation)
            await organisations.create(s, "gp")
        ops = mint_token(
            node.settings, org=node.settings.node_organisation, email="ops@vdx.test", roles=[ADMIN]
        )
        gp = mint_token(node.settings, org="gp", email="admin@gp.test", roles=[ADMIN])
        caller = await Caller.open(node)
        try:
            assert (await caller.invite(PLAIN)).status == 200
            bots = [await admitted_bot(node, PLAIN, "Web"), await admitted_bot(node, CLINICAL, "Clinic")]
            await until(lambda: node.rooms.load_units() == 1.5, 10, "three SD participants")
            url = f"{node.settings.api_context}/node/v1/capacity"
            async with httpx.AsyncClient(base_url=node.base) as http:
                denied = await http.put(
                    url, json={"clinicalReserve": 1}, headers={"Authorization": f"Bearer {gp}"}
                )
                assert denied.status_code == 403  # an organisation's admin does not run the nodes
                bad = await http.put(
                    url, json={"clinicalReserve": 1.5}, headers={"Authorization": f"Bearer {ops}"}
                )
                assert bad.status_code == 400
                changed = await http.put(
                    url,
                    json={"capacity": 1, "clinicalReserve": 1},
                    headers={"Authorization": f"Bearer {ops}"},
                )
                assert changed.status_code == 200, changed.text
                assert changed.json()["capacity"] == 1 and changed.json()["clinicalReserve"] == 1
                assert changed.json()["unitsInUse"] == 1.5
                # nobody was cut off: three participants carry media as before
                assert node.rooms.load_units() == 1.5 and len(node.calls.joined) == 1
                assert not any(b.closed.is_set() for b in bots)
                await refused_bot(node, CLINICAL, "Clinic 2", "capacity_full")
                trail = await http.get(
                    f"{node.settings.api_context}/v2/audit", headers={"Authorization": f"Bearer {ops}"}
                )
            entry = next(e for e in trail.json()["entries"] if e["resource"] == "node")
            assert entry["user"] == "ops@vdx.test" and entry["operation"] == "update"
            assert entry["data"]["before"]["capacity"] == 2 and entry["data"]["after"]["clinicalReserve"] == 1
        finally:
            caller.close()


async def test_a_label_overrides_the_organisation_decided_at_each_join(settings_factory) -> None:
    """All of the capacity kept for clinical use: only clinical joins get in. Organisation gp is
    clinical as the node last read it (what ``vdx.node.clinical`` keeps in step); its meeting
    labelled non-clinical is not, another organisation's meeting labelled clinical is; once gp
    is no longer clinical, its next join is refused while those inside stay."""
    async with run_sip_node(settings_factory, node_capacity=4.0, clinical_reserve=1.0) as node:
        node.add_room(PLAIN, vmr_quality="sd", organisation="gp")
        node.add_room(LOBBY, vmr_quality="sd", organisation="gp", labels=frozenset({"Non-Clinical"}))
        node.add_room(CLINICAL, vmr_quality="sd", organisation="other", labels=frozenset({"clinical"}))
        node.rooms.clinical_directory.replace({"gp"})
        inside = await admitted_bot(node, PLAIN, "GP clinic")
        await refused_bot(node, LOBBY, "GP admin", "capacity_clinical_reserve")
        await admitted_bot(node, CLINICAL, "Other clinic")
        node.rooms.clinical_directory.replace(set())
        await refused_bot(node, PLAIN, "GP clinic 2", "capacity_clinical_reserve")
        assert not inside.closed.is_set() and node.rooms.load_units() == 1.0
