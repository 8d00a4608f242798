"""The ``vdx`` command: ``serve``, ``api`` and ``node`` run the parts; the rest are operator tools."""

from __future__ import annotations

import asyncio
import getpass
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError

from vdx.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from vdx.demo import DemoMeeting

T = TypeVar("T")

app = typer.Typer(
    help="vdx: open national video node for healthcare (VDX booking API v2, rooms, SIP/WebRTC).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
org_app = typer.Typer(help="Organisations (bootstrap the tree; the API creates only under existing ones).")
app.add_typer(org_app, name="org")
events_app = typer.Typer(help="Scheduling-info and audit events.")
app.add_typer(events_app, name="events")
capacity_app = typer.Typer(
    help="A running node's capacity in HD units and clinical reserve (its admin API, audited)."
)
app.add_typer(capacity_app, name="capacity")
route_app = typer.Typer(
    help="Gateway routing rules: where a call to an alias that is no room goes (audited)."
)
app.add_typer(route_app, name="route")
trunk_app = typer.Typer(help="Outbound SIP trunks that routing rules and dial-outs call through (audited).")
app.add_typer(trunk_app, name="trunk")
device_app = typer.Typer(
    help="Devices a browser waits as on the point-to-point page (/wait), for rules to browser:NAME (audited)."
)
app.add_typer(device_app, name="device")


def _env_help() -> str:
    lines = ["Every setting is also an environment variable:"]
    for name, field in Settings.model_fields.items():
        default = field.default if field.default is not None else "-"
        desc = field.description or ""
        lines.append(f"  VDX_{name.upper()}={default}  {desc}".rstrip())
    return "\b\n" + "\n".join(lines)


# What a setting must be, for the message of a bad value (pydantic's own text otherwise).
_EXPECTED = {
    "node_capacity": "a positive number of HD units (e.g. 12.5), or unset to measure it at start",
    "clinical_reserve": "a share of capacity between 0 and 1 (e.g. 0.2)",
}


def _settings(**overrides: Any) -> Settings:
    """Settings from the environment, with CLI flags (those given) on top. A bad value stops
    the command with one line per setting naming its variable (exit status 2), not a traceback."""
    for key, value in overrides.items():
        if value is not None:
            os.environ[f"VDX_{key.upper()}"] = str(value)
    try:
        return Settings()
    except ValidationError as exc:
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else ""
            variable = f"VDX_{name.upper()}" if name else "settings"
            given = f" (got {err['input']!r})" if name and not isinstance(err.get("input"), dict) else ""
            what = f"must be {_EXPECTED[name]}" if name in _EXPECTED else err["msg"]
            typer.echo(f"error: {variable}: {what}{given}", err=True)
        raise typer.Exit(2) from None


DataDir = Annotated[Path | None, typer.Option("--data-dir", help="VDX_DATA_DIR")]
DbUrl = Annotated[str | None, typer.Option("--database-url", help="VDX_DATABASE_URL")]
NatsUrl = Annotated[str | None, typer.Option("--nats-url", help="VDX_NATS_URL")]
Host = Annotated[str | None, typer.Option("--host", help="VDX_HTTP_HOST")]
Port = Annotated[int | None, typer.Option("--port", help="VDX_HTTP_PORT")]
PublicUrl = Annotated[str | None, typer.Option("--public-url", help="VDX_PUBLIC_URL")]


def _run_http(
    settings: Settings, workers: int = 1, node_only: bool = False, demo: DemoMeeting | None = None
) -> None:
    import uvicorn

    from vdx import logs

    logs.setup(settings.log_format, settings.log_level)
    if workers > 1:
        # Workers re-create the app from the environment (set by _settings above).
        uvicorn.run(
            "vdx.app:app_from_env",
            factory=True,
            host=settings.http_host,
            port=settings.http_port,
            workers=workers,
            log_config=None,
            **_proxy_headers(settings),
        )
        return
    from vdx.app import create_app, create_node_app

    app = (
        create_node_app(settings, served=True)
        if node_only
        else create_app(settings, jobs=True, served=True, demo_sign_in=demo is not None)
    )
    app.state.demo = demo  # the landing page links the demo meeting's room
    uvicorn.run(
        app, host=settings.http_host, port=settings.http_port, log_config=None, **_proxy_headers(settings)
    )


def _proxy_headers(settings: Settings) -> dict[str, Any]:
    """X-Forwarded-For names the client only when a trusted proxy sent it (VDX_TRUSTED_PROXIES):
    anyone can write the header, and the PIN throttle keys on the address it yields."""
    trusted = settings.csv(settings.trusted_proxies)
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or None}


@app.command(epilog=_env_help())
def serve(
    data_dir: DataDir = None,
    database_url: DbUrl = None,
    nats_url: NatsUrl = None,
    host: Host = None,
    port: Port = None,
    public_url: PublicUrl = None,
    demo: Annotated[
        bool,
        typer.Option(
            help="create the demo organisation and a meeting open now, print where to go, and offer "
            "the demo sign-in to browsers on this machine"
        ),
    ] = False,
) -> None:
    """All-in-one: API, web pages and a conferencing node in one process."""
    settings = _settings(
        data_dir=data_dir,
        database_url=database_url,
        nats_url=nats_url,
        http_host=host,
        http_port=port,
        public_url=public_url,
    )
    from vdx.store.migrate import upgrade

    upgrade(settings)
    demo_meeting = None
    if demo:
        from vdx.demo import ensure_demo, vdx_command, welcome

        demo_meeting = asyncio.run(ensure_demo(settings))
        typer.echo(welcome(settings, demo_meeting, vdx_command(sys.argv[0], sys.executable, Path.cwd())))
    _run_http(settings, demo=demo_meeting)


@app.command(epilog=_env_help())
def api(
    data_dir: DataDir = None,
    database_url: DbUrl = None,
    nats_url: NatsUrl = None,
    host: Host = None,
    port: Port = None,
    public_url: PublicUrl = None,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
) -> None:
    """The stateless API (scale out by running more workers behind a load balancer). It hosts no
    rooms: conferencing nodes (`vdx node`) provision them from it."""
    settings = _settings(
        node_enabled=False,
        data_dir=data_dir,
        database_url=database_url,
        nats_url=nats_url,
        http_host=host,
        http_port=port,
        public_url=public_url,
    )
    from vdx.store.migrate import upgrade

    upgrade(settings)
    _run_http(settings, workers=workers)


node_app = typer.Typer(
    help="A conferencing node: `vdx node [OPTIONS]` runs one; `vdx node drain ID` drains one.",
    invoke_without_command=True,
    epilog=_env_help(),
)
app.add_typer(node_app, name="node")


@node_app.callback()
def node(
    ctx: typer.Context,
    api_url: Annotated[str | None, typer.Option("--api-url", help="VDX_NODE_API_URL")] = None,
    nats_url: NatsUrl = None,
    host: Host = None,
    port: Port = None,
    public_url: PublicUrl = None,
    node_id: Annotated[str | None, typer.Option("--node-id", help="VDX_NODE_ID")] = None,
    data_dir: DataDir = None,
    self_test: Annotated[
        bool,
        typer.Option(
            "--self-test",
            help="measure this machine's capacity in HD units (a few seconds of media work), print it and exit",
        ),
    ] = False,
) -> None:
    """A conferencing node alone: rooms and WebRTC signalling, provisioned from a remote API
    (VDX_NODE_API_URL, e.g. http://api:8080/api) with a meeting-provisioner-user token
    (VDX_NODE_TOKEN, or one minted with the dev key in VDX_DATA_DIR); events from NATS JetStream
    with VDX_NATS_URL, where nodes also form a cluster (README, Many nodes)."""
    settings = _settings(
        node_api_url=api_url,
        nats_url=nats_url,
        http_host=host,
        http_port=port,
        public_url=public_url,
        node_id=node_id,
        data_dir=data_dir,
    )
    if ctx.invoked_subcommand is not None:
        return
    if self_test:
        from vdx.node.self_test import measure

        typer.echo(f"capacity {measure(settings.media_fps).describe()}")
        return
    if not settings.node_api_url:
        typer.echo(
            "error: vdx node needs VDX_NODE_API_URL (or --api-url): the VDX API to provision from", err=True
        )
        raise typer.Exit(2)
    _run_http(settings, node_only=True)


@node_app.command("drain")
def node_drain(
    node_id: Annotated[str, typer.Argument(help="the node's VDX_NODE_ID")],
    cancel: Annotated[bool, typer.Option("--cancel", help="take new rooms again")] = False,
    nats_url: NatsUrl = None,
) -> None:
    """Drain a node: it takes no new rooms, its calls go on to their end, and its rooms with
    nobody in them move to other nodes. `--cancel` undoes it."""
    from vdx.node.cluster.control import ClusterUnreachable, set_drain

    settings = _settings(nats_url=nats_url)
    try:
        asyncio.run(set_drain(settings, node_id, not cancel))
    except ClusterUnreachable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"node {node_id} {'takes new rooms again' if cancel else 'drains: no new rooms, calls go on'}")


@app.command()
def nodes(nats_url: NatsUrl = None) -> None:
    """List the cluster's nodes from its registry: addresses, load and capacity in HD units,
    rooms, the age of the last heartbeat, and whether each drains."""
    import time

    from vdx.node.cluster.control import ClusterUnreachable, describe, list_nodes

    settings = _settings(nats_url=nats_url)
    try:
        found = asyncio.run(list_nodes(settings))
    except ClusterUnreachable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if not found:
        typer.echo(f"no node announced in cluster {settings.cluster_name!r}")
        return
    for line in describe(found, time.time()):
        typer.echo(line)


@app.command()
def migrate(data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """Bring the database schema to the newest revision."""
    from vdx.store.migrate import upgrade

    settings = _settings(data_dir=data_dir, database_url=database_url)
    upgrade(settings)
    typer.echo("database is at the newest schema revision")


@app.command()
def token(
    org: Annotated[str | None, typer.Option("--org", help="organisation code")] = None,
    email: Annotated[str | None, typer.Option("--email", help="user's e-mail")] = None,
    role: Annotated[list[str] | None, typer.Option("--role", help="role (repeatable)")] = None,
    ttl: Annotated[int, typer.Option("--ttl", help="lifetime in seconds")] = 3600,
    parent_org: Annotated[
        str | None, typer.Option("--parent-org", help="auto-create claim: parent of a new org")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Print a token signed with the dev key in VDX_DATA_DIR (trusted by `vdx serve` by default)."""
    from vdx.tokens import mint_token

    settings = _settings(data_dir=data_dir)
    typer.echo(
        mint_token(settings, org=org, email=email, roles=list(role or []), ttl=ttl, parent_org=parent_org)
    )


@org_app.command("add")
def org_add(
    code: Annotated[str, typer.Argument(help="organisation code")],
    name: Annotated[str | None, typer.Option("--name")] = None,
    parent: Annotated[str | None, typer.Option("--parent", help="parent organisation code")] = None,
    pool_size: Annotated[int | None, typer.Option("--pool-size")] = None,
    allow_custom_uri: Annotated[
        bool, typer.Option("--allow-custom-uri", help="allow uriWithoutDomain on create")
    ] = False,
    clinical: Annotated[
        bool, typer.Option("--clinical", help="its meetings are clinical (first when capacity is short)")
    ] = False,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Create an organisation (the first ones, which the API cannot create)."""
    from vdx.services import audit, organisations
    from vdx.store.db import create_engine, session_factory
    from vdx.store.migrate import upgrade

    settings = _settings(data_dir=data_dir, database_url=database_url)
    upgrade(settings)
    actor = _os_actor("vdx org add")

    async def run() -> None:
        engine = create_engine(settings)
        try:
            async with session_factory(engine)() as s, s.begin():
                org = await organisations.create(
                    s,
                    code,
                    name=name,
                    parent_code=parent,
                    pool_size=pool_size,
                    allow_custom_uri_without_domain=allow_custom_uri,
                    clinical=clinical,
                )
                audit.organisation_changed(s, settings, org, "create", actor)
        finally:
            await engine.dispose()

    try:
        asyncio.run(run())
    except (organisations.OrganisationExists, organisations.ParentNotFound) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"organisation {code} created")


def _os_actor(command: str) -> str:
    """The audit trail's "who" for a command run on the server: the operating-system account."""
    return f"{command} ({getpass.getuser()}@{socket.gethostname()})"


@org_app.command("set")
def org_set(
    code: Annotated[str, typer.Argument(help="organisation code")],
    clinical: Annotated[
        bool | None,
        typer.Option(
            "--clinical/--no-clinical",
            help="its meetings are clinical (first when capacity is short); labels still override",
        ),
    ] = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Change an organisation's settings (audited); what is not given stays as it is."""
    from vdx.services import audit, organisations
    from vdx.store.db import create_engine, session_factory
    from vdx.store.migrate import upgrade

    if clinical is None:
        typer.echo("error: nothing to set (give --clinical or --no-clinical)", err=True)
        raise typer.Exit(2)
    settings = _settings(data_dir=data_dir, database_url=database_url)
    upgrade(settings)

    async def run() -> bool:
        engine = create_engine(settings)
        try:
            async with session_factory(engine)() as s, s.begin():
                org = await organisations.by_code(s, code)
                if org is None:
                    return False
                await organisations.update(s, org, clinical=clinical)
                audit.organisation_changed(s, settings, org, "update", _os_actor("vdx org set"))
                return True
        finally:
            await engine.dispose()

    if not asyncio.run(run()):
        typer.echo(f"error: organisation {code} not found", err=True)
        raise typer.Exit(2)
    typer.echo(f"organisation {code}: {'clinical' if clinical else 'not clinical'}")


@events_app.command("tail")
def events_tail(
    subject: Annotated[
        str | None, typer.Option("--subject", help="subject or pattern (NATS wildcards * and >)")
    ] = None,
    from_start: Annotated[bool, typer.Option("--from-start", help="replay stored events first")] = False,
    limit: Annotated[int | None, typer.Option("--limit", help="stop after this many events")] = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
    nats_url: NatsUrl = None,
) -> None:
    """Print events as they arrive (NATS JetStream, or the outbox of the database without NATS)."""
    from vdx.bus import tail

    settings = _settings(data_dir=data_dir, database_url=database_url, nats_url=nats_url)
    tail.run(settings, subject, from_start, limit)


NodeUrl = Annotated[
    str | None, typer.Option("--url", help="the node's HTTP address (default: VDX_PUBLIC_URL)")
]
AdminToken = Annotated[
    str,
    typer.Option("--token", help="a meeting-admin token of the nodes' organisation (VDX_NODE_ORGANISATION)"),
]


def _capacity_call(url: str | None, token: str, body: dict[str, Any] | None = None) -> None:
    """GET or PUT the node's capacity and print the answer; an error answer exits 1."""
    import json

    import httpx

    settings = _settings()
    base = (url or settings.public_url_clean).rstrip("/")
    target = f"{base}{settings.api_context}/node/v1/capacity"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        if body is None:
            resp = httpx.get(target, headers=headers, timeout=10)
        else:
            resp = httpx.put(target, headers=headers, json=body, timeout=10)
    except httpx.HTTPError as exc:
        typer.echo(f"error: {target}: {exc}", err=True)
        raise typer.Exit(1) from None
    if resp.status_code != 200:
        typer.echo(f"error: {resp.status_code} {resp.text}", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(resp.json(), indent=2))


@capacity_app.command("show")
def capacity_show(token: AdminToken, url: NodeUrl = None) -> None:
    """Print the node's capacity, reserve, units in use and refused joins."""
    _capacity_call(url, token)


NodeId = Annotated[
    str | None,
    typer.Option(
        "--node", help="a cluster node's VDX_NODE_ID: through its control entry on NATS (VDX_NATS_URL)"
    ),
]


@capacity_app.command("set")
def capacity_set(
    token: Annotated[
        str | None,
        typer.Option("--token", help="a meeting-admin token of the nodes' organisation (without --node)"),
    ] = None,
    url: NodeUrl = None,
    node: NodeId = None,
    capacity: Annotated[float | None, typer.Option("--capacity", help="HD units (an override)")] = None,
    measured: Annotated[
        bool, typer.Option("--measured", help="back to the start-up self-test's figure")
    ] = False,
    reserve: Annotated[
        float | None, typer.Option("--reserve", help="share of capacity kept for clinical meetings, 0..1")
    ] = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
    nats_url: NatsUrl = None,
) -> None:
    """Change a node's capacity and/or clinical reserve now (nobody in a room is cut off): the
    node at --url through its admin API, or cluster node --node through NATS (audited in the
    database of VDX_DATA_DIR / VDX_DATABASE_URL, as `vdx org add` is)."""
    body: dict[str, Any] = {"measured": measured}
    if capacity is not None:
        body["capacity"] = capacity
    if reserve is not None:
        body["clinicalReserve"] = reserve
    if node is None:
        if token is None:
            typer.echo("error: give --token (a node's admin API) or --node (a cluster node)", err=True)
            raise typer.Exit(2)
        _capacity_call(url, token, body)
        return
    _capacity_by_control(
        node, body, _settings(data_dir=data_dir, database_url=database_url, nats_url=nats_url)
    )


def _capacity_by_control(node: str, body: dict[str, Any], settings: Settings) -> None:
    """Write the limits into the node's control entry (checked here first), then audit them."""
    import json

    from vdx.conference.capacity import check_limits
    from vdx.node.cluster.control import ClusterUnreachable, update_control
    from vdx.services import audit
    from vdx.store.db import create_engine, session_factory

    if body.get("capacity") is not None and body["measured"]:
        typer.echo("error: give --capacity or --measured, not both", err=True)
        raise typer.Exit(2)
    try:
        check_limits(body.get("capacity", 1.0), body.get("clinicalReserve", 0.0))
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if body["measured"]:
        body["capacity"] = None  # the override goes
    elif "capacity" not in body:
        del body["measured"]  # a reserve alone keeps how the capacity was set
    actor = f"vdx capacity set ({getpass.getuser()}@{socket.gethostname()})"

    async def run() -> dict[str, object]:
        entry = await update_control(settings, node, **body)
        engine = create_engine(settings)
        try:
            await audit.node_limits_changed(
                session_factory(engine),
                settings,
                node=node,
                organisation_code=settings.node_organisation,
                actor=actor,
                data={"after": body},
            )
        finally:
            await engine.dispose()
        return entry

    try:
        entry = asyncio.run(run())
    except ClusterUnreachable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps({"node": node, **entry}, indent=2))


if __name__ == "__main__":
    app()


def _in_database(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction on the configured database (brought up to date first)."""
    from vdx.store.db import create_engine, session_factory
    from vdx.store.migrate import upgrade

    upgrade(settings)

    async def run() -> T:
        engine = create_engine(settings)
        try:
            async with session_factory(engine)() as s, s.begin():
                return await work(s)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _refuse(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@route_app.command("add")
def route_add(
    name: Annotated[str, typer.Argument(help="the rule's name (replaced if it exists)")],
    match: Annotated[str, typer.Option("--match", help="regular expression the dialled alias matches whole")],
    replace: Annotated[
        str, typer.Option("--replace", help="destination: sip:... with \\1 or \\g<name> from the match")
    ],
    priority: Annotated[int, typer.Option("--priority", help="lower first (0-1000)")] = 100,
    trunk: Annotated[str | None, typer.Option("--trunk", help="outbound trunk (default: DNS)")] = None,
    browser: Annotated[
        bool, typer.Option("--browser", help="the destination is a browser waiting under that name")
    ] = False,
    source_domain: Annotated[
        list[str] | None, typer.Option("--source-domain", help="caller's SIP domain that may use it")
    ] = None,
    source_network: Annotated[
        list[str] | None, typer.Option("--source-network", help="caller's IP network (CIDR) that may use it")
    ] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="stored but not applied")] = False,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Add or replace a gateway routing rule."""
    from vdx.booking.routing import RoutingError, Rule
    from vdx.services import routing

    settings = _settings(data_dir=data_dir, database_url=database_url)
    rule = Rule(
        name=name,
        match=match,
        replace=replace,
        priority=priority,
        target="browser" if browser else "sip",
        trunk=trunk,
        source_domains=tuple(source_domain or ()),
        source_networks=tuple(source_network or ()),
        enabled=not disabled,
    )
    try:
        _, created = _in_database(
            settings, lambda s: routing.put_rule(s, settings, rule, _os_actor("vdx route add"))
        )
    except RoutingError as exc:
        _refuse(str(exc))
    typer.echo(f"routing rule {name} {'added' if created else 'replaced'}")


@route_app.command("list")
def route_list(data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """The routing rules in the order they are tried."""
    from vdx.services import routing

    settings = _settings(data_dir=data_dir, database_url=database_url)
    for r in _in_database(settings, routing.rules):
        sources = ", ".join((*r.source_domains, *r.source_networks)) or "anyone"
        via = f" via trunk {r.trunk}" if r.trunk else ""
        state = "" if r.enabled else " (disabled)"
        typer.echo(
            f"{r.priority:>5}  {r.name}  {r.match}  ->  {r.target} {r.replace}{via}  from {sources}{state}"
        )


@route_app.command("remove")
def route_remove(
    name: Annotated[str, typer.Argument(help="the rule's name")],
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Remove a routing rule."""
    from vdx.services import routing

    settings = _settings(data_dir=data_dir, database_url=database_url)
    try:
        _in_database(
            settings, lambda s: routing.remove_rule(s, settings, name, _os_actor("vdx route remove"))
        )
    except routing.NotFound as exc:
        _refuse(str(exc))
    typer.echo(f"routing rule {name} removed")


@trunk_app.command("add")
def trunk_add(
    name: Annotated[str, typer.Argument(help="the trunk's name (replaced if it exists)")],
    proxy: Annotated[str, typer.Option("--proxy", help="host[:port] calls through the trunk go to")],
    transport: Annotated[str, typer.Option("--transport", help="udp, tcp or tls")] = "udp",
    username: Annotated[str | None, typer.Option("--username", help="digest user name")] = None,
    password: Annotated[
        str | None,
        typer.Option(
            "--password", help="digest password (or VDX_TRUNK_PASSWORD)", envvar="VDX_TRUNK_PASSWORD"
        ),
    ] = None,
    from_domain: Annotated[str | None, typer.Option("--from-domain", help="From header domain")] = None,
    max_calls: Annotated[int, typer.Option("--max-calls", help="concurrent calls (0: no limit)")] = 0,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Add or replace an outbound SIP trunk."""
    from vdx.booking.routing import RoutingError, Trunk
    from vdx.services import routing

    settings = _settings(data_dir=data_dir, database_url=database_url)
    trunk = Trunk(name, proxy, transport, username, password, from_domain, max_calls)
    try:
        _, created = _in_database(
            settings, lambda s: routing.put_trunk(s, settings, trunk, _os_actor("vdx trunk add"))
        )
    except RoutingError as exc:
        _refuse(str(exc))
    typer.echo(f"trunk {name} {'added' if created else 'replaced'}")


@trunk_app.command("list")
def trunk_list(data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """The outbound trunks (never their passwords)."""
    from vdx.services import routing

    settings = _settings(data_dir=data_dir, database_url=database_url)
    for t in _in_database(settings, routing.trunks):
        auth = f"user {t.username}" if t.username else "no credentials"
        limit = f"at most {t.max_calls} calls" if t.max_calls else "no call limit"
        domain = f", From domain {t.from_domain}" if t.from_domain else ""
        typer.echo(f"{t.name}  {t.transport}:{t.proxy}  {auth}, {limit}{domain}")


@trunk_app.command("remove")
def trunk_remove(
    name: Annotated[str, typer.Argument(help="the trunk's name")],
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Remove a trunk that no routing rule uses."""
    from vdx.booking.routing import RoutingError
    from vdx.services import routing

    settings = _settings(data_dir=data_dir, database_url=database_url)
    try:
        _in_database(
            settings, lambda s: routing.remove_trunk(s, settings, name, _os_actor("vdx trunk remove"))
        )
    except (routing.NotFound, RoutingError) as exc:
        _refuse(str(exc))
    typer.echo(f"trunk {name} removed")


@device_app.command("add")
def device_add(
    name: Annotated[str, typer.Argument(help="the name a rule's browser:NAME destination names")],
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Add a device and print its secret, once (only a hash of it is kept)."""
    from vdx.booking.routing import RoutingError
    from vdx.services import devices

    settings = _settings(data_dir=data_dir, database_url=database_url)
    try:
        _, secret = _in_database(
            settings, lambda s: devices.add(s, settings, name, _os_actor("vdx device add"))
        )
    except (RoutingError, devices.DeviceExists) as exc:
        _refuse(str(exc))
    typer.echo(f"device {name} added; its secret (shown this once): {secret}")


@device_app.command("list")
def device_list(data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """The devices (never their secrets)."""
    from vdx.services import devices

    settings = _settings(data_dir=data_dir, database_url=database_url)
    for d in _in_database(settings, devices.devices):
        created = d.created_time.isoformat(timespec="seconds") if d.created_time else "-"
        typer.echo(f"{d.name}  added {created}")


@device_app.command("remove")
def device_remove(
    name: Annotated[str, typer.Argument(help="the device's name")],
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Remove a device: its page can sign in no more."""
    from vdx.services import devices

    settings = _settings(data_dir=data_dir, database_url=database_url)
    try:
        _in_database(settings, lambda s: devices.remove(s, settings, name, _os_actor("vdx device remove")))
    except devices.NotFound as exc:
        _refuse(str(exc))
    typer.echo(f"device {name} removed")
