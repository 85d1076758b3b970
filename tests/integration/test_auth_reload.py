"""SIGHUP makes a running `labenv mta serve` apply the [auth] policy of its file again."""

from __future__ import annotations

import signal
import smtplib
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from labenv.errors import ConfigError
from labenv.runtime.policy import rewrite_policy
from tests.support.dns_server import DnsServer
from tests.support.processes import start_mta_process

FORGED = (
    b"From: Mickey Mouse <mmouse@toontown.test>\r\n"
    b"To: john@alcyone.test\r\n"
    b"Subject: free cheese\r\n"
    b"\r\n"
    b"Trust me.\r\n"
)
# Seconds to wait for the MTA to start or to log a line after a signal.
WAIT = 20


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ReloadingMta:
    """`labenv -v mta serve --config FILE` in a child process, with the file it reads."""

    def __init__(self, base: Path, resolver: str) -> None:
        self.base = base
        self.config = base / "mta.toml"
        self.output = base / "mta.log"
        self.port = _free_port()
        self.resolver = resolver
        (base / "mail").mkdir(parents=True)
        self.process: subprocess.Popen | None = None

    def write_config(self, policy_line: str) -> None:
        self.config.write_text(
            'role = "final"\n'
            'hostname = "alcyone.test"\n'
            f'listen = "127.0.0.1:{self.port}"\n'
            'domains = ["alcyone.test"]\n'
            'users = ["john"]\n'
            f'spool = "{self.base / "spool"}"\n'
            f'mail_dir = "{self.base / "mail"}"\n'
            f'resolver = "{self.resolver}"\n'
            'syslog = "none"\n'
            "\n[auth]\n"
            f"{policy_line}\n",
            encoding="utf-8",
        )

    def start(self) -> None:
        command = [sys.executable, "-m", "labenv", "-v", "mta", "serve", "--config", str(self.config)]
        self.process = start_mta_process(command, self.port, self.output, timeout=WAIT)

    def reload(self, expected_line: str) -> None:
        """Send SIGHUP and wait until the output shows ``expected_line``."""
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + WAIT
        while expected_line not in self.output.read_text():
            if time.monotonic() >= deadline or self.process.poll() is not None:
                raise AssertionError(f"no {expected_line!r} after SIGHUP; MTA output: {self.output.read_text()}")
            time.sleep(0.1)

    def send_forged(self) -> None:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as client:
            client.ehlo("regulus.campus.test")
            client.sendmail("mmouse@toontown.test", ["john@alcyone.test"], FORGED)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(WAIT)


@pytest.fixture
def mta(tmp_path):
    records = {
        "toontown.test": ['TXT "v=spf1 ip4:192.0.2.10 -all"'],
        "_dmarc.toontown.test": ['TXT "v=DMARC1; p=reject"'],
        "alcyone.test": ["MX 10 alcyone.test.", "A 127.0.0.1"],
    }
    with DnsServer(records) as dns_server:
        process = ReloadingMta(tmp_path, dns_server.address_text)
        yield process
        process.stop()


def test_reload_observe_to_enforce(mta):
    mta.write_config('policy = "observe"')
    mta.start()
    mta.send_forged()

    mta.write_config('policy = "enforce"')
    mta.reload("auth policy changed from observe to enforce")
    with pytest.raises(smtplib.SMTPDataError) as rejected:
        mta.send_forged()

    assert rejected.value.smtp_code == 550
    assert rejected.value.smtp_error.startswith(b"5.7.1 ")
    assert b"toontown.test" in rejected.value.smtp_error
    assert mta.process.poll() is None


def test_reload_enforce_to_observe(mta):
    mta.write_config('policy = "enforce"')
    mta.start()
    with pytest.raises(smtplib.SMTPDataError):
        mta.send_forged()

    mta.write_config('policy = "observe"')
    mta.reload("auth policy changed from enforce to observe")
    mta.send_forged()

    assert mta.process.poll() is None


@pytest.mark.parametrize("bad_line", ['policy = "strict"', 'policy = "enforce'])
def test_reload_bad_file_keeps(mta, bad_line):
    mta.write_config('policy = "observe"')
    mta.start()

    mta.write_config(bad_line)
    mta.reload("auth policy reload failed, keeping observe")
    mta.send_forged()

    assert mta.process.poll() is None


def test_reload_unchanged(mta):
    mta.write_config('policy = "observe"')
    mta.start()

    mta.reload("auth policy unchanged: observe")
    mta.send_forged()

    assert mta.process.poll() is None


RENDERED = 'role = "final"\nhostname = "alcyone.campus.test"\n\n[auth]\npolicy = "observe"\n\n[dkim]\ndomain = "campus.test"\n'


def test_rewrite_policy_in_table():
    rewritten = rewrite_policy(RENDERED, "enforce")
    assert rewritten == RENDERED.replace('policy = "observe"', 'policy = "enforce"')


def test_rewrite_policy_adds_key():
    text = RENDERED.replace('policy = "observe"\n', "")
    rewritten = rewrite_policy(text, "enforce")
    assert tomllib.loads(rewritten)["auth"] == {"policy": "enforce"}
    assert tomllib.loads(rewritten)["dkim"] == {"domain": "campus.test"}


def test_rewrite_policy_adds_table():
    rewritten = rewrite_policy('role = "final"', "enforce")
    assert rewritten == 'role = "final"\n\n[auth]\npolicy = "enforce"\n'


def test_rewrite_policy_invalid():
    with pytest.raises(ConfigError, match="invalid auth policy 'strict'"):
        rewrite_policy(RENDERED, "strict")
