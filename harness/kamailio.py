"""A throwaway Kamailio (Debian ``kamailio``) running the repository's own
``deploy/kamailio/kamailio.cfg`` in front of vdx nodes: in the foreground, unprivileged ports on
127.0.0.1, a dispatcher list of the given nodes, no control socket. Only the listen address, the
node list and the SIP domain differ from production (command-line defines), so what the tests
show is what the configuration does."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from harness.daemon import UdpDaemon
from harness.ports import free_port, free_sip_port

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "deploy" / "kamailio" / "kamailio.cfg"
TLS_CONFIG = ROOT / "deploy" / "kamailio" / "tls.cfg"
KAMAILIO = shutil.which("kamailio") or "/usr/sbin/kamailio"


def _options_probe(proxy_port: int, local_port: int) -> bytes:
    local = f"127.0.0.1:{local_port}"
    return (
        f"OPTIONS sip:127.0.0.1:{proxy_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {local};branch=z9hG4bK-probe-{time.monotonic_ns()};rport\r\n"
        "From: <sip:probe@127.0.0.1>;tag=probe\r\nTo: <sip:127.0.0.1>\r\n"
        f"Call-ID: probe-{time.monotonic_ns()}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


class Kamailio(UdpDaemon):
    """``start()`` until it answers OPTIONS on ``port`` (UDP and TCP), ``log()``, ``stop()``.
    ``nodes`` are the vdx nodes' SIP addresses, ``host:port``, in dispatcher set 1. With ``tls``
    (certificate, key and the CA that signed the nodes' certificates) it also listens for SIP over
    TLS on ``tls_port`` and reaches ``tls_nodes`` over TLS (set 2), with the repository's
    ``tls.cfg`` (its file paths replaced)."""

    name = "kamailio"

    def __init__(
        self,
        work_dir: Path,
        nodes: Sequence[str],
        sip_domain: str = "vdx.test",
        *,
        tls_nodes: Sequence[str] = (),
        tls: tuple[Path, Path, Path] | None = None,
    ) -> None:
        self.dir = work_dir
        self.nodes = list(nodes)
        self.tls_nodes = list(tls_nodes)
        self.tls = tls
        self.sip_domain = sip_domain
        super().__init__(work_dir / "kamailio.log", free_sip_port())
        self.tls_port = free_port()
        self.dispatcher_list = work_dir / "dispatcher.list"
        self.tls_config = work_dir / "tls.cfg"

    def write_dispatcher_list(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        lines = [f"1 sip:{node}" for node in self.nodes]
        lines += [f"2 sip:{node};transport=tls" for node in self.tls_nodes]
        self.dispatcher_list.write_text("\n".join(lines) + "\n")

    def write_tls_config(self, cert: Path, key: Path, ca: Path) -> None:
        text = TLS_CONFIG.read_text()
        swaps = {
            "/etc/kamailio/tls/fullchain.pem": str(cert),
            "/etc/kamailio/tls/privkey.pem": str(key),
            "/etc/ssl/certs/ca-certificates.crt": str(ca),
        }
        for old, new in swaps.items():
            if old not in text:
                raise RuntimeError(f"{old} is no longer in {TLS_CONFIG}")
            text = text.replace(old, new)
        self.tls_config.write_text(text)

    def _tls_options(self) -> list[str]:
        if self.tls is None:
            return []
        self.write_tls_config(*self.tls)
        return [
            "-A",
            "WITH_TLS",
            "-A",
            f'TLS_CONFIG="{self.tls_config}"',
            "-A",
            f"LISTEN_TLS=tls:127.0.0.1:{self.tls_port}",
        ]

    def start(self, timeout_s: float = 20.0) -> None:
        self.write_dispatcher_list()
        command = [
            KAMAILIO,
            "-f",
            str(CONFIG),
            "-DD",  # foreground, no daemon
            "-E",  # log to stderr (the log file here)
            "-A",
            f"LISTEN_UDP=udp:127.0.0.1:{self.port}",
            "-A",
            f"LISTEN_TCP=tcp:127.0.0.1:{self.port}",
            "-n",
            "2",
            "-m",
            "64",
            "-M",
            "8",
            "-Y",
            str(self.dir),
            "-w",
            str(self.dir),
            "-P",
            str(self.dir / "kamailio.pid"),
            "-A",
            f'SIP_DOMAIN="{self.sip_domain}"',
            "-A",
            f'DISPATCHER_LIST="{self.dispatcher_list}"',
            *self._tls_options(),
        ]
        with self.log_file.open("wb") as fh:
            self.proc = subprocess.Popen(command, stdout=fh, stderr=fh)
        # ready once an OPTIONS to the proxy itself is answered 200
        self.wait_ready(
            timeout_s,
            lambda local: _options_probe(self.port, local),
            lambda data: data.startswith(b"SIP/2.0 200"),
        )
