"""A server program a test starts beside vdx (coturn, Kamailio): its process and log, ready once
it answers a UDP probe on 127.0.0.1, stopped with SIGTERM (then SIGKILL)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


class UdpDaemon:
    """``proc`` is set by the subclass's ``start``, which then calls ``wait_ready``."""

    name = "daemon"

    def __init__(self, log_file: Path, port: int) -> None:
        self.log_file = log_file
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def wait_ready(
        self, timeout_s: float, probe: Callable[[int], bytes], answered: Callable[[bytes], bool]
    ) -> None:
        """Until ``probe(local port)`` sent to the daemon's port gets an answer that ``answered``
        accepts (each try waits at most 0.2 s); RuntimeError with the log's tail otherwise."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout_s
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.settimeout(0.2)
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited ({self.proc.returncode}): {self.log()[-3000:]}")
                s.sendto(probe(s.getsockname()[1]), ("127.0.0.1", self.port))
                try:
                    data = s.recv(65535)
                except (TimeoutError, ConnectionRefusedError):
                    continue
                if answered(data):
                    return
        self.stop()
        raise RuntimeError(f"{self.name} did not answer in {timeout_s:.0f} s: {self.log()[-3000:]}")

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
