"""Reaching a lab host's shell without a network path: docker exec and SSH tunnelled through it.

The lab network is internal, so Docker forwards no port into it. SSH still
works because its transport is `nc localhost 22` run inside the container
with `docker exec`, which is what the ProxyCommand below does.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import fabric
import paramiko

from labenv.errors import ConfigError, DockerError
from labenv.lab.model import Lab
from labenv.lab.secrets import load_or_create_secrets, state_dir_for
from labenv.runtime.lookup import require_host
from labenv.runtime.names import container_name

log = logging.getLogger(__name__)

# Files the ssh client reads, kept apart from the key store of labenv.lab.secrets.
CLIENT_DIR = "ssh-client"
SSH_KEY_FILE = "id_ed25519"
KNOWN_HOSTS_FILE = "known_hosts"
# Seconds to wait for the `docker exec` proxy to exit after the SSH connection closes.
PROXY_EXIT_TIMEOUT = 5


def docker_command() -> str:
    """Return the path of the docker command line, or raise DockerError saying how to install it."""
    path = shutil.which("docker")
    if path is None:
        raise DockerError(
            "the 'docker' command is not installed; install the Docker CLI (Debian package docker.io) "
            "because exec and ssh run through it"
        )
    return path


def proxy_command(lab_name: str, host_name: str) -> str:
    """Return the SSH ProxyCommand that carries a connection to the host's sshd over docker exec."""
    return f"{shlex.quote(docker_command())} exec -i {container_name(lab_name, host_name)} nc localhost 22"


def exec_argv(lab_name: str, host_name: str, command: Sequence[str], user: str | None, interactive: bool) -> list[str]:
    """Return the `docker exec` command line that runs ``command`` in the host as ``user``."""
    argv = [docker_command(), "exec"]
    if interactive:
        argv.append("-it")
    if user:
        argv += ["-u", user, "-w", f"/home/{user}" if user != "root" else "/root"]
    argv.append(container_name(lab_name, host_name))
    argv += list(command) if command else ["bash", "-l"]
    return argv


def ssh_files(lab: Lab) -> tuple[Path, Path]:
    """Write the lab's SSH private key and a known_hosts file pinned to its host keys; return both paths.

    The files live in the lab's state directory with mode 0600, so that ssh
    accepts the key and checks each host key without a prompt.
    """
    state_dir = state_dir_for(lab.name)
    secrets = load_or_create_secrets(state_dir, lab)
    client_dir = state_dir / CLIENT_DIR
    key_path = client_dir / SSH_KEY_FILE
    known_hosts = client_dir / KNOWN_HOSTS_FILE
    _write_private(key_path, secrets.user_key.private_openssh)
    _write_private(known_hosts, secrets.known_hosts(lab).encode())
    return key_path, known_hosts


def _write_private(path: Path, content: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(content)
    os.chmod(path, 0o600)


def ssh_argv(lab: Lab, host_name: str, user: str, command: Sequence[str] = ()) -> list[str]:
    """Return the `ssh` command line that logs ``user`` into the host through docker exec."""
    host = require_host(lab, host_name)
    ssh = shutil.which("ssh")
    if ssh is None:
        raise ConfigError("the 'ssh' command is not installed; install openssh-client, or use 'labenv exec'")
    key_path, known_hosts = ssh_files(lab)
    argv = [
        ssh,
        "-o", f"ProxyCommand={proxy_command(lab.name, host.name)}",
        "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "IdentitiesOnly=yes",
        "-o", "IdentityAgent=none",
        "-i", str(key_path),
        "-l", user,
    ]
    if sys.stdin.isatty() and not command:
        argv.append("-t")
    argv.append(host.fqdn)
    argv += list(command)
    return argv


class _ReapingProxyCommand(paramiko.ProxyCommand):
    """A ProxyCommand whose close() can run twice and waits for the process to exit.

    paramiko's own close() sends SIGTERM without waiting and leaves the
    pipes open, which leaves a zombie `docker exec` and ResourceWarnings.
    It also raises when the transport thread closes the socket a second time.
    """

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=PROXY_EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                log.warning("ssh proxy process %s did not exit; killing it", self.process.pid)
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


class LabConnection(fabric.Connection):
    """A fabric Connection tunnelled through `docker exec` whose proxy process is reaped on close."""

    def open_gateway(self) -> paramiko.ProxyCommand:
        return _ReapingProxyCommand(self.gateway)


def fabric_connection(lab: Lab, host_name: str, user: str) -> LabConnection:
    """Return a fabric Connection to ``user`` on the host, tunnelled through docker exec.

    The connection trusts only the lab's pinned host keys and offers only
    the lab's key, so a stale ~/.ssh/known_hosts or agent cannot interfere.
    """
    host = require_host(lab, host_name)
    key_path, known_hosts = ssh_files(lab)
    connection = LabConnection(
        host.fqdn,
        user=user,
        gateway=proxy_command(lab.name, host.name),
        connect_kwargs={"key_filename": str(key_path), "look_for_keys": False, "allow_agent": False},
    )
    connection.client.load_host_keys(str(known_hosts))
    connection.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return connection
