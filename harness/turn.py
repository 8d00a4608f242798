"""A throwaway TURN server for tests: Debian's coturn (``turnserver``) on 127.0.0.1, a free UDP
port, the TURN REST API scheme with a test secret, relaying only to the node's address, as
README's turnserver.conf has it.

Test-only difference: ``--allow-loopback-peers``. coturn refuses to relay to 127.0.0.0/8 by
default, and here the node (the relay's peer) listens on loopback; never set it in production."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
from pathlib import Path

from harness.daemon import UdpDaemon
from harness.ports import free_port

TURNSERVER = shutil.which("turnserver") or "/usr/bin/turnserver"
# a STUN Binding request (RFC 5389 section 6): coturn answers it without credentials
_BINDING = struct.pack("!HHI12s", 0x0001, 0, 0x2112A442, os.urandom(12))


class TurnServer(UdpDaemon):
    """``start()`` until it answers STUN, ``url`` for ICE, ``log()`` to see what it did, ``stop()``."""

    SECRET = "vdx-test-turn-secret"
    name = "turnserver"

    def __init__(
        self, work_dir: Path, secret: str = SECRET, realm: str = "vdx.test", node_address: str = "127.0.0.1"
    ) -> None:
        self.dir = work_dir
        self.node_address = node_address
        self.secret = secret
        self.realm = realm
        super().__init__(work_dir / "turnserver.log", free_port(socket.SOCK_DGRAM))

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    def start(self, timeout_s: float = 15.0) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        command = [
            TURNSERVER,
            "-n",  # no configuration file: everything is here
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            f"--listening-port={self.port}",
            "--use-auth-secret",
            f"--static-auth-secret={self.secret}",
            f"--realm={self.realm}",
            "--fingerprint",
            "--no-tcp-relay",
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--no-multicast-peers",
            "--allow-loopback-peers",  # test only: the node listens on loopback
            # as in production: relay to the node's address and nowhere else
            "--denied-peer-ip=0.0.0.0-255.255.255.255",
            f"--allowed-peer-ip={self.node_address}",
            "--verbose",
            "--simple-log",
            f"--log-file={self.log_file}",
            f"--pidfile={self.dir / 'turnserver.pid'}",
            f"--db={self.dir / 'turndb'}",
        ]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # ready once a STUN Binding request is answered with a Binding success response
        self.wait_ready(timeout_s, lambda _port: _BINDING, lambda data: data[:2] == b"\x01\x01")
