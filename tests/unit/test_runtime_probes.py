"""Readiness probe commands, run on this machine against real TCP servers in threads."""

from __future__ import annotations

import socket
import socketserver
import subprocess
import threading

import pytest

from labenv.runtime.readiness import tcp_probe


class _Handler(socketserver.StreamRequestHandler):
    def handle(self):
        server = self.server
        if server.expected_request:
            server.received.append(self.rfile.read(len(server.expected_request)))
        self.wfile.write(server.reply)
        self.wfile.flush()
        server.received.append(self.rfile.readline())


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, reply: bytes, expected_request: bytes = b""):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.reply = reply
        self.expected_request = expected_request
        self.received: list[bytes] = []


@pytest.fixture
def serve():
    servers = []

    def start(reply: bytes, expected_request: bytes = b"") -> _Server:
        server = _Server(reply, expected_request)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _run(probe) -> int:
    return subprocess.run(probe.command, capture_output=True, timeout=10).returncode


def _port(server: _Server) -> int:
    return server.server_address[1]


def test_probe_banner_matches(serve):
    server = serve(b"220 alcyone.campus.test ESMTP labenv-mta\r\n")
    probe = tcp_probe("SMTP", "127.0.0.1", _port(server), "^220 ", farewell=r"QUIT\r\n")
    assert _run(probe) == 0
    assert server.received == [b"QUIT\r\n"]


def test_probe_banner_mismatch(serve):
    server = serve(b"554 5.3.2 not accepting mail\r\n")
    probe = tcp_probe("SMTP", "127.0.0.1", _port(server), "^220 ")
    assert _run(probe) != 0


def test_probe_request_before_reply(serve):
    server = serve(b"SPAMD/1.5 0 PONG\r\n", expected_request=b"PING SPAMC/1.5\r\n\r\n")
    probe = tcp_probe("spamd", "127.0.0.1", _port(server), "PONG", r"PING SPAMC/1.5\r\n\r\n")
    assert _run(probe) == 0
    assert server.received[0] == b"PING SPAMC/1.5\r\n\r\n"


def test_probe_closed_port():
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    # Nothing listens on the port any more, so the connection is refused.
    assert _run(tcp_probe("closed", "127.0.0.1", port)) != 0
