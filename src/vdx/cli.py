"""The ``vdx`` command: ``serve``, ``api`` and ``node`` run the parts; the rest are operator tools."""

from __future__ import annotations

import asyncio
import getpass
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vdx.settings import Settings

if TYPE_CHECKING:
    from vdx.demo import DemoMeeting

app = typer.Typer(
    help="vdx: open national video node for healthcare (VDX booking API v2, rooms, SIP/WebRTC).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
org_app = typer.Typer(help="Organisations (bootstrap the tree; the API creates only under existing ones).")
app.add_typer(org_app, name="org")
events_app = typer.Typer(help="Scheduling-info and audit events.")
app.add_typer(events_app, name="events")


def _env_help() -> str:
    lines = ["Every setting is also an environment variable:"]
    for name, field in Settings.model_fields.items():
        default = field.default if field.default is not None else "-"
        desc = field.description or ""
        lines.append(f"  VDX_{name.upper()}={default}  {desc}".rstrip())
    return "\b\n" + "\n".join(lines)


def _settings(**overrides: Any) -> Settings:
    """Settings from the environment, with CLI flags (those given) on top."""
    for key, value in overrides.items():
        if value is not None:
            os.environ[f"VDX_{key.upper()}"] = str(value)
    return Settings()


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


@app.command(epilog=_env_help())
def node(
    api_url: Annotated[str | None, typer.Option("--api-url", help="VDX_NODE_API_URL")] = None,
    nats_url: NatsUrl = None,
    host: Host = None,
    port: Port = None,
    public_url: PublicUrl = None,
    node_id: Annotated[str | None, typer.Option("--node-id", help="VDX_NODE_ID")] = None,
    data_dir: DataDir = None,
) -> None:
    """A conferencing node alone: rooms and WebRTC signalling, provisioned from a remote API
    (VDX_NODE_API_URL, e.g. http://api:8080/api) with a meeting-provisioner-user token
    (VDX_NODE_TOKEN, or one minted with the dev key in VDX_DATA_DIR); events from NATS JetStream
    with VDX_NATS_URL."""
    settings = _settings(
        node_api_url=api_url,
        nats_url=nats_url,
        http_host=host,
        http_port=port,
        public_url=public_url,
        node_id=node_id,
        data_dir=data_dir,
    )
    if not settings.node_api_url:
        typer.echo(
            "error: vdx node needs VDX_NODE_API_URL (or --api-url): the VDX API to provision from", err=True
        )
        raise typer.Exit(2)
    _run_http(settings, node_only=True)


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
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Create an organisation (the first ones, which the API cannot create)."""
    from vdx.services import audit, organisations
    from vdx.store.db import create_engine, session_factory
    from vdx.store.migrate import upgrade

    settings = _settings(data_dir=data_dir, database_url=database_url)
    upgrade(settings)
    # the audit trail's "who" for a command run on the server: the operating-system account
    actor = f"vdx org add ({getpass.getuser()}@{socket.gethostname()})"

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


if __name__ == "__main__":
    app()
