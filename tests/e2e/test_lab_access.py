"""Reaching a running lab: SSH through docker exec, fabric, and the status, logs and mail commands."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labenv.runtime.access import fabric_connection

pytestmark = pytest.mark.docker

LABENV = [sys.executable, "-m", "labenv"]
ROOT = Path(__file__).resolve().parents[2]
# Seconds to wait for each expected piece of output on the terminal.
PTY_TIMEOUT = 60.0
# Terminal control sequences: CSI ones such as bash's bracketed-paste
# switches, and OSC ones such as the window title Debian's prompt sets.
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x00")


def labenv(*args: str) -> subprocess.CompletedProcess:
    """Run the labenv command line with the test session's state directory and return its result."""
    return subprocess.run(
        [*LABENV, *args], cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_ssh_command_as_lab_user(lab):
    relay = lab.host_with_role("relay")
    result = labenv("ssh", "--name", lab.name, "--user", "john", relay.name, "--", "id -un; hostname")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["john", relay.fqdn]


class Terminal:
    """A labenv command run on a pseudo-terminal, so its stdin, stdout and stderr are a real tty."""

    def __init__(self, *args: str) -> None:
        self.fd, secondary = pty.openpty()
        self.process = subprocess.Popen(
            [*LABENV, *args], cwd=ROOT, env={**os.environ, "TERM": "xterm"},
            stdin=secondary, stdout=secondary, stderr=secondary, start_new_session=True,
        )
        os.close(secondary)
        self.raw = ""
        self.output = ""

    def expect(self, pattern: str) -> None:
        """Read until the cleaned output matches ``pattern``; fail with the output so far on timeout or EOF."""
        deadline = time.monotonic() + PTY_TIMEOUT
        while not re.search(pattern, self.output, re.M):
            left = deadline - time.monotonic()
            assert left > 0, f"no {pattern!r} on the terminal within {PTY_TIMEOUT:g} s; output:\n{self.output}"
            if select.select([self.fd], [], [], left)[0] and not self._read():
                raise AssertionError(f"terminal closed before {pattern!r}; output:\n{self.output}")

    def send(self, line: str) -> None:
        os.write(self.fd, (line + "\n").encode())

    def close(self) -> int:
        """Read to the end, wait for the command and return its exit code."""
        deadline = time.monotonic() + PTY_TIMEOUT
        while time.monotonic() < deadline and select.select([self.fd], [], [], 1)[0] and self._read():
            pass
        return self.process.wait(timeout=PTY_TIMEOUT)

    def kill(self) -> None:
        """Kill the command if it still runs and close the terminal."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.fd)

    def _read(self) -> bool:
        try:
            chunk = os.read(self.fd, 4096)
        except OSError:  # Linux raises EIO once the other side of the pty is closed.
            return False
        # Cleaned as a whole, because a control sequence can span two reads.
        self.raw += chunk.decode(errors="replace")
        self.output = ESCAPES.sub("", self.raw).replace("\r", "")
        return bool(chunk)


@pytest.mark.parametrize("command", [("ssh",), ("exec", "--user", "john")])
def test_interactive_shell_on_pty(lab, command):
    relay = lab.host_with_role("relay")
    terminal = Terminal(*command, "--name", lab.name, relay.name)
    try:
        terminal.expect(rf"john@{relay.name}:~\$ $")
        terminal.send("hostname -f")
        terminal.expect(rf"\$ hostname -f\n{re.escape(relay.fqdn)}$")
        terminal.send("exit")
        code = terminal.close()
    finally:
        terminal.kill()
    assert code == 0, terminal.output
    assert "logout" in terminal.output


def test_fabric_connection_runs_command(lab):
    final = lab.host_with_role("final")
    connection = fabric_connection(lab, final.name, "jane")
    try:
        result = connection.run("id -un; hostname", hide=True, in_stream=False)
    finally:
        connection.close()
    assert result.stdout.splitlines() == ["jane", final.fqdn]


def test_exec_runs_as_user(lab):
    result = labenv("exec", "--name", lab.name, "--user", "jane", "regulus", "--", "id", "-un")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "jane"


def test_status_json(lab):
    result = labenv("status", "--name", lab.name, "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["domain"] == lab.domain
    assert status["subnet"] == str(lab.subnet)
    hosts = {host["name"]: host for host in status["hosts"]}
    assert sorted(hosts) == sorted(host.name for host in lab.hosts)
    for host in lab.hosts:
        assert hosts[host.name]["fqdn"] == host.fqdn
        assert hosts[host.name]["address"] == str(host.address)
        assert hosts[host.name]["role"] == host.role
        assert hosts[host.name]["health"] == "ready"
        assert hosts[host.name]["published_ports"] == []


def test_status_unknown_lab():
    result = labenv("status", "--name", "no-such-lab")
    assert result.returncode == 1
    assert result.stderr.startswith("error: lab no-such-lab is not running")
    assert result.stderr.endswith("; start it with 'labenv up --name no-such-lab'\n")


def test_logs_filter_by_host(lab):
    result = labenv("logs", "--name", lab.name, "--host", "ns")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines, "the log host holds no line from ns"
    assert all(line.split()[3] == "ns" for line in lines), lines[:3]
