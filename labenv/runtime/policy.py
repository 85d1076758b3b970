"""Switching the [auth] policy of a running lab's receiving MTA without recreating its container."""

from __future__ import annotations

import logging
import re
import time
import tomllib
from dataclasses import dataclass

import docker
from docker.models.containers import Container

from labenv.auth.mta_hooks import MODES
from labenv.errors import ConfigError, DockerError
from labenv.lab.model import Lab
from labenv.runtime.engine import docker_errors
from labenv.runtime.hostfiles import LOG_FILES, read_host_file, running_container

log = logging.getLogger(__name__)

MTA_CONFIG = "/etc/labenv/mta.toml"
MTA_COMMAND = "labenv mta serve"
# The lines labenv.cli.mta_commands logs through the mail log after a SIGHUP.
RELOAD_LINE = re.compile(
    r"auth policy (?:changed from (?P<previous>\S+) to (?P<changed>\S+)|unchanged: (?P<unchanged>\S+)|reload failed.*)$"
)
# Seconds to wait for the MTA's line to reach the host's own mail log through rsyslogd.
CONFIRM_TIMEOUT = 15.0
CONFIRM_POLL = 0.2


class PolicyError(DockerError):
    """The policy could not be set or the MTA did not confirm it."""


@dataclass(frozen=True)
class PolicyChange:
    """The outcome of one switch: the container, the policies before and after, and the MTA's log line."""

    container: str
    previous: str
    current: str
    log_line: str

    @property
    def message(self) -> str:
        """The MTA's own words in the log line, without the syslog header."""
        match = RELOAD_LINE.search(self.log_line)
        return match.group(0) if match else self.log_line


def rewrite_policy(text: str, policy: str) -> str:
    """Return the MTA configuration ``text`` with ``policy`` set in its [auth] table, other lines unchanged."""
    if policy not in MODES:
        raise ConfigError(f"invalid auth policy {policy!r}: expected one of {', '.join(MODES)}")
    lines = text.splitlines(keepends=True)
    header = next((i for i, line in enumerate(lines) if line.strip() == "[auth]"), None)
    if header is None:
        separator = "" if not text or text.endswith("\n") else "\n"
        rewritten = f'{text}{separator}\n[auth]\npolicy = "{policy}"\n'
    else:
        end = next((i for i in range(header + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
        key = next((i for i in range(header + 1, end) if re.match(r"\s*policy\s*=", lines[i])), None)
        new_line = f'policy = "{policy}"\n'
        if key is None:
            lines.insert(header + 1, new_line)
        else:
            lines[key] = new_line
        rewritten = "".join(lines)
    # The MTA rejects a file it cannot parse, so check the result before writing it.
    if _file_policy(rewritten) != policy:
        raise ConfigError(f"rewriting [auth] policy to {policy!r} failed; check {MTA_CONFIG} by hand")
    return rewritten


def _file_policy(text: str) -> str:
    try:
        settings = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML in {MTA_CONFIG}: {exc}; fix the file or recreate the host") from exc
    return settings.get("auth", {}).get("policy", "observe")


def read_policy(container: Container) -> str:
    """Return the [auth] policy written in the container's MTA configuration."""
    return _file_policy(read_host_file(container, MTA_CONFIG).decode("utf-8"))


def set_policy(client: docker.DockerClient, lab: Lab, policy: str) -> PolicyChange:
    """Write ``policy`` into the final host's MTA configuration, send SIGHUP and wait for the MTA's log line."""
    container = running_container(client, lab.name, lab.host_with_role("final").name)
    text = read_host_file(container, MTA_CONFIG).decode("utf-8")
    mta_pid = _mta_pid(container)
    log_before = _reload_lines(container)

    _run(container, ["sh", "-c", f'printf %s "$1" > {MTA_CONFIG}', "sh", rewrite_policy(text, policy)],
         f"writing {MTA_CONFIG}")
    _run(container, ["kill", "-HUP", mta_pid], f"sending SIGHUP to the MTA (PID {mta_pid})")
    line = _await_reload_line(container, len(log_before))

    match = RELOAD_LINE.search(line)
    applied = None
    if match is not None:
        applied = match.group("changed") or match.group("unchanged")
    if applied != policy:
        raise PolicyError(
            f"the MTA in {container.name} did not apply policy {policy!r}: {line}; "
            f"check {MTA_CONFIG} and 'docker logs {container.name}'"
        )
    # The MTA's own previous policy, which differs from the file's if the file was edited without a SIGHUP.
    previous = match.group("previous") or policy
    log.info("%s: auth policy %s -> %s", container.name, previous, policy)
    return PolicyChange(container.name, previous, policy, line)


def set_lab_policy(lab_name: str, policy: str) -> tuple[PolicyChange, Lab]:
    """Connect to Docker, load the running lab ``lab_name`` and set its policy; return the change and the lab."""
    from labenv.runtime.engine import connect
    from labenv.runtime.status import load_running_lab

    client = connect()
    lab = load_running_lab(client, lab_name)
    return set_policy(client, lab, policy), lab


def _mta_pid(container: Container) -> str:
    """Return the PID of ``labenv mta serve`` in the container: 1, or the child of docker-init."""
    pid1 = [word for word in read_host_file(container, "/proc/1/cmdline").split(b"\0") if word]
    if b"mta" in pid1 and b"serve" in pid1:
        return "1"
    # Hosts run with Docker's init (docker-init, i.e. tini) as PID 1, and the
    # entrypoint execs the MTA in its child process.
    with docker_errors(f"finding the MTA process in {container.name}"):
        result = container.exec_run(["pgrep", "-P", "1", "-f", MTA_COMMAND], user="root")
    pids = result.output.decode(errors="replace").split()
    if result.exit_code != 0 or len(pids) != 1:
        command = b" ".join(pid1).decode(errors="replace")
        raise PolicyError(
            f"no single '{MTA_COMMAND}' process under PID 1 ({command!r}) in {container.name} "
            f"(found {pids or 'none'}), so SIGHUP cannot reach the MTA; recreate the host with 'labenv up'"
        )
    return pids[0]


def _reload_lines(container: Container) -> list[str]:
    try:
        text = read_host_file(container, LOG_FILES["mail"]).decode("utf-8", "replace")
    except DockerError:
        # rsyslogd creates the file with the first mail line; until then there is nothing to count.
        return []
    return [line for line in text.splitlines() if RELOAD_LINE.search(line)]


def _await_reload_line(container: Container, seen: int) -> str:
    deadline = time.monotonic() + CONFIRM_TIMEOUT
    while True:
        lines = _reload_lines(container)
        if len(lines) > seen:
            return lines[seen]
        if time.monotonic() >= deadline:
            raise PolicyError(
                f"no 'auth policy' line in {LOG_FILES['mail']} of {container.name} within {CONFIRM_TIMEOUT:g} s "
                f"after SIGHUP; the file was rewritten, so check 'docker logs {container.name}'"
            )
        time.sleep(CONFIRM_POLL)


def _run(container: Container, command: list[str], action: str) -> None:
    with docker_errors(f"{action} in {container.name}"):
        result = container.exec_run(command, user="root", demux=True)
    if result.exit_code != 0:
        _, stderr = result.output
        reason = (stderr or b"").decode(errors="replace").strip()
        raise PolicyError(f"{action} in {container.name} failed: {reason or f'exit status {result.exit_code}'}")
