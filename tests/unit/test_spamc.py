"""The spamd client against scripted SPAMC servers in threads."""

import asyncio
import socket
import threading

import pytest

from labenv.mta import spamc

MESSAGE = b"From: a@b.test\r\nSubject: hi\r\nX-Spam-Flag: YES\r\n\r\nbody\r\n"

HEADERS_BODY = (
    b"X-Spam-Checker-Version: SpamAssassin 4.0.1 (2024-03-25) on spamd\r\n"
    b"X-Spam-Level: \r\n"
    b"X-Spam-Status: No, score=-0.3 required=5.0 tests=MISSING_DATE,\r\n"
    b"\tMISSING_MID autolearn=no version=4.0.1\r\n"
    b"From: a@b.test\r\n"
    b"Subject: hi\r\n"
    b"X-Spam-Flag: YES\r\n"
    b"\r\n"
)


class ScriptedSpamd:
    """A TCP server in a thread that reads one request and runs ``script(conn, request)``."""

    def __init__(self, script):
        self.script = script
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.requests = []
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                request = b""
                conn.settimeout(5)
                try:
                    while chunk := conn.recv(65536):
                        request += chunk
                except OSError:
                    pass
                self.requests.append(request)
                self.script(self, conn, request)

    def close(self):
        self.release.set()
        # On Linux, shutdown() wakes a thread blocked in accept(); close() alone does not.
        self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()
        self.thread.join(timeout=5)


@pytest.fixture
def spamd_with():
    servers = []

    def start(script):
        server = ScriptedSpamd(script)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def reply_with(data):
    def script(server, conn, request):
        conn.sendall(data)

    return script


def ok_reply(spam_line, body=HEADERS_BODY):
    return b"SPAMD/1.1 0 EX_OK\r\nContent-length: %d\r\n%s\r\n\r\n%s" % (len(body), spam_line, body)


def run(coroutine):
    return asyncio.run(coroutine)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_request_format(spamd_with):
    server = spamd_with(reply_with(ok_reply(b"Spam: False ; -0.3 / 5.0")))
    run(spamc.check(MESSAGE, "john", host="127.0.0.1", port=server.port, timeout=5))
    assert server.requests == [
        b"HEADERS SPAMC/1.5\r\nContent-length: %d\r\nUser: john\r\n\r\n" % len(MESSAGE) + MESSAGE
    ]


def test_clean_reply_parsed(spamd_with):
    server = spamd_with(reply_with(ok_reply(b"Spam: False ; -0.3 / 5.0")))
    result = run(spamc.check(MESSAGE, "john", host="127.0.0.1", port=server.port, timeout=5))
    assert result.scanned is True
    assert result.is_spam is False
    assert result.score == -0.3
    assert result.threshold == 5.0
    assert result.reason is None
    # The sender's own X-Spam-Flag is not counted as one of spamd's fields.
    assert result.headers == [
        b"X-Spam-Checker-Version: SpamAssassin 4.0.1 (2024-03-25) on spamd\r\n",
        b"X-Spam-Level: \r\n",
        b"X-Spam-Status: No, score=-0.3 required=5.0 tests=MISSING_DATE,\r\n\tMISSING_MID autolearn=no version=4.0.1\r\n",
    ]


def test_spam_reply_parsed(spamd_with):
    body = b"X-Spam-Flag: YES\nX-Spam-Level: ************\nX-Spam-Status: Yes, score=12.5\n\tversion=4.0.1\nSubject: x\n\n"
    server = spamd_with(reply_with(ok_reply(b"Spam: True ; 12.5 / 5.0", body)))
    result = run(spamc.check(b"Subject: x\n\nbody\n", "john", host="127.0.0.1", port=server.port, timeout=5))
    assert result.is_spam is True
    assert result.score == 12.5
    assert result.headers == [
        b"X-Spam-Flag: YES\r\n",
        b"X-Spam-Level: ************\r\n",
        b"X-Spam-Status: Yes, score=12.5\r\n\tversion=4.0.1\r\n",
    ]


def test_down_not_scanned():
    result = run(spamc.check(MESSAGE, "john", host="127.0.0.1", port=free_port(), timeout=5))
    assert result.scanned is False
    assert result.score is None
    assert result.is_spam is None
    assert result.reason.startswith("spamd unreachable: 127.0.0.1:")


def test_slow_times_out(spamd_with):
    server = spamd_with(lambda server, conn, request: server.release.wait(10))
    result = run(spamc.check(MESSAGE, "john", host="127.0.0.1", port=server.port, timeout=0.5))
    assert result.scanned is False
    assert result.score is None
    assert result.reason.startswith("timed out after 0.5 s")


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (b"HTTP/1.0 200 OK\r\n\r\n", "invalid status line"),
        (b"SPAMD/1.0 76 Bad header line: (Content-length mismatch)\r\n\r\n", "spamd returned SPAMD/1.0 76"),
        (b"SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\n\r\n", "missing or invalid Spam header"),
        (b"SPAMD/1.1 0 EX_OK\r\nSpam: maybe\r\n\r\n", "missing or invalid Spam header"),
        (b"SPAMD/1.1 0 EX_OK\r\nContent-length: 999\r\nSpam: False ; 1.0 / 5.0\r\n\r\nX: y\r\n\r\n", "Content-length"),
        (b"SPAMD/1.1 0 EX_OK\r\nSpam: False ; 1.0 / 5.0\r\n", "no blank line"),
        (b"", "no blank line"),
    ],
)
def test_garbage_is_protocol_error(spamd_with, reply, expected):
    server = spamd_with(reply_with(reply))
    result = run(spamc.check(MESSAGE, "john", host="127.0.0.1", port=server.port, timeout=5))
    assert result.scanned is False
    assert result.score is None
    assert result.reason.startswith("protocol error: ")
    assert expected in result.reason


def test_endless_reply_is_protocol_error(spamd_with):
    def flood(server, conn, request):
        try:
            conn.sendall(b"SPAMD/1.1 0 EX_OK\r\n" + b"X" * (2 * spamc.REPLY_MARGIN))
        except OSError:
            pass

    server = spamd_with(flood)
    result = run(spamc.check(MESSAGE, "john", host="127.0.0.1", port=server.port, timeout=5))
    assert result.scanned is False
    assert "reply longer than" in result.reason


def test_oversize_not_sent(spamd_with):
    server = spamd_with(reply_with(ok_reply(b"Spam: False ; 0.0 / 5.0")))
    big = b"Subject: big\r\n\r\n" + b"x" * 2000
    result = run(spamc.check(big, "john", host="127.0.0.1", port=server.port, timeout=5, max_size=1000))
    assert result.scanned is False
    assert result.score is None
    assert result.reason == f"message over 1000 bytes ({len(big)} bytes)"
    assert server.requests == []


def test_ping_pong(spamd_with):
    server = spamd_with(reply_with(b"SPAMD/1.5 0 PONG\r\n"))
    assert run(spamc.ping("127.0.0.1", server.port, 5)) is True
    assert server.requests == [b"PING SPAMC/1.5\r\n\r\n"]


def test_ping_failures(spamd_with):
    garbage = spamd_with(reply_with(b"220 smtp ready\r\n"))
    assert run(spamc.ping("127.0.0.1", garbage.port, 5)) is False
    assert run(spamc.ping("127.0.0.1", free_port(), 5)) is False
