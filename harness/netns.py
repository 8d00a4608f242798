"""A link to shape with tc on this machine: a network namespace joined to the host by a veth pair,
its downlink (the host side's egress) held by ``tbf``. A program runs inside through
:meth:`NetNamespace.wrapper` (``ip netns exec``); it reaches the host at ``host_address``.

    with netns() as ns:
        chromium = ns.wrapper("/usr/bin/chromium")   # an executable that runs it inside
        ns.shape(300)                                # the namespace receives at most 300 kbit/s
        ns.lift()

Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN); :class:`NetnsUnavailable` says why if not."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import count
from pathlib import Path

POOL = ipaddress.IPv4Network("10.211.0.0/16")  # private; one /30 per namespace
_made = count()


class NetnsUnavailable(RuntimeError):
    """This machine does not let us make a namespace, veth pair or tbf qdisc (not root, no ip/tc)."""


def _run(*argv: str) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except FileNotFoundError as exc:
        raise NetnsUnavailable(f"{argv[0]} is not installed ({exc})") from exc
    if done.returncode != 0:
        raise NetnsUnavailable(f"`{' '.join(argv)}` failed: {done.stderr.strip() or done.returncode}")
    return done.stdout


def _free_subnet() -> ipaddress.IPv4Network:
    """A /30 of ``POOL`` no interface here uses, starting from one chosen by process id, so that
    parallel runs pick different ones."""
    used = _run("ip", "-o", "-4", "addr", "show")
    subnets = list(POOL.subnets(new_prefix=30))
    start = (os.getpid() * 7 + next(_made)) % len(subnets)
    for i in range(len(subnets)):
        net = subnets[(start + i) % len(subnets)]
        if not any(f" {a}/" in used for a in net):
            return net
    raise NetnsUnavailable(f"no free /30 left in {POOL}")


class NetNamespace:
    """One namespace and its veth pair, made by :func:`netns`."""

    def __init__(self, tag: str, subnet: ipaddress.IPv4Network) -> None:
        self.name = f"vdx-{tag}"
        self.host_if = f"vx{tag}h"[:15]  # interface names have at most 15 characters
        self.inner_if = f"vx{tag}n"[:15]
        hosts = list(subnet.hosts())
        self.host_address, self.inner_address = str(hosts[0]), str(hosts[1])
        self.prefix = subnet.prefixlen
        self.rate_kbit: int | None = None
        self._dir = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))

    def create(self) -> None:
        _run("ip", "netns", "add", self.name)
        _run(
            "ip",
            "link",
            "add",
            self.host_if,
            "type",
            "veth",
            "peer",
            "name",
            self.inner_if,
            "netns",
            self.name,
        )
        _run("ip", "addr", "add", f"{self.host_address}/{self.prefix}", "dev", self.host_if)
        _run("ip", "link", "set", self.host_if, "up")
        _run(
            "ip", "-n", self.name, "addr", "add", f"{self.inner_address}/{self.prefix}", "dev", self.inner_if
        )
        _run("ip", "-n", self.name, "link", "set", self.inner_if, "up")
        _run("ip", "-n", self.name, "link", "set", "lo", "up")

    def destroy(self) -> None:
        """Remove whatever exists of it (deleting one end of a veth pair removes both)."""
        for argv in (("ip", "link", "del", self.host_if), ("ip", "netns", "del", self.name)):
            subprocess.run(argv, capture_output=True, timeout=20)
        shutil.rmtree(self._dir, ignore_errors=True)

    def shape(self, rate_kbit: int, latency_ms: int = 100) -> None:
        """Hold what the namespace receives to ``rate_kbit``: packets wait up to ``latency_ms``
        in tbf's queue, then drop (a burst of 10 ms of the rate, at least two full packets)."""
        burst = max(3200, rate_kbit * 1000 // 8 // 100)
        _run(
            "tc", "qdisc", "replace", "dev", self.host_if, "root", "tbf",
            "rate", f"{rate_kbit}kbit", "burst", str(burst), "latency", f"{latency_ms}ms",
        )  # fmt: skip
        self.rate_kbit = rate_kbit

    def lift(self) -> None:
        """Back to the veth's own (unlimited) queue."""
        if self.rate_kbit is not None:
            _run("tc", "qdisc", "del", "dev", self.host_if, "root")
            self.rate_kbit = None

    def qdisc(self) -> str:
        """What tc says of the host side's queue, with its counters (sent, dropped)."""
        return _run("tc", "-s", "qdisc", "show", "dev", self.host_if).strip()

    def wrapper(self, executable: str) -> str:
        """A script that runs ``executable`` with its arguments inside the namespace (inherited
        file descriptors too: Playwright drives Chromium over pipes)."""
        path = self._dir / Path(executable).name
        path.write_text(f'#!/bin/sh\nexec ip netns exec {self.name} {executable} "$@"\n', encoding="utf-8")
        path.chmod(0o755)
        return str(path)


@contextmanager
def netns() -> Iterator[NetNamespace]:
    """A fresh namespace with a veth pair to the host, always removed on the way out."""
    tag = f"{os.getpid() % 100000}{next(_made)}"
    ns = NetNamespace(tag, _free_subnet())
    try:
        ns.create()
        yield ns
    finally:
        ns.destroy()
