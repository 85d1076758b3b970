"""Send RFC 3164 syslog lines to the local socket, UDP or TCP, without ever raising into the MTA.

A target is ``/dev/log`` (or any unix socket path), ``udp:HOST:PORT``,
``tcp:HOST:PORT`` or ``none``. Lines read ``<PRI>Mmm dd hh:mm:ss HOST TAG[pid]: MSG``
with PRI = facility * 8 + severity, so mail.info is 22.
"""

from __future__ import annotations

import atexit
import errno
import logging
import os
import queue
import socket
import threading
import time
from datetime import datetime

from labenv.errors import ConfigError

logger = logging.getLogger(__name__)

# Severities (RFC 5424 section 6.2.1).
EMERG, ALERT, CRIT, ERR, WARNING, NOTICE, INFO, DEBUG = range(8)

FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6,
    "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
    **{f"local{number}": 16 + number for number in range(8)},
}

# Receivers drop or cut longer lines. RFC 5424 section 6.1 asks that receivers SHOULD
# accept at least 2048 bytes, and rsyslog's default maxMessageSize is 8 KB.
DEFAULT_MAX_DATAGRAM = 2048
DEFAULT_MAX_STREAM = 8192

CONTINUATION_MARK = "..."
WARNING_INTERVAL = 60.0
CONNECT_TIMEOUT = 2.0
RECONNECT_INTERVAL = 5.0
# Lines kept while the receiver is slow; beyond this they are dropped and counted.
MAX_PENDING_LINES = 10000

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class SyslogTargetError(ConfigError):
    """A syslog target or facility setting is invalid."""


def format_timestamp(when: datetime) -> str:
    """Format ``Mmm dd hh:mm:ss`` with English month names and a space-padded day (RFC 3164 section 4.1.2)."""
    return f"{MONTHS[when.month - 1]} {when.day:2d} {when:%H:%M:%S}"


class _Transport:
    """Delivery of already formatted lines; ``deliver`` raises OSError when the target is down."""

    max_line = DEFAULT_MAX_DATAGRAM
    discards = False
    # glibc's syslog() leaves the host name out on the local socket because
    # rsyslog's imuxsock adds the local host name itself.
    sends_hostname = True

    def deliver(self, line: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release the socket; the next ``deliver`` opens a new one."""


class _SocketTransport(_Transport):
    _sock: socket.socket | None = None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class _NullTransport(_Transport):
    discards = True

    def deliver(self, line: bytes) -> None:
        return None


class _UnixTransport(_SocketTransport):
    """A unix socket: datagram first, stream when the socket is a stream socket."""

    sends_hostname = False

    def __init__(self, path: str) -> None:
        self.path = path
        self._sock: socket.socket | None = None
        self._stream = False

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.connect(self.path)
            self._stream = False
            return sock
        except OSError as error:
            sock.close()
            if error.errno != errno.EPROTOTYPE:
                raise
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self._stream = True
        return sock

    def deliver(self, line: bytes) -> None:
        if self._sock is None:
            self._sock = self._connect()
        try:
            # On a stream socket each line ends with NUL, as glibc's syslog() sends it.
            if self._stream:
                self._sock.sendall(line + b"\0")
            else:
                self._sock.send(line)
        except OSError:
            self.close()
            raise


class _UdpTransport(_SocketTransport):
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._sock: socket.socket | None = None
        self._address: tuple | None = None

    def deliver(self, line: bytes) -> None:
        if self._sock is None:
            # Resolve on first use so that a lab host whose DNS is not up yet
            # counts as a dead target instead of failing the MTA's start.
            family, _, _, _, address = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
            self._sock = socket.socket(family, socket.SOCK_DGRAM)
            self._address = address
        try:
            self._sock.sendto(line, self._address)
        except OSError:
            self.close()
            raise


class _TcpTransport(_SocketTransport):
    """TCP with octet-counting framing (RFC 6587 section 3.4.1), reconnecting after a failure."""

    max_line = DEFAULT_MAX_STREAM

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._sock: socket.socket | None = None
        self._next_attempt = 0.0

    def _connect(self) -> socket.socket:
        # A dead loghost must not stall the MTA on every line, so connection
        # attempts are spaced RECONNECT_INTERVAL apart and lines in between are dropped.
        now = time.monotonic()
        if now < self._next_attempt:
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"waiting to reconnect to {self.host}:{self.port}")
        try:
            sock = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT)
        except OSError:
            self._next_attempt = now + RECONNECT_INTERVAL
            raise
        return sock

    def deliver(self, line: bytes) -> None:
        frame = str(len(line)).encode("ascii") + b" " + line
        if self._sock is None:
            self._sock = self._connect()
        try:
            self._sock.sendall(frame)
        except OSError:
            # The peer may have closed an idle connection; one fresh connection gets one retry.
            self.close()
            self._sock = self._connect()
            self._sock.sendall(frame)


def _parse_host_port(target: str, rest: str) -> tuple[str, int]:
    host, separator, port_text = rest.rpartition(":")
    host = host.strip("[]")
    if not separator or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise SyslogTargetError(
            f"invalid syslog target {target!r}: expected udp:HOST:PORT or tcp:HOST:PORT with a port 1-65535"
        )
    return host, int(port_text)


def _open_transport(target: str) -> _Transport:
    if target == "none":
        return _NullTransport()
    if target.startswith("udp:"):
        return _UdpTransport(*_parse_host_port(target, target[4:]))
    if target.startswith("tcp:"):
        return _TcpTransport(*_parse_host_port(target, target[4:]))
    if target.startswith("/"):
        return _UnixTransport(target)
    raise SyslogTargetError(
        f"invalid syslog target {target!r}: use a unix socket path such as /dev/log, "
        "udp:HOST:PORT, tcp:HOST:PORT or none"
    )


def split_message(message: bytes, room: int) -> list[bytes]:
    """Split a UTF-8 message into pieces of at most ``room`` bytes, marking continuations with ``...``."""
    if len(message) <= room:
        return [message]
    mark = CONTINUATION_MARK.encode("ascii")
    room = max(room, len(mark) * 2 + 4)
    pieces = []
    rest = message
    while rest:
        limit = room if not pieces else room - len(mark)
        if len(rest) <= limit:
            pieces.append(rest)
            break
        cut = limit - len(mark)
        # Cut before a UTF-8 continuation byte (10xxxxxx) to keep characters whole.
        while cut > 0 and rest[cut] & 0xC0 == 0x80:
            cut -= 1
        if cut == 0:
            cut = limit - len(mark)
        pieces.append(rest[:cut] + mark)
        rest = rest[cut:]
    return [pieces[0]] + [mark + piece for piece in pieces[1:]]


class SyslogSink:
    """One syslog destination with a fixed facility, tag and host name.

    ``send`` only formats the line and queues it, and a worker thread writes
    it, so a slow or dead receiver never blocks the caller's event loop. The
    worker catches every OSError from the target, counts the dropped line and
    logs a WARNING at most once a minute. ``close`` writes what is queued.
    """

    def __init__(
        self,
        transport: _Transport,
        tag: str,
        pid: int | None,
        facility: int,
        hostname: str,
        max_line: int,
    ) -> None:
        self._transport = transport
        self.tag = tag
        self.pid = pid
        self.facility = facility
        self.hostname = hostname
        self.max_line = max_line
        self._pending: queue.Queue[bytes | threading.Event | None] = queue.Queue(MAX_PENDING_LINES)
        self._worker: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        self._stats_lock = threading.Lock()
        self._dropped = 0
        self._last_warning = float("-inf")

    def format_header(self, severity: int, when: datetime) -> bytes:
        """Build ``<PRI>Mmm dd hh:mm:ss [HOST ]TAG[pid]: `` for one line."""
        pid = os.getpid() if self.pid is None else self.pid
        host = f"{self.hostname} " if self._transport.sends_hostname else ""
        header = f"<{self.facility * 8 + severity}>{format_timestamp(when)} {host}{self.tag}[{pid}]: "
        return header.encode("utf-8")

    def send(self, severity: int, message: str, *, when: datetime | None = None) -> None:
        """Queue ``message`` at ``severity`` (0-7), split into several lines when it is longer than ``max_line``."""
        if not 0 <= severity <= 7:
            raise ValueError(f"syslog severity {severity} is outside 0-7")
        if self._closed or self._transport.discards:
            return
        header = self.format_header(severity, when or datetime.now())
        pieces = split_message(message.encode("utf-8", "replace"), self.max_line - len(header))
        self._ensure_worker()
        for piece in pieces:
            try:
                self._pending.put_nowait(header + piece)
            except queue.Full:
                self._count_drop(f"{MAX_PENDING_LINES} lines are waiting for the receiver")

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until the lines queued so far are written or dropped; return False on timeout."""
        if self._worker is None:
            return True
        marker = threading.Event()
        try:
            self._pending.put(marker, timeout=timeout)
        except queue.Full:
            return False
        return marker.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Write the queued lines (waiting at most ``timeout`` seconds), stop the worker and close the socket."""
        if self._closed:
            return
        self._closed = True
        if self._worker is not None:
            self.flush(timeout)
            try:
                self._pending.put(None, timeout=timeout)
            except queue.Full:
                logger.warning("syslog worker did not drain its queue within %s s; closing anyway", timeout)
            self._worker.join(timeout)
        self._transport.close()

    def _ensure_worker(self) -> None:
        with self._start_lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name=f"syslog-{self.tag}", daemon=True)
                self._worker.start()
                # Lines queued when the process ends still reach the receiver.
                atexit.register(self.close)

    def _run(self) -> None:
        while True:
            item = self._pending.get()
            if item is None:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            self._deliver(item)

    def _deliver(self, line: bytes) -> None:
        try:
            self._transport.deliver(line)
        except OSError as error:
            self._count_drop(str(error))
            return
        with self._stats_lock:
            dropped, self._dropped = self._dropped, 0
        if dropped:
            logger.warning("syslog target is back after %d dropped lines", dropped)

    def _count_drop(self, reason: str) -> None:
        """Count one dropped line and log a WARNING unless one was logged in the last minute."""
        with self._stats_lock:
            self._dropped += 1
            now = time.monotonic()
            if now - self._last_warning < WARNING_INTERVAL:
                return
            self._last_warning = now
        logger.warning(
            "syslog line dropped (%d so far): %s. Check that the syslog receiver "
            "is up, because lines are dropped until it is",
            self._dropped,
            reason,
        )


def open_syslog(
    target: str,
    tag: str,
    pid: int | None = None,
    facility: str = "mail",
    *,
    hostname: str | None = None,
    max_line: int | None = None,
) -> SyslogSink:
    """Open a sink for ``target``; raise SyslogTargetError for a malformed target or unknown facility.

    ``pid`` None means the current process id at each line. ``hostname``
    defaults to the short host name, as RFC 3164 section 4.1.2 requires. ``max_line``
    is the receiver's line limit in bytes, header included: 2048 for UDP and
    unix sockets and 8192 for TCP unless given. Opening never connects, so a
    dead target is only noticed, and logged, when a line is sent.
    """
    if facility not in FACILITIES:
        raise SyslogTargetError(f"unknown syslog facility {facility!r}: use one of {', '.join(FACILITIES)}")
    transport = _open_transport(target)
    if hostname is None:
        hostname = socket.gethostname().split(".")[0]
    return SyslogSink(
        transport,
        tag=tag,
        pid=pid,
        facility=FACILITIES[facility],
        hostname=hostname,
        max_line=max_line or transport.max_line,
    )


# Python logging levels to syslog severities.
_LEVEL_SEVERITIES = ((logging.CRITICAL, CRIT), (logging.ERROR, ERR), (logging.WARNING, WARNING), (logging.INFO, INFO))


class SyslogHandler(logging.Handler):
    """A logging handler that writes records to a SyslogSink."""

    def __init__(self, sink: SyslogSink, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        # The sink reports its own failures through this module's logger, and
        # sending those records to the dead sink again would loop.
        if record.name == __name__:
            return
        severity = next((sev for level, sev in _LEVEL_SEVERITIES if record.levelno >= level), DEBUG)
        try:
            self.sink.send(severity, self.format(record))
        except Exception:
            self.handleError(record)
