"""Syslog lines sent to real sockets: UDP, TCP, unix datagram and stream, and a real rsyslogd."""

import logging
import shutil
import socket
import subprocess
import threading
import time
from datetime import datetime

import pytest

from labenv.mta import syslogger

WHEN = datetime(2005, 1, 24, 0, 10, 51)
HANDOUT_MESSAGE = "j0O893wM016306: to=<john@alcyone.csustan.edu>, delay=00:01:03, stat=Sent"


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def udp_listener():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock
    sock.close()


class TcpCollector:
    """A TCP server in a thread that stores every byte it receives, per connection."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = []
        self.received = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections.append(conn)
            index = len(self.received)
            self.received.append(b"")
            threading.Thread(target=self._read, args=(conn, index), daemon=True).start()

    def _read(self, conn, index):
        try:
            while chunk := conn.recv(65536):
                self.received[index] += chunk
        except OSError:
            return

    def wait_for(self, size, timeout=5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(len(data) for data in self.received) >= size:
                return b"".join(self.received)
            time.sleep(0.01)
        return b"".join(self.received)

    def close(self):
        self.server.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture
def tcp_collector():
    collector = TcpCollector()
    yield collector
    collector.close()


def test_timestamp_pads_day():
    assert syslogger.format_timestamp(datetime(2026, 12, 4, 9, 5, 7)) == "Dec  4 09:05:07"
    assert syslogger.format_timestamp(WHEN) == "Jan 24 00:10:51"


def test_udp_exact_bytes(udp_listener):
    port = udp_listener.getsockname()[1]
    sink = syslogger.open_syslog(f"udp:127.0.0.1:{port}", "sendmail", pid=16309, hostname="alcyone")
    sink.send(syslogger.INFO, HANDOUT_MESSAGE, when=WHEN)
    data, _ = udp_listener.recvfrom(65536)
    sink.close()
    assert data == b"<22>Jan 24 00:10:51 alcyone sendmail[16309]: " + HANDOUT_MESSAGE.encode()


def test_priority_facility_severity(udp_listener):
    port = udp_listener.getsockname()[1]
    sink = syslogger.open_syslog(f"udp:127.0.0.1:{port}", "t", pid=1, facility="local3", hostname="h")
    sink.send(syslogger.ERR, "x", when=WHEN)
    data, _ = udp_listener.recvfrom(65536)
    sink.close()
    assert data.startswith(b"<155>")


def test_tcp_octet_counting(tcp_collector):
    sink = syslogger.open_syslog(f"tcp:127.0.0.1:{tcp_collector.port}", "labenv-mta", pid=7, hostname="regulus")
    sink.send(syslogger.INFO, "first", when=WHEN)
    sink.send(syslogger.NOTICE, "second line\nwith a newline", when=WHEN)
    first = b"<22>Jan 24 00:10:51 regulus labenv-mta[7]: first"
    second = b"<21>Jan 24 00:10:51 regulus labenv-mta[7]: second line\nwith a newline"
    expected = b"%d %s%d %s" % (len(first), first, len(second), second)
    received = tcp_collector.wait_for(len(expected))
    sink.close()
    assert received == expected


def test_tcp_reconnects_after_close(tcp_collector):
    sink = syslogger.open_syslog(f"tcp:127.0.0.1:{tcp_collector.port}", "t", pid=1, hostname="h")
    sink.send(syslogger.INFO, "before", when=WHEN)
    tcp_collector.wait_for(1)
    # After the peer closes, the kernel may accept one more write before it
    # reports the reset. The loop keeps sending until a new connection shows up.
    tcp_collector.connections[0].shutdown(socket.SHUT_RDWR)
    tcp_collector.connections[0].close()
    for _ in range(50):
        sink.send(syslogger.INFO, "after", when=WHEN)
        if len(tcp_collector.connections) > 1:
            break
        time.sleep(0.05)
    sink.close()
    assert len(tcp_collector.connections) >= 2
    assert tcp_collector.wait_for(1).endswith(b"h t[1]: after")


def test_unix_datagram_omits_hostname(tmp_path):
    path = str(tmp_path / "log")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(5)
    sink = syslogger.open_syslog(path, "sendmail", pid=16306, hostname="alcyone")
    sink.send(syslogger.INFO, "hello", when=WHEN)
    data = server.recv(65536)
    sink.close()
    server.close()
    assert data == b"<22>Jan 24 00:10:51 sendmail[16306]: hello"


def test_unix_stream_fallback(tmp_path):
    path = str(tmp_path / "log")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    server.settimeout(5)
    sink = syslogger.open_syslog(path, "tag", pid=3)
    sink.send(syslogger.WARNING, "one", when=WHEN)
    sink.send(syslogger.INFO, "two", when=WHEN)
    conn, _ = server.accept()
    conn.settimeout(5)
    expected = b"<20>Jan 24 00:10:51 tag[3]: one\0<22>Jan 24 00:10:51 tag[3]: two\0"
    data = b""
    while len(data) < len(expected):
        data += conn.recv(65536)
    sink.close()
    conn.close()
    server.close()
    assert data == expected


def test_oversized_line_split(udp_listener):
    port = udp_listener.getsockname()[1]
    sink = syslogger.open_syslog(f"udp:127.0.0.1:{port}", "t", pid=1, hostname="h", max_line=100)
    message = "é" + "x" * 250 + "end"
    sink.send(syslogger.INFO, message, when=WHEN)
    datagrams = []
    udp_listener.settimeout(0.5)
    try:
        while True:
            datagrams.append(udp_listener.recvfrom(65536)[0])
    except socket.timeout:
        pass
    sink.close()
    header = b"<22>Jan 24 00:10:51 h t[1]: "
    assert len(datagrams) == 4
    assert all(len(datagram) <= 100 for datagram in datagrams)
    assert all(datagram.startswith(header) for datagram in datagrams)
    pieces = [datagram[len(header):] for datagram in datagrams]
    assert pieces[0].endswith(b"...")
    assert pieces[1].startswith(b"...")
    assert pieces[-1].endswith(b"end")
    rejoined = pieces[0][:-3] + b"".join(piece[3:-3] for piece in pieces[1:-1]) + pieces[-1][3:]
    assert rejoined.decode("utf-8") == message


def test_split_keeps_utf8_whole():
    pieces = syslogger.split_message(("ä" * 40).encode(), 21)
    assert len(pieces) > 1
    for piece in pieces:
        piece.decode("utf-8")
        assert len(piece) <= 21


def test_dead_tcp_target_does_not_raise(caplog):
    port = free_port()
    sink = syslogger.open_syslog(f"tcp:127.0.0.1:{port}", "t", pid=1, hostname="h")
    with caplog.at_level(logging.WARNING, logger="labenv.mta.syslogger"):
        for _ in range(5):
            sink.send(syslogger.INFO, "nobody listens")
        assert sink.flush()
    sink.close()
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "dropped" in warnings[0].getMessage()


def test_stalled_receiver_does_not_block(monkeypatch, caplog):
    monkeypatch.setattr(syslogger, "MAX_PENDING_LINES", 10)
    server = socket.create_server(("127.0.0.1", 0))
    sink = syslogger.open_syslog(f"tcp:127.0.0.1:{server.getsockname()[1]}", "t", pid=1, hostname="h")
    # The server accepts (through the backlog) but never reads, so the
    # socket buffers fill, the worker blocks and later lines are dropped.
    with caplog.at_level(logging.WARNING, logger="labenv.mta.syslogger"):
        for _ in range(2000):
            sink.send(syslogger.INFO, "x" * 8000)
    conn, _ = server.accept()
    conn.close()
    server.close()
    sink.close(timeout=1)
    assert any("lines are waiting for the receiver" in record.getMessage() for record in caplog.records)


def test_dead_unix_target_does_not_raise(tmp_path, caplog):
    sink = syslogger.open_syslog(str(tmp_path / "missing"), "t")
    with caplog.at_level(logging.WARNING, logger="labenv.mta.syslogger"):
        sink.send(syslogger.INFO, "nobody listens")
        sink.send(syslogger.INFO, "still nobody")
        assert sink.flush()
    sink.close()
    assert len(caplog.records) == 1


def test_dead_udp_host_does_not_raise(caplog):
    sink = syslogger.open_syslog("udp:no-such-host.invalid:514", "t")
    with caplog.at_level(logging.WARNING, logger="labenv.mta.syslogger"):
        sink.send(syslogger.INFO, "nobody listens")
        assert sink.flush()
    sink.close()
    assert len(caplog.records) == 1


def test_none_target_discards():
    sink = syslogger.open_syslog("none", "t")
    sink.send(syslogger.INFO, "discarded")
    sink.close()


@pytest.mark.parametrize("target", ["udp:host", "tcp::514", "udp:h:0", "udp:h:99999", "syslog.example", ""])
def test_invalid_target_rejected(target):
    with pytest.raises(syslogger.SyslogTargetError, match="invalid syslog target"):
        syslogger.open_syslog(target, "t")


def test_unknown_facility_rejected():
    with pytest.raises(syslogger.SyslogTargetError, match="unknown syslog facility 'email'"):
        syslogger.open_syslog("none", "t", facility="email")


def test_invalid_severity_raises():
    sink = syslogger.open_syslog("none", "t")
    with pytest.raises(ValueError, match="severity 8"):
        sink.send(8, "x")


def test_logging_handler_maps_levels(udp_listener):
    port = udp_listener.getsockname()[1]
    sink = syslogger.open_syslog(f"udp:127.0.0.1:{port}", "t", pid=1, hostname="h")
    handler = syslogger.SyslogHandler(sink)
    test_logger = logging.getLogger("labenv.test.syslog")
    test_logger.addHandler(handler)
    try:
        test_logger.error("disk %s full", "/var")
        test_logger.warning("w")
    finally:
        test_logger.removeHandler(handler)
        sink.close()
    first = udp_listener.recvfrom(65536)[0]
    second = udp_listener.recvfrom(65536)[0]
    assert first.startswith(b"<19>")
    assert first.endswith(b"h t[1]: disk /var full")
    assert second.startswith(b"<20>")


# imuxsock normally stamps local-socket lines with the time of reception. The
# test turns that off so that whole lines, timestamp included, can be compared.
RSYSLOG_CONFIG = """\
global(workDirectory="{workdir}" localHostname="labhost")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{unix_socket}" IgnoreTimestamp="off" UseSysTimeStamp="off")
module(load="imudp")
module(load="imtcp")
input(type="imudp" address="127.0.0.1" port="{udp_port}")
input(type="imtcp" address="127.0.0.1" port="{tcp_port}")
mail.* action(type="omfile" file="{logfile}" template="RSYSLOG_TraditionalFileFormat")
"""


@pytest.fixture
def rsyslogd(tmp_path):
    binary = shutil.which("rsyslogd")
    if binary is None:
        pytest.skip("rsyslogd is not installed (apt-get install rsyslog)")
    udp_port, tcp_port = free_port(socket.SOCK_DGRAM), free_port()
    logfile = tmp_path / "mail.log"
    config = tmp_path / "rsyslog.conf"
    config.write_text(
        RSYSLOG_CONFIG.format(
            workdir=tmp_path, unix_socket=tmp_path / "log", udp_port=udp_port, tcp_port=tcp_port, logfile=logfile
        )
    )
    process = subprocess.Popen(
        [binary, "-n", "-f", str(config), "-i", str(tmp_path / "rsyslogd.pid")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", tcp_port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    yield udp_port, tcp_port, logfile, tmp_path / "log"
    process.terminate()
    output, _ = process.communicate(timeout=10)
    assert process.returncode == 0, output.decode(errors="replace")


def read_lines(path, count, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            lines = path.read_text().splitlines()
            if len(lines) >= count:
                return lines
        time.sleep(0.05)
    return path.read_text().splitlines() if path.exists() else []


def test_rsyslogd_traditional_format(rsyslogd):
    udp_port, tcp_port, logfile, _ = rsyslogd
    udp_sink = syslogger.open_syslog(f"udp:127.0.0.1:{udp_port}", "sendmail", pid=16306, hostname="alcyone")
    tcp_sink = syslogger.open_syslog(f"tcp:127.0.0.1:{tcp_port}", "sendmail", pid=16309, hostname="alcyone")
    udp_sink.send(syslogger.INFO, "j0O893wM016306: from=<mmouse@disney.com>, size=93", when=WHEN)
    tcp_sink.send(syslogger.INFO, HANDOUT_MESSAGE, when=WHEN)
    tcp_sink.send(syslogger.INFO, "second over the same connection", when=WHEN)
    lines = read_lines(logfile, 3)
    udp_sink.close()
    tcp_sink.close()
    assert "Jan 24 00:10:51 alcyone sendmail[16306]: j0O893wM016306: from=<mmouse@disney.com>, size=93" in lines
    assert f"Jan 24 00:10:51 alcyone sendmail[16309]: {HANDOUT_MESSAGE}" in lines
    assert "Jan 24 00:10:51 alcyone sendmail[16309]: second over the same connection" in lines


def test_rsyslogd_local_socket(rsyslogd):
    _, _, logfile, unix_socket = rsyslogd
    sink = syslogger.open_syslog(str(unix_socket), "labenv-mta", pid=42, hostname="ignored")
    sink.send(syslogger.INFO, "over the local socket", when=WHEN)
    lines = read_lines(logfile, 1)
    sink.close()
    # rsyslog's imuxsock puts in the local host name itself.
    assert lines == ["Jan 24 00:10:51 labhost labenv-mta[42]: over the local socket"]
