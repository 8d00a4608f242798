"""Free ports on 127.0.0.1, so parallel runs and a node already on 5060 or 8000 never collide."""

from __future__ import annotations

import socket
from pathlib import Path


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port free on 127.0.0.1 just now (TCP unless ``kind`` says otherwise)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_sip_port() -> int:
    """A port free on 127.0.0.1 for UDP and TCP both: SIP programs listen on both with one number
    (and so does baresip's console)."""
    while True:
        port = free_port(socket.SOCK_DGRAM)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def listening(port: int, kind: socket.SocketKind = socket.SOCK_STREAM) -> bool:
    """Whether some process on this machine listens on ``port`` (TCP) or holds it bound (UDP), read
    from the kernel's socket tables so the check itself opens no connection the listener would see."""
    tables = ("tcp", "tcp6") if kind == socket.SOCK_STREAM else ("udp", "udp6")
    wanted = f":{port:04X}"
    for table in tables:
        try:
            lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            # TCP sockets must be in LISTEN (0A); any bound UDP socket receives.
            if fields[1].endswith(wanted) and (kind != socket.SOCK_STREAM or fields[3] == "0A"):
                return True
    return False
