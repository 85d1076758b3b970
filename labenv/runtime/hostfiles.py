"""Reading logs and mailboxes out of running lab hosts."""

from __future__ import annotations

import re
from collections.abc import Iterator

import docker
from docker.models.containers import Container

from labenv.errors import ConfigError, DockerError
from labenv.lab.model import Lab
from labenv.runtime.containers import find_container
from labenv.runtime.engine import docker_errors
from labenv.runtime.lookup import require_host
from labenv.runtime.names import lab_command

LOG_FILES = {"syslog": "/var/log/syslog", "mail": "/var/log/mail.log"}

# Classic syslog line: "Mmm dd hh:mm:ss HOST TAG...". The host field is the
# fourth whitespace-separated field.
SYSLOG_HOST_FIELD = re.compile(r"^\w{3} [ \d]\d \d\d:\d\d:\d\d (\S+) ")


def running_container(client: docker.DockerClient, lab_name: str, host_name: str) -> Container:
    """Return the running container of a host, or raise ConfigError naming the fix.

    Callers that have the lab model call host_container, which first checks
    that the lab has such a host at all.
    """
    container = find_container(client, lab_name, host_name)
    if container is None:
        raise ConfigError(
            f"host {host_name} of lab {lab_name} has no container; start it with '{lab_command('up', lab_name)}'"
        )
    if container.status != "running":
        raise ConfigError(
            f"host {host_name} of lab {lab_name} is {container.status}; "
            f"read 'docker logs {container.name}' and run '{lab_command('up', lab_name)}' to start it"
        )
    return container


def host_container(client: docker.DockerClient, lab: Lab, host_name: str) -> Container:
    """Return the running container of ``host_name``, raising ConfigError when the lab has no such host."""
    require_host(lab, host_name)
    return running_container(client, lab.name, host_name)


def read_host_file(container: Container, path: str, *, missing_ok: bool = False) -> bytes:
    """Return the content of ``path`` in the container, read as root.

    With ``missing_ok`` a file that does not exist reads as empty, as an
    mbox does before its first delivery.
    """
    # The path goes in as a positional parameter, so the shell never parses it.
    argv = ["sh", "-c", '[ ! -e "$1" ] || cat -- "$1"', "sh", path] if missing_ok else ["cat", "--", path]
    with docker_errors(f"reading {path} in {container.name}"):
        result = container.exec_run(argv, user="root", demux=True)
    stdout, stderr = result.output
    if result.exit_code != 0:
        reason = (stderr or b"").decode(errors="replace").strip()
        raise DockerError(f"reading {path} in {container.name} failed: {reason}")
    return stdout or b""


def filter_log(lines: list[str], host: str | None, pattern: str | None) -> list[str]:
    """Return the lines written by ``host`` (short name) that match the regular expression ``pattern``."""
    matcher = _compile(pattern)
    selected = []
    for line in lines:
        if host is not None:
            match = SYSLOG_HOST_FIELD.match(line)
            if match is None or match.group(1).split(".")[0] != host:
                continue
        if matcher is not None and not matcher.search(line):
            continue
        selected.append(line)
    return selected


def follow_log(container: Container, path: str, host: str | None, pattern: str | None) -> Iterator[str]:
    """Yield the matching lines appended to ``path`` from now on, until the caller stops."""
    with docker_errors(f"following {path} in {container.name}"):
        _, stream = container.exec_run(["tail", "-n", "0", "-F", path], user="root", stream=True)
    pending = b""
    for chunk in stream:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        lines = [line.decode(errors="replace") for line in complete]
        yield from filter_log(lines, host, pattern)


def _compile(pattern: str | None) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"invalid --grep pattern {pattern!r}: {exc}; write a Python regular expression") from exc
