"""Pseudo-terminals on lab hosts: over SSH as a lab user, or through docker exec.

SSH is how a student reaches regulus and alcyone. Hosts without sshd (the
log host, spamd, ns) are reached with docker exec, which the Docker API can
run with a terminal of its own.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any, Protocol

from labenv.errors import DockerError, LabenvError
from labenv.lab.model import Lab

log = logging.getLogger(__name__)

# Terminal size given to the programs; wide enough that no log line wraps.
TERMINAL_COLUMNS = 250
TERMINAL_ROWS = 50


class Terminal(Protocol):
    """A program running in a pseudo-terminal: a paramiko channel, an exec socket, or a test stand-in."""

    def recv(self, size: int) -> bytes: ...

    def sendall(self, data: bytes) -> None: ...

    def settimeout(self, timeout: float | None) -> None: ...

    def exit_status_ready(self) -> bool: ...

    def recv_exit_status(self) -> int: ...

    def close(self) -> None: ...


# Opens ``command`` for ``user`` on ``host`` in a pseudo-terminal, reached by ``access`` ("ssh" or "exec").
TerminalOpener = Callable[[str, str, str, str], Terminal]


class ExecTerminal:
    """A command started with docker exec and a terminal; its socket carries the raw terminal stream."""

    def __init__(self, api: Any, exec_id: str, stream: Any):
        self._api = api
        self._exec_id = exec_id
        self._stream = stream
        # docker-py returns a SocketIO wrapper; recv and timeouts need the socket under it.
        self._sock: socket.socket = stream._sock

    def recv(self, size: int) -> bytes:
        return self._sock.recv(size)

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)

    def settimeout(self, timeout: float | None) -> None:
        self._sock.settimeout(timeout)

    def exit_status_ready(self) -> bool:
        return not self._api.exec_inspect(self._exec_id)["Running"]

    def recv_exit_status(self) -> int:
        return self._api.exec_inspect(self._exec_id)["ExitCode"]

    def close(self) -> None:
        self._stream.close()
        self._sock.close()


class LabTerminals:
    """Opens commands on the hosts of one lab, keeping one SSH connection per host and user."""

    def __init__(self, lab: Lab, connect: Callable[[Lab, str, str], Any] | None = None, docker_client: Any = None):
        self.lab = lab
        self._connect = connect
        self._docker = docker_client
        # A Docker client made here is closed by close(); one passed in is the caller's.
        self._own_docker = False
        self._connections: dict[tuple[str, str], Any] = {}

    def __call__(self, host: str, user: str, command: str, access: str) -> Terminal:
        if access == "exec":
            return self._exec(host, user, command)
        return self._ssh(host, user, command)

    def _ssh(self, host: str, user: str, command: str) -> Terminal:
        import paramiko

        if self._connect is None:
            from labenv.runtime.access import fabric_connection

            self._connect = fabric_connection
        key = (host, user)
        try:
            if key not in self._connections:
                connection = self._connect(self.lab, host, user)
                connection.open()
                self._connections[key] = connection
            channel = self._connections[key].client.get_transport().open_session()
            channel.get_pty(term="vt100", width=TERMINAL_COLUMNS, height=TERMINAL_ROWS)
            channel.exec_command(command)
        except (paramiko.SSHException, OSError) as exc:
            self._connections.pop(key, None)
            raise LabenvError(
                f"SSH to {user}@{host} in lab {self.lab.name} failed: {exc}; check that the host runs sshd "
                f"with 'labenv status --name {self.lab.name}', or give the step access = \"exec\""
            ) from exc
        return channel

    def _exec(self, host: str, user: str, command: str) -> Terminal:
        import docker

        from labenv.runtime.names import container_name

        if self._docker is None:
            from labenv.runtime.engine import connect

            self._docker = connect()
            self._own_docker = True
        api = self._docker.api
        container = container_name(self.lab.name, host)
        try:
            created = api.exec_create(container, ["sh", "-c", command], tty=True, stdin=True, user=user)
            stream = api.exec_start(created["Id"], socket=True, tty=True)
        except docker.errors.DockerException as exc:
            raise DockerError(
                f"docker exec in {container} as {user} failed: {exc}; "
                f"check that the lab runs with 'labenv status --name {self.lab.name}'"
            ) from exc
        return ExecTerminal(api, created["Id"], stream)

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()
        if self._own_docker:
            self._docker.close()
            self._docker = None
            self._own_docker = False
