"""Connecting to the Docker engine, and turning its errors into DockerError."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

import docker
import docker.errors
import requests.exceptions

from labenv.errors import DockerError

log = logging.getLogger(__name__)

DEFAULT_SOCKET = "unix:///var/run/docker.sock"


def connect() -> docker.DockerClient:
    """Connect to the Docker engine named by the environment and ping it.

    Raises DockerError naming the address tried (DOCKER_HOST or the default
    socket) and how to fix it, in one line the command line prints as is.
    """
    address = os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET
    source = "DOCKER_HOST" if os.environ.get("DOCKER_HOST") else "the default socket"
    fix = "start Docker (e.g. 'systemctl start docker') or set DOCKER_HOST to a running engine"
    socket_path = address.removeprefix("unix://")
    if address.startswith("unix://") and not os.path.exists(socket_path):
        # Checked here because docker-py leaks the socket of a failed unix connection.
        raise DockerError(f"cannot reach the Docker engine at {address} ({source}): no such socket; {fix}")
    client = None
    try:
        client = docker.from_env()
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        if client is not None:
            # Close the pooled connections now; otherwise they surface later as ResourceWarnings.
            client.close()
        raise DockerError(
            f"cannot reach the Docker engine at {address} ({source}): {_root_cause(exc)}; {fix}"
        ) from exc
    log.debug("connected to the Docker engine at %s", address)
    return client


@contextlib.contextmanager
def docker_errors(action: str) -> Iterator[None]:
    """Re-raise Docker API errors raised inside the block as DockerError saying what ``action`` failed."""
    try:
        yield
    except docker.errors.APIError as exc:
        reason = exc.explanation or str(exc)
        raise DockerError(f"{action} failed: {reason}") from exc
    except requests.exceptions.RequestException as exc:
        raise DockerError(f"{action} failed: the Docker engine did not respond ({_first_line(exc)})") from exc


def _root_cause(exc: BaseException) -> str:
    """Return the innermost OS error of a chain, e.g. "Connection refused", or the first line of ``exc``."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        for arg in getattr(cause, "args", ()):
            if isinstance(arg, OSError) and arg.strerror:
                return arg.strerror
        cause = cause.__cause__ or cause.__context__
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
