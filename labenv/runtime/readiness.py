"""Waiting until every host of a lab serves what its role promises.

Each probe runs inside the container with `docker exec`, so readiness does
not depend on the host reaching the container's address (Docker Desktop
cannot, and the lab network is internal).
"""

from __future__ import annotations

import logging
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass

from docker.models.containers import Container

from labenv.errors import ReadinessError
from labenv.lab.model import Host, Lab
from labenv.runtime.engine import docker_errors

log = logging.getLogger(__name__)

# Maximum run time of one probe in seconds, so a hung daemon cannot stall the wait.
PROBE_TIMEOUT = 3

POLL_INTERVAL = 0.5
LOG_TAIL_LINES = 15


@dataclass(frozen=True)
class Probe:
    """One readiness check: a command run in the host's container that exits 0 when ready."""

    description: str
    command: list[str]


def tcp_probe(
    description: str, address: str, port: int, expected: str = "", request: str = "", farewell: str = ""
) -> Probe:
    """Return a probe that connects to ADDRESS:PORT, sends ``request`` and expects a first line matching ``expected``.

    ``farewell`` is sent after that line, so that the server gets an orderly
    end of session. The probe uses bash's /dev/tcp, which every lab image
    has. An empty ``expected`` only checks that the port accepts connections.
    """
    script = f"exec 3<>/dev/tcp/{address}/{port}"
    if request:
        script += f"; printf {shlex.quote(request)} >&3"
    if expected:
        script += "; head -n 1 <&3"
    if farewell:
        script += f"; printf {shlex.quote(farewell)} >&3; cat <&3 >/dev/null"
    command = f"timeout {PROBE_TIMEOUT} bash -c {shlex.quote(script)}"
    if expected:
        command += f" | grep -qE {shlex.quote(expected)}"
    return Probe(description, ["sh", "-c", command])


def probes_for(host: Host) -> list[Probe]:
    """Return the probes that must all pass before ``host`` counts as ready."""
    probes = []
    if host.role in ("relay", "final"):
        # The relay listens on 127.0.0.1 only; the final host on every address.
        probes.append(tcp_probe("SMTP banner on port 25", "127.0.0.1", 25, "^220 ", farewell=r"QUIT\r\n"))
        probes.append(tcp_probe("sshd on port 22", "127.0.0.1", 22, "^SSH-2\\.0-"))
    elif host.role == "dns":
        probes.append(Probe(
            f"DNS answer for {host.domain} SOA",
            ["sh", "-c", f"dig +norecurse +short +time=1 +tries=1 @127.0.0.1 {host.domain} SOA | grep -q ."],
        ))
    elif host.role == "spamd":
        # spamd only accepts clients from --allowed-ips, which contains the lab
        # subnet, so the probe connects to the host's own lab address.
        probes.append(tcp_probe("spamd PING on port 783", str(host.address), 783, "PONG", r"PING SPAMC/1.5\r\n\r\n"))
    elif host.role == "syslog":
        probes.append(tcp_probe("rsyslog on TCP port 514", "127.0.0.1", 514))
    if host.role != "syslog":
        probes.append(Probe("rsyslogd running", ["sh", "-c", "test -S /dev/log && pidof rsyslogd >/dev/null"]))
    return probes


def wait_ready(
    lab: Lab,
    containers: dict[str, Container],
    timeout: float,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Wait until every probe of every host passes, or raise ReadinessError.

    The timeout covers the whole lab, not each host, so `--timeout` is the
    longest `up` waits after the containers start.
    """
    deadline = time.monotonic() + timeout
    for host in lab.hosts:
        container = containers[host.name]
        for probe in probes_for(host):
            _wait_probe(host, container, probe, deadline, timeout)
        if progress is not None:
            progress(f"{host.name} ready")


def _wait_probe(host: Host, container: Container, probe: Probe, deadline: float, timeout: float) -> None:
    attempts = 0
    while True:
        attempts += 1
        container.reload()
        if container.status != "running":
            raise ReadinessError(
                f"{host.name} stopped before it was ready (status {container.status}, "
                f"exit code {container.attrs['State'].get('ExitCode')}) while waiting for {probe.description}; "
                f"its last log lines:\n{last_log_lines(container)}"
            )
        with docker_errors(f"probing {probe.description} in {container.name}"):
            result = container.exec_run(probe.command, user="root")
        if result.exit_code == 0:
            log.debug("%s: %s passed after %d attempts", host.name, probe.description, attempts)
            return
        if time.monotonic() >= deadline:
            raise ReadinessError(
                f"{host.name} was not ready within {timeout:g} s: no {probe.description}; "
                f"raise the limit with --timeout or read 'docker logs {container.name}'. "
                f"Its last log lines:\n{last_log_lines(container)}"
            )
        time.sleep(POLL_INTERVAL)


def last_log_lines(container: Container, lines: int = LOG_TAIL_LINES) -> str:
    """Return the container's last ``lines`` lines of output, indented for an error message."""
    with docker_errors(f"reading the logs of {container.name}"):
        text = container.logs(tail=lines).decode(errors="replace").rstrip()
    return "\n".join("    " + line for line in text.splitlines()) or "    (no output)"


def failing_probes(host: Host, container: Container) -> list[str]:
    """Run each probe of ``host`` once and return the descriptions of those that fail."""
    failing = []
    for probe in probes_for(host):
        with docker_errors(f"probing {probe.description} in {container.name}"):
            result = container.exec_run(probe.command, user="root")
        if result.exit_code != 0:
            failing.append(probe.description)
    return failing
