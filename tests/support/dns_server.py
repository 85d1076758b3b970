"""An in-process authoritative DNS server for tests, built on dnspython.

Records come from zone text or from a dict. The server listens on UDP and
TCP at 127.0.0.1 on an ephemeral port, in background threads. It records
every question it receives so that tests can count lookups.

    with DnsServer({"mail.test": ["A 10.0.0.1", 'TXT "v=spf1 " "-all"']}) as dns_server:
        resolver = dns_server.resolver()
"""

import socket
import socketserver
import struct
import threading
from collections.abc import Iterable, Mapping

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.resolver
import dns.rrset
import dns.zone

from labenv.auth.resolver import make_resolver

RecordSpec = Mapping[str, Iterable[str]] | str

# Negative answers carry this SOA (RFC 2308 section 3) so that resolvers
# may cache them the way they would with a real server.
NEGATIVE_TTL = 60


def _parse_records(records: RecordSpec) -> dict[dns.name.Name, dict[int, dns.rdataset.Rdataset]]:
    """Turn zone text or ``{name: ["TYPE rdata", ...]}`` into a map of absolute names."""
    table: dict[dns.name.Name, dict[int, dns.rdataset.Rdataset]] = {}
    if isinstance(records, str):
        for rrset in _read_zone_text(records):
            rdatasets = table.setdefault(rrset.name, {})
            existing = rdatasets.get(rrset.rdtype)
            if existing is None:
                rdatasets[rrset.rdtype] = rrset.to_rdataset()
            else:
                existing.union_update(rrset)
        return table

    for owner, lines in records.items():
        name = dns.name.from_text(owner)
        for line in lines:
            type_text, _, rdata_text = line.strip().partition(" ")
            rdtype = dns.rdatatype.from_text(type_text)
            rdata = dns.rdata.from_text(
                dns.rdataclass.IN, rdtype, rdata_text.strip(), origin=dns.name.root, relativize=False
            )
            rdataset = table.setdefault(name, {}).setdefault(rdtype, dns.rdataset.Rdataset(dns.rdataclass.IN, rdtype))
            rdataset.update_ttl(300)
            rdataset.add(rdata)
    return table


def _read_zone_text(text: str) -> list[dns.rrset.RRset]:
    # dns.zone accepts an SOA only at its origin, so each $ORIGIN section is
    # read as a zone of its own: that way one text can hold every zone of a lab.
    sections: list[tuple[str, list[str]]] = [(".", [])]
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["$ORIGIN"] and len(words) > 1:
            sections.append((words[1], []))
        else:
            sections[-1][1].append(line)

    rrsets = []
    for origin, lines in sections:
        body = "\n".join(lines)
        if not body.strip():
            continue
        zone = dns.zone.from_text(
            "$TTL 300\n" + body, origin=origin, relativize=False, check_origin=False
        )
        for name, node in zone.nodes.items():
            for rdataset in node.rdatasets:
                rrset = dns.rrset.RRset(name, rdataset.rdclass, rdataset.rdtype)
                rrset.update(rdataset)
                rrsets.append(rrset)
    return rrsets


class DnsServer:
    """An authoritative name server for a fixed set of records, run in threads.

    ``servfail`` lists names answered with SERVFAIL, for temporary-error tests.
    ``queries`` holds one ``(name, type)`` pair per question, in arrival order.
    """

    def __init__(self, records: RecordSpec = "", *, servfail: Iterable[str] = ()):
        self._table = _parse_records(records)
        self._servfail = {dns.name.from_text(name) for name in servfail}
        self._lock = threading.Lock()
        self.queries: list[tuple[str, str]] = []
        self._udp: socketserver.UDPServer | None = None
        self._tcp: socketserver.TCPServer | None = None
        self._threads: list[threading.Thread] = []

    # -- records -------------------------------------------------------------

    def add(self, owner: str, line: str) -> None:
        """Add one record, ``"TYPE rdata"``, to ``owner`` while the server runs."""
        extra = _parse_records({owner: [line]})
        with self._lock:
            for name, rdatasets in extra.items():
                for rdtype, rdataset in rdatasets.items():
                    existing = self._table.setdefault(name, {}).get(rdtype)
                    if existing is None:
                        self._table[name][rdtype] = rdataset
                    else:
                        existing.union_update(rdataset)

    def count(self, name: str | None = None, rdtype: str | None = None) -> int:
        """Return how many questions matched ``name`` and ``rdtype`` (None matches any)."""
        expected_name = dns.name.from_text(name).to_text() if name else None
        with self._lock:
            return sum(
                1
                for qname, qtype in self.queries
                if (expected_name is None or qname == expected_name) and (rdtype is None or qtype == rdtype.upper())
            )

    def reset_queries(self) -> None:
        """Forget the questions received so far."""
        with self._lock:
            self.queries.clear()

    # -- answering -----------------------------------------------------------

    def _name_exists(self, qname: dns.name.Name) -> bool:
        # An empty non-terminal (a name with records only below it) exists
        # and gets NODATA, not NXDOMAIN (RFC 8020).
        return any(name == qname or name.is_subdomain(qname) for name in self._table)

    def answer(self, wire: bytes, *, udp: bool = False) -> bytes:
        """Build the wire-format response to one wire-format query.

        Over UDP a response larger than the client accepts (512 bytes, or its
        EDNS payload size) is sent empty with the TC flag, so the client
        retries over TCP (RFC 1035 section 4.2.1, RFC 6891 section 6.2.5).
        """
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        wire_response = self._fill(query, response)
        limit = max(512, query.payload) if query.edns >= 0 else 512
        if udp and len(wire_response) > limit:
            truncated = dns.message.make_response(query)
            truncated.flags |= dns.flags.AA | dns.flags.TC
            return truncated.to_wire()
        return wire_response

    def _fill(self, query: dns.message.Message, response: dns.message.Message) -> bytes:
        response.flags |= dns.flags.AA
        if not query.question:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()

        question = query.question[0]
        qname, qtype = question.name, question.rdtype
        with self._lock:
            self.queries.append((qname.to_text(), dns.rdatatype.to_text(qtype)))
            if qname in self._servfail:
                response.set_rcode(dns.rcode.SERVFAIL)
                return response.to_wire()
            rdataset = self._table.get(qname, {}).get(qtype)
            exists = self._name_exists(qname)

        if rdataset is not None:
            rrset = dns.rrset.RRset(qname, dns.rdataclass.IN, qtype)
            rrset.update(rdataset)
            response.answer.append(rrset)
        else:
            if not exists:
                response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(self._negative_soa(qname))
        # make_response copies the client's EDNS payload size as the limit;
        # render in full here, and let answer() decide about truncation.
        return response.to_wire(max_size=65535)

    def _negative_soa(self, qname: dns.name.Name) -> dns.rrset.RRset:
        zone_apex = qname.parent() if len(qname) > 2 else qname
        soa = dns.rrset.from_text(
            zone_apex, NEGATIVE_TTL, "IN", "SOA",
            f"ns.{zone_apex.to_text()} hostmaster.{zone_apex.to_text()} 1 3600 600 86400 {NEGATIVE_TTL}",
        )
        return soa

    # -- lifecycle -----------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """The ``(host, port)`` the server listens on, UDP and TCP alike."""
        if self._udp is None:
            raise RuntimeError("DnsServer is not started; use it as a context manager or call start()")
        host, port = self._udp.server_address[:2]
        return host, port

    @property
    def address_text(self) -> str:
        """The listening address as ``HOST:PORT``."""
        host, port = self.address
        return f"{host}:{port}"

    def resolver(self, timeout: float = 2.0) -> dns.resolver.Resolver:
        """Create a resolver that queries this server only."""
        return make_resolver(self.address, timeout=timeout)

    def start(self) -> "DnsServer":
        """Bind UDP and TCP on one ephemeral port and serve both in daemon threads."""
        server = self
        for _ in range(20):
            udp = socketserver.ThreadingUDPServer(("127.0.0.1", 0), _UdpHandler, bind_and_activate=True)
            port = udp.server_address[1]
            try:
                tcp = socketserver.ThreadingTCPServer(("127.0.0.1", port), _TcpHandler)
            except OSError:
                # Another process has this port open for TCP, so try another one.
                udp.server_close()
                continue
            break
        else:
            raise RuntimeError("no port on 127.0.0.1 was free for both UDP and TCP after 20 tries")
        udp.daemon_threads = tcp.daemon_threads = True
        udp.dns_server = tcp.dns_server = server  # type: ignore[attr-defined]
        self._udp, self._tcp = udp, tcp
        for listener in (udp, tcp):
            thread = threading.Thread(target=listener.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop both listeners and close their sockets."""
        for listener in (self._udp, self._tcp):
            if listener is not None:
                listener.shutdown()
                listener.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    def __enter__(self) -> "DnsServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


class _UdpHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        sock.sendto(self.server.dns_server.answer(data, udp=True), self.client_address)


class _TcpHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        # DNS over TCP prefixes each message with its two-byte length (RFC 1035 section 4.2.2).
        sock: socket.socket = self.request
        while True:
            header = _read_exact(sock, 2)
            if header is None:
                return
            (length,) = struct.unpack("!H", header)
            wire = _read_exact(sock, length)
            if wire is None:
                return
            reply = self.server.dns_server.answer(wire)
            sock.sendall(struct.pack("!H", len(reply)) + reply)


def _read_exact(sock: socket.socket, size: int) -> bytes | None:
    chunks = b""
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return chunks
