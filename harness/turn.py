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
import time
from pathlib import Path

from harness.ports import free_port

TURNSERVER = shutil.which("turnserver") or "/usr/bin/turnserver"
# a STUN Binding request (RFC 5389 section 6): coturn answers it without credentials
_BINDING = struct.pack("!HHI12s", 0x0001, 0, 0x2112A442, os.urandom(12))


class TurnServer:
    """``start()`` until it answers STUN, ``url`` for ICE, ``log()`` to see what it did, ``stop()``."""

    SECRET = "vdx-test-turn-secret"

    def __init__(
        self, work_dir: Path, secret: str = SECRET, realm: str = "vdx.test", node_address: str = "127.0.0.1"
    ) -> None:
        self.dir = work_dir
        self.node_address = node_address
        self.secret = secret
        self.realm = realm
        self.port = free_port(socket.SOCK_DGRAM)
        self.log_file = work_dir / "turnserver.log"
        self.proc: subprocess.Popen[bytes] | None = None

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
        self._wait_ready(timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        """Until a STUN Binding request is answered (each try waits at most 0.2 s for it)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout_s
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"turnserver exited ({self.proc.returncode}): {self.log()[-2000:]}")
                s.sendto(_BINDING, ("127.0.0.1", self.port))
                try:
                    data = s.recv(2048)
                except (TimeoutError, ConnectionRefusedError):
                    continue
                if data[:2] == b"\x01\x01":  # Binding success response
                    return
        self.stop()
        raise RuntimeError(f"turnserver did not answer STUN in {timeout_s:.0f} s: {self.log()[-2000:]}")

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
