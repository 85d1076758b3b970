"""The spamd client against a real spamd started on loopback (Debian packages spamassassin and spamd)."""

import asyncio
import shutil
import socket
import subprocess
import time

import pytest

from labenv.mta import spamc

# GTUBE, the fixed test string every SpamAssassin install scores as spam.
GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
START_TIMEOUT = 60

HEADERS_ONLY_SPOOF = b"From: mmouse@disney.test\r\nSubject: This is a bogus message\r\n\r\nHi John,\r\n"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def spamd(tmp_path_factory):
    binary = shutil.which("spamd")
    if binary is None:
        pytest.skip("spamd is not installed (apt-get install spamassassin spamd)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("spamd")
    # -L keeps to local tests, because network tests would wait for DNS
    # timeouts; -x skips per-user configuration.
    command = [
        binary, "-L", "-x", "--listen", f"127.0.0.1:{port}", "--allowed-ips", "127.0.0.1",
        "-s", "stderr", "-m", "1", "--pidfile", str(workdir / "spamd.pid"),
    ]
    log = open(workdir / "spamd.log", "wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT
    while not asyncio.run(spamc.ping("127.0.0.1", port, 1)):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            log.close()
            pytest.fail(f"spamd did not answer PING within {START_TIMEOUT} s: {(workdir / 'spamd.log').read_text()[-2000:]}")
        time.sleep(0.2)
    yield port
    process.terminate()
    process.wait(timeout=30)
    log.close()


def check(port, message):
    return asyncio.run(spamc.check(message, "john", host="127.0.0.1", port=port, timeout=60))


def status_header(result):
    statuses = [header for header in result.headers if header.startswith(b"X-Spam-Status:")]
    assert len(statuses) == 1
    return statuses[0].decode()


def test_spoof_real_score(spamd):
    result = check(spamd, HEADERS_ONLY_SPOOF)
    assert result.scanned is True
    assert result.reason is None
    assert result.is_spam is False
    assert result.threshold == 5.0
    status = status_header(result)
    assert status.startswith("X-Spam-Status: No, score=")
    assert f"score={result.score:.1f} " in status
    assert "MISSING_DATE" in status
    assert "MISSING_MID" in status
    assert all(header.endswith(b"\r\n") for header in result.headers)
    assert any(header.startswith(b"X-Spam-Checker-Version: SpamAssassin ") for header in result.headers)
    level = next(header for header in result.headers if header.startswith(b"X-Spam-Level:"))
    assert level.count(b"*") == max(0, int(result.score))


def test_gtube_is_spam(spamd):
    message = b"Subject: gtube\nFrom: a@b.test\n\n" + GTUBE + b"\n"
    result = check(spamd, message)
    assert result.scanned is True
    assert result.is_spam is True
    assert result.score >= 1000
    status = status_header(result)
    assert status.startswith("X-Spam-Status: Yes, score=")
    assert "GTUBE" in status
    assert b"X-Spam-Flag: YES\r\n" in result.headers


def test_real_ping(spamd):
    assert asyncio.run(spamc.ping("127.0.0.1", spamd, 5)) is True
