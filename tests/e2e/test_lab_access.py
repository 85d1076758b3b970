"""Reaching a running lab: SSH through docker exec, fabric, and the status, logs and mail commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labenv.runtime.access import fabric_connection

pytestmark = pytest.mark.docker

LABENV = [sys.executable, "-m", "labenv"]
ROOT = Path(__file__).resolve().parents[2]


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
    assert "lab 'no-such-lab' is not running" in result.stderr


def test_logs_filter_by_host(lab):
    result = labenv("logs", "--name", lab.name, "--host", "ns")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines, "the log host holds no line from ns"
    assert all(line.split()[3] == "ns" for line in lines), lines[:3]
