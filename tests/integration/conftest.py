"""Fixtures that run lab MTAs in threads against temporary spools and mailboxes."""

from __future__ import annotations

import mailbox
import socket
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from labenv.mta.config import HostPort, MtaConfig
from labenv.mta.server import MtaServer


class ListSink:
    """A syslog sink that keeps the lines it is given."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def send(self, severity: int, message: str) -> None:
        with self._lock:
            self.lines.append(message)

    def matching(self, text: str) -> list[str]:
        """Return the lines that contain ``text``."""
        with self._lock:
            return [line for line in self.lines if text in line]


class RunningMta:
    """An MTA started in a thread, with the paths and log it writes."""

    def __init__(self, server: MtaServer, sink: ListSink) -> None:
        self.server = server
        self.sink = sink
        self.config = server.config
        self.port = server.address[1]

    def mbox_path(self, user: str) -> Path:
        return self.config.mail_dir / user

    def messages(self, user: str) -> list[mailbox.mboxMessage]:
        """Return the messages in ``user``'s mbox, after letting queued deliveries finish."""
        self.server.wait_idle()
        path = self.mbox_path(user)
        if not path.exists():
            return []
        box = mailbox.mbox(path, create=False)
        try:
            return list(box)
        finally:
            box.close()

    def raw_mbox(self, user: str) -> bytes:
        self.server.wait_idle()
        path = self.mbox_path(user)
        return path.read_bytes() if path.exists() else b""


@pytest.fixture
def make_mta(tmp_path):
    """Start MTAs on ephemeral ports; each call takes MtaConfig fields as keyword arguments."""
    started: list[MtaServer] = []

    def start(name: str = "alcyone.test", **fields) -> RunningMta:
        base = tmp_path / name
        config = MtaConfig(
            role="final",
            hostname=name,
            listen=HostPort("127.0.0.1", 0),
            domains=(name,),
            users=("john", "jane"),
            spool=base / "spool",
            mail_dir=base / "mail",
            retry_delays=(0.2,),
            idle_timeout=30.0,
            # Client names then come only from the test's DNS server, never from this machine.
            hosts_file=None,
        )
        config = replace(config, **fields)
        config.mail_dir.mkdir(parents=True, exist_ok=True)
        sink = ListSink()
        server = MtaServer(config, sink=sink)
        server.start()
        started.append(server)
        return RunningMta(server, sink)

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def mta(make_mta) -> RunningMta:
    """One final-delivery MTA for alcyone.test with users john and jane."""
    return make_mta()


class RawClient:
    """A line-level SMTP client on a plain socket, for dialogues smtplib would not send."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        self.banner = self.reply()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> str:
        """Read one (possibly multi-line) reply; return it with lines joined by newlines."""
        lines = []
        while True:
            raw = self.file.readline()
            if not raw:
                raise ConnectionError("server closed the connection; replies so far: %r" % lines)
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            lines.append(line)
            if line[3:4] != "-":
                return "\n".join(lines)

    def command(self, line: bytes | str) -> str:
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.reply()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def raw_client():
    """Open RawClient connections that are closed after the test."""
    clients: list[RawClient] = []

    def connect(port: int, timeout: float = 10.0) -> RawClient:
        client = RawClient(port, timeout)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()


@pytest.fixture
def unused_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
