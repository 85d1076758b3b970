"""Creating, starting and finding the containers of a lab."""

from __future__ import annotations

import hashlib
import logging
import shlex
from collections.abc import Mapping

import docker
import docker.errors
from docker.models.containers import Container

from labenv.errors import DockerError
from labenv.lab.model import Host, Lab
from labenv.runtime.archive import FileLike, owner_ids, pack_files
from labenv.runtime.engine import docker_errors
from labenv.runtime.names import (
    LABEL_DOMAIN,
    LABEL_FQDN,
    LABEL_HOST,
    LABEL_ROLE,
    container_name,
    lab_filter,
    lab_labels,
    network_name,
)
from labenv.runtime.volumes import ensure_volumes

log = logging.getLogger(__name__)

LABEL_CONFIG_HASH = "io.labenv.config-hash"

# Docker bind-mounts its own /etc/resolv.conf, /etc/hosts and /etc/hostname
# over the container's files at start, so a copy made before start is hidden.
# The runtime stages the rendered versions here and copies them over Docker's
# files right after start.
DOCKER_MANAGED = ("/etc/resolv.conf", "/etc/hosts", "/etc/hostname")
STAGING_DIR = "/etc/labenv/docker-managed"

# No restart policy: when a host's main daemon dies the container exits, so
# `labenv status` shows it as exited with its exit code and `docker logs`
# keeps the reason. A silent restart would hide why a message went missing;
# `labenv up` starts stopped hosts again.
RESTART_POLICY = {"Name": "no"}


def lab_containers(client: docker.DockerClient, lab_name: str | None) -> list[Container]:
    """Return the containers of one lab (or of every lab when None), running or not."""
    with docker_errors("listing lab containers"):
        return client.containers.list(all=True, filters=lab_filter(lab_name))


def find_container(client: docker.DockerClient, lab_name: str, host_name: str) -> Container | None:
    """Return the container of ``host_name`` in ``lab_name``, or None when it does not exist."""
    for container in lab_containers(client, lab_name):
        if container.labels.get(LABEL_HOST) == host_name:
            return container
    return None


def config_hash(image_id: str, files: Mapping[str, FileLike], volumes: Mapping[str, str] | None = None) -> str:
    """Return a digest of the image, the rendered files and the volume mounts, so `up` can tell a stale container."""
    digest = hashlib.sha256(image_id.encode())
    for name in sorted(volumes or {}):
        digest.update(f"volume\0{name}\0{volumes[name]}\0".encode())
    for path in sorted(files):
        spec = files[path]
        digest.update(f"{path}\0{spec.mode:o}\0{spec.owner}\0".encode())
        digest.update(spec.content)
    return digest.hexdigest()[:16]


def create_host_container(
    client: docker.DockerClient,
    lab: Lab,
    host: Host,
    image: str,
    files: Mapping[str, FileLike],
    extra_labels: Mapping[str, str],
) -> Container:
    """Create the container of ``host`` with its fixed address and volumes, and copy the rendered files in.

    The container is not started: the files must be in place before the
    entry point runs.
    """
    api = client.api
    binds = ensure_volumes(client, lab.name, host)
    dns_server = str(lab.host_with_role("dns").address)
    labels = {
        **lab_labels(lab.name, host.name),
        LABEL_ROLE: host.role,
        LABEL_FQDN: host.fqdn,
        LABEL_DOMAIN: lab.domain,
        **extra_labels,
    }
    host_config = api.create_host_config(
        dns=[dns_server],
        dns_search=[lab.domain],
        restart_policy=RESTART_POLICY,
        init=True,
        binds=binds,
    )
    endpoint = api.create_endpoint_config(ipv4_address=str(host.address), aliases=[host.name, host.fqdn])
    networking = api.create_networking_config({network_name(lab.name): endpoint})
    name = container_name(lab.name, host.name)
    with docker_errors(f"creating container {name} from image {image}"):
        created = api.create_container(
            image,
            name=name,
            hostname=host.fqdn,
            environment={"TZ": lab.timezone},
            labels=labels,
            volumes=[bind["bind"] for bind in binds.values()],
            host_config=host_config,
            networking_config=networking,
        )
    container = client.containers.get(created["Id"])
    copy_files(container, _staged(files), owner_ids(lab))
    log.info("created container %s (%s, %s)", name, host.role, host.address)
    return container


def copy_files(container: Container, files: Mapping[str, FileLike], ids: Mapping[str, int]) -> None:
    """Copy ``files`` into the container at their absolute paths."""
    if not files:
        return
    with docker_errors(f"copying {len(files)} files into {container.name}"):
        if not container.put_archive("/", pack_files(files, ids)):
            raise DockerError(f"copying files into {container.name} failed; see 'docker logs {container.name}'")


def start_host_container(container: Container, files: Mapping[str, FileLike]) -> None:
    """Start the container and put the rendered Docker-managed files in place."""
    with docker_errors(f"starting container {container.name}"):
        container.start()
    commands = [
        f"cat {shlex.quote(_staging_path(path))} > {shlex.quote(path)}" for path in DOCKER_MANAGED if path in files
    ]
    if not commands:
        return
    # These files are bind mounts: writing through them works, replacing them does not.
    with docker_errors(f"writing resolver and host files in {container.name}"):
        result = container.exec_run(["sh", "-c", " && ".join(commands)], user="root")
    if result.exit_code != 0:
        output = result.output.decode(errors="replace").strip()
        raise DockerError(
            f"writing /etc/resolv.conf and /etc/hosts in {container.name} failed "
            f"(exit {result.exit_code}): {output}; check 'docker logs {container.name}'"
        )


def remove_container(container: Container) -> None:
    """Stop and remove a container with its anonymous volumes; a container already gone is fine.

    Named volumes stay, so a recreated host keeps its mail, spool and logs.
    """
    try:
        container.remove(force=True, v=True)
    except docker.errors.NotFound:
        log.debug("container %s was already removed", container.name)
    except docker.errors.APIError as exc:
        raise DockerError(
            f"removing container {container.name} failed: {exc.explanation or exc}; "
            f"try 'docker rm -f {container.name}'"
        ) from exc
    log.info("removed container %s", container.name)


def _staged(files: Mapping[str, FileLike]) -> dict[str, FileLike]:
    return {(_staging_path(path) if path in DOCKER_MANAGED else path): spec for path, spec in files.items()}


def _staging_path(path: str) -> str:
    return STAGING_DIR + path
