"""An authoritative DNS server for tests: real wire answers (dnspython) from a dict of records,
over UDP and TCP on one free port of 127.0.0.1, so a node's ``VDX_DNS_SERVERS`` can point at it.

A name with records but none of the type asked gets an empty NOERROR answer, as does a name
under which records lie (``_udp.example.test`` of ``_sip._udp.example.test``); any other name is
NXDOMAIN. Every question asked is kept in ``asked``; ``records`` may change while it serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import cast

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from harness.ports import free_sip_port

Records = Mapping[tuple[str, str], Sequence[str]]  # (name, type) -> rdata texts


class DnsServer:
    """Answers from ``records``: ``{("_sip._udp.example.test", "SRV"): ["10 5 5060 rs.example.test."],
    ("rs.example.test", "A"): ["127.0.0.1"]}`` (names without the final dot)."""

    def __init__(self, records: Records, ttl: int = 60) -> None:
        self.records = {
            (name.rstrip(".").lower(), kind.upper()): list(v) for (name, kind), v in records.items()
        }
        self.ttl = ttl
        self.port = 0
        self.asked: list[tuple[str, str]] = []
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    @property
    def address(self) -> str:
        """What ``VDX_DNS_SERVERS`` names this server by."""
        return f"127.0.0.1:{self.port}"

    def answer(self, wire: bytes) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except Exception:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        for question in query.question:
            name = question.name.to_text(omit_final_dot=True).lower()
            kind = dns.rdatatype.to_text(question.rdtype)
            self.asked.append((name, kind))
            texts = self.records.get((name, kind))
            if texts:
                response.answer.append(
                    dns.rrset.from_text_list(question.name, self.ttl, dns.rdataclass.IN, kind, texts)
                )
            elif not self._exists(name):
                response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()

    def _exists(self, name: str) -> bool:
        return any(owner == name or owner.endswith("." + name) for owner, _ in self.records)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        server = self

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = cast(asyncio.DatagramTransport, transport)

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                reply = server.answer(data)
                if reply is not None:
                    self.transport.sendto(reply, addr)

        port = free_sip_port()  # free for UDP and TCP both
        transport, _ = await loop.create_datagram_endpoint(Udp, local_addr=("127.0.0.1", port))
        self._udp = transport
        self._tcp = await asyncio.start_server(self._serve_tcp, "127.0.0.1", port)
        self.port = port

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                reply = self.answer(await reader.readexactly(length))
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        writer.close()

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()


@asynccontextmanager
async def dns_server(records: Records) -> AsyncIterator[DnsServer]:
    """A :class:`DnsServer` serving ``records`` for the block."""
    server = DnsServer(records)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
