"""Crash safety: an MTA killed with SIGKILL after its 250 replies delivers everything once after a restart."""

from __future__ import annotations

import mailbox
import signal
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.processes import start_mta_process


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class MtaProcess:
    """``labenv mta serve`` in a child process."""

    def __init__(self, base: Path) -> None:
        self.spool = base / "spool"
        self.mail_dir = base / "mail"
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.log = base / "mta.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [
            sys.executable, "-m", "labenv", "mta", "serve",
            "--hostname", "alcyone.test",
            "--listen", f"127.0.0.1:{self.port}",
            "--domain", "alcyone.test",
            "--user", "john", "--user", "jane",
            "--spool", str(self.spool),
            "--mail-dir", str(self.mail_dir),
        ]
        self.process = start_mta_process(command, self.port, self.log)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(20)

    def subjects(self, user: str) -> list[str]:
        path = self.mail_dir / user
        if not path.exists():
            return []
        box = mailbox.mbox(path, create=False)
        try:
            return [message["Subject"] for message in box]
        finally:
            box.close()


@pytest.fixture
def mta_process(tmp_path):
    process = MtaProcess(tmp_path)
    yield process
    process.stop()


def _wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within %s s" % timeout)
        time.sleep(0.1)


def test_sigkill_after_accept_delivers_once(mta_process):
    mta_process.start()
    # A held dotlock keeps the deliveries waiting, so the kill lands between
    # the 250 reply and the mailbox write.
    lock = mta_process.mail_dir / "john.lock"
    lock.touch()
    with smtplib.SMTP("127.0.0.1", mta_process.port) as client:
        client.ehlo("regulus.test")
        for number in range(3):
            client.sendmail("a@b.test", ["john@alcyone.test", "jane@alcyone.test"], f"Subject: m{number}\r\n\r\nx\r\n".encode())
    # jane's mailbox is not locked, so her copies are delivered and recorded
    # as done (one .done file per message) before the kill.
    _wait_for(lambda: len(mta_process.subjects("jane")) == 3)
    _wait_for(lambda: len(list(mta_process.spool.glob("*.done"))) == 3)
    mta_process.kill()
    assert mta_process.subjects("john") == []
    lock.unlink()

    mta_process.start()
    _wait_for(lambda: len(mta_process.subjects("john")) == 3)
    _wait_for(lambda: not list(mta_process.spool.iterdir()))
    assert mta_process.stop() == 0
    assert sorted(mta_process.subjects("john")) == ["m0", "m1", "m2"]
    assert sorted(mta_process.subjects("jane")) == ["m0", "m1", "m2"]


def test_sigkill_mid_data_delivers_nothing(mta_process):
    mta_process.start()
    with socket.create_connection(("127.0.0.1", mta_process.port)) as client:
        client.recv(1000)
        client.sendall(b"HELO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<john@alcyone.test>\r\nDATA\r\n")
        client.sendall(b"Subject: half\r\n\r\nhalf of it")
        time.sleep(0.3)
        mta_process.kill()
    mta_process.start()
    time.sleep(0.5)
    assert mta_process.stop() == 0
    assert mta_process.subjects("john") == []
    assert list(mta_process.spool.iterdir()) == []


def test_sigterm_stops_cleanly(mta_process):
    mta_process.start()
    with smtplib.SMTP("127.0.0.1", mta_process.port) as client:
        client.sendmail("a@b.test", ["john@alcyone.test"], b"Subject: before stop\r\n\r\nx\r\n")
    _wait_for(lambda: mta_process.subjects("john") == ["before stop"])
    assert mta_process.stop() == 0


def test_sigterm_closes_idle_sessions(mta_process):
    mta_process.start()
    with socket.create_connection(("127.0.0.1", mta_process.port), timeout=30) as client:
        client.recv(1000)
        client.sendall(b"EHLO x\r\n")
        time.sleep(0.2)
        client.recv(1000)
        mta_process.process.send_signal(signal.SIGTERM)
        assert mta_process.process.wait(20) == 0
        assert client.recv(1000) == b"421 4.3.2 alcyone.test Shutting down\r\n"
