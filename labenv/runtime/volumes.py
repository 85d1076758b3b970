"""Named volumes that keep a host's mailboxes, spool and logs when `up` recreates its container."""

from __future__ import annotations

import logging

import docker
import docker.errors

from labenv.lab.model import Host
from labenv.runtime.engine import docker_errors
from labenv.runtime.names import lab_labels, volume_name

log = logging.getLogger(__name__)

# Purpose (the last part of the volume name) -> mount point, per role.
MAIL_HOST_VOLUMES = {"mail": "/var/mail", "spool": "/var/spool/labenv-mta", "log": "/var/log"}
ROLE_VOLUMES: dict[str, dict[str, str]] = {
    "relay": MAIL_HOST_VOLUMES,
    "final": MAIL_HOST_VOLUMES,
    "syslog": {"log": "/var/log"},
    "spamd": {},
    "dns": {},
}


def host_volumes(lab_name: str, host: Host) -> dict[str, str]:
    """Return volume name -> mount point for the volumes of ``host``."""
    return {volume_name(lab_name, host.name, purpose): path for purpose, path in ROLE_VOLUMES[host.role].items()}


def ensure_volumes(client: docker.DockerClient, lab_name: str, host: Host) -> dict[str, dict[str, str]]:
    """Create the host's volumes that are missing and return them in the ``binds`` form of the Docker API.

    A new volume is empty, so Docker copies the image's content, owner and
    mode at the mount point into it on first mount. /var/mail thus starts as
    root:mail 2775 and the spool as root:root 0755, as in the image.
    """
    binds = {}
    for name, path in host_volumes(lab_name, host).items():
        _ensure_volume(client, name, lab_name, host.name)
        binds[name] = {"bind": path, "mode": "rw"}
    return binds


def _ensure_volume(client: docker.DockerClient, name: str, lab_name: str, host_name: str) -> None:
    with docker_errors(f"inspecting volume {name}"):
        try:
            client.volumes.get(name)
            log.debug("reusing volume %s", name)
            return
        except docker.errors.NotFound:
            pass
    with docker_errors(f"creating volume {name}"):
        client.volumes.create(name, driver="local", labels=lab_labels(lab_name, host_name))
    log.info("created volume %s", name)
