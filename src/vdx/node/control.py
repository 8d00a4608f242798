"""Conference control as commands: what a host or an operator asks of a live conference, carried
out by the node the conference is live on.

The HTTP endpoints (``vdx.api.conference_control``) authenticate an operator and build a
``Command``; a ``ControlDesk`` runs it on this process's rooms, and, when the conference is not
live here, asks every node of the cluster over NATS (``{cluster}.control.{node}``), where the
node's ``Cluster`` answers with the same ``execute``. The node is the one that knows the room's
participants, so it decides who may act: a host of that very conference by their participant
token, or an operator over the room's organisation (the organisations come in the command).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js.errors import NoKeysError, NotFoundError

from vdx.conference.conference import Conference, ConferenceError
from vdx.conference.policy import Role
from vdx.node.cluster.buckets import bucket_names, key_of, name_of
from vdx.node.dial_out import DialOutError
from vdx.node.rooms import Rooms
from vdx.settings import Settings

log = logging.getLogger("vdx.node.control")

# What a conference may be asked; "list" reads every conference the operator oversees.
OPS = frozenset(
    {"list", "status", "lock", "unlock", "mute_guests", "unmute_guests", "layout", "end"}
    | {"mute", "unmute", "admit", "disconnect", "dial"}
)
# A node that does not answer within this is left out (a paused or dying node).
REQUEST_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Command:
    op: str
    alias: str = ""
    pid: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    token: str = ""  # the caller's bearer token: a host's participant token is recognised here
    oversees: tuple[str, ...] | None = None  # an operator's organisation codes; None: no operator
    operator: str | None = None  # the operator's e-mail, for what the node records later

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> Command:
        raw = json.loads(data)
        if not isinstance(raw, dict) or raw.get("op") not in OPS:
            raise ValueError("not a conference control command")
        oversees = raw.get("oversees")
        return cls(
            op=str(raw["op"]),
            alias=str(raw.get("alias") or ""),
            pid=None if raw.get("pid") is None else str(raw["pid"]),
            args=dict(raw.get("args") or {}),
            token=str(raw.get("token") or ""),
            oversees=None if oversees is None else tuple(str(c) for c in oversees),
            operator=None if raw.get("operator") is None else str(raw["operator"]),
        )


@dataclass(frozen=True)
class Answer:
    """A command's outcome. ``status`` as HTTP: 200 (``body``) or 204 done; otherwise refused for
    ``refusal`` (``absent``: the conference is not live on that node, nor the caller in one)."""

    status: int
    body: Any = None
    refusal: str = ""
    message: str = ""
    aliases: tuple[str, ...] = ()  # the conference's aliases, for the audit trail
    actor: str | None = None  # a host who asked, "host NAME (id)"; None: an operator
    target: str | None = None  # the display name of the participant acted on

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> Answer:
        raw = json.loads(data)
        return cls(
            status=int(raw["status"]),
            body=raw.get("body"),
            refusal=str(raw.get("refusal") or ""),
            message=str(raw.get("message") or ""),
            aliases=tuple(raw.get("aliases") or ()),
            actor=raw.get("actor"),
            target=raw.get("target"),
        )


ABSENT = Answer(404, refusal="absent")
# Answers that leave it to another node: any other answer beats them, a live conference beats none.
_UNDECIDED = {"unauthenticated": 1, "absent": 2}
UNAUTHENTICATED = Answer(401, refusal="unauthenticated")
FORBIDDEN = Answer(403, refusal="forbidden")


def summary(conf: Conference) -> dict[str, Any]:
    return {
        "alias": conf.alias,
        "locked": conf.locked,
        "startedAt": int(conf.started_at),
        "participantCount": len(conf.participants),
        "hostView": conf.config.host_view,
        "guestView": conf.config.guest_view,
    }


async def execute(rooms: Rooms, cmd: Command) -> Answer:
    """Run ``cmd`` on the conferences live on this node: the one place who may act is decided."""
    if cmd.op == "list":
        if cmd.oversees is None:
            return UNAUTHENTICATED
        return Answer(200, [summary(c) for c in list(rooms.live.values()) if _oversees(cmd, c)])
    conf = rooms.live_conference(cmd.alias)
    holder = rooms.holder(cmd.token)
    actor = None
    if holder is not None:
        held, p = holder
        if held is not conf or p.role is not Role.HOST:
            return FORBIDDEN
        actor = f"host {p.display_name} ({p.id})"
    elif conf is None:
        return ABSENT
    elif cmd.oversees is None:
        return UNAUTHENTICATED
    elif not _oversees(cmd, conf):
        return FORBIDDEN
    assert conf is not None
    target = conf.participants.get(cmd.pid) if cmd.pid is not None else None
    facts: dict[str, Any] = {
        "aliases": (conf.alias, *sorted(conf.config.aliases)),
        "actor": actor,
        "target": target.display_name if target is not None else None,
    }
    try:
        if cmd.op == "dial":
            return Answer(202, await _dial(rooms, conf, cmd, cmd.operator or actor), **facts)
        body = await _act(conf, cmd)
    except ConferenceError as exc:
        return Answer(_REFUSED.get(exc.code, 409), refusal=exc.code, message=exc.message, **facts)
    except DialOutError as exc:
        return Answer(exc.status, refusal="dial_refused", message=exc.message, **facts)
    return Answer(204 if body is None else 200, body, **facts)


_REFUSED = {"participant_not_found": 404, "bad_layout": 400}


def _oversees(cmd: Command, conf: Conference) -> bool:
    org = conf.config.organisation
    return cmd.oversees is not None and org is not None and org in cmd.oversees


async def _act(conf: Conference, cmd: Command) -> Any:
    """Carry the command out; returns the body of a reading one (None for the others)."""
    pid = cmd.pid or ""
    if cmd.op == "status":
        return await conf.status()
    if cmd.op in ("lock", "unlock"):
        conf.set_locked(cmd.op == "lock")
    elif cmd.op in ("mute_guests", "unmute_guests"):
        conf.mute_guests(cmd.op == "mute_guests")
    elif cmd.op == "layout":
        conf.set_layout(cmd.args.get("hostView"), cmd.args.get("guestView"))
    elif cmd.op == "end":
        await conf.end("ended_by_host")
    elif cmd.op in ("mute", "unmute"):
        conf.set_muted(pid, cmd.op == "mute", by_self=False)
    elif cmd.op == "admit":
        conf.admit(pid)
    elif cmd.op == "disconnect":
        if pid not in conf.participants:
            raise ConferenceError("participant_not_found", "no such participant")
        await conf.remove(pid, "disconnected_by_host", notify=True)
    return None


async def _dial(rooms: Rooms, conf: Conference, cmd: Command, actor: str | None) -> dict[str, str]:
    """Start a dial-out; its outcome, once the call is answered or not, goes to the audit trail."""
    if rooms.dial_outs is None:
        raise DialOutError(409, "This node dials no SIP calls (VDX_SIP_ENABLED=false).")
    aliases = [conf.alias, *sorted(conf.config.aliases)]
    pid = ""

    async def outcome(state: str, detail: str) -> None:
        if rooms.report_action is not None:
            data = {"participantId": pid, "state": state, "detail": detail}
            await rooms.report_action(aliases, "dial_outcome", actor, data)

    try:
        role = Role(str(cmd.args.get("role") or Role.GUEST.value))
    except ValueError:
        raise DialOutError(400, "role: host or guest") from None
    name, trunk = cmd.args.get("displayName"), cmd.args.get("trunk")
    pid = await rooms.dial_outs.dial(
        conf,
        str(cmd.args.get("destination") or ""),
        role,
        None if name is None else str(name),
        outcome,
        None if trunk is None else str(trunk),
    )
    return {"participantId": pid}


def control_subject(settings: Settings, node_id: str) -> str:
    """The subject a node takes conference control commands on."""
    return f"{settings.cluster_name}.control.{key_of(node_id)}"


async def answer(rooms: Rooms, data: bytes) -> bytes:
    """A node's reply to a command that came over NATS."""
    try:
        cmd = Command.decode(data)
    except (ValueError, TypeError, KeyError) as exc:
        return Answer(400, refusal="bad_command", message=str(exc)).encode()
    return (await execute(rooms, cmd)).encode()


class ControlDesk:
    """Where a command runs: on this process's rooms when the conference or the caller is here,
    else on whichever node of the cluster has it live (each asked at once; one at most has it)."""

    def __init__(self, settings: Settings, rooms: Rooms | None) -> None:
        self.settings = settings
        self.rooms = rooms
        self._nc: Client | None = None
        self._connecting = asyncio.Lock()

    @property
    def reaches_conferences(self) -> bool:
        return self.rooms is not None or bool(self.settings.nats_url)

    def holds(self, token: str) -> bool:
        """Whether ``token`` is a participant token of a conference live in this process."""
        return self.rooms is not None and self.rooms.holder(token) is not None

    async def run(self, cmd: Command) -> Answer:
        here = await execute(self.rooms, cmd) if self.rooms is not None else ABSENT
        if cmd.op == "list":
            return await self._list(cmd, here)
        if here.refusal not in _UNDECIDED or not self.settings.nats_url:
            return here
        # The conference and the caller's participant token may be live on different nodes:
        # the node that knows the token or the operator's conference decides.
        asked = [here, *await self._ask_others(cmd)]
        best = min((a for a in asked if a is not None), key=lambda a: _UNDECIDED.get(a.refusal, 0))
        if best.refusal == "absent" and None in asked:
            return Answer(503, refusal="unreachable", message="a node of the cluster did not answer")
        return best

    async def _list(self, cmd: Command, here: Answer) -> Answer:
        if here is not ABSENT and here.status != 200:
            return here
        rows = list(here.body or []) if here.status == 200 else []
        if self.settings.nats_url:
            for a in await self._ask_others(cmd):
                if a is not None and a.status == 200:
                    rows.extend(a.body or [])
        return Answer(200, rows)

    async def _ask_others(self, cmd: Command) -> list[Answer | None]:
        """Every other live node's answer (None: it did not answer); [None] when NATS is away."""
        try:
            nc = await self._connect()
            nodes = await self._live_nodes(nc)
        except (TimeoutError, NatsError, OSError) as exc:
            log.warning("conference control: the cluster is unreachable (%s)", exc)
            return [None]
        mine = self.settings.node_name.lower() if self.rooms is not None else None
        data = cmd.encode()
        return list(await asyncio.gather(*(self._ask(nc, n, data) for n in nodes if n != mine)))

    async def _ask(self, nc: Client, node_id: str, data: bytes) -> Answer | None:
        try:
            reply = await nc.request(control_subject(self.settings, node_id), data, timeout=REQUEST_TIMEOUT_S)
            return Answer.decode(reply.data)
        except nats.errors.NoRespondersError:
            return ABSENT  # gone since it last announced itself: nothing of it is live
        except (TimeoutError, NatsError, ValueError, KeyError) as exc:
            log.warning("conference control: node %s did not answer (%s)", node_id, exc)
            return None

    async def _live_nodes(self, nc: Client) -> list[str]:
        """The nodes that announced themselves within the heartbeat TTL (the bucket expires the rest)."""
        nodes_bucket = bucket_names(self.settings)[0]
        try:
            kv = await nc.jetstream(timeout=REQUEST_TIMEOUT_S).key_value(nodes_bucket)
            return [name_of(k) for k in await kv.keys()]
        except (NoKeysError, NotFoundError):
            return []

    async def _connect(self) -> Client:
        async with self._connecting:
            if self._nc is None or self._nc.is_closed:
                self._nc = await asyncio.wait_for(
                    nats.connect(
                        **self.settings.nats_connect_options,
                        allow_reconnect=True,
                        max_reconnect_attempts=-1,
                        reconnect_time_wait=0.5,
                        connect_timeout=2,
                        name="vdx conference control",
                        error_cb=_quiet,
                    ),
                    3,
                )
            if not self._nc.is_connected:
                raise ConnectionError("NATS is not connected")
            return self._nc

    async def close(self) -> None:
        nc, self._nc = self._nc, None
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.close()


async def _quiet(exc: Exception) -> None:
    """nats-py reports every failed reconnect; an unreachable cluster is logged where it matters."""
