"""Configuration: every knob is a ``VDX_*`` environment variable (see ``vdx serve --help``).

The reference system's configuration keys (spec 2.18) are given beside the knobs that mirror them.
"""

from __future__ import annotations

import ipaddress
import re
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# a CSP source expression allowed in frame-ancestors: 'self', or a scheme with a host (a leading
# "*." for subdomains) and an optional port
_FRAME_SOURCE = re.compile(r"'self'|https?://(?:\*\.)?[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*(?::\d{1,5})?")
_NODE_ORIGIN = re.compile(r"(?:https?|wss?)://(?:\*\.)?[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*(?::(?:\d{1,5}|\*))?")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VDX_", extra="ignore")

    # --- data and infrastructure -------------------------------------------------------------
    data_dir: Path = Field(
        Path("./var"), description="SQLite file, dev signing key, SIP TLS pair and prompts"
    )
    database_url: str | None = Field(
        None, description="postgresql://... (asyncpg) overrides the SQLite file in the data dir"
    )
    database_pool_size: int = Field(
        40,
        ge=1,
        description="PostgreSQL connections each process keeps open at most (requests beyond wait "
        "for one); mind the server's max_connections across processes",
    )
    nats_url: str | None = Field(
        None,
        description="nats://host:4222 switches the bus to NATS JetStream; the servers of a NATS "
        "cluster comma-separated (nats://user:password@nats-1:4222,nats://nats-2:4222,...)",
    )
    nats_replicas: int = Field(
        1,
        ge=1,
        le=5,
        description="copies of each JetStream stream and cluster bucket vdx creates, on as many NATS "
        "servers; 3 on a three-server cluster, so one server may fail without losing events or placements",
    )

    # --- network -----------------------------------------------------------------------------
    http_host: str = Field("0.0.0.0", description="address the HTTP server binds")
    http_port: int = Field(8080, description="API, web pages and WebRTC signalling")
    sip_port: int = Field(5060, description="SIP over UDP and TCP")
    sip_tls_port: int = Field(5061, description="SIP over TLS (0 = off)")
    sip_host: str = Field("0.0.0.0", description="address the SIP listeners and RTP ports bind")
    sip_bfcp_port: int = Field(
        0, description="BFCP floor control of SIP presentations, TCP and UDP (0 = any free port)"
    )
    sip_advertised_host: str | None = Field(
        None, description="address written in SIP Contact and SDP; default: the local address of each call"
    )
    sip_tls_cert: Path | None = Field(
        None, description="PEM certificate for SIP over TLS; default: a self-signed one in the data dir"
    )
    sip_tls_key: Path | None = Field(None, description="PEM private key of sip_tls_cert")
    sip_max_invites_per_second: float = Field(
        20.0, description="new INVITEs admitted per second; more get 503 with Retry-After"
    )
    sip_enabled: bool = Field(
        True, description="answer SIP calls into rooms (with the node; vdx serve); false = WebRTC only"
    )
    sip_require_srtp: bool = Field(False, description="refuse SIP media without SDES-SRTP keys (488)")
    sip_media_timeout: float = Field(
        30.0,
        ge=0,
        description="seconds without RTP or RTCP after which an answered SIP call (not on hold) is hung up; 0 = never",
    )
    sip_dial_timeout: float = Field(
        30.0, gt=0, description="seconds a dial-out from a room rings before it counts as unanswered"
    )
    sip_ring_timeout: float = Field(
        30.0,
        gt=0,
        description="seconds a call routed to a waiting browser (browser:NAME) rings it before 480",
    )
    sip_dial_username: str | None = Field(
        None, description="user name answering a digest challenge (401/407) to a dial-out"
    )
    sip_dial_password: str | None = Field(None, description="password of sip_dial_username")
    sip_dial_tls_cafile: Path | None = Field(
        None, description="PEM CA bundle a dial-out over TLS trusts besides the system's CAs"
    )
    sip_dial_tls_verify: bool = Field(
        True, description="check the certificate of a SIP peer dialled over TLS (false: encrypted, unchecked)"
    )
    sip_dial_target_timeout: float = Field(
        32.0,
        gt=0,
        description="seconds one server of a dialled domain may stay silent before the next is tried (RFC 3263)",
    )
    dns_servers: str = Field(
        "",
        description="DNS servers locating dialled SIP domains (NAPTR/SRV), host[:port] comma-separated; "
        "empty = /etc/resolv.conf",
    )
    rtp_ports: str = Field("40000-40999", description="RTP port range for media")
    public_url: str = Field(
        "", description="where people and systems reach this node; default http://127.0.0.1:{http_port}"
    )
    sip_domain: str = Field("vdx.local", description="VMR aliases are <number>@<domain>")
    api_context: str = Field("/api", description="context path of the VDX API (CONTEXT)")
    allowed_origins: str = Field("", description="CORS allow-list, comma-separated (ALLOWED_ORIGINS)")
    max_body_bytes: int = Field(1_048_576, description="largest request body accepted (413 above)")
    http_keepalive_requests: int = Field(
        100,
        ge=0,
        description="close a kept-alive HTTP connection after about this many requests (0 = never), "
        "so long-lived client connections spread over the API's worker processes again",
    )
    correlation_id_header: str = Field(
        "x-request-id", description="request correlation header (CORRELATION_ID)"
    )

    # --- tokens ------------------------------------------------------------------------------
    jwt_jwks_url: str | None = Field(None, description="JWKS of the identity provider (Keycloak)")
    jwt_issuer: str | None = Field(None, description="expected token issuer; unset = the dev issuer")
    jwt_public_key_file: Path | None = Field(None, description="PEM public key instead of a JWKS URL")
    claim_organisation: str = Field("organisation_id", description="claim holding the organisation code")
    claim_email: str = Field("email", description="claim holding the user's e-mail")
    claim_roles: str = Field("userrole", description="claim holding the role list")
    claim_parent_org: str = Field("parent_org", description="claim naming the parent for auto-create")

    # --- booking rules (spec 2.18) -----------------------------------------------------------
    short_link_base_url: str | None = Field(None, description="short.link.base.url; default {public_url}/s/")
    portal_link_template: str | None = Field(
        None,
        description="scheduling.info.citizen.portal.template; default: this node's join page",
    )
    overflow_pool_organisation: str | None = Field(None, description="overflow.pool.organisation.id")
    event_organisation_filter: str = Field(
        "",
        description="event.organisation.filter: organisations driven by events (empty = all, '-' = none)",
    )
    pool_minimum_age_sec: int = Field(60, description="pool.meeting.minimumAgeSec")
    pool_fill_disabled: bool = Field(False, description="pool.fill.disabled")
    pool_fill_interval: float = Field(10.0, description="pool.fill.interval in seconds")
    pool_fill_organisation: str = Field("vdx", description="pool.fill.organisation")
    pool_fill_organisation_user: str = Field(
        "pool-filler@vdx.local", description="pool.fill.organisation.user"
    )
    nats_subject_scheduling_info: str = Field(
        "provisioner.scheduling-info", description="scheduling-info events"
    )
    nats_subject_audit: str = Field("audit.event", description="audit events")
    nats_stream_scheduling_info: str = Field("provisioner", description="JetStream stream of those events")
    nats_stream_audit: str = Field("audit", description="JetStream stream of audit events")
    outbox_retention_hours: float = Field(24.0, description="keep published events this long")
    retention_days: int = Field(
        90,
        ge=1,
        description="days after a meeting ends until its users' e-mail addresses are removed from it",
    )
    audit_retention_days: int = Field(
        1825, ge=1, description="days the audit trail is kept (longer: complaints come late)"
    )
    node_minutes_retention_days: int = Field(
        400,
        ge=1,
        description="days the nodes' minute figures are kept (the steering figures read them; "
        "a year back and a month)",
    )
    retention_interval: float = Field(
        3600.0, gt=0, description="seconds between runs of the retention job (with the pool filler)"
    )

    # scheduling.template.default.* : the auto-created shared template (spec 2.3 step 5)
    template_default_conferencing_sys_id: int = 1
    template_default_uri_prefix: str = ""
    template_default_uri_domain: str | None = Field(None, description="default: the SIP domain")
    template_default_host_pin_required: bool = True
    template_default_host_pin_range_low: int = 1000000
    template_default_host_pin_range_high: int = 9999999
    template_default_guest_pin_required: bool = True
    template_default_guest_pin_range_low: int = 1000
    template_default_guest_pin_range_high: int = 999999
    template_default_vmr_available_before: int = 15
    template_default_max_participants: int = 10
    template_default_end_meeting_on_end_time: bool = False
    template_default_uri_number_range_low: int = 10000000
    template_default_uri_number_range_high: int = 99999999
    template_default_ivr_theme: str | None = None

    # --- conferencing node (media plane) ------------------------------------------------------
    node_enabled: bool = Field(True, description="host rooms in this process (WebRTC signalling, MCU)")
    usage_write_seconds: float = Field(
        60.0, gt=0, description="write participants and minutes per day to the database this often"
    )
    stun_servers: str = Field("", description="STUN URLs for ICE, comma-separated (stun:host:3478)")
    turn_servers: str = Field(
        "", description="TURN URLs for ICE, comma-separated (turn:host:3478?transport=udp)"
    )
    turn_secret: str | None = Field(
        None,
        description="secret shared with the TURN server (coturn static-auth-secret); joiners get "
        "credentials made from it (required with VDX_TURN_SERVERS)",
    )
    turn_ttl: int = Field(
        3600, ge=60, lt=86400, description="seconds a TURN credential opens new relays (less than a day)"
    )
    node_uses_turn: bool = Field(
        False, description="the node's own WebRTC legs relay through TURN too (a node behind NAT)"
    )
    ice_host_addresses: str = Field(
        "", description="offer host candidates only on these addresses (default: every interface)"
    )
    media_fps: int = Field(20, description="frame rate of composed video")
    media_size_cap: str = Field(
        "", description="cap every composed picture, WxH (e.g. 320x180); empty = vmrQuality"
    )
    node_capacity: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="this node's capacity in HD units (full HD 2, HD 1, SD 0.5, audio-only 1/16); "
        "unset = measured by a self-test at start",
    )
    clinical_reserve: float = Field(
        0.2,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="share of capacity kept for clinical meetings when capacity is short",
    )
    pin_backoff_max: float = Field(
        900.0,
        gt=0,
        description="most seconds a source address waits between PIN tries in a room (README, PIN guessing)",
    )
    pin_room_failures: int = Field(
        20, ge=1, description="wrong PINs in a room within pin_room_window that slow all its PIN checks down"
    )
    pin_room_window: float = Field(600.0, gt=0, description="seconds over which pin_room_failures counts")
    trusted_proxies: str = Field(
        "127.0.0.1,::1",
        description="comma-separated addresses of reverse proxies whose X-Forwarded-For names the client "
        "(PIN throttling by source address); from anyone else the header is ignored; empty = never trusted",
    )
    media_keyframe_interval: float = Field(
        0.5, description="least seconds between forced keyframes of a view"
    )
    resume_grace: float = Field(
        30.0,
        gt=0,
        allow_inf_nan=False,
        description="seconds a participant whose join page lost its connection keeps their place "
        "(stage or lobby) for the page to resume",
    )
    media_adapt: bool = Field(
        True,
        description="send each receiver the picture size its link carries (REMB, receiver reports), "
        "encoding smaller layers of a view only for those who need them; false = the full size always",
    )
    media_views: Literal["distinct", "shared", "personal"] = Field(
        "distinct",
        description="distinct = one encoder per distinct picture, nobody sees themselves; shared = one "
        "picture for all (people see themselves) and personal = one view per participant exist to "
        "measure what the default costs (bench/capacity.py)",
    )

    # --- conferencing node: how it learns its rooms (provisioner contract, spec 2.12) ---------------
    node_provisioner: bool = Field(
        True, description="learn rooms from the booking API (events, polling); false = rooms put by hand"
    )
    node_api_url: str | None = Field(
        None, description="VDX API the node provisions from; default: this process (vdx serve)"
    )
    node_token: str | None = Field(
        None, description="meeting-provisioner-user token for the API; default: minted with the dev key"
    )
    node_organisation: str = Field(
        "vdx-node", description="organisation of the minted node token (vdx serve creates it)"
    )
    node_id: str | None = Field(None, description="this node's name in provisionVmrId; default: hostname")
    node_poll_interval: float = Field(5.0, description="seconds between polls of the provision lists")
    node_resync_interval: float = Field(
        60.0, description="seconds between looks at bookings still to come (polled organisations)"
    )
    node_clinical_refresh: float = Field(
        30.0,
        gt=0,
        description="seconds between reads of which organisations are clinical (also read at once "
        "on an organisation's audit event)",
    )
    node_routing_refresh: float = Field(
        60.0,
        gt=0,
        description="seconds between reads of the gateway routing rules and outbound trunks (also "
        "read at once when one changes)",
    )

    # --- many nodes (cluster on NATS JetStream key-value buckets; only with VDX_NATS_URL) --------
    cluster_name: str = Field(
        "vdx",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="prefix of the cluster's key-value buckets ({name}_nodes, {name}_rooms, "
        "{name}_node_control); nodes with the same name and NATS form one cluster",
    )
    node_heartbeat_interval: float = Field(
        1.0, gt=0, description="seconds between a node's announcements in the registry (its heartbeat)"
    )
    node_heartbeat_ttl: float = Field(
        5.0,
        gt=0,
        description="a node whose heartbeat is older than this many seconds is dead: its rooms move "
        "to the others; a node that cannot heartbeat this long takes no new callers",
    )

    # --- web pages ---------------------------------------------------------------------------
    oidc_issuer: str | None = Field(
        None, description="OpenID Connect issuer for the booking pages' sign-in (e.g. a Keycloak realm URL)"
    )
    oidc_client_id: str = Field("vdx-web", description="public client id of the booking pages (PKCE)")
    oidc_scope: str = Field("openid email profile", description="scopes the booking pages ask for")
    frame_ancestors: str = Field(
        "'none'",
        description="who may show the pages in a frame (CSP frame-ancestors): 'none', 'self' or "
        "origins such as https://portal.example.dk, space-separated",
    )
    node_origins: str = Field(
        "",
        description="in a cluster: the other nodes' public origins a join page may be redirected to "
        "(CSP connect-src), e.g. https://*.video.example.dk or http://127.0.0.1:*, space-separated",
    )
    invitation_sender: str = Field(
        "logging", description="invitations by SMS/e-mail: 'logging' or 'package.module:Class'"
    )

    log_format: Literal["auto", "text", "json"] = Field(
        "auto", description="auto, text or json; auto: readable lines on a terminal, JSON lines otherwise"
    )
    log_level: str = Field("INFO", description="DEBUG shows the in-process node's own API calls too")

    @field_validator("media_size_cap")
    @classmethod
    def _size_cap(cls, v: str) -> str:
        raw = v.strip().lower()
        if raw:
            w, sep, h = raw.partition("x")
            if not (sep and w.isdigit() and h.isdigit() and int(w) >= 16 and int(h) >= 16):
                raise ValueError("media_size_cap must look like 320x180")
        return raw

    @model_validator(mode="after")
    def _turn_needs_secret(self) -> Settings:
        if self.turn_servers.strip() and not self.turn_secret:
            raise ValueError("VDX_TURN_SERVERS needs VDX_TURN_SECRET (coturn's static-auth-secret)")
        return self

    @model_validator(mode="after")
    def _heartbeat_within_ttl(self) -> Settings:
        if self.node_heartbeat_ttl < 2 * self.node_heartbeat_interval:
            raise ValueError(
                "VDX_NODE_HEARTBEAT_TTL must be at least twice VDX_NODE_HEARTBEAT_INTERVAL "
                "(one late heartbeat must not make a node dead)"
            )
        return self

    @field_validator("frame_ancestors")
    @classmethod
    def _frame_ancestors(cls, v: str) -> str:
        # Each word goes into a response header as it is: only CSP source expressions, so no
        # value can end the directive (";") or the header.
        words = v.replace(",", " ").split()
        if words == ["'none'"]:
            return "'none'"
        if not words or not all(_FRAME_SOURCE.fullmatch(w) for w in words):
            raise ValueError(
                "frame_ancestors must be 'none', or 'self' and origins such as https://portal.example.dk"
            )
        return " ".join(words)

    @field_validator("node_origins")
    @classmethod
    def _node_origins(cls, v: str) -> str:
        # Each word goes into the CSP header as it is: origins only, so none can end the directive.
        words = v.replace(",", " ").split()
        if not all(_NODE_ORIGIN.fullmatch(w) for w in words):
            raise ValueError(
                "node_origins must be origins such as https://*.video.example.dk, space-separated"
            )
        return " ".join(words)

    @field_validator("dns_servers")
    @classmethod
    def _dns_servers(cls, v: str) -> str:
        _dns_addresses(v)  # each entry an IP address with an optional port
        return v

    @field_validator("api_context")
    @classmethod
    def _context(cls, v: str) -> str:
        v = "/" + v.strip("/") if v.strip("/") else ""
        return v

    @cached_property
    def database_url_effective(self) -> str:
        """SQLAlchemy URL: PostgreSQL through asyncpg, or the SQLite file in the data dir."""
        if self.database_url:
            url = self.database_url
            for prefix in ("postgresql://", "postgres://"):
                if url.startswith(prefix):
                    url = "postgresql+asyncpg://" + url[len(prefix) :]
            return url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'vdx.sqlite3').resolve()}"

    @property
    def is_postgres(self) -> bool:
        return self.database_url_effective.startswith("postgresql")

    @property
    def dns_server_addresses(self) -> list[tuple[str, int]]:
        """VDX_DNS_SERVERS as (address, port) pairs; empty: the system's."""
        return _dns_addresses(self.dns_servers)

    @property
    def public_url_clean(self) -> str:
        """The public URL without a trailing slash; unset, the local address of the HTTP port."""
        return (self.public_url or f"http://127.0.0.1:{self.http_port}").rstrip("/")

    @property
    def short_link_base(self) -> str:
        return self.short_link_base_url or f"{self.public_url_clean}/s/"

    @property
    def portal_template(self) -> str:
        return self.portal_link_template or (
            f"{self.public_url_clean}/join/?conference=__uri-with-domain__&pin=__pin__"
            "&start_dato=__start-date__&muteMicrophone=__microphone__&callType=__call-type__"
        )

    @property
    def nats_connect_options(self) -> dict[str, Any]:
        """nats-py's ``connect`` options for VDX_NATS_URL: every server named, and the first
        credentials in the URLs as options, so the servers a client learns from the cluster
        (announced without credentials) accept it too when its own server goes."""
        servers = self.csv(self.nats_url or "")
        options: dict[str, Any] = {"servers": servers}
        for url in servers:
            parts = urlsplit(url)
            if parts.username and parts.password is not None:
                options.update(user=unquote(parts.username), password=unquote(parts.password))
                break
            if parts.username:  # nats://token@host
                options["token"] = unquote(parts.username)
                break
        return options

    @property
    def nats_where(self) -> str:
        """The NATS servers as ``host:port``, for messages: never the credentials in the URLs."""
        return ", ".join(urlsplit(u).netloc.rpartition("@")[2] for u in self.csv(self.nats_url or ""))

    @property
    def origins(self) -> list[str]:
        return [o.strip() for o in self.allowed_origins.split(",") if o.strip()]

    def uses_events(self, organisation_code: str) -> bool:
        """newProvisioner(org) of spec 4.2: the filter is empty (all) or names the organisation.
        Such organisations get scheduling-info events and leave the polling and pool endpoints.
        ``-`` selects none (every organisation is served by polling provisioners)."""
        raw = self.event_organisation_filter.strip()
        if raw == "-":
            return False
        names = [o.strip() for o in raw.split(",") if o.strip()]
        return not names or organisation_code in names

    @property
    def media_size_cap_pair(self) -> tuple[int, int] | None:
        raw = self.media_size_cap.strip().lower()
        if not raw:
            return None
        w, _, h = raw.partition("x")
        return int(w), int(h)

    @staticmethod
    def csv(value: str) -> list[str]:
        return [v.strip() for v in value.split(",") if v.strip()]

    @property
    def dev_issuer(self) -> str:
        return "vdx-dev"

    @property
    def node_name(self) -> str:
        import socket

        return (self.node_id or socket.gethostname() or "vdx-node").strip()

    @property
    def node_email(self) -> str:
        return f"{self.node_organisation}@{self.sip_domain}"

    @property
    def signing_key_file(self) -> Path:
        return self.data_dir / "dev-signing-key.pem"


def _dns_addresses(text: str) -> list[tuple[str, int]]:
    """``host[:port]`` comma-separated (``[v6]:port`` for IPv6), port 53 unless given;
    :class:`ValueError` naming an entry that is no IP address."""
    out: list[tuple[str, int]] = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        host, port = entry, "53"
        if entry.startswith("["):
            host, _, tail = entry[1:].partition("]")
            port = tail[1:] if tail.startswith(":") else "53"
        elif entry.count(":") == 1:
            host, _, port = entry.partition(":")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"dns_servers: {entry!r} is not an IP address with an optional port") from None
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"dns_servers: {entry!r} has no valid port")
        out.append((host, int(port)))
    return out
