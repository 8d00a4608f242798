"""The cluster's key-value buckets on NATS JetStream and how names become their keys."""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError
from nats.js.kv import KeyValue

from vdx.settings import Settings

_PLAIN = set(string.ascii_letters + string.digits + "-_")


def key_of(name: str) -> str:
    """A bucket key for a node id or a room alias (lower case): characters a key may not hold,
    and dots (subject separators), are written ``=XX`` (their UTF-8 bytes in hex)."""
    out = []
    for ch in name.lower():
        out.append(ch if ch in _PLAIN else "".join(f"={b:02X}" for b in ch.encode()))
    return "".join(out) or "=00"


def name_of(key: str) -> str:
    raw = bytearray()
    i = 0
    while i < len(key):
        if key[i] == "=":
            raw.append(int(key[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.extend(key[i].encode())
            i += 1
    return raw.decode(errors="replace")


def dumps(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def loads(data: bytes | None) -> dict[str, Any] | None:
    """A value as a dict; None for a delete marker or anything unreadable."""
    if not data:
        return None
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@dataclass(frozen=True)
class Buckets:
    nodes: KeyValue  # node id -> its announcement (NodeInfo); entries expire after the TTL
    rooms: KeyValue  # room alias -> its placement (which node hosts it)
    control: KeyValue  # node id -> what operators ask of it (drain)


def bucket_names(settings: Settings) -> tuple[str, str, str]:
    name = settings.cluster_name
    return f"{name}_nodes", f"{name}_rooms", f"{name}_node_control"


async def _bucket(js: JetStreamContext, name: str, ttl: float | None, replicas: int) -> KeyValue:
    try:
        kv = await js.key_value(name)
    except BucketNotFoundError:
        # Every node creates the same configuration, so two creating at once both succeed.
        return await js.create_key_value(bucket=name, history=1, ttl=ttl, replicas=replicas)
    # a bucket made before the NATS cluster grew gets its copies (never fewer than it has)
    config = (await js.stream_info(f"KV_{name}")).config
    if (config.num_replicas or 1) < replicas:
        config.num_replicas = replicas
        await js.update_stream(config)
    return kv


async def open_buckets(js: JetStreamContext, settings: Settings) -> Buckets:
    """The cluster's buckets, made when missing with ``VDX_NATS_REPLICAS`` copies each."""
    nodes, rooms, control = bucket_names(settings)
    copies = settings.nats_replicas
    return Buckets(
        nodes=await _bucket(js, nodes, settings.node_heartbeat_ttl, copies),
        rooms=await _bucket(js, rooms, None, copies),
        control=await _bucket(js, control, None, copies),
    )
