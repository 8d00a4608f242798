"""The three-server NATS configuration of docs/deploy.md (deploy/nats/nats-{1,2,3}.conf) forms a
JetStream cluster, and with ``VDX_NATS_REPLICAS=3`` vdx's event streams and the cluster's buckets
have three copies: the streams keep their events and take new ones when the server a vdx process
is connected to dies (it may lead them), the process moving to the others by itself.

The example files run as they are, on loopback: only the host names, ports and store directory
are replaced, and each replacement must find its text, so the test fails when the files drift."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest

from harness.nats import nats_server_binary
from harness.ports import free_port
from harness.waiting import until
from vdx.bus.jetstream import BusUnavailable, JetStreamBus
from vdx.node.cluster.buckets import bucket_names, open_buckets
from vdx.settings import Settings

pytestmark = pytest.mark.nats

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "nats"
CLIENT_PASSWORD = "CHANGE-ME-vdx-client-password"


@dataclass
class Server:
    name: str
    client: int
    route: int
    monitor: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://vdx:{CLIENT_PASSWORD}@127.0.0.1:{self.client}"


def _localised(text: str, me: Server, servers: list[Server], store: Path) -> str:
    """The example with loopback ports for ``me`` and its routes to ``servers``."""
    swaps = {
        "listen: 0.0.0.0:4222": f"listen: 127.0.0.1:{me.client}",
        "listen: 0.0.0.0:6222": f"listen: 127.0.0.1:{me.route}",
        "http: 127.0.0.1:8222": f"http: 127.0.0.1:{me.monitor}",
        "store_dir: /var/lib/nats": f"store_dir: {store}",
    }
    swaps |= {f"{s.name}.internal:6222": f"127.0.0.1:{s.route}" for s in servers}
    for old, new in swaps.items():
        assert old in text, f"{old!r} is no longer in the example"
        text = text.replace(old, new)
    return text


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[list[Server]]:
    servers = [Server(f"nats-{i}", free_port(), free_port(), free_port()) for i in (1, 2, 3)]
    try:
        for s in servers:
            example = (EXAMPLES / f"{s.name}.conf").read_text()
            assert f"server_name: {s.name}" in example
            conf = tmp_path / f"{s.name}.conf"
            conf.write_text(_localised(example, s, servers, tmp_path / s.name))
            check = subprocess.run(
                [nats_server_binary(), "-t", "-c", str(conf)], capture_output=True, text=True
            )
            assert check.returncode == 0, check.stderr + check.stdout
            log = (tmp_path / f"{s.name}.log").open("wb")
            s.proc = subprocess.Popen([nats_server_binary(), "-c", str(conf)], stdout=log, stderr=log)
        yield servers
    finally:
        for s in servers:
            if s.proc is not None and s.proc.poll() is None:
                s.proc.terminate()
                s.proc.wait(10)


async def test_the_example_cluster_keeps_vdx_events_when_a_server_dies(nats_cluster: list[Server]) -> None:
    first = nats_cluster[0]
    # the client learns the other servers from the one it knows (VDX_NATS_URL names one)
    settings = Settings(nats_url=first.url, nats_replicas=3)
    bus = JetStreamBus(settings)
    await bus.start()
    subject = settings.nats_subject_audit
    try:

        async def published(msg_id: str) -> bool:
            try:
                await bus.publish(subject, b'{"n": 1}', msg_id)
            except (BusUnavailable, nats.errors.Error, TimeoutError):
                return False  # no JetStream leader elected yet
            return True

        await until(lambda: published("one"), 30, "the cluster to take a first event", poll_s=0.3)
        assert bus.js is not None
        info = await bus.js.stream_info(settings.nats_stream_audit)
        assert info.config.num_replicas == 3
        assert info.cluster is not None and info.cluster.leader is not None
        assert len(info.cluster.replicas or []) == 2, info.cluster
        # the cluster's registry and placements, as a node opens them when it joins: three copies
        await open_buckets(bus.js, settings)
        for bucket in bucket_names(settings):
            kv = (await bus.js.stream_info(f"KV_{bucket}")).config
            assert kv.num_replicas == 3, bucket

        # The server the client is on dies: the client moves to one it learnt from the cluster
        # (announced without credentials: vdx gives its own to every server), and if the dead one
        # led the stream, the other two elect a new leader; the next event goes in.
        assert bus.nc is not None and bus.nc.connected_url is not None
        mine = next(s for s in nats_cluster if bus.nc.connected_url.port == s.client)
        assert mine.proc is not None
        mine.proc.kill()
        mine.proc.wait()
        await until(lambda: published("two"), 30, "the next event after the client's server died", poll_s=0.3)

        async def both_kept() -> bool:
            assert bus.js is not None
            state = (await bus.js.stream_info(settings.nats_stream_audit)).state
            return state.messages == 2

        await until(both_kept, 15, "both events in the stream")
    finally:
        await bus.close()
